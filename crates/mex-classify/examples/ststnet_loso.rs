#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Trains STSTNet from scratch with 68-fold LOSO on the released composite inputs (resumable)
//! and prints pooled UF1 / UAR with the per-dataset breakdown.
//!
//! `cargo run --release -p mex-classify --example ststnet_loso -- DATA_DIR FOLDS_DIR EPOCHS LR [SEED [dataset|label]]`
//! (reference recipe: EPOCHS 800, LR 5e-5; batch 256, Adam, last epoch).

use mex_classify::data::{composite_dataset_of, load_ststnet_inputs};
use mex_classify::{run_loso, LosoConfig, ModelConfig, Prediction, StstnetConfig, TrainConfig};
use std::path::PathBuf;
use std::time::Instant;

fn uf1_uar(p: &[&Prediction]) -> (f64, f64) {
    let (mut f1, mut ar, mut k) = (0.0, 0.0, 0.0);
    for c in 0..3u32 {
        let tp = p.iter().filter(|q| q.label == c && q.pred == c).count() as f64;
        let fp = p.iter().filter(|q| q.label != c && q.pred == c).count() as f64;
        let n = p.iter().filter(|q| q.label == c).count() as f64;
        if n + fp > 0.0 {
            f1 += 2.0 * tp / (tp + fp + n);
            k += 1.0;
        }
        if n > 0.0 {
            ar += tp / n;
        }
    }
    (f1 / k, ar / 3.0)
}

fn main() -> anyhow::Result<()> {
    // Freed step buffers stay with the process (see the function's docs).
    mex_classify::tune_allocator_for_training();
    let a: Vec<String> = std::env::args().collect();
    let data = a.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("MEX_TEST_DATA").unwrap_or_default()).join("ststnet-composite")
    });
    let folds = PathBuf::from(a.get(2).cloned().unwrap_or_else(|| "target/ststnet-loso".into()));
    let epochs: usize = a.get(3).map_or(Ok(800), |s| s.parse())?;
    let lr: f64 = a.get(4).map_or(Ok(5e-5), |s| s.parse())?;
    let seed: u64 = a.get(5).map_or(Ok(0), |s| s.parse())?;
    let sample_order = match a.get(6).map(String::as_str) {
        None | Some("dataset") => mex_classify::SampleOrder::Dataset,
        Some("label") => mex_classify::SampleOrder::ByLabel,
        Some(other) => anyhow::bail!("unknown order {other:?}: expected dataset or label"),
    };
    let ds = load_ststnet_inputs(&data)?;
    let cfg = LosoConfig {
        model: ModelConfig::Ststnet(StstnetConfig::default()),
        train: TrainConfig { epochs, lr, seed, sample_order, ..TrainConfig::ststnet_reference() },
        out_dir: Some(folds),
        save_weights: true,
        parallel_folds: 0,
        subjects: None,
    };
    let t0 = Instant::now();
    let res = run_loso(&ds, &cfg, |f| {
        eprintln!(
            "fold {:>5}: final train loss {:.4}, {:.1} s{}",
            f.subject,
            f.epochs.last().map_or(f32::NAN, |e| e.train_loss),
            f.elapsed_s,
            if f.resumed { " (resumed)" } else { "" }
        )
    })?;
    let all = res.predictions();
    let (u, r) = uf1_uar(&all);
    println!("epochs {epochs} lr {lr} seed {seed}: composite UF1 {u:.4} UAR {r:.4} (n {})", all.len());
    for d in ["casme2", "smic", "samm"] {
        let p: Vec<&Prediction> =
            all.iter().copied().filter(|q| composite_dataset_of(&q.subject) == d).collect();
        let (u, r) = uf1_uar(&p);
        println!("  {d:<7} UF1 {u:.4} UAR {r:.4} (n {})", p.len());
    }
    let train_s: f64 = res.folds.iter().map(|f| f.elapsed_s).sum();
    println!("wall {:.1} s, sum of fold times {train_s:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
