//! `mex robustness CONFIG [--out DIR] [--kind K]...`: degradation curves under perturbations.

use anyhow::Context;
use mex::experiment::{ExperimentConfig, RunOptions};
use mex::robustness::{run_robustness, Perturbation};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `mex robustness`.
#[derive(Debug, clap::Args)]
pub struct RobustnessArgs {
    /// Experiment file (TOML), as for `mex eval`.
    pub config: PathBuf,
    /// Output folder. Default: `out/<name>-robustness`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only these perturbation kinds (brightness, gamma, noise, blur, jpeg, rotation, scale,
    /// frame_rate); default: all.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Folds trained at once (default: one per core).
    #[arg(long, default_value_t = 0, value_parser = super::parse_jobs)]
    pub jobs: usize,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `mex robustness`.
pub fn run(args: RobustnessArgs) -> anyhow::Result<()> {
    let cfg = ExperimentConfig::from_file(&args.config)?;
    let mut suite = Perturbation::default_suite();
    if !args.kinds.is_empty() {
        let known: Vec<&str> = suite.iter().map(|p| p.kind()).collect();
        if let Some(k) = args.kinds.iter().find(|k| !known.contains(&k.as_str())) {
            anyhow::bail!("unknown perturbation kind `{k}` (known: {})", {
                let mut k = known.clone();
                k.dedup();
                k.join(", ")
            });
        }
        suite.retain(|p| args.kinds.iter().any(|k| k == p.kind()));
    }
    let out = args.out.unwrap_or_else(|| PathBuf::from("out").join(format!("{}-robustness", cfg.name)));
    let opts = RunOptions {
        progress: !args.quiet && std::io::stderr().is_terminal(),
        parallel_folds: args.jobs,
        ..RunOptions::default()
    };
    let r = run_robustness(&cfg, &suite, &out, &opts)
        .with_context(|| format!("experiment {}", args.config.display()))?;
    println!("{:<22} {:<12} {:>9} {:>8} {:>8}", "variant", "perturbation", "strength", "UF1", "UAR");
    for p in &r.points {
        println!(
            "{:<22} {:<12} {:>9} {:>8.3} {:>8.3}",
            p.variant,
            p.perturbation.kind(),
            p.perturbation.strength(),
            p.uf1,
            p.uar
        );
    }
    println!("report: {}", out.join("robustness.md").display());
    Ok(())
}
