//! `mex eval CONFIG [--out DIR] [--fold K | --merge]`: run an experiment and write its report.

use anyhow::Context;
use mex::experiment::{run_experiment, ExperimentConfig, RunOptions, RunOutcome};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `mex eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Experiment file (TOML).
    pub config: PathBuf,
    /// Output folder (fold results, report.json, report.md, figures). Default: `out/<name>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only fold K (0-based) of every variant: one job of a cluster array.
    #[arg(long, conflicts_with = "merge")]
    pub fold: Option<usize>,
    /// Train nothing; merge the fold results on disk into the report.
    #[arg(long)]
    pub merge: bool,
    /// Folds trained at once (default: one per core).
    #[arg(long, default_value_t = 0, value_parser = super::parse_jobs)]
    pub jobs: usize,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `mex eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let cfg = ExperimentConfig::from_file(&args.config)?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("out").join(&cfg.name));
    let opts = RunOptions {
        fold: args.fold,
        merge_only: args.merge,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        parallel_folds: args.jobs,
        save_weights: false,
    };
    match run_experiment(&cfg, &out, &opts)
        .with_context(|| format!("experiment {}", args.config.display()))?
    {
        RunOutcome::Fold { key, index } => {
            println!(
                "fold {index} ({key}) done; merge with: mex eval {} --out {} --merge",
                args.config.display(),
                out.display()
            );
        }
        RunOutcome::Report(r) => {
            println!("{}", super::summary_table(&r));
            println!("report: {}", out.join("report.md").display());
        }
        RunOutcome::Spotting(r) => {
            println!("{}", mex::experiment::spotting::spot_markdown(&r));
            println!("report: {}", out.join("report.md").display());
        }
    }
    Ok(())
}
