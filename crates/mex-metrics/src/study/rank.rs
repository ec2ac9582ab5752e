//! Rank statistics: average ranks with ties, the Mann-Whitney U test and Spearman's rank
//! correlation with a Fisher-z confidence interval.

use serde::{Deserialize, Serialize};

use super::dist::{norm_ppf, norm_sf, t_two_sided_p};
use super::{check_confidence, EstimateCi};
use crate::error::{check_finite, check_len, Error, Result};

/// Average ranks (1-based; ties get the mean of their ranks, SciPy's `rankdata(method="average")`)
/// and the sizes of the tie groups.
pub(crate) fn average_ranks(xs: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && xs[order[j]] == xs[order[i]] {
            j += 1;
        }
        // positions i..j (0-based) hold ranks i+1..=j
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = r;
        }
        ties.push(j - i);
        i = j;
    }
    (ranks, ties)
}

/// How the Mann-Whitney p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MwuMethod {
    /// SciPy's `method="auto"`: exact when either group has at most 8 values and there are no
    /// ties, the normal approximation otherwise.
    #[default]
    Auto,
    /// The exact null distribution of U (no ties allowed).
    Exact,
    /// The normal approximation with tie and continuity corrections.
    Asymptotic,
}

/// Result of a two-sided Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// `U_x`: the number of pairs with `x > y`, ties counting one half (SciPy's statistic).
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether the exact distribution was used.
    pub exact: bool,
    /// Common-language effect size `U_x / (n_x n_y)`: the probability that a value of `x`
    /// exceeds one of `y` (ties one half), i.e. the ROC AUC of `x` against `y`.
    pub auc: f64,
}

/// Probability `P(U >= u)` under the null (no ties), by the recursion
/// `p(m, n, u) = m/(m+n) p(m−1, n, u−n) + n/(m+n) p(m, n−1, u)`.
fn exact_sf(n1: usize, n2: usize, u: f64) -> f64 {
    let max = n1 * n2;
    // pmf[m][n] as vectors over u, built up row by row
    let mut prev: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect(); // m = 0: U = 0 surely
    for m in 1..=n1 {
        let mut cur: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        cur.push(vec![1.0]); // n = 0
        for n in 1..=n2 {
            let len = m * n + 1;
            let mut v = vec![0.0; len];
            let (wm, wn) = (m as f64 / (m + n) as f64, n as f64 / (m + n) as f64);
            // the largest value is x's: it beats all n values of y
            for (k, &p) in prev[n].iter().enumerate() {
                v[k + n] += wm * p;
            }
            for (k, &p) in cur[n - 1].iter().enumerate() {
                v[k] += wn * p;
            }
            cur.push(v);
        }
        prev = cur;
    }
    let pmf = &prev[n2];
    let start = u.ceil().max(0.0) as usize;
    if start > max {
        return 0.0;
    }
    pmf[start..].iter().sum()
}

/// Two-sided Mann-Whitney U test of `x` against `y`, as `scipy.stats.mannwhitneyu(x, y,
/// alternative="two-sided", use_continuity=True, method=...)`: `U_x = R_x − n_x(n_x+1)/2` from
/// average ranks; the p-value is `2 P(U >= max(U_x, U_y))`, exact or from the normal approximation
/// `z = (max(U_x, U_y) − n_x n_y / 2 − 1/2) / σ` with the tie-corrected
/// `σ² = n_x n_y / 12 · ((n+1) − Σ(t³ − t) / (n(n−1)))`; clipped to [0, 1].
///
/// ```
/// use mex_metrics::study::{mann_whitney, MwuMethod};
/// // all of x above all of y: U = 9, exact p = 2 / C(6, 3) = 0.1
/// let r = mann_whitney(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0], MwuMethod::Auto).unwrap();
/// assert_eq!(r.u, 9.0);
/// assert!((r.p_value - 0.1).abs() < 1e-12);
/// ```
pub fn mann_whitney(x: &[f64], y: &[f64], method: MwuMethod) -> Result<MannWhitney> {
    if x.is_empty() || y.is_empty() {
        return Err(Error::Empty { what: "Mann-Whitney group" });
    }
    check_finite("x", x)?;
    check_finite("y", y)?;
    let (n1, n2) = (x.len(), y.len());
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (ranks, ties) = average_ranks(&all);
    let r1: f64 = ranks[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let nn = (n1 * n2) as f64;
    let u2 = nn - u1;
    let u = u1.max(u2);
    let has_ties = ties.iter().any(|&t| t > 1);
    let exact = match method {
        MwuMethod::Auto => (n1 <= 8 || n2 <= 8) && !has_ties,
        MwuMethod::Exact => {
            if has_ties {
                return Err(Error::InvalidParam {
                    name: "method",
                    value: "exact".into(),
                    reason: "the exact Mann-Whitney distribution assumes no ties",
                });
            }
            true
        }
        MwuMethod::Asymptotic => false,
    };
    let p = if exact {
        2.0 * exact_sf(n1, n2, u)
    } else {
        let n = (n1 + n2) as f64;
        let tie_term: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum();
        let s = (nn / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
        let z = (u - nn / 2.0 - 0.5) / s;
        if s > 0.0 {
            2.0 * norm_sf(z)
        } else {
            1.0 // all values tied: no evidence (SciPy returns NaN here)
        }
    };
    Ok(MannWhitney { u: u1, p_value: p.clamp(0.0, 1.0), exact, auc: u1 / nn })
}

/// Spearman's rank correlation with its confidence interval and p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spearman {
    /// rho with its confidence interval.
    pub rho: EstimateCi,
    /// Two-sided p-value from `t = rho √((n−2)/(1−rho²))` with `n − 2` degrees of freedom
    /// (`scipy.stats.spearmanr`).
    pub p_value: f64,
    /// Number of pairs.
    pub n: usize,
}

/// Spearman's rho (Pearson correlation of average ranks, `scipy.stats.spearmanr`) with the
/// Fisher-z interval `tanh(atanh(rho) ± z_{(1+conf)/2} / √(n−3))` (pingouin's `compute_esci`,
/// R's `cor.test` for Pearson). Needs `n >= 4`; [`Error::Undefined`] when either variable is
/// constant. With `|rho| = 1` the interval is the point.
///
/// ```
/// let s = mex_metrics::study::spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0], 0.95).unwrap();
/// assert!((s.rho.estimate - 0.8).abs() < 1e-12);
/// ```
pub fn spearman(x: &[f64], y: &[f64], confidence: f64) -> Result<Spearman> {
    check_confidence(confidence)?;
    check_len("x/y", x.len(), y.len())?;
    check_finite("x", x)?;
    check_finite("y", y)?;
    let n = x.len();
    if n < 4 {
        return Err(Error::Undefined { metric: "Spearman CI", reason: "needs at least 4 pairs" });
    }
    let (rx, _) = average_ranks(x);
    let (ry, _) = average_ranks(y);
    let m = (n as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - m) * (b - m);
        sxx += (a - m) * (a - m);
        syy += (b - m) * (b - m);
    }
    if !(sxx > 0.0 && syy > 0.0) {
        return Err(Error::Undefined { metric: "Spearman's rho", reason: "a variable is constant" });
    }
    let rho = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let nf = n as f64;
    let z = rho.atanh();
    let crit = norm_ppf((1.0 + confidence) / 2.0);
    let se = 1.0 / (nf - 3.0).sqrt();
    let (lo, hi) = ((z - crit * se).tanh(), (z + crit * se).tanh());
    let df = nf - 2.0;
    let p = if rho.abs() >= 1.0 {
        0.0
    } else {
        t_two_sided_p(rho * (df / ((1.0 + rho) * (1.0 - rho))).sqrt(), df)
    };
    Ok(Spearman { rho: EstimateCi { estimate: rho, ci_low: lo, ci_high: hi }, p_value: p, n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_with_ties() {
        let (r, t) = average_ranks(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(r, vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(t, vec![1, 1, 2]);
    }

    #[test]
    fn exact_distribution_sums_to_one_and_is_symmetric() {
        assert!((exact_sf(4, 5, 0.0) - 1.0).abs() < 1e-15);
        // P(U >= 20) = 1 / C(9, 4) = 1/126
        assert!((exact_sf(4, 5, 20.0) - 1.0 / 126.0).abs() < 1e-15);
        // symmetry: P(U >= k) = P(U <= mn - k) = 1 - P(U >= mn - k + 1)
        for k in 0..=20 {
            let a = exact_sf(4, 5, k as f64);
            let b = 1.0 - exact_sf(4, 5, (20 - k + 1) as f64);
            assert!((a - b).abs() < 1e-14);
        }
    }
}
