#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Runs the released STSTNet weights on the released MEGC2019 composite inputs and prints the
//! pooled UF1 / UAR (published: 0.7209 / 0.725).
//!
//! `cargo run --release -p mex-classify --example ststnet_infer -- $MEX_TEST_DATA/ststnet-composite`

use mex_classify::data::load_ststnet_inputs;
use mex_classify::{predict_with_fold_weights, ModelConfig, StstnetConfig};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("MEX_TEST_DATA").unwrap_or_default()).join("ststnet-composite")
    });
    let ds = load_ststnet_inputs(&dir)?;
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let preds = predict_with_fold_weights(&ds, &cfg, &dir.join("weights"))?;
    let (mut f1, mut ar) = (0.0, 0.0);
    for c in 0..3u32 {
        let tp = preds.iter().filter(|p| p.label == c && p.pred == c).count() as f64;
        let fp = preds.iter().filter(|p| p.label != c && p.pred == c).count() as f64;
        let n = preds.iter().filter(|p| p.label == c).count() as f64;
        f1 += 2.0 * tp / (tp + fp + n);
        ar += tp / n;
    }
    println!(
        "{} samples, {} subjects: UF1 {:.4}, UAR {:.4}",
        preds.len(),
        ds.subjects().len(),
        f1 / 3.0,
        ar / 3.0
    );
    Ok(())
}
