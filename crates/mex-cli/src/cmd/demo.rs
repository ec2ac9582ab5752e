//! `mex demo [--out DIR]`: the whole chain on a synthetic micro-expression, offline.

use mex::demo::{run_demo, DemoConfig};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `mex demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output folder for the figures and result.json.
    #[arg(long, default_value = "mex-demo")]
    pub out: PathBuf,
    /// Seed of the synthetic data and the training.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Skip the LOSO comparison of two variants.
    #[arg(long)]
    pub no_compare: bool,
}

/// Runs `mex demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let cfg = DemoConfig { seed: args.seed, compare_variants: !args.no_compare, ..DemoConfig::default() };
    println!(
        "mex demo: synthetic {:?} micro-expression ({} px peak) on a public-domain face photo",
        cfg.action, cfg.amplitude_px
    );
    let out = run_demo(&cfg, &args.out)?;
    let r = &out.result;
    println!(
        "  face        box [{:.0}, {:.0}, {:.0}, {:.0}], score {:.3}",
        r.face_bbox[0], r.face_bbox[1], r.face_bbox[2], r.face_bbox[3], r.face_score
    );
    let t = r.truth.interval;
    println!(
        "  truth       frames {}..{} (apex {}), {} = {}, AUs {}",
        t.onset, t.offset, t.apex, r.truth.action, r.truth.class, r.truth.action_units
    );
    match (r.spotted, r.spotted_iou) {
        (Some(s), Some(iou)) => println!(
            "  spotted     frames {}..{} (apex {}), IoU with truth {:.2}",
            s.onset, s.offset, s.apex, iou
        ),
        _ => println!("  spotted     nothing above threshold; apex chosen by peak flow: frame {}", r.apex),
    }
    println!("  flow        TV-L1 onset {} -> apex {}: mean {:.3} px", r.onset, r.apex, r.mean_flow_px);
    let probs: Vec<String> = r.probabilities.iter().map(|p| format!("{p:.2}")).collect();
    println!("  class       {} (negative/positive/surprise = {})", r.predicted, probs.join("/"));
    println!("  note        {}", r.note);
    for (name, ms) in &r.timings_ms {
        println!("  time        {name:<30} {ms:>8.1} ms");
    }
    if let Some(rep) = &out.comparison {
        println!();
        println!("{}", super::summary_table(rep));
    }
    println!(
        "wrote {} (result.json, aligned_onset.png, flow.png, strain.png, motion.svg/png{}) in {:.1} s",
        args.out.display(),
        if out.comparison.is_some() { ", loso/report.md" } else { "" },
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
