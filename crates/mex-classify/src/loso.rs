//! Leave-one-subject-out (LOSO) training and evaluation.
//!
//! For each test subject the trainer builds a *copy* of the dataset without that subject and
//! hands only that copy to the training loop ([`crate::train::fit`]); the test samples are
//! predicted once, after training, with the weights that the training loop chose. Model
//! selection (last epoch, or an inner validation split of *training* subjects) therefore cannot
//! see the test fold. This is deliberate: choosing the epoch by test-fold accuracy, as some
//! published code does, inflates the composite UF1 by 6 to 14 points (MEB's early-stopping
//! experiment: STSTNet 0.7127 at the last epoch vs. 0.7740 with per-subject test-set selection;
//! OFF-ApexNet 0.7032 vs. 0.8390).
//!
//! Each finished fold is written to `<out_dir>/<subject>.json` (predictions, losses, timings,
//! and a fingerprint of the configuration) and optionally `<subject>.safetensors`; a rerun
//! with the same configuration skips finished folds, so an interrupted 68-fold run loses at
//! most the folds in flight.

use crate::data::Dataset;
use crate::models::{argmax, Model, ModelConfig};
use crate::train::{fit, EpochStats, TrainConfig};
use crate::{Error, Result};
use candle_core::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// LOSO configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LosoConfig {
    /// The model trained in every fold (fresh weights per fold).
    pub model: ModelConfig,
    /// The training recipe.
    pub train: TrainConfig,
    /// Folder for finished folds (resumable runs); `None` keeps everything in memory.
    pub out_dir: Option<PathBuf>,
    /// Also write each fold's weights as `<subject>.safetensors` in `out_dir`.
    pub save_weights: bool,
    /// Folds trained at the same time (rayon); 0 = one per available core.
    pub parallel_folds: usize,
    /// Test only these subjects (all subjects when `None`); the training set of a fold is still
    /// every other subject.
    pub subjects: Option<Vec<String>>,
}

/// One test-sample prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Subject (the fold).
    pub subject: String,
    /// Sample id.
    pub id: String,
    /// True label.
    pub label: u32,
    /// Predicted label (argmax).
    pub pred: u32,
    /// Class probabilities (softmax).
    pub probs: Vec<f32>,
}

/// The outcome of one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// The held-out subject.
    pub subject: String,
    /// Fingerprint of the configuration that produced it (JSON of model and training config).
    pub fingerprint: String,
    /// Predictions of the held-out subject's samples.
    pub predictions: Vec<Prediction>,
    /// Per-epoch training statistics.
    pub epochs: Vec<EpochStats>,
    /// The epoch whose weights made the predictions (0-based).
    pub selected_epoch: usize,
    /// Wall time of the fold in seconds.
    pub elapsed_s: f64,
    /// Whether this fold was read back from `out_dir` instead of trained.
    #[serde(skip)]
    pub resumed: bool,
}

/// Pooled LOSO result.
#[derive(Debug, Clone, PartialEq)]
pub struct LosoResult {
    /// Folds in subject order.
    pub folds: Vec<FoldResult>,
}

impl LosoResult {
    /// Every prediction, pooled over folds in fold order.
    pub fn predictions(&self) -> Vec<&Prediction> {
        self.folds.iter().flat_map(|f| f.predictions.iter()).collect()
    }
}

fn fingerprint(cfg: &LosoConfig) -> Result<String> {
    serde_json::to_string(&(&cfg.model, &cfg.train))
        .map_err(|e| Error::Json { path: "<config>".into(), reason: e.to_string() })
}

/// A seed per fold that does not depend on fold order or parallelism.
fn fold_seed(seed: u64, subject: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in subject.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h
}

fn fold_path(dir: &Path, subject: &str, ext: &str) -> PathBuf {
    dir.join(format!("{subject}.{ext}"))
}

/// Trains one fold on `train` only and returns the trained model with its report. This is the
/// only place weights are fitted; it never receives test samples.
fn train_fold(cfg: &LosoConfig, train: &Dataset, seed: u64) -> Result<(Model, crate::train::TrainReport)> {
    let mut model = Model::new(&cfg.model, seed, &Device::Cpu)?;
    let tc = TrainConfig { seed, ..cfg.train.clone() };
    let report = fit(&mut model, train, &tc)?;
    Ok((model, report))
}

fn run_fold(ds: &Dataset, cfg: &LosoConfig, subject: &str, fp: &str) -> Result<FoldResult> {
    if let Some(dir) = &cfg.out_dir {
        let p = fold_path(dir, subject, "json");
        if p.exists() {
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            let mut f: FoldResult = serde_json::from_str(&text)
                .map_err(|e| Error::Json { path: p.clone(), reason: e.to_string() })?;
            if f.fingerprint != fp {
                return Err(Error::Json {
                    path: p,
                    reason: "fold was produced with a different configuration; use another out_dir".into(),
                });
            }
            check_fold(&f, ds, subject, cfg.model.num_classes())
                .map_err(|reason| Error::Json { path: p.clone(), reason })?;
            f.resumed = true;
            return Ok(f);
        }
    }
    let t0 = Instant::now();
    let test_idx = ds.indices_of(subject);
    let train_idx: Vec<usize> = (0..ds.len()).filter(|&i| ds.samples()[i].subject != subject).collect();
    let train = ds.subset(&train_idx);
    let seed = fold_seed(cfg.train.seed, subject);
    let (model, report) = train_fold(cfg, &train, seed)?;
    drop(train);
    let x = ds.batch(&test_idx, model.device())?;
    let probs = model.predict_proba(&x)?.to_vec2::<f32>()?;
    let predictions: Vec<Prediction> = test_idx
        .iter()
        .zip(probs)
        .map(|(&i, p)| {
            let s = &ds.samples()[i];
            Prediction {
                subject: s.subject.clone(),
                id: s.id.clone(),
                label: s.label,
                pred: argmax(&p) as u32,
                probs: p,
            }
        })
        .collect();
    // `fit` stops with `NonFiniteLoss` at the first non-finite batch loss; weights that still
    // give non-finite probabilities are a diverged training too: no fold file, so that a later
    // resume does not read it back.
    if predictions.iter().any(|p| p.probs.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFiniteLoss { epoch: report.epochs.len(), loss: f32::NAN });
    }
    let result = FoldResult {
        subject: subject.to_string(),
        fingerprint: fp.to_string(),
        predictions,
        epochs: report.epochs,
        selected_epoch: report.selected_epoch,
        elapsed_s: t0.elapsed().as_secs_f64(),
        resumed: false,
    };
    if let Some(dir) = &cfg.out_dir {
        if cfg.save_weights {
            model.save(fold_path(dir, subject, "safetensors"))?;
        }
        let p = fold_path(dir, subject, "json");
        let text = serde_json::to_string(&result)
            .map_err(|e| Error::Json { path: p.clone(), reason: e.to_string() })?;
        mex_core::write_atomic_with(&p, |tmp| std::fs::write(tmp, text).map_err(|e| Error::io(&p, e)))
            .map_err(|e| e.into_error(Error::io))?;
    }
    Ok(result)
}

/// Checks a fold result read back from disk against the dataset as strictly as a merge does:
/// the subject, exactly the subject's samples once each with their labels, probability vectors of
/// the model's width with finite values.
fn check_fold(
    f: &FoldResult,
    ds: &Dataset,
    subject: &str,
    n_classes: usize,
) -> std::result::Result<(), String> {
    if f.subject != subject {
        return Err(format!("holds subject `{}`, expected `{subject}`", f.subject));
    }
    let want: std::collections::HashMap<&str, u32> = ds
        .indices_of(subject)
        .iter()
        .map(|&i| (ds.samples()[i].id.as_str(), ds.samples()[i].label))
        .collect();
    if f.predictions.len() != want.len() {
        return Err(format!(
            "has {} predictions for subject `{subject}`, which has {} samples",
            f.predictions.len(),
            want.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &f.predictions {
        if !seen.insert(p.id.as_str()) {
            return Err(format!("predicts sample `{}` twice", p.id));
        }
        match want.get(p.id.as_str()) {
            None => {
                return Err(format!("predicts sample `{}`, which is not one of subject `{subject}`'s", p.id))
            }
            Some(&l) if l != p.label => {
                return Err(format!("gives sample `{}` label {}, the dataset {l}", p.id, p.label))
            }
            Some(_) => {}
        }
        if p.probs.len() != n_classes
            || p.probs.iter().any(|v| !v.is_finite())
            || p.pred as usize >= n_classes
        {
            return Err(format!("sample `{}` has invalid probabilities or prediction", p.id));
        }
    }
    Ok(())
}

/// Runs LOSO over `ds`: one fold per subject (or per subject of `cfg.subjects`), each with fresh
/// weights, trained on every other subject. `on_fold` is called as folds finish (possibly from
/// several threads). Folds run in parallel across cores.
pub fn run_loso(ds: &Dataset, cfg: &LosoConfig, on_fold: impl Fn(&FoldResult) + Sync) -> Result<LosoResult> {
    cfg.model.validate()?;
    cfg.train.validate()?;
    if ds.is_empty() {
        return Err(Error::Dataset("empty dataset".into()));
    }
    let all = ds.subjects();
    if all.len() < 2 {
        return Err(Error::Dataset("LOSO needs at least two subjects".into()));
    }
    let subjects = match &cfg.subjects {
        Some(v) => {
            if let Some(s) = v.iter().find(|s| !all.contains(s)) {
                return Err(Error::Dataset(format!("subject `{s}` is not in the dataset")));
            }
            v.clone()
        }
        None => all,
    };
    if let Some(dir) = &cfg.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let fp = fingerprint(cfg)?;
    let threads = if cfg.parallel_folds == 0 { rayon::current_num_threads() } else { cfg.parallel_folds };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Dataset(format!("thread pool: {e}")))?;
    let folds: Vec<Result<FoldResult>> = pool.install(|| {
        subjects
            .par_iter()
            .with_max_len(1)
            .map(|s| {
                let r = run_fold(ds, cfg, s, &fp);
                if let Ok(f) = &r {
                    on_fold(f);
                }
                r
            })
            .collect()
    });
    Ok(LosoResult { folds: folds.into_iter().collect::<Result<Vec<_>>>()? })
}

/// LOSO predictions from per-fold weights already on disk: for each subject of `ds`, loads
/// `<weights_dir>/<subject>.safetensors` (e.g. the released STSTNet weights) and predicts that
/// subject's samples in eval mode. Predictions are in subject order.
pub fn predict_with_fold_weights(
    ds: &Dataset,
    model: &ModelConfig,
    weights_dir: &Path,
) -> Result<Vec<Prediction>> {
    predict_with_fold_weights_on(ds, model, weights_dir, &Device::Cpu)
}

/// [`predict_with_fold_weights`] on a given device (e.g. `Device::new_cuda(0)` in a build with
/// the `cuda` feature).
pub fn predict_with_fold_weights_on(
    ds: &Dataset,
    model: &ModelConfig,
    weights_dir: &Path,
    device: &Device,
) -> Result<Vec<Prediction>> {
    if !weights_dir.is_dir() {
        return Err(Error::io(
            weights_dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "weights folder does not exist"),
        ));
    }
    let mut out = Vec::with_capacity(ds.len());
    for s in ds.subjects() {
        let m = Model::load(model, fold_path(weights_dir, &s, "safetensors"), device)?;
        let idx = ds.indices_of(&s);
        let probs = m.predict_proba(&ds.batch(&idx, device)?)?.to_vec2::<f32>()?;
        for (&i, p) in idx.iter().zip(probs) {
            let info = &ds.samples()[i];
            out.push(Prediction {
                subject: info.subject.clone(),
                id: info.id.clone(),
                label: info.label,
                pred: argmax(&p) as u32,
                probs: p,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleInfo;

    fn ds() -> Dataset {
        let mut d = Dataset::new((1, 2, 2));
        for (s, id, l) in [("a", "a1", 0), ("a", "a2", 1), ("b", "b1", 2)] {
            let info = SampleInfo { subject: s.into(), id: id.into(), label: l };
            d.push(info, &[0.0; 4]).unwrap();
        }
        d
    }

    fn pred(id: &str, label: u32) -> Prediction {
        Prediction { subject: "a".into(), id: id.into(), label, pred: 0, probs: vec![0.5, 0.25, 0.25] }
    }

    fn fold(predictions: Vec<Prediction>) -> FoldResult {
        FoldResult {
            subject: "a".into(),
            fingerprint: String::new(),
            predictions,
            epochs: vec![],
            selected_epoch: 0,
            elapsed_s: 0.0,
            resumed: true,
        }
    }

    #[test]
    fn resumed_folds_are_checked_like_a_merge() {
        let d = ds();
        assert!(check_fold(&fold(vec![pred("a1", 0), pred("a2", 1)]), &d, "a", 3).is_ok());
        let dup = check_fold(&fold(vec![pred("a1", 0), pred("a1", 0)]), &d, "a", 3).unwrap_err();
        assert!(dup.contains("twice"), "{dup}");
        let many =
            check_fold(&fold(vec![pred("a1", 0), pred("a2", 1), pred("a2", 1)]), &d, "a", 3).unwrap_err();
        assert!(many.contains("3 predictions"), "{many}");
        assert!(check_fold(&fold(vec![pred("a1", 0), pred("b1", 2)]), &d, "a", 3).is_err());
        assert!(check_fold(&fold(vec![pred("a1", 0), pred("a2", 2)]), &d, "a", 3).is_err());
        let mut nan = pred("a2", 1);
        nan.probs[1] = f32::NAN;
        assert!(check_fold(&fold(vec![pred("a1", 0), nan]), &d, "a", 3).is_err());
        assert!(check_fold(&fold(vec![pred("a1", 0), pred("a2", 1)]), &d, "b", 3).is_err());
    }
}
