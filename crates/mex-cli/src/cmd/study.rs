//! `mex study STUDY.toml --out DIR` or `mex study TABLE.csv --positive GROUP --out DIR`, with
//! `--recording K` (one cluster job) and `--merge`.

use anyhow::Context;
use mex::study::{run_study, StudyConfig, StudyMode, StudyOutcome};
use std::path::PathBuf;

/// Arguments of `mex study`.
#[derive(Debug, clap::Args)]
pub struct StudyArgs {
    /// A study file (.toml) or a table (.csv, one row per recording) with `--positive`.
    pub input: PathBuf,
    /// The positive group of a table given without a study file (e.g. `patient`).
    #[arg(long)]
    pub positive: Option<String>,
    /// Output folder: report.json, report.md, plots/ (and cache/ of analysed recordings).
    #[arg(long)]
    pub out: PathBuf,
    /// Analyse only recording K (0-based among the rows with a recording): one cluster job.
    #[arg(long, conflicts_with = "merge")]
    pub recording: Option<usize>,
    /// Write the report from the analyses already in the cache (after all --recording jobs).
    #[arg(long)]
    pub merge: bool,
    /// Cache folder of analysed recordings (default OUT/cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Seed of the bootstrap and of the fold assignment (overrides the study file).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs `mex study`.
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    let is_toml = args.input.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let mut cfg = if is_toml {
        let mut cfg = StudyConfig::from_file(&args.input)?;
        if let Some(p) = args.positive {
            cfg.positive = p;
        }
        cfg
    } else {
        let positive = args
            .positive
            .as_deref()
            .context("a table needs --positive GROUP (or give a study file STUDY.toml that names it)")?;
        StudyConfig::for_table(&args.input, positive)?
    };
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    let mode = match (args.recording, args.merge) {
        (Some(k), _) => StudyMode::Recording(k),
        (None, true) => StudyMode::Merge,
        (None, false) => StudyMode::All,
    };
    match run_study(&cfg, &args.out, mode, args.cache.as_deref())? {
        StudyOutcome::Analysed { index, total, ran, path } => {
            let what = if ran { "analysed" } else { "already available" };
            println!("recording {index} of {total} ({}): {what}", path.display());
        }
        StudyOutcome::Report(r) => {
            println!(
                "study {}: {} {} / {} {} subjects, {} indicators",
                r.study,
                r.n_subjects.positive,
                r.positive_group,
                r.n_subjects.negative,
                r.negative_group,
                r.indicators.len()
            );
            for i in &r.indicators {
                let g = i.hedges_g.map_or("-".into(), |g| {
                    format!("{:+.2} [{:+.2}, {:+.2}]", g.estimate, g.ci_low, g.ci_high)
                });
                let q = i.p_adjusted.map_or("-".into(), |p| format!("{p:.4}"));
                println!("  {:<28} g {g:<24} BH p {q}", i.name);
            }
            if let Some(c) = &r.classifier {
                println!(
                    "classifier: AUC {:.3} [{:.3}, {:.3}], sensitivity {:.3}, specificity {:.3}",
                    c.auc.estimate, c.auc.ci_low, c.auc.ci_high, c.sensitivity, c.specificity
                );
            }
            println!("wrote {}", args.out.join("report.md").display());
        }
    }
    Ok(())
}
