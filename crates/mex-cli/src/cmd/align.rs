//! `mex align`: placeholder until mex-align (issue 4) wires it.

/// Arguments of `mex align`.
#[derive(Debug, clap::Args)]
pub struct AlignArgs {
    /// Arguments, ignored until the command is built.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `mex align`.
pub fn run(_args: AlignArgs) -> anyhow::Result<()> {
    anyhow::bail!("`mex align` is not available in this build yet")
}
