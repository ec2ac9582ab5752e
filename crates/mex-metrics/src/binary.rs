//! Binary (clinical screening) metrics: counts at a threshold, ROC curve and AUC, average
//! precision, the Youden-optimal threshold, the Brier score and the expected calibration error.
//!
//! Conventions: `truth[i] == true` is the positive class; a sample is called positive at
//! threshold `t` when `score >= t` (scikit-learn's `roc_curve` convention). Scores must be finite.

use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_len, Error, Result};

/// The four counts of a binary decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryCounts {
    /// Positives called positive.
    pub tp: u64,
    /// Negatives called positive.
    pub fp: u64,
    /// Negatives called negative.
    pub tn: u64,
    /// Positives called negative.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

fn rate(metric: &'static str, reason: &'static str, num: u64, den: u64) -> Result<f64> {
    if den == 0 {
        return Err(Error::Undefined { metric, reason });
    }
    Ok(num as f64 / den as f64)
}

impl BinaryCounts {
    /// Counts of hard binary predictions.
    pub fn from_predictions(truth: &[bool], pred: &[bool]) -> Result<Self> {
        check_len("truth/pred", truth.len(), pred.len())?;
        let mut c = Self::default();
        for (&t, &p) in truth.iter().zip(pred) {
            match (t, p) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        Ok(c)
    }

    /// Counts when `score >= threshold` is called positive.
    pub fn at_threshold(truth: &[bool], scores: &[f64], threshold: f64) -> Result<Self> {
        check_len("truth/scores", truth.len(), scores.len())?;
        check_finite("scores", scores)?;
        if threshold.is_nan() {
            return Err(Error::InvalidParam {
                name: "threshold",
                value: "NaN".into(),
                reason: "must be a number",
            });
        }
        let mut c = Self::default();
        for (&t, &s) in truth.iter().zip(scores) {
            match (t, s >= threshold) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        Ok(c)
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Sensitivity (recall, true-positive rate) `TP / (TP + FN)`.
    pub fn sensitivity(&self) -> Result<f64> {
        rate("sensitivity", "no positive samples", self.tp, self.tp + self.fn_)
    }

    /// Specificity (true-negative rate) `TN / (TN + FP)`.
    pub fn specificity(&self) -> Result<f64> {
        rate("specificity", "no negative samples", self.tn, self.tn + self.fp)
    }

    /// Positive predictive value (precision) `TP / (TP + FP)`.
    pub fn ppv(&self) -> Result<f64> {
        rate("PPV", "nothing called positive", self.tp, self.tp + self.fp)
    }

    /// Negative predictive value `TN / (TN + FN)`.
    pub fn npv(&self) -> Result<f64> {
        rate("NPV", "nothing called negative", self.tn, self.tn + self.fn_)
    }

    /// Accuracy `(TP + TN) / N`.
    pub fn accuracy(&self) -> Result<f64> {
        rate("accuracy", "no samples", self.tp + self.tn, self.total())
    }

    /// F1 `2TP / (2TP + FP + FN)`.
    pub fn f1(&self) -> Result<f64> {
        rate("F1", "no positives in truth or prediction", 2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

/// A ROC curve: points `(fpr[i], tpr[i])` reached by calling `score >= thresholds[i]` positive.
/// The first point is `(0, 0)` at threshold `+inf`, as in scikit-learn >= 1.3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rates, non-decreasing.
    pub fpr: Vec<f64>,
    /// True-positive rates, non-decreasing.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds; the first is `+inf`.
    pub thresholds: Vec<f64>,
}

/// Cumulative (fps, tps, threshold) at each distinct score, scores descending (scikit-learn's
/// `_binary_clf_curve`). Ties form one point, so tied scores give a diagonal segment.
fn binary_clf_curve(truth: &[bool], scores: &[f64]) -> Result<(Vec<u64>, Vec<u64>, Vec<f64>)> {
    check_len("truth/scores", truth.len(), scores.len())?;
    if truth.is_empty() {
        return Err(Error::Empty { what: "scores" });
    }
    check_finite("scores", scores)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut fps, mut tps, mut thr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        if truth[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_value = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_value {
            fps.push(fp);
            tps.push(tp);
            thr.push(scores[i]);
        }
    }
    Ok((fps, tps, thr))
}

/// The ROC curve with ties handled as scikit-learn's `roc_curve`. With `drop_intermediate`,
/// collinear intermediate points are dropped exactly as scikit-learn does (the default there).
///
/// [`Error::Undefined`] when the truth holds a single class (scikit-learn returns NaN rates).
pub fn roc_curve(truth: &[bool], scores: &[f64], drop_intermediate: bool) -> Result<RocCurve> {
    let (mut fps, mut tps, mut thr) = binary_clf_curve(truth, scores)?;
    let (p, n) = (tps.last().copied().unwrap_or(0), fps.last().copied().unwrap_or(0));
    if p == 0 || n == 0 {
        return Err(Error::Undefined { metric: "ROC curve", reason: "truth holds a single class" });
    }
    if drop_intermediate && fps.len() > 2 {
        let len = fps.len();
        let keep: Vec<bool> = (0..len)
            .map(|i| {
                if i == 0 || i == len - 1 {
                    return true;
                }
                let d2 = |v: &[u64]| v[i + 1] as i128 - 2 * v[i] as i128 + v[i - 1] as i128;
                // scikit-learn compares np.diff(x, 2) at i-1, i.e. x[i+1] - 2x[i] + x[i-1].
                d2(&fps) != 0 || d2(&tps) != 0
            })
            .collect();
        let filter = |v: &mut Vec<u64>| {
            let mut k = 0;
            v.retain(|_| {
                k += 1;
                keep[k - 1]
            });
        };
        filter(&mut fps);
        filter(&mut tps);
        let mut k = 0;
        thr.retain(|_| {
            k += 1;
            keep[k - 1]
        });
    }
    let mut curve = RocCurve {
        fpr: Vec::with_capacity(fps.len() + 1),
        tpr: Vec::with_capacity(fps.len() + 1),
        thresholds: Vec::with_capacity(fps.len() + 1),
    };
    curve.fpr.push(0.0);
    curve.tpr.push(0.0);
    curve.thresholds.push(f64::INFINITY);
    for ((&f, &t), &s) in fps.iter().zip(&tps).zip(&thr) {
        curve.fpr.push(f as f64 / n as f64);
        curve.tpr.push(t as f64 / p as f64);
        curve.thresholds.push(s);
    }
    Ok(curve)
}

/// Area under the ROC curve by the trapezoidal rule (scikit-learn `roc_auc_score`, binary): tied
/// scores contribute half, i.e. the Mann-Whitney probability `P(s+ > s-) + P(s+ = s-)/2`.
pub fn roc_auc(truth: &[bool], scores: &[f64]) -> Result<f64> {
    let c = roc_curve(truth, scores, true)?;
    let mut area = 0.0;
    for i in 1..c.fpr.len() {
        area += (c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1]) / 2.0;
    }
    Ok(area)
}

/// Average precision `Σ_k (R_k − R_{k−1}) P_k` over distinct thresholds in decreasing order
/// (scikit-learn `average_precision_score`: a step function, no interpolation).
/// [`Error::Undefined`] when there is no positive sample.
pub fn average_precision(truth: &[bool], scores: &[f64]) -> Result<f64> {
    let (fps, tps, _) = binary_clf_curve(truth, scores)?;
    let p = tps.last().copied().unwrap_or(0);
    if p == 0 {
        return Err(Error::Undefined { metric: "average precision", reason: "no positive samples" });
    }
    let (mut ap, mut prev_recall) = (0.0, 0.0);
    for (&f, &t) in fps.iter().zip(&tps) {
        let recall = t as f64 / p as f64;
        let precision = t as f64 / (t + f) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Ok(ap)
}

/// The threshold that maximises Youden's J = sensitivity + specificity − 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct YoudenPoint {
    /// Call `score >= threshold` positive.
    pub threshold: f64,
    /// Sensitivity at the threshold.
    pub sensitivity: f64,
    /// Specificity at the threshold.
    pub specificity: f64,
    /// `sensitivity + specificity − 1`.
    pub j: f64,
}

/// The Youden-optimal threshold among the distinct scores (the full ROC curve without the `+inf`
/// point). Ties in J are broken towards the highest threshold (`np.argmax` over scikit-learn's
/// `roc_curve(..., drop_intermediate=False)` thresholds).
pub fn youden_threshold(truth: &[bool], scores: &[f64]) -> Result<YoudenPoint> {
    let c = roc_curve(truth, scores, false)?;
    let mut best: Option<YoudenPoint> = None;
    for i in 1..c.fpr.len() {
        let j = c.tpr[i] - c.fpr[i];
        if best.is_none_or(|b| j > b.j) {
            best = Some(YoudenPoint {
                threshold: c.thresholds[i],
                sensitivity: c.tpr[i],
                specificity: 1.0 - c.fpr[i],
                j,
            });
        }
    }
    best.ok_or(Error::Empty { what: "scores" })
}

fn check_probs(probs: &[f64]) -> Result<()> {
    check_finite("probabilities", probs)?;
    if let Some(&v) = probs.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::InvalidParam {
            name: "probability",
            value: v.to_string(),
            reason: "must lie in [0, 1]",
        });
    }
    Ok(())
}

/// Brier score `mean (p_i − y_i)²` of positive-class probabilities (scikit-learn
/// `brier_score_loss`, binary).
pub fn brier_score(truth: &[bool], probs: &[f64]) -> Result<f64> {
    check_len("truth/probabilities", truth.len(), probs.len())?;
    if truth.is_empty() {
        return Err(Error::Empty { what: "probabilities" });
    }
    check_probs(probs)?;
    let s: f64 = truth.iter().zip(probs).map(|(&t, &p)| (p - if t { 1.0 } else { 0.0 }).powi(2)).sum();
    Ok(s / truth.len() as f64)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge (exclusive, except 0 for the first bin).
    pub lower: f64,
    /// Upper edge (inclusive).
    pub upper: f64,
    /// Samples in the bin.
    pub count: u64,
    /// Mean predicted probability (0 when empty).
    pub mean_predicted: f64,
    /// Fraction of positives (0 when empty).
    pub fraction_positive: f64,
}

/// Expected calibration error and its reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// `Σ_b (n_b / N) |fraction_positive_b − mean_predicted_b|`.
    pub ece: f64,
    /// `max_b |fraction_positive_b − mean_predicted_b|` over non-empty bins.
    pub mce: f64,
    /// The bins, including empty ones.
    pub bins: Vec<CalibrationBin>,
}

/// Expected calibration error of positive-class probabilities with `n_bins` equal-width bins on
/// [0, 1], binned exactly as scikit-learn's `calibration_curve(strategy="uniform")`: edges
/// `k / n_bins`, a probability goes to bin `b` when `edge_b < p <= edge_{b+1}` (0 goes to the
/// first bin).
pub fn calibration(truth: &[bool], probs: &[f64], n_bins: usize) -> Result<Calibration> {
    check_len("truth/probabilities", truth.len(), probs.len())?;
    if truth.is_empty() {
        return Err(Error::Empty { what: "probabilities" });
    }
    if n_bins == 0 {
        return Err(Error::InvalidParam {
            name: "n_bins",
            value: "0".into(),
            reason: "need at least one bin",
        });
    }
    check_probs(probs)?;
    // numpy.linspace(0, 1, n+1): edge_k = k * (1/n), last edge exactly 1.
    let step = 1.0 / n_bins as f64;
    let edge = |k: usize| if k == n_bins { 1.0 } else { k as f64 * step };
    let mut count = vec![0u64; n_bins];
    let mut sum_p = vec![0.0; n_bins];
    let mut sum_y = vec![0.0; n_bins];
    for (&t, &p) in truth.iter().zip(probs) {
        // np.searchsorted(inner_edges, p, side="left") = number of inner edges < p.
        let b = (1..n_bins).take_while(|&k| edge(k) < p).count();
        count[b] += 1;
        sum_p[b] += p;
        sum_y[b] += if t { 1.0 } else { 0.0 };
    }
    let n = truth.len() as f64;
    let (mut ece, mut mce) = (0.0, 0.0f64);
    let mut bins = Vec::with_capacity(n_bins);
    for b in 0..n_bins {
        let (mp, fp) =
            if count[b] > 0 { (sum_p[b] / count[b] as f64, sum_y[b] / count[b] as f64) } else { (0.0, 0.0) };
        if count[b] > 0 {
            let gap = (fp - mp).abs();
            ece += count[b] as f64 / n * gap;
            mce = mce.max(gap);
        }
        bins.push(CalibrationBin {
            lower: edge(b),
            upper: edge(b + 1),
            count: count[b],
            mean_predicted: mp,
            fraction_positive: fp,
        });
    }
    Ok(Calibration { ece, mce, bins })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates_by_hand() {
        let truth = [true, true, true, false, false, false, false];
        let scores = [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05];
        let c = BinaryCounts::at_threshold(&truth, &scores, 0.5).unwrap();
        assert_eq!(c, BinaryCounts { tp: 2, fp: 1, tn: 3, fn_: 1 });
        assert!((c.sensitivity().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.specificity().unwrap() - 0.75).abs() < 1e-12);
        assert!((c.ppv().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.npv().unwrap() - 0.75).abs() < 1e-12);
        // AUC by pair counting: positive 0.9 beats 4, 0.6 beats 3, 0.2 beats 2 -> 9/12.
        assert!((roc_auc(&truth, &scores).unwrap() - 9.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn ties_count_half() {
        let truth = [true, false, true, false];
        let scores = [0.5, 0.5, 0.5, 0.5];
        assert!((roc_auc(&truth, &scores).unwrap() - 0.5).abs() < 1e-12);
        let truth = [true, false, false];
        let scores = [0.5, 0.5, 0.1];
        // pairs: (0.5 vs 0.5) tie = 0.5, (0.5 vs 0.1) = 1 -> 0.75
        assert!((roc_auc(&truth, &scores).unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn undefined_and_bad_input() {
        assert!(matches!(roc_auc(&[true, true], &[0.1, 0.2]), Err(Error::Undefined { .. })));
        assert!(matches!(
            roc_auc(&[true, false], &[0.1, f64::NAN]),
            Err(Error::NonFiniteScore { index: 1, .. })
        ));
        assert!(matches!(brier_score(&[true], &[1.5]), Err(Error::InvalidParam { .. })));
        assert!(matches!(average_precision(&[false, false], &[0.1, 0.2]), Err(Error::Undefined { .. })));
        assert!(matches!(calibration(&[], &[], 10), Err(Error::Empty { .. })));
    }

    #[test]
    fn youden_picks_best_threshold() {
        let truth = [false, false, true, true];
        let scores = [0.1, 0.4, 0.35, 0.8];
        let y = youden_threshold(&truth, &scores).unwrap();
        // thresholds 0.8 (J=.5), 0.4 (.5-.5=0), 0.35 (1-.5=.5), 0.1 (0): first max is 0.8.
        assert_eq!(y.threshold, 0.8);
        assert!((y.j - 0.5).abs() < 1e-12);
    }

    #[test]
    fn calibration_edges_follow_searchsorted_left() {
        // 0.5 is on the edge between bin 0 and 1 of 2 bins: goes to bin 0.
        let c = calibration(&[true, false, true], &[0.5, 0.0, 1.0], 2).unwrap();
        assert_eq!(c.bins[0].count, 2);
        assert_eq!(c.bins[1].count, 1);
        // bin0: mean p 0.25, frac 0.5 -> gap .25 * 2/3; bin1: p 1, frac 1 -> 0
        assert!((c.ece - 0.25 * 2.0 / 3.0).abs() < 1e-12);
    }
}
