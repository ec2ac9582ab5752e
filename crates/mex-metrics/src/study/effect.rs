//! Group summaries and the standardised mean difference (Hedges' g) with its confidence interval.

use serde::{Deserialize, Serialize};

use super::dist::t_ppf;
use super::{check_confidence, EstimateCi};
use crate::error::{check_finite, Error, Result};

/// Size, mean and sample standard deviation of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (`ddof = 1`; NaN for a single value).
    pub sd: f64,
}

/// Size, mean and sample standard deviation (`ddof = 1`) of finite values.
pub fn describe(xs: &[f64]) -> Result<GroupSummary> {
    if xs.is_empty() {
        return Err(Error::Empty { what: "group values" });
    }
    check_finite("group values", xs)?;
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    Ok(GroupSummary { n, mean, sd })
}

/// Hedges' g of two independent groups with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HedgesG {
    /// Cohen's d: mean difference over the pooled standard deviation.
    pub d: f64,
    /// Hedges' g with its confidence interval.
    pub g: EstimateCi,
    /// Standard error of g used for the interval.
    pub se: f64,
    /// Degrees of freedom of the critical value, `n_x + n_y − 2`.
    pub df: f64,
}

/// Hedges' g of `x` against `y` (positive when `x` has the larger mean).
///
/// * `d = (mean_x − mean_y) / s_p` with the pooled SD `s_p² = ((n_x−1)s_x² + (n_y−1)s_y²) / (n_x+n_y−2)`;
/// * `g = d · (1 − 3 / (4(n_x+n_y) − 9))` (Hedges' small-sample correction, as pingouin's
///   `convert_effsize`);
/// * CI `g ± t_{(1+conf)/2, n_x+n_y−2} · SE` with the large-sample variance of Hedges & Olkin
///   (1985), `SE² = (n_x+n_y)/(n_x n_y) + g² / (2(n_x+n_y))`: pingouin's `compute_esci` and R's
///   `effsize::cohen.d(noncentral = FALSE)`.
///
/// Needs at least two values per group; [`Error::Undefined`] when both groups are constant.
///
/// ```
/// let g = mex_metrics::study::hedges_g(&[2.0, 3.0, 4.0], &[1.0, 2.0, 3.0], 0.95).unwrap();
/// // d = 1 / 1 = 1, g = 1 - 3 / 15 = 0.8
/// assert!((g.g.estimate - 0.8).abs() < 1e-12);
/// assert!(g.g.ci_low < 0.0 && g.g.ci_high > 1.6);
/// ```
pub fn hedges_g(x: &[f64], y: &[f64], confidence: f64) -> Result<HedgesG> {
    check_confidence(confidence)?;
    let (sx, sy) = (describe(x)?, describe(y)?);
    if sx.n < 2 || sy.n < 2 {
        return Err(Error::Undefined { metric: "Hedges' g", reason: "needs two values per group" });
    }
    let (nx, ny) = (sx.n as f64, sy.n as f64);
    let df = nx + ny - 2.0;
    let pooled = (((nx - 1.0) * sx.sd * sx.sd + (ny - 1.0) * sy.sd * sy.sd) / df).sqrt();
    if !(pooled > 0.0) {
        return Err(Error::Undefined { metric: "Hedges' g", reason: "both groups are constant" });
    }
    let d = (sx.mean - sy.mean) / pooled;
    let g = d * (1.0 - 3.0 / (4.0 * (nx + ny) - 9.0));
    let se = ((nx + ny) / (nx * ny) + g * g / (2.0 * (nx + ny))).sqrt();
    let crit = t_ppf((1.0 + confidence) / 2.0, df);
    Ok(HedgesG { d, g: EstimateCi { estimate: g, ci_low: g - crit * se, ci_high: g + crit * se }, se, df })
}
