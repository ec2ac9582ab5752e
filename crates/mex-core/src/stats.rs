//! Order statistics shared by the stages: quantiles with NumPy's default (`linear`)
//! interpolation, the median, and the median absolute deviation.

/// Quantile of sorted values with linear interpolation between order statistics (NumPy's
/// default `method="linear"`): position `q (n - 1)`, `q` clamped to `[0, 1]`. NaN when empty.
///
/// ```
/// // numpy.quantile([1, 1, 3, 4, 5], 0.9) = 4.6
/// assert!((mex_core::stats::quantile_sorted(&[1.0, 1.0, 3.0, 4.0, 5.0], 0.9) - 4.6).abs() < 1e-12);
/// ```
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let f = pos - lo as f64;
    s[lo] + f * (s[hi] - s[lo])
}

/// Quantile of unsorted values (see [`quantile_sorted`]); `None` when empty.
pub fn quantile(x: &[f64], q: f64) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    Some(quantile_sorted(&s, q))
}

/// Median; `None` when empty.
pub fn median(x: &[f64]) -> Option<f64> {
    quantile(x, 0.5)
}

/// Median and scaled median absolute deviation (`1.4826 · median |x − median|`, a consistent
/// estimator of the standard deviation under normality). `None` when empty.
pub fn median_mad(x: &[f64]) -> Option<(f64, f64)> {
    let m = median(x)?;
    let dev: Vec<f64> = x.iter().map(|v| (v - m).abs()).collect();
    Some((m, 1.4826 * median(&dev)?))
}
