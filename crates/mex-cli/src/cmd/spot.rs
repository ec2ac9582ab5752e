//! `mex spot`: placeholder until mex-flow (issue 3) wires it.

/// Arguments of `mex spot`.
#[derive(Debug, clap::Args)]
pub struct SpotArgs {
    /// Arguments, ignored until the command is built.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `mex spot`.
pub fn run(_args: SpotArgs) -> anyhow::Result<()> {
    anyhow::bail!("`mex spot` is not available in this build yet")
}
