//! Multi-class classification metrics over a streaming [`ConfusionMatrix`], and the MEGC2019
//! composite-protocol scores UF1 and UAR.
//!
//! # Zero-division and absent-class rules
//!
//! Let `TP_c`, `FP_c`, `FN_c` be the one-vs-rest counts of class `c` and `n_c = TP_c + FN_c` its
//! support. A class is **present** when `TP_c + FP_c + FN_c > 0`, i.e. it occurs in the truth or
//! in the predictions.
//!
//! * Per class (as scikit-learn's `precision_recall_fscore_support(..., zero_division=0)`):
//!   precision `TP/(TP+FP)` is 0 when the class is never predicted, recall `TP/n_c` is 0 when the
//!   class has no samples, F1 `2TP/(2TP+FP+FN)` is 0 when the class is not present.
//! * Macro F1 and UF1 average F1 over the **present** classes only. This is scikit-learn's
//!   `f1_score(average="macro")` when `labels` is left to be inferred from the data, and it is what
//!   the MEGC reference code does (a class absent from both truth and prediction makes its binary
//!   confusion matrix degenerate and is skipped).
//! * Balanced accuracy and UAR average recall over the classes **with samples** (`n_c > 0`), as
//!   scikit-learn's `balanced_accuracy_score` (which warns and drops a class that is only predicted).
//!   The MEGC reference code would produce NaN there; we exclude the class instead.
//! * Weighted F1 weights each class's F1 by its support (scikit-learn `average="weighted"`).
//! * Accuracy, macro/weighted F1 and UAR of an empty matrix are [`Error::Empty`]; Cohen's kappa is
//!   [`Error::Undefined`] when the chance agreement is 1 (both raters use a single class).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{check_len, Error, Result};

/// A square confusion matrix, rows = truth, columns = prediction, filled one sample at a time.
///
/// Matrices of different folds [`merge`](ConfusionMatrix::merge) into the pooled matrix of the
/// MEGC protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    n_classes: usize,
    counts: Vec<u64>,
}

/// One-vs-rest counts and scores of one class (zero-division rule: see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    /// Class index.
    pub label: usize,
    /// True positives.
    pub tp: u64,
    /// False positives (predicted as this class, truth another).
    pub fp: u64,
    /// False negatives (truth this class, predicted another).
    pub fn_: u64,
    /// `TP / (TP + FP)`, 0 when the class is never predicted.
    pub precision: f64,
    /// `TP / support`, 0 when the class has no samples.
    pub recall: f64,
    /// `2TP / (2TP + FP + FN)`, 0 when the class is not present.
    pub f1: f64,
    /// Number of samples whose truth is this class.
    pub support: u64,
}

/// Every classification score of a confusion matrix at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Number of samples.
    pub n: u64,
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// MEGC unweighted F1 (mean F1 over present classes) = `macro_f1`.
    pub uf1: f64,
    /// MEGC unweighted average recall (mean recall over classes with samples) = balanced accuracy.
    pub uar: f64,
    /// Mean F1 over present classes.
    pub macro_f1: f64,
    /// Support-weighted mean F1.
    pub weighted_f1: f64,
    /// Cohen's kappa; `None` when undefined (chance agreement 1).
    pub kappa: Option<f64>,
    /// Per-class counts and scores, one entry per class index.
    pub per_class: Vec<ClassStats>,
    /// The matrix, rows = truth, columns = prediction.
    pub confusion: Vec<Vec<u64>>,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl ConfusionMatrix {
    /// An empty `n_classes x n_classes` matrix. `n_classes` must be at least 1.
    pub fn new(n_classes: usize) -> Result<Self> {
        if n_classes == 0 {
            return Err(Error::InvalidParam {
                name: "n_classes",
                value: "0".into(),
                reason: "need at least one class",
            });
        }
        Ok(Self { n_classes, counts: vec![0; n_classes * n_classes] })
    }

    /// The matrix of parallel label slices.
    pub fn from_labels(truth: &[usize], pred: &[usize], n_classes: usize) -> Result<Self> {
        let mut m = Self::new(n_classes)?;
        m.add_all(truth, pred)?;
        Ok(m)
    }

    /// The matrix of the samples `indices` (repetitions count repeatedly) of parallel label slices:
    /// the building block of resampling metrics (see [`crate::compare`]).
    pub fn from_indices(
        truth: &[usize],
        pred: &[usize],
        indices: &[usize],
        n_classes: usize,
    ) -> Result<Self> {
        check_len("truth/pred", truth.len(), pred.len())?;
        let mut m = Self::new(n_classes)?;
        for &i in indices {
            let (Some(&t), Some(&p)) = (truth.get(i), pred.get(i)) else {
                return Err(Error::InvalidParam {
                    name: "indices",
                    value: i.to_string(),
                    reason: "sample index beyond the label slices",
                });
            };
            m.check_label(t, i)?;
            m.check_label(p, i)?;
            m.counts[t * n_classes + p] += 1;
        }
        Ok(m)
    }

    fn check_label(&self, label: usize, index: usize) -> Result<()> {
        if label >= self.n_classes {
            return Err(Error::LabelOutOfRange { label, n_classes: self.n_classes, index });
        }
        Ok(())
    }

    /// Adds one sample. An out-of-range label is reported at index = number of samples so far.
    pub fn add(&mut self, truth: usize, pred: usize) -> Result<()> {
        let index = usize::try_from(self.total()).unwrap_or(usize::MAX);
        self.check_label(truth, index)?;
        self.check_label(pred, index)?;
        self.counts[truth * self.n_classes + pred] += 1;
        Ok(())
    }

    /// Adds parallel label slices; nothing is added when any label is out of range.
    pub fn add_all(&mut self, truth: &[usize], pred: &[usize]) -> Result<()> {
        check_len("truth/pred", truth.len(), pred.len())?;
        for (i, (&t, &p)) in truth.iter().zip(pred).enumerate() {
            self.check_label(t, i)?;
            self.check_label(p, i)?;
        }
        for (&t, &p) in truth.iter().zip(pred) {
            self.counts[t * self.n_classes + p] += 1;
        }
        Ok(())
    }

    /// Adds the counts of another matrix with the same number of classes (pooling folds).
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        check_len("n_classes", self.n_classes, other.n_classes)?;
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }

    /// Resets every count to 0.
    pub fn clear(&mut self) {
        self.counts.fill(0);
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of samples added.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Count of samples with truth `truth` predicted as `pred` (0 when out of range).
    pub fn count(&self, truth: usize, pred: usize) -> u64 {
        if truth >= self.n_classes || pred >= self.n_classes {
            return 0;
        }
        self.counts[truth * self.n_classes + pred]
    }

    /// The rows (truth) of the matrix.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts.chunks(self.n_classes).map(<[u64]>::to_vec).collect()
    }

    /// True positives of class `c`.
    pub fn tp(&self, c: usize) -> u64 {
        self.count(c, c)
    }

    /// Samples of class `c` (row sum).
    pub fn support(&self, c: usize) -> u64 {
        if c >= self.n_classes {
            return 0;
        }
        self.counts[c * self.n_classes..(c + 1) * self.n_classes].iter().sum()
    }

    /// Samples predicted as class `c` (column sum).
    pub fn predicted(&self, c: usize) -> u64 {
        if c >= self.n_classes {
            return 0;
        }
        (0..self.n_classes).map(|t| self.counts[t * self.n_classes + c]).sum()
    }

    /// False positives of class `c`.
    pub fn fp(&self, c: usize) -> u64 {
        self.predicted(c) - self.tp(c)
    }

    /// False negatives of class `c`.
    pub fn fn_(&self, c: usize) -> u64 {
        self.support(c) - self.tp(c)
    }

    /// Whether class `c` occurs in the truth or the predictions (`TP + FP + FN > 0`).
    pub fn is_present(&self, c: usize) -> bool {
        self.support(c) + self.predicted(c) > 0
    }

    /// Counts and scores of class `c`.
    pub fn class_stats(&self, c: usize) -> ClassStats {
        let (tp, fp, fn_) = (self.tp(c), self.fp(c), self.fn_(c));
        ClassStats {
            label: c,
            tp,
            fp,
            fn_,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            support: tp + fn_,
        }
    }

    /// Counts and scores of every class.
    pub fn per_class(&self) -> Vec<ClassStats> {
        (0..self.n_classes).map(|c| self.class_stats(c)).collect()
    }

    fn nonempty(&self, what: &'static str) -> Result<u64> {
        match self.total() {
            0 => Err(Error::Empty { what }),
            n => Ok(n),
        }
    }

    /// Fraction of correct predictions.
    pub fn accuracy(&self) -> Result<f64> {
        let n = self.nonempty("confusion matrix (accuracy)")?;
        let correct: u64 = (0..self.n_classes).map(|c| self.tp(c)).sum();
        Ok(correct as f64 / n as f64)
    }

    /// Mean F1 over present classes (scikit-learn `f1_score(average="macro")` with inferred labels).
    pub fn macro_f1(&self) -> Result<f64> {
        self.nonempty("confusion matrix (macro F1)")?;
        let (mut sum, mut k) = (0.0, 0usize);
        for c in (0..self.n_classes).filter(|&c| self.is_present(c)) {
            sum += self.class_stats(c).f1;
            k += 1;
        }
        Ok(sum / k as f64)
    }

    /// Mean precision over present classes (zero-division 0).
    pub fn macro_precision(&self) -> Result<f64> {
        self.nonempty("confusion matrix (macro precision)")?;
        let (mut sum, mut k) = (0.0, 0usize);
        for c in (0..self.n_classes).filter(|&c| self.is_present(c)) {
            sum += self.class_stats(c).precision;
            k += 1;
        }
        Ok(sum / k as f64)
    }

    /// Support-weighted mean F1 (scikit-learn `average="weighted"`).
    pub fn weighted_f1(&self) -> Result<f64> {
        let n = self.nonempty("confusion matrix (weighted F1)")?;
        let s: f64 = self.per_class().iter().map(|s| s.f1 * s.support as f64).sum();
        Ok(s / n as f64)
    }

    /// Mean recall over classes with samples (scikit-learn `balanced_accuracy_score`).
    pub fn balanced_accuracy(&self) -> Result<f64> {
        self.nonempty("confusion matrix (balanced accuracy)")?;
        let (mut sum, mut k) = (0.0, 0usize);
        for c in (0..self.n_classes).filter(|&c| self.support(c) > 0) {
            sum += self.class_stats(c).recall;
            k += 1;
        }
        Ok(sum / k as f64)
    }

    /// MEGC2019 unweighted F1 of this (pooled) matrix: `mean_c 2TP_c / (2TP_c + FP_c + FN_c)` over
    /// present classes. Identical to [`macro_f1`](Self::macro_f1); the MEGC part is that the matrix
    /// pools all LOSO folds before the average.
    pub fn uf1(&self) -> Result<f64> {
        self.macro_f1()
    }

    /// MEGC2019 unweighted average recall of this (pooled) matrix: `mean_c TP_c / n_c` over classes
    /// with samples. Identical to [`balanced_accuracy`](Self::balanced_accuracy).
    pub fn uar(&self) -> Result<f64> {
        self.balanced_accuracy()
    }

    /// Cohen's kappa `(p_o - p_e) / (1 - p_e)` (scikit-learn `cohen_kappa_score`, unweighted).
    pub fn cohen_kappa(&self) -> Result<f64> {
        let n = self.nonempty("confusion matrix (kappa)")? as f64;
        let po = self.accuracy()?;
        let pe: f64 =
            (0..self.n_classes).map(|c| self.support(c) as f64 * self.predicted(c) as f64).sum::<f64>()
                / (n * n);
        if (1.0 - pe).abs() < f64::EPSILON {
            return Err(Error::Undefined {
                metric: "Cohen's kappa",
                reason: "chance agreement is 1 (truth and prediction each use a single class)",
            });
        }
        Ok((po - pe) / (1.0 - pe))
    }

    /// All scores at once; [`Error::Empty`] for an empty matrix.
    pub fn report(&self) -> Result<ClassificationReport> {
        let kappa = match self.cohen_kappa() {
            Ok(k) => Some(k),
            Err(e) if e.is_undefined() => None,
            Err(e) => return Err(e),
        };
        Ok(ClassificationReport {
            n: self.total(),
            accuracy: self.accuracy()?,
            uf1: self.uf1()?,
            uar: self.uar()?,
            macro_f1: self.macro_f1()?,
            weighted_f1: self.weighted_f1()?,
            kappa,
            per_class: self.per_class(),
            confusion: self.rows(),
        })
    }
}

/// UF1 and UAR of one set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MegcScores {
    /// Number of samples.
    pub n: u64,
    /// Unweighted F1 (mean per-class F1 of the pooled matrix).
    pub uf1: f64,
    /// Unweighted average recall (mean per-class recall of the pooled matrix).
    pub uar: f64,
}

impl MegcScores {
    /// The scores of a (pooled) confusion matrix.
    pub fn from_matrix(m: &ConfusionMatrix) -> Result<Self> {
        Ok(Self { n: m.total(), uf1: m.uf1()?, uar: m.uar()? })
    }
}

/// UF1/UAR of the pooled predictions of all LOSO folds (MEGC2019 composite protocol, MEGC2019 Recognition Challenge document):
/// `truth` and `pred` hold every fold's test samples concatenated.
pub fn megc_scores(truth: &[usize], pred: &[usize], n_classes: usize) -> Result<MegcScores> {
    MegcScores::from_matrix(&ConfusionMatrix::from_labels(truth, pred, n_classes)?)
}

/// Pools per-fold `(truth, pred)` pairs into one confusion matrix: `TP_c = Σ_folds TP_c(i)` etc.
pub fn pool_folds<'a, I>(folds: I, n_classes: usize) -> Result<ConfusionMatrix>
where
    I: IntoIterator<Item = (&'a [usize], &'a [usize])>,
{
    let mut m = ConfusionMatrix::new(n_classes)?;
    for (t, p) in folds {
        m.add_all(t, p)?;
    }
    Ok(m)
}

/// The mean over folds of each fold's macro F1. **Not** the MEGC metric: provided to show the
/// difference (Forman & Scholz 2010); folds with no samples are skipped.
pub fn mean_of_fold_f1<'a, I>(folds: I, n_classes: usize) -> Result<f64>
where
    I: IntoIterator<Item = (&'a [usize], &'a [usize])>,
{
    let (mut sum, mut k) = (0.0, 0usize);
    for (t, p) in folds {
        let m = ConfusionMatrix::from_labels(t, p, n_classes)?;
        if m.total() > 0 {
            sum += m.macro_f1()?;
            k += 1;
        }
    }
    if k == 0 {
        return Err(Error::Empty { what: "folds" });
    }
    Ok(sum / k as f64)
}

/// Scores of the pooled predictions and of their restriction to each group (e.g. dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MegcBreakdown<K: Ord> {
    /// All samples.
    pub full: MegcScores,
    /// The samples of each group key.
    pub per_group: BTreeMap<K, MegcScores>,
}

/// UF1/UAR of the pooled predictions and per group key (the per-dataset columns of the MEGC2019
/// tables: the pooled predictions restricted to that dataset's samples, not a separate run).
pub fn megc_breakdown<K: Ord + Clone>(
    truth: &[usize],
    pred: &[usize],
    keys: &[K],
    n_classes: usize,
) -> Result<MegcBreakdown<K>> {
    check_len("truth/keys", truth.len(), keys.len())?;
    let full = ConfusionMatrix::from_labels(truth, pred, n_classes)?;
    let mut mats: BTreeMap<K, ConfusionMatrix> = BTreeMap::new();
    for ((k, &t), &p) in keys.iter().zip(truth).zip(pred) {
        match mats.get_mut(k) {
            Some(m) => m.add(t, p)?,
            None => {
                let mut m = ConfusionMatrix::new(n_classes)?;
                m.add(t, p)?;
                mats.insert(k.clone(), m);
            }
        }
    }
    let mut per_group = BTreeMap::new();
    for (k, m) in mats {
        per_group.insert(k, MegcScores::from_matrix(&m)?);
    }
    Ok(MegcBreakdown { full: MegcScores::from_matrix(&full)?, per_group })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_three_class() {
        // truth 0 0 0 1 1 2, pred 0 0 1 1 2 2
        let m = ConfusionMatrix::from_labels(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3).unwrap();
        assert_eq!(m.rows(), vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        // F1: c0 4/5, c1 2/4, c2 2/3
        let uf1 = (0.8 + 0.5 + 2.0 / 3.0) / 3.0;
        assert!((m.uf1().unwrap() - uf1).abs() < 1e-12);
        // recall: 2/3, 1/2, 1
        assert!((m.uar().unwrap() - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        assert!((m.accuracy().unwrap() - 4.0 / 6.0).abs() < 1e-12);
        // weighted: (3*0.8 + 2*0.5 + 1*2/3)/6
        assert!((m.weighted_f1().unwrap() - (2.4 + 1.0 + 2.0 / 3.0) / 6.0).abs() < 1e-12);
        // kappa: po = 4/6, pe = (3*2 + 2*2 + 1*2)/36 = 12/36
        let (po, pe) = (4.0 / 6.0, 12.0 / 36.0);
        assert!((m.cohen_kappa().unwrap() - (po - pe) / (1.0 - pe)).abs() < 1e-12);
    }

    #[test]
    fn absent_class_rules() {
        // class 2 absent everywhere: excluded from UF1 and UAR; reported with zeros.
        let m = ConfusionMatrix::from_labels(&[0, 1], &[0, 1], 3).unwrap();
        assert_eq!(m.uf1().unwrap(), 1.0);
        assert_eq!(m.uar().unwrap(), 1.0);
        assert_eq!(m.class_stats(2).f1, 0.0);
        // class 2 only predicted: F1 = 0 counted in UF1, excluded from UAR.
        let m = ConfusionMatrix::from_labels(&[0, 1, 1], &[0, 1, 2], 3).unwrap();
        assert!((m.uf1().unwrap() - (1.0 + 2.0 / 3.0 + 0.0) / 3.0).abs() < 1e-12);
        assert!((m.uar().unwrap() - (1.0 + 0.5) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(ConfusionMatrix::new(0), Err(Error::InvalidParam { .. })));
        assert!(matches!(
            ConfusionMatrix::from_labels(&[0, 3], &[0, 1], 3),
            Err(Error::LabelOutOfRange { label: 3, index: 1, .. })
        ));
        assert!(matches!(ConfusionMatrix::from_labels(&[0], &[0, 1], 3), Err(Error::LengthMismatch { .. })));
        assert!(matches!(ConfusionMatrix::new(3).unwrap().uf1(), Err(Error::Empty { .. })));
        let m = ConfusionMatrix::from_labels(&[1, 1], &[1, 1], 3).unwrap();
        assert!(matches!(m.cohen_kappa(), Err(Error::Undefined { .. })));
        assert_eq!(m.report().unwrap().kappa, None);
    }

    #[test]
    fn merge_equals_pooling() {
        let mut a = ConfusionMatrix::from_labels(&[0, 1], &[1, 1], 2).unwrap();
        let b = ConfusionMatrix::from_labels(&[0, 0], &[0, 1], 2).unwrap();
        a.merge(&b).unwrap();
        let pooled = ConfusionMatrix::from_labels(&[0, 1, 0, 0], &[1, 1, 0, 1], 2).unwrap();
        assert_eq!(a, pooled);
        assert!(a.merge(&ConfusionMatrix::new(3).unwrap()).is_err());
    }
}
