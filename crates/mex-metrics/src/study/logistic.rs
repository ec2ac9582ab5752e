//! L2-regularised logistic regression (scikit-learn's `LogisticRegression(C=...)` objective,
//! solved by Newton's method), feature standardisation, and folds grouped by subject.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_len, Error, Result};

/// Settings of the logistic regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticConfig {
    /// Inverse regularisation strength `C` (scikit-learn's default 1.0): the objective is
    /// `½‖w‖² + C Σ_i log(1 + exp(−s_i (w·x_i + b)))`, the intercept `b` not penalised.
    pub c: f64,
    /// Maximum Newton iterations (default 100).
    pub max_iter: usize,
    /// Convergence: the largest absolute gradient component below `tol` (default 1e-10).
    pub tol: f64,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        Self { c: 1.0, max_iter: 100, tol: 1e-10 }
    }
}

impl LogisticConfig {
    /// Checks `c > 0`, `max_iter >= 1`, `tol > 0`.
    pub fn validate(&self) -> Result<()> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(Error::InvalidParam {
                name: "c",
                value: self.c.to_string(),
                reason: "must be a positive number",
            });
        }
        if self.max_iter == 0 {
            return Err(Error::InvalidParam {
                name: "max_iter",
                value: "0".into(),
                reason: "need at least one iteration",
            });
        }
        if !(self.tol > 0.0) {
            return Err(Error::InvalidParam {
                name: "tol",
                value: self.tol.to_string(),
                reason: "must be positive",
            });
        }
        Ok(())
    }
}

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    /// Coefficients, one per feature.
    pub coef: Vec<f64>,
    /// Intercept.
    pub intercept: f64,
    /// Newton iterations used.
    pub n_iter: usize,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + exp(z))` without overflow.
fn log1pexp(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

impl LogisticModel {
    /// The linear score `w·x + b`.
    pub fn decision(&self, x: &[f64]) -> f64 {
        self.intercept + self.coef.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }

    /// The positive-class probability `σ(w·x + b)`.
    pub fn predict_proba(&self, x: &[f64]) -> f64 {
        sigmoid(self.decision(x))
    }
}

fn check_matrix(x: &[Vec<f64>]) -> Result<usize> {
    let d = x.first().map_or(0, Vec::len);
    for row in x {
        check_len("features per row", d, row.len())?;
        check_finite("features", row)?;
    }
    Ok(d)
}

/// Solves `a x = b` (dense, partial pivoting); `None` when singular.
#[allow(clippy::needless_range_loop)] // dense elimination reads two rows by index
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if !(a[piv][col].abs() > 1e-300) {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for r in col + 1..n {
            let f = a[r][col] / a[col][col];
            if f != 0.0 {
                for c in col..n {
                    a[r][c] -= f * a[col][c];
                }
                b[r] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// Fits the L2-regularised logistic regression of scikit-learn (`LogisticRegression(C=c)`,
/// `fit_intercept=True`, intercept unpenalised) by Newton's method with backtracking. The
/// objective is strictly convex in the coefficients, so the optimum is the one any converged
/// solver (scikit-learn's lbfgs with a tight `tol`) reaches.
///
/// Needs both classes among `y`.
///
/// ```
/// use mex_metrics::study::{fit_logistic, LogisticConfig};
/// let x = vec![vec![0.0], vec![1.0], vec![2.0], vec![3.0]];
/// let y = [false, false, true, true];
/// let m = fit_logistic(&x, &y, &LogisticConfig::default()).unwrap();
/// assert!(m.coef[0] > 0.0);
/// assert!((m.predict_proba(&[1.5]) - 0.5).abs() < 1e-9); // symmetric data
/// ```
#[allow(clippy::needless_range_loop)] // the symmetric Hessian is mirrored by index
pub fn fit_logistic(x: &[Vec<f64>], y: &[bool], cfg: &LogisticConfig) -> Result<LogisticModel> {
    cfg.validate()?;
    check_len("features/labels", x.len(), y.len())?;
    if x.is_empty() {
        return Err(Error::Empty { what: "training samples" });
    }
    let d = check_matrix(x)?;
    if y.iter().all(|&v| v) || y.iter().all(|&v| !v) {
        return Err(Error::Undefined {
            metric: "logistic regression",
            reason: "training labels hold a single class",
        });
    }
    let c = cfg.c;
    // rows with a trailing 1 for the intercept
    let xa: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            let mut v = Vec::with_capacity(d + 1);
            v.extend_from_slice(r);
            v.push(1.0);
            v
        })
        .collect();
    let dot = |row: &[f64], w: &[f64]| {
        let mut z = 0.0;
        for j in 0..=d {
            z += row[j] * w[j];
        }
        z
    };
    let objective = |w: &[f64]| -> f64 {
        let mut f = 0.0;
        for v in &w[..d] {
            f += 0.5 * v * v;
        }
        for (row, &t) in xa.iter().zip(y) {
            let z = dot(row, w);
            f += c * if t { log1pexp(-z) } else { log1pexp(z) };
        }
        f
    };
    let mut w = vec![0.0; d + 1];
    let mut f_cur = objective(&w);
    for it in 0..cfg.max_iter {
        let mut grad = vec![0.0; d + 1];
        let mut hess = vec![vec![0.0; d + 1]; d + 1];
        grad[..d].copy_from_slice(&w[..d]);
        for (i, row) in hess.iter_mut().enumerate().take(d) {
            row[i] = 1.0;
        }
        for (row, &t) in xa.iter().zip(y) {
            let p = sigmoid(dot(row, &w));
            let r = c * (p - if t { 1.0 } else { 0.0 });
            let h = c * p * (1.0 - p);
            for a in 0..=d {
                let ra = row[a];
                grad[a] += r * ra;
                let hra = h * ra;
                let ha = &mut hess[a];
                for b in a..=d {
                    ha[b] += hra * row[b];
                }
            }
        }
        for a in 1..=d {
            for b in 0..a {
                hess[a][b] = hess[b][a];
            }
        }
        let gmax = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        if gmax < cfg.tol {
            return Ok(LogisticModel { coef: w[..d].to_vec(), intercept: w[d], n_iter: it });
        }
        let step = solve(hess, grad.clone()).ok_or(Error::Undefined {
            metric: "logistic regression",
            reason: "singular Hessian (perfectly separated data in the intercept direction)",
        })?;
        let slope: f64 = -step.iter().zip(&grad).map(|(s, g)| s * g).sum::<f64>();
        let mut t = 1.0;
        loop {
            let cand: Vec<f64> = w.iter().zip(&step).map(|(a, s)| a - t * s).collect();
            let f_new = objective(&cand);
            if f_new <= f_cur + 1e-4 * t * slope || t < 1e-10 {
                w = cand;
                f_cur = f_new;
                break;
            }
            t *= 0.5;
        }
    }
    Ok(LogisticModel { coef: w[..d].to_vec(), intercept: w[d], n_iter: cfg.max_iter })
}

/// Per-feature centring and scaling fitted on training rows (scikit-learn's `StandardScaler`:
/// population SD, `ddof = 0`; a constant feature is scaled by 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Feature means.
    pub mean: Vec<f64>,
    /// Feature scales.
    pub scale: Vec<f64>,
}

impl Standardizer {
    /// Fits means and scales on `x`.
    pub fn fit(x: &[Vec<f64>]) -> Result<Self> {
        if x.is_empty() {
            return Err(Error::Empty { what: "standardizer rows" });
        }
        let d = check_matrix(x)?;
        let n = x.len() as f64;
        let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n).collect();
        let scale = (0..d)
            .map(|j| {
                let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
                if v > 0.0 {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Self { mean, scale })
    }

    /// `(x − mean) / scale` of one row.
    pub fn transform(&self, row: &[f64]) -> Vec<f64> {
        row.iter().zip(&self.mean).zip(&self.scale).map(|((v, m), s)| (v - m) / s).collect()
    }
}

/// Folds grouped by subject and stratified by class: every subject's samples fall in one fold.
/// Subjects of each class are shuffled with a ChaCha8 generator seeded by `seed` and dealt to the
/// folds in turn (the second class continuing where the first stopped, so fold sizes stay even),
/// like scikit-learn's `StratifiedGroupKFold(shuffle=True)` for subjects of one class each.
/// Returns the fold (`0..n_folds`) of each sample. `n_folds` is capped at the number of subjects.
///
/// [`Error::InvalidParam`] when a subject holds both classes or `n_folds < 2`.
pub fn grouped_folds<K: Ord + Clone>(
    subjects: &[K],
    labels: &[bool],
    n_folds: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    check_len("subjects/labels", subjects.len(), labels.len())?;
    if n_folds < 2 {
        return Err(Error::InvalidParam {
            name: "n_folds",
            value: n_folds.to_string(),
            reason: "need at least two folds",
        });
    }
    let mut class_of: BTreeMap<K, bool> = BTreeMap::new();
    for (s, &l) in subjects.iter().zip(labels) {
        if let Some(&prev) = class_of.get(s) {
            if prev != l {
                return Err(Error::InvalidParam {
                    name: "subjects",
                    value: "a subject".into(),
                    reason: "holds samples of both classes; grouped folds need one class per subject",
                });
            }
        } else {
            class_of.insert(s.clone(), l);
        }
    }
    let k = n_folds.min(class_of.len()).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold_of: BTreeMap<K, usize> = BTreeMap::new();
    let mut next = 0usize;
    for class in [true, false] {
        let mut subs: Vec<K> = class_of.iter().filter(|(_, &c)| c == class).map(|(s, _)| s.clone()).collect();
        subs.shuffle(&mut rng);
        for s in subs {
            fold_of.insert(s, next % k);
            next += 1;
        }
    }
    Ok(subjects.iter().map(|s| fold_of.get(s).copied().unwrap_or(0)).collect())
}
