//! Multiple-comparison adjustment.

use crate::error::{Error, Result};

/// Benjamini-Hochberg adjusted p-values (false discovery rate, `statsmodels multipletests(...,
/// method="fdr_bh")`, R's `p.adjust(method = "BH")`): `p_adj(i) = min_{j >= i} p_(j) m / j` over
/// the sorted p-values, capped at 1. `None` entries (an indicator whose test was not computable)
/// stay `None` and do not count in `m`.
///
/// ```
/// let adj = mex_metrics::study::benjamini_hochberg(&[Some(0.01), Some(0.04), None, Some(0.03)]).unwrap();
/// // sorted 0.01, 0.03, 0.04 (m = 3): 0.03, min(0.045, 0.04), 0.04
/// assert_eq!(adj[2], None);
/// assert!((adj[0].unwrap() - 0.03).abs() < 1e-15);
/// assert!((adj[3].unwrap() - 0.04).abs() < 1e-15);
/// assert!((adj[1].unwrap() - 0.04).abs() < 1e-15);
/// ```
pub fn benjamini_hochberg(p: &[Option<f64>]) -> Result<Vec<Option<f64>>> {
    let mut idx: Vec<usize> = Vec::new();
    for (i, v) in p.iter().enumerate() {
        if let Some(v) = *v {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::InvalidParam {
                    name: "p-value",
                    value: v.to_string(),
                    reason: "must lie in [0, 1]",
                });
            }
            idx.push(i);
        }
    }
    let m = idx.len();
    let mut out = vec![None; p.len()];
    idx.sort_by(|&a, &b| p[a].unwrap_or(0.0).total_cmp(&p[b].unwrap_or(0.0)));
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let v = p[i].unwrap_or(1.0) * m as f64 / (rank + 1) as f64;
        running = running.min(v);
        out[i] = Some(running.min(1.0));
    }
    Ok(out)
}
