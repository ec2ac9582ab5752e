//! The subject-level bootstrap of ROC AUC and the cross-validated logistic classifier.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::logistic::{fit_logistic, grouped_folds, LogisticConfig, Standardizer};
use super::EstimateCi;
use crate::binary::{calibration, roc_auc, roc_curve, youden_threshold, BinaryCounts, Calibration, RocCurve};
use crate::compare::BootstrapConfig;
use crate::error::{check_finite, check_len, Error, Result};
use crate::stats::percentile_sorted;

/// ROC AUC with a percentile confidence interval from a stratified cluster bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucCi {
    /// AUC with its interval.
    pub auc: EstimateCi,
    /// Resamples used.
    pub n_used: usize,
    /// ROC curves' true-positive rates on a fixed grid of false-positive rates (`fpr_grid`): the
    /// pointwise 2.5 % and 97.5 % percentiles over resamples, for a confidence band.
    pub band: RocBand,
}

/// A pointwise confidence band of a ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocBand {
    /// False-positive rates of the grid (0, 0.02, ..., 1).
    pub fpr: Vec<f64>,
    /// Lower band of the true-positive rate.
    pub tpr_low: Vec<f64>,
    /// Upper band of the true-positive rate.
    pub tpr_high: Vec<f64>,
}

/// True-positive rate of a ROC curve at false-positive rate `f` (the highest TPR reached at
/// FPR <= f, i.e. the step curve's upper envelope interpolated linearly along ties).
fn tpr_at(c: &RocCurve, f: f64) -> f64 {
    let mut best = 0.0f64;
    for i in 0..c.fpr.len() {
        if c.fpr[i] <= f + 1e-12 {
            best = best.max(c.tpr[i]);
        } else if i > 0 && c.fpr[i - 1] < f {
            let (x0, x1, y0, y1) = (c.fpr[i - 1], c.fpr[i], c.tpr[i - 1], c.tpr[i]);
            best = best.max(y0 + (y1 - y0) * (f - x0) / (x1 - x0));
        }
    }
    best
}

/// ROC AUC of `scores` for `truth` with a **stratified cluster bootstrap** CI: each resample draws,
/// within each class, as many clusters (subjects) as the class has, with replacement, and pools
/// their samples (pROC's stratified bootstrap, at the subject level so that several recordings of
/// one subject are not counted as independent). A cluster's class is that of its first sample.
/// Percentile interval at `cfg.confidence`; seeded by `cfg.seed`.
pub fn auc_cluster_bootstrap<K: Ord + Clone>(
    truth: &[bool],
    scores: &[f64],
    clusters: &[K],
    cfg: &BootstrapConfig,
) -> Result<AucCi> {
    cfg.validate()?;
    check_len("truth/scores", truth.len(), scores.len())?;
    check_len("truth/clusters", truth.len(), clusters.len())?;
    check_finite("scores", scores)?;
    let estimate = roc_auc(truth, scores)?;
    let mut by_cluster: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (i, k) in clusters.iter().enumerate() {
        by_cluster.entry(k.clone()).or_default().push(i);
    }
    let (mut pos, mut neg): (Vec<Vec<usize>>, Vec<Vec<usize>>) = (Vec::new(), Vec::new());
    for (_, idx) in by_cluster {
        if truth[idx[0]] {
            pos.push(idx);
        } else {
            neg.push(idx);
        }
    }
    let grid: Vec<f64> = (0..=50).map(|i| i as f64 / 50.0).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut aucs = Vec::with_capacity(cfg.n_resamples);
    let mut tprs: Vec<Vec<f64>> = vec![Vec::with_capacity(cfg.n_resamples); grid.len()];
    let (mut t, mut s) = (Vec::new(), Vec::new());
    for _ in 0..cfg.n_resamples {
        t.clear();
        s.clear();
        for stratum in [&pos, &neg] {
            for _ in 0..stratum.len() {
                let c = &stratum[rng.random_range(0..stratum.len())];
                for &i in c {
                    t.push(truth[i]);
                    s.push(scores[i]);
                }
            }
        }
        match roc_curve(&t, &s, true) {
            Ok(c) => {
                let mut a = 0.0;
                for i in 1..c.fpr.len() {
                    a += (c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1]) / 2.0;
                }
                aucs.push(a);
                for (g, col) in grid.iter().zip(tprs.iter_mut()) {
                    col.push(tpr_at(&c, *g));
                }
            }
            Err(e) if e.is_undefined() => {}
            Err(e) => return Err(e),
        }
    }
    if aucs.is_empty() {
        return Err(Error::Undefined { metric: "AUC bootstrap", reason: "no resample held both classes" });
    }
    aucs.sort_by(f64::total_cmp);
    let lo_q = (1.0 - cfg.confidence) / 2.0;
    let hi_q = (1.0 + cfg.confidence) / 2.0;
    let mut band = RocBand { fpr: grid, tpr_low: Vec::new(), tpr_high: Vec::new() };
    for col in &mut tprs {
        col.sort_by(f64::total_cmp);
        band.tpr_low.push(percentile_sorted(col, lo_q));
        band.tpr_high.push(percentile_sorted(col, hi_q));
    }
    Ok(AucCi {
        auc: EstimateCi {
            estimate,
            ci_low: percentile_sorted(&aucs, lo_q),
            ci_high: percentile_sorted(&aucs, hi_q),
        },
        n_used: aucs.len(),
        band,
    })
}

fn area(c: &RocCurve) -> f64 {
    let mut a = 0.0;
    for i in 1..c.fpr.len() {
        a += (c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1]) / 2.0;
    }
    a
}

/// Settings of the cross-validated classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CvConfig {
    /// Number of folds grouped by subject (default 5; capped at the number of subjects of the
    /// smaller class, so that every test fold holds both classes).
    pub n_folds: usize,
    /// The logistic regression.
    pub logistic: LogisticConfig,
    /// Seed of the fold assignment (the bootstrap has its own in `bootstrap`).
    pub seed: u64,
    /// The subject-level bootstrap of the whole cross-validation (AUC interval).
    pub bootstrap: BootstrapConfig,
    /// Bins of the calibration curve (default 10).
    pub calibration_bins: usize,
}

impl Default for CvConfig {
    fn default() -> Self {
        Self {
            n_folds: 5,
            logistic: LogisticConfig::default(),
            seed: 0,
            bootstrap: BootstrapConfig::default(),
            calibration_bins: 10,
        }
    }
}

/// Result of the cross-validated classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    /// Fold of each sample.
    pub folds: Vec<usize>,
    /// Out-of-fold positive-class probability of each sample.
    pub probabilities: Vec<f64>,
    /// Cross-validated AUC (mean of the test folds' AUCs) with the CI of the bootstrap of the
    /// whole procedure, and the pointwise band of the pooled ROC curve over the same resamples.
    pub auc: AucCi,
    /// AUC of the pooled out-of-fold probabilities (all folds' models on one scale; biased
    /// towards 0.5 and below in small samples, reported for comparison).
    pub auc_pooled: f64,
    /// The pooled out-of-fold ROC curve.
    pub roc: RocCurve,
    /// Youden threshold chosen on each fold's training samples (their in-sample probabilities).
    pub fold_thresholds: Vec<f64>,
    /// Median of `fold_thresholds`.
    pub threshold: f64,
    /// Counts of the test samples called positive at their fold's training threshold.
    pub counts: BinaryCounts,
    /// Sensitivity of those calls.
    pub sensitivity: f64,
    /// Specificity of those calls.
    pub specificity: f64,
    /// Calibration of the out-of-fold probabilities.
    pub calibration: Calibration,
}

/// One run of grouped cross-validation.
struct CvRun {
    folds: Vec<usize>,
    k: usize,
    probs: Vec<f64>,
    called: Vec<bool>,
    thresholds: Vec<f64>,
}

/// Grouped cross-validation of the logistic regression; `subjects[i]` is the subject index of
/// row `i`. `n_folds` is capped at the smaller class's number of subjects.
fn run_folds(
    x: &[&[f64]],
    y: &[bool],
    subjects: &[usize],
    n_folds: usize,
    seed: u64,
    lcfg: &LogisticConfig,
) -> Result<CvRun> {
    let mut class_of: BTreeMap<usize, bool> = BTreeMap::new();
    for (&s, &l) in subjects.iter().zip(y) {
        class_of.insert(s, l);
    }
    let n_pos = class_of.values().filter(|&&c| c).count();
    let smaller = n_pos.min(class_of.len() - n_pos);
    if smaller < 2 {
        return Err(Error::Undefined {
            metric: "cross-validated classifier",
            reason: "needs at least two subjects of each class",
        });
    }
    let folds = grouped_folds(subjects, y, n_folds.min(smaller), seed)?;
    let k = folds.iter().max().map_or(0, |m| m + 1);
    let mut probs = vec![f64::NAN; y.len()];
    let mut called = vec![false; y.len()];
    let mut thresholds = Vec::with_capacity(k);
    for f in 0..k {
        let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
        let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
        let xtr: Vec<Vec<f64>> = train.iter().map(|&i| x[i].to_vec()).collect();
        let scaler = Standardizer::fit(&xtr)?;
        let xtr: Vec<Vec<f64>> = xtr.iter().map(|r| scaler.transform(r)).collect();
        let ytr: Vec<bool> = train.iter().map(|&i| y[i]).collect();
        let model = fit_logistic(&xtr, &ytr, lcfg)?;
        let ptr: Vec<f64> = xtr.iter().map(|r| model.predict_proba(r)).collect();
        let thr = youden_threshold(&ytr, &ptr)?.threshold;
        thresholds.push(thr);
        for &i in &test {
            let p = model.predict_proba(&scaler.transform(x[i]));
            probs[i] = p;
            called[i] = p >= thr;
        }
    }
    Ok(CvRun { folds, k, probs, called, thresholds })
}

/// Mean over folds of each test fold's AUC (every fold holds both classes by construction).
fn fold_averaged_auc(y: &[bool], probs: &[f64], folds: &[usize], k: usize) -> Result<f64> {
    let mut sum = 0.0;
    for f in 0..k {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
        let t: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
        let s: Vec<f64> = idx.iter().map(|&i| probs[i]).collect();
        sum += roc_auc(&t, &s)?;
    }
    Ok(sum / k as f64)
}

/// Cross-validates a logistic regression over `x` (one row per sample) with folds grouped by
/// subject ([`grouped_folds`]): in each fold the features are standardised with the training
/// rows' means and SDs, the model is fitted on the training rows, the Youden threshold is chosen
/// on the training rows' fitted probabilities, and the test rows get out-of-fold probabilities
/// and calls. No test subject ever informs its own model or threshold. Sensitivity and
/// specificity pool the test folds' calls.
///
/// The AUC is the **cross-validated AUC**, the mean of the test folds' AUCs (LeDell, Petersen &
/// van der Laan 2015): each fold's AUC measures one fitted model on subjects it has not seen, so
/// with no group difference its expectation is exactly 0.5 (pooling the out-of-fold scores of
/// different models into one ROC curve is biased below 0.5 in small samples; reported as
/// `auc_pooled`). Its CI is a percentile bootstrap **of the whole procedure**: subjects are
/// resampled within each class (copies of a subject share a fold), the grouped cross-validation is
/// rerun (fold seeds `seed + 1 + b`) and the fold-averaged AUC recomputed, so the interval includes
/// the variability of refitting, which intervals over fixed out-of-fold scores miss (Bates, Hastie
/// & Tibshirani 2023). `cfg.bootstrap.n_resamples` cross-validations are run.
pub fn cross_validate_logistic<K: Ord + Clone>(
    x: &[Vec<f64>],
    y: &[bool],
    subjects: &[K],
    cfg: &CvConfig,
) -> Result<CvResult> {
    check_len("features/labels", x.len(), y.len())?;
    check_len("subjects/labels", subjects.len(), y.len())?;
    cfg.bootstrap.validate()?;
    if cfg.calibration_bins == 0 {
        return Err(Error::InvalidParam {
            name: "calibration_bins",
            value: "0".into(),
            reason: "need at least one bin",
        });
    }
    // subjects as indices 0..n_subjects (sorted keys), their rows and classes
    let mut index: BTreeMap<&K, usize> = BTreeMap::new();
    for s in subjects {
        let next = index.len();
        index.entry(s).or_insert(next);
    }
    let sid: Vec<usize> = subjects.iter().map(|s| index[s]).collect();
    let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); index.len()];
    for (i, &s) in sid.iter().enumerate() {
        rows_of[s].push(i);
    }
    let xr: Vec<&[f64]> = x.iter().map(Vec::as_slice).collect();
    let CvRun { folds, k, probs, called, thresholds } =
        run_folds(&xr, y, &sid, cfg.n_folds, cfg.seed, &cfg.logistic)?;
    let estimate = fold_averaged_auc(y, &probs, &folds, k)?;

    // Bootstrap of the whole procedure: resample subjects within each class, rerun the grouped
    // cross-validation (copies of a subject share its fold), recompute the fold-averaged AUC.
    let strata: [Vec<usize>; 2] = [
        (0..rows_of.len()).filter(|&s| y[rows_of[s][0]]).collect(),
        (0..rows_of.len()).filter(|&s| !y[rows_of[s][0]]).collect(),
    ];
    let grid: Vec<f64> = (0..=50).map(|i| i as f64 / 50.0).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.bootstrap.seed);
    let mut aucs = Vec::with_capacity(cfg.bootstrap.n_resamples);
    let mut tprs: Vec<Vec<f64>> = vec![Vec::with_capacity(cfg.bootstrap.n_resamples); grid.len()];
    for b in 0..cfg.bootstrap.n_resamples {
        let (mut xb, mut yb, mut sb): (Vec<&[f64]>, Vec<bool>, Vec<usize>) =
            (Vec::new(), Vec::new(), Vec::new());
        for stratum in &strata {
            for _ in 0..stratum.len() {
                let s = stratum[rng.random_range(0..stratum.len())];
                for &i in &rows_of[s] {
                    xb.push(xr[i]);
                    yb.push(y[i]);
                    sb.push(s);
                }
            }
        }
        let seed = cfg.seed.wrapping_add(b as u64 + 1);
        let run = match run_folds(&xb, &yb, &sb, cfg.n_folds, seed, &cfg.logistic) {
            Ok(r) => r,
            Err(e) if e.is_undefined() => continue,
            Err(e) => return Err(e),
        };
        match fold_averaged_auc(&yb, &run.probs, &run.folds, run.k) {
            Ok(a) => aucs.push(a),
            Err(e) if e.is_undefined() => continue,
            Err(e) => return Err(e),
        }
        if let Ok(c) = roc_curve(&yb, &run.probs, true) {
            for (g, col) in grid.iter().zip(tprs.iter_mut()) {
                col.push(tpr_at(&c, *g));
            }
        }
    }
    if aucs.is_empty() {
        return Err(Error::Undefined {
            metric: "classifier AUC bootstrap",
            reason: "no resample could be cross-validated",
        });
    }
    aucs.sort_by(f64::total_cmp);
    let lo_q = (1.0 - cfg.bootstrap.confidence) / 2.0;
    let hi_q = (1.0 + cfg.bootstrap.confidence) / 2.0;
    let mut band = RocBand { fpr: grid, tpr_low: Vec::new(), tpr_high: Vec::new() };
    for col in &mut tprs {
        col.sort_by(f64::total_cmp);
        band.tpr_low.push(percentile_sorted(col, lo_q));
        band.tpr_high.push(percentile_sorted(col, hi_q));
    }
    let auc = AucCi {
        auc: EstimateCi {
            estimate,
            ci_low: percentile_sorted(&aucs, lo_q),
            ci_high: percentile_sorted(&aucs, hi_q),
        },
        n_used: aucs.len(),
        band,
    };
    let counts = BinaryCounts::from_predictions(y, &called)?;
    let roc = roc_curve(y, &probs, true)?;
    let auc_pooled = area(&roc);
    let mut sorted = thresholds.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(CvResult {
        folds,
        auc,
        auc_pooled,
        roc,
        threshold: percentile_sorted(&sorted, 0.5),
        fold_thresholds: thresholds,
        sensitivity: counts.sensitivity()?,
        specificity: counts.specificity()?,
        counts,
        calibration: calibration(y, &probs, cfg.calibration_bins)?,
        probabilities: probs,
    })
}
