//! `mex metrics classify|spot`: placeholder until mex-metrics (issue 2) wires it.

/// Arguments of `mex metrics classify|spot`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Arguments, ignored until the command is built.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `mex metrics classify|spot`.
pub fn run(_args: MetricsArgs) -> anyhow::Result<()> {
    anyhow::bail!("`mex metrics classify|spot` is not available in this build yet")
}
