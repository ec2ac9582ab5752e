//! Runs an experiment file (default: examples/experiments/flow_methods.toml, TV-L1 vs Farnebäck and
//! STSTNet vs OFF-ApexNet on the synthetic composite set) and prints the comparison.
//!
//! ```sh
//! cargo run --release --example compare_variants -- [EXPERIMENT.toml] [OUT_DIR]
//! ```
#![allow(missing_docs)]

use mex::experiment::{run_experiment, ExperimentConfig, RunOptions, RunOutcome};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cfg_path = args.next().unwrap_or_else(|| "examples/experiments/flow_methods.toml".into());
    let out = args.next().unwrap_or_else(|| "out/flow_methods".into());
    let cfg = ExperimentConfig::from_file(cfg_path.as_ref())?;
    let opts = RunOptions { progress: true, ..RunOptions::default() };
    if let RunOutcome::Report(r) = run_experiment(&cfg, out.as_ref(), &opts)? {
        for v in &r.variants {
            println!(
                "{:<20} UF1 {:.3} [{:.3}, {:.3}]  UAR {:.3} [{:.3}, {:.3}]",
                v.name, v.uf1.estimate, v.uf1.lower, v.uf1.upper, v.uar.estimate, v.uar.lower, v.uar.upper
            );
        }
        for c in &r.comparisons {
            println!(
                "{} vs {}: ΔUF1 {:+.3}, permutation p {:.3}",
                c.a, c.b, c.uf1_difference, c.permutation_p
            );
        }
        println!("report: {out}/report.md");
    }
    Ok(())
}
