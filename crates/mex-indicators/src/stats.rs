//! Small statistics over `f64` slices (NaN-free inputs; callers filter); the order statistics
//! are `mex_core::stats`'.

/// Mean; `None` when empty.
pub(crate) fn mean(x: &[f64]) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    Some(x.iter().sum::<f64>() / x.len() as f64)
}

/// Sample standard deviation (n - 1); `None` below two values.
pub(crate) fn sd(x: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let m = mean(x)?;
    Some((x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt())
}

pub(crate) use mex_core::stats::{median, median_mad, quantile_sorted};

#[cfg(test)]
mod tests {
    use super::*;
    use mex_core::stats::quantile;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile([3, 1, 4, 1, 5], [0.1, 0.5, 0.9]) = [1.0, 3.0, 4.6]
        let x = [3.0, 1.0, 4.0, 1.0, 5.0];
        assert!((quantile(&x, 0.1).unwrap() - 1.0).abs() < 1e-12);
        assert!((quantile(&x, 0.5).unwrap() - 3.0).abs() < 1e-12);
        assert!((quantile(&x, 0.9).unwrap() - 4.6).abs() < 1e-12);
        let (m, s) = median_mad(&x).unwrap();
        // |x - 3| = [0, 2, 1, 2, 2], median 2.
        assert_eq!(m, 3.0);
        assert!((s - 2.0 * 1.4826).abs() < 1e-12);
        assert!((sd(&[1.0, 2.0, 3.0, 4.0]).unwrap() - 1.2909944487358056).abs() < 1e-12);
        assert!(mean(&[]).is_none() && sd(&[1.0]).is_none());
    }
}
