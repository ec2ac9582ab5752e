//! `mex reproduce`: placeholder until mex-classify (issue 5) wires it.

/// Arguments of `mex reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// Arguments, ignored until the command is built.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `mex reproduce`.
pub fn run(_args: ReproduceArgs) -> anyhow::Result<()> {
    anyhow::bail!("`mex reproduce` is not available in this build yet")
}
