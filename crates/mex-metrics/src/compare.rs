//! Comparing variants: subject-level (cluster) bootstrap confidence intervals, McNemar's test,
//! paired permutation tests and subgroup breakdowns.
//!
//! Metrics are closures over sample **indices** into the caller's own arrays (truth, predictions,
//! scores), so any metric of this crate, or the caller's, can be resampled. A closure returning an
//! error for which [`Error::is_undefined`] holds (e.g. a resample with a single class for ROC-AUC)
//! is counted as skipped; any other error is returned.
//!
//! ```
//! use mex_metrics::{compare::{cluster_bootstrap, BootstrapConfig}, ConfusionMatrix};
//! let truth = [0, 1, 2, 0, 1, 2, 0, 0];
//! let pred = [0, 1, 1, 0, 2, 2, 0, 1];
//! let subject = ["a", "a", "b", "b", "c", "c", "d", "d"];
//! let ci = cluster_bootstrap(&subject, |idx| ConfusionMatrix::from_indices(&truth, &pred, idx, 3)?.uf1(),
//!     &BootstrapConfig { n_resamples: 200, ..Default::default() }).unwrap();
//! assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper);
//! ```

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{check_len, Error, Result};
use crate::stats::{binom_half_cdf, chi2_sf, percentile_sorted};

/// Parameters of the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootstrapConfig {
    /// Number of resamples (default 2000).
    pub n_resamples: usize,
    /// Two-sided confidence level (default 0.95).
    pub confidence: f64,
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { n_resamples: 2000, confidence: 0.95, seed: 0 }
    }
}

impl BootstrapConfig {
    /// Checks `n_resamples >= 1` and `0 < confidence < 1`.
    pub fn validate(&self) -> Result<()> {
        if self.n_resamples == 0 {
            return Err(Error::InvalidParam {
                name: "n_resamples",
                value: "0".into(),
                reason: "need at least one resample",
            });
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::InvalidParam {
                name: "confidence",
                value: self.confidence.to_string(),
                reason: "must lie in (0, 1)",
            });
        }
        Ok(())
    }
}

/// A percentile bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The metric on the original sample.
    pub estimate: f64,
    /// Lower percentile bound `(1 − confidence)/2` of the resampled metrics.
    pub lower: f64,
    /// Upper percentile bound `(1 + confidence)/2`.
    pub upper: f64,
    /// Confidence level.
    pub confidence: f64,
    /// Standard deviation of the resampled metrics (bootstrap standard error).
    pub std_error: f64,
    /// Resamples on which the metric was defined.
    pub n_used: usize,
    /// Resamples skipped because the metric was undefined on them.
    pub n_skipped: usize,
}

fn eval_or_skip(r: Result<f64>) -> Result<Option<f64>> {
    match r {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(e) if e.is_undefined() => Ok(None),
        Err(e) => Err(e),
    }
}

fn group_indices<K: Ord + Clone>(keys: &[K]) -> Vec<(K, Vec<usize>)> {
    let mut map: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        map.entry(k.clone()).or_default().push(i);
    }
    map.into_iter().collect()
}

/// Cluster (subject-level) percentile bootstrap: each resample draws as many clusters as there
/// are, uniformly with replacement, and passes the concatenated sample indices of the drawn
/// clusters to `metric`. `clusters[i]` is the cluster (subject) of sample `i`. Samples of one
/// subject are not independent, so resampling subjects rather than samples gives honest intervals
/// for LOSO results. Deterministic for a given seed.
pub fn cluster_bootstrap<K, F>(
    clusters: &[K],
    mut metric: F,
    cfg: &BootstrapConfig,
) -> Result<ConfidenceInterval>
where
    K: Ord + Clone,
    F: FnMut(&[usize]) -> Result<f64>,
{
    cfg.validate()?;
    if clusters.is_empty() {
        return Err(Error::Empty { what: "bootstrap samples" });
    }
    let all: Vec<usize> = (0..clusters.len()).collect();
    let estimate = metric(&all)?;
    let groups = group_indices(clusters);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut idx: Vec<usize> = Vec::with_capacity(clusters.len() * 2);
    let mut stats: Vec<f64> = Vec::with_capacity(cfg.n_resamples);
    let mut skipped = 0;
    for _ in 0..cfg.n_resamples {
        idx.clear();
        for _ in 0..groups.len() {
            let g = rng.random_range(0..groups.len());
            idx.extend_from_slice(&groups[g].1);
        }
        match eval_or_skip(metric(&idx))? {
            Some(v) => stats.push(v),
            None => skipped += 1,
        }
    }
    if stats.is_empty() {
        return Err(Error::Undefined {
            metric: "bootstrap",
            reason: "the metric was undefined on every resample",
        });
    }
    stats.sort_by(f64::total_cmp);
    let alpha = 1.0 - cfg.confidence;
    let mean = stats.iter().sum::<f64>() / stats.len() as f64;
    let var = stats.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (stats.len().max(2) - 1) as f64;
    Ok(ConfidenceInterval {
        estimate,
        lower: percentile_sorted(&stats, alpha / 2.0),
        upper: percentile_sorted(&stats, 1.0 - alpha / 2.0),
        confidence: cfg.confidence,
        std_error: var.sqrt(),
        n_used: stats.len(),
        n_skipped: skipped,
    })
}

/// Ordinary (sample-level) percentile bootstrap over `n` samples: [`cluster_bootstrap`] with
/// every sample its own cluster.
pub fn bootstrap<F>(n: usize, metric: F, cfg: &BootstrapConfig) -> Result<ConfidenceInterval>
where
    F: FnMut(&[usize]) -> Result<f64>,
{
    let ids: Vec<usize> = (0..n).collect();
    cluster_bootstrap(&ids, metric, cfg)
}

/// McNemar's test of two classifiers on the same samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Samples that A gets right and B wrong.
    pub b: u64,
    /// Samples that A gets wrong and B right.
    pub c: u64,
    /// Exact two-sided binomial p-value `min(1, 2 P(X <= min(b, c)))`, `X ~ Bin(b + c, 1/2)`.
    pub exact_p: f64,
    /// Chi-square statistic with Edwards' continuity correction `max(|b − c| − 1, 0)² / (b + c)`.
    pub chi2: f64,
    /// Its p-value (chi-square, 1 degree of freedom).
    pub chi2_p: f64,
}

impl McNemar {
    /// The test from the discordant counts. With `b + c = 0` both p-values are 1.
    pub fn from_counts(b: u64, c: u64) -> Self {
        let n = b + c;
        if n == 0 {
            return Self { b, c, exact_p: 1.0, chi2: 0.0, chi2_p: 1.0 };
        }
        let exact_p = (2.0 * binom_half_cdf(b.min(c), n)).min(1.0);
        let d = (b.abs_diff(c) as f64 - 1.0).max(0.0);
        let chi2 = d * d / n as f64;
        Self { b, c, exact_p, chi2, chi2_p: chi2_sf(chi2, 1.0) }
    }

    /// The recommended p-value: exact when `b + c < 25`, the corrected chi-square otherwise.
    pub fn p_value(&self) -> f64 {
        if self.b + self.c < 25 {
            self.exact_p
        } else {
            self.chi2_p
        }
    }
}

/// McNemar's test from per-sample correctness of variants A and B.
pub fn mcnemar(correct_a: &[bool], correct_b: &[bool]) -> Result<McNemar> {
    check_len("correct_a/correct_b", correct_a.len(), correct_b.len())?;
    if correct_a.is_empty() {
        return Err(Error::Empty { what: "McNemar samples" });
    }
    let b = correct_a.iter().zip(correct_b).filter(|(&a, &b)| a && !b).count() as u64;
    let c = correct_a.iter().zip(correct_b).filter(|(&a, &b)| !a && b).count() as u64;
    Ok(McNemar::from_counts(b, c))
}

/// McNemar's test from labels: `truth`, predictions of A and of B.
pub fn mcnemar_labels<T: PartialEq>(truth: &[T], pred_a: &[T], pred_b: &[T]) -> Result<McNemar> {
    check_len("truth/pred_a", truth.len(), pred_a.len())?;
    check_len("truth/pred_b", truth.len(), pred_b.len())?;
    let ca: Vec<bool> = truth.iter().zip(pred_a).map(|(t, p)| t == p).collect();
    let cb: Vec<bool> = truth.iter().zip(pred_b).map(|(t, p)| t == p).collect();
    mcnemar(&ca, &cb)
}

/// Parameters of the permutation test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PermutationConfig {
    /// Number of random relabellings (default 9999).
    pub n_permutations: usize,
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
}

impl Default for PermutationConfig {
    fn default() -> Self {
        Self { n_permutations: 9999, seed: 0 }
    }
}

/// Result of a paired permutation test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// `metric(A) − metric(B)` on the real assignment.
    pub observed: f64,
    /// Two-sided p-value `(1 + #{|d*| >= |d|}) / (1 + n_used)`.
    pub p_value: f64,
    /// Relabellings with `|d*| >= |d|`.
    pub n_extreme: usize,
    /// Relabellings on which the metric was defined.
    pub n_used: usize,
}

/// Paired permutation test of `metric(A) − metric(B)`, swapping the A and B predictions of each
/// sample with probability 1/2 (the null hypothesis: the variants are exchangeable). `metric`
/// receives one full prediction vector (it captures the truth itself). The p-value includes the
/// observed assignment (+1 in numerator and denominator), so it is never 0.
pub fn paired_permutation_test<T, F>(
    pred_a: &[T],
    pred_b: &[T],
    metric: F,
    cfg: &PermutationConfig,
) -> Result<PermutationTest>
where
    T: Copy,
    F: FnMut(&[T]) -> Result<f64>,
{
    let ids: Vec<usize> = (0..pred_a.len()).collect();
    paired_permutation_test_blocked(pred_a, pred_b, &ids, metric, cfg)
}

/// As [`paired_permutation_test`], but swaps whole blocks (e.g. all samples of a subject) at once.
pub fn paired_permutation_test_blocked<T, K, F>(
    pred_a: &[T],
    pred_b: &[T],
    blocks: &[K],
    mut metric: F,
    cfg: &PermutationConfig,
) -> Result<PermutationTest>
where
    T: Copy,
    K: Ord + Clone,
    F: FnMut(&[T]) -> Result<f64>,
{
    check_len("pred_a/pred_b", pred_a.len(), pred_b.len())?;
    check_len("pred_a/blocks", pred_a.len(), blocks.len())?;
    if pred_a.is_empty() {
        return Err(Error::Empty { what: "permutation samples" });
    }
    if cfg.n_permutations == 0 {
        return Err(Error::InvalidParam {
            name: "n_permutations",
            value: "0".into(),
            reason: "need at least one permutation",
        });
    }
    let observed = metric(pred_a)? - metric(pred_b)?;
    let tol = 1e-12 * observed.abs().max(1.0);
    let groups = group_indices(blocks);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut a = pred_a.to_vec();
    let mut b = pred_b.to_vec();
    let (mut extreme, mut used) = (0usize, 0usize);
    for _ in 0..cfg.n_permutations {
        for (_, members) in &groups {
            let swap = rng.random_bool(0.5);
            for &i in members {
                if swap {
                    a[i] = pred_b[i];
                    b[i] = pred_a[i];
                } else {
                    a[i] = pred_a[i];
                    b[i] = pred_b[i];
                }
            }
        }
        let (Some(ma), Some(mb)) = (eval_or_skip(metric(&a))?, eval_or_skip(metric(&b))?) else {
            continue;
        };
        used += 1;
        if (ma - mb).abs() >= observed.abs() - tol {
            extreme += 1;
        }
    }
    Ok(PermutationTest {
        observed,
        p_value: (1 + extreme) as f64 / (1 + used) as f64,
        n_extreme: extreme,
        n_used: used,
    })
}

/// The metric of one subgroup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupRow<K> {
    /// Group key.
    pub key: K,
    /// Number of samples in the group.
    pub n: usize,
    /// The metric, `None` when undefined on the group.
    pub value: Option<f64>,
}

/// A metric overall and per subgroup, with counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupBreakdown<K> {
    /// Number of samples.
    pub n: usize,
    /// The metric on all samples (`None` when undefined).
    pub overall: Option<f64>,
    /// One row per key, in key order.
    pub groups: Vec<SubgroupRow<K>>,
}

/// Evaluates `metric` on all samples and on the samples of each key (dataset, sex, ethnicity,
/// age band, ...). `keys[i]` is the group of sample `i`.
pub fn subgroup_breakdown<K, F>(keys: &[K], mut metric: F) -> Result<SubgroupBreakdown<K>>
where
    K: Ord + Clone,
    F: FnMut(&[usize]) -> Result<f64>,
{
    if keys.is_empty() {
        return Err(Error::Empty { what: "subgroup samples" });
    }
    let all: Vec<usize> = (0..keys.len()).collect();
    let overall = eval_or_skip(metric(&all))?;
    let mut groups = Vec::new();
    for (key, idx) in group_indices(keys) {
        let value = eval_or_skip(metric(&idx))?;
        groups.push(SubgroupRow { key, n: idx.len(), value });
    }
    Ok(SubgroupBreakdown { n: keys.len(), overall, groups })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfusionMatrix;

    #[test]
    fn mcnemar_by_hand() {
        // b = 1, c = 6: exact p = 2 * (1 + 7) / 128 = 0.125
        let m = McNemar::from_counts(1, 6);
        assert!((m.exact_p - 0.125).abs() < 1e-14);
        assert!((m.chi2 - 16.0 / 7.0).abs() < 1e-14);
        assert_eq!(m.p_value(), m.exact_p);
        assert_eq!(McNemar::from_counts(3, 3).exact_p, 1.0);
        assert_eq!(McNemar::from_counts(0, 0).chi2_p, 1.0);
        let m = mcnemar_labels(&[0, 1, 1, 0], &[0, 1, 0, 0], &[1, 1, 1, 1]).unwrap();
        assert_eq!((m.b, m.c), (2, 1));
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets() {
        let truth: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let pred: Vec<usize> = (0..60).map(|i| if i % 7 == 0 { (i + 1) % 3 } else { i % 3 }).collect();
        let subj: Vec<usize> = (0..60).map(|i| i / 5).collect();
        let f = |idx: &[usize]| ConfusionMatrix::from_indices(&truth, &pred, idx, 3)?.uf1();
        let cfg = BootstrapConfig { n_resamples: 300, ..Default::default() };
        let a = cluster_bootstrap(&subj, f, &cfg).unwrap();
        let b = cluster_bootstrap(&subj, f, &cfg).unwrap();
        assert_eq!(a, b);
        assert!(a.lower <= a.estimate && a.estimate <= a.upper && a.lower < a.upper);
        let c = cluster_bootstrap(&subj, f, &BootstrapConfig { seed: 1, ..cfg }).unwrap();
        assert_ne!(a.lower, c.lower);
        assert!(cluster_bootstrap(&subj, f, &BootstrapConfig { confidence: 1.0, ..cfg }).is_err());
    }

    #[test]
    fn permutation_identical_variants_give_p_one() {
        let truth = [0usize, 1, 0, 1, 1, 0];
        let p = [0usize, 1, 1, 1, 0, 0];
        let acc = |x: &[usize]| Ok(x.iter().zip(&truth).filter(|(a, b)| a == b).count() as f64);
        let r =
            paired_permutation_test(&p, &p, acc, &PermutationConfig { n_permutations: 50, seed: 3 }).unwrap();
        assert_eq!(r.observed, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn permutation_exact_small_case() {
        // A right on 4 samples where B is wrong, agree elsewhere: |d| = 4 only when no sample of
        // the 4 discordant ones flips sign... each permutation d* = sum of ±1 over 4 discordant
        // samples; P(|d*| = 4) = 2/16. With many permutations p -> 1/8.
        let truth = [1usize; 8];
        let a = [1usize, 1, 1, 1, 1, 1, 1, 1];
        let b = [0usize, 0, 0, 0, 1, 1, 1, 1];
        let acc = |x: &[usize]| Ok(x.iter().zip(&truth).filter(|(p, t)| p == t).count() as f64);
        let r = paired_permutation_test(&a, &b, acc, &PermutationConfig { n_permutations: 20000, seed: 0 })
            .unwrap();
        assert_eq!(r.observed, 4.0);
        assert!((r.p_value - 0.125).abs() < 0.01, "{}", r.p_value);
    }

    #[test]
    fn subgroups_have_counts() {
        let truth = [0usize, 1, 0, 1, 1];
        let pred = [0usize, 1, 1, 1, 1];
        let keys = ["f", "f", "m", "m", "m"];
        let s =
            subgroup_breakdown(&keys, |idx| ConfusionMatrix::from_indices(&truth, &pred, idx, 2)?.accuracy())
                .unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.overall, Some(0.8));
        assert_eq!(s.groups[0].key, "f");
        assert_eq!((s.groups[0].n, s.groups[0].value), (2, Some(1.0)));
        assert!((s.groups[1].value.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }
}
