//! `mex flow`: placeholder until mex-flow (issue 3) wires it.

/// Arguments of `mex flow`.
#[derive(Debug, clap::Args)]
pub struct FlowArgs {
    /// Arguments, ignored until the command is built.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `mex flow`.
pub fn run(_args: FlowArgs) -> anyhow::Result<()> {
    anyhow::bail!("`mex flow` is not available in this build yet")
}
