//! SciPy's `scipy.signal.find_peaks` restricted to the `prominence` condition, reimplemented
//! line for line (`_local_maxima_1d` and `_peak_prominences` of SciPy 1.x, no `wlen`).
//!
//! Peaks are local maxima, plateaus included (a flat top's peak is its middle sample,
//! rounded down); a sample at either end of the signal is never a peak. A peak's prominence is
//! its height above the higher of its two bases, each base being the lowest sample between the
//! peak and the nearest strictly higher sample on that side (or the signal's end).

/// One peak with its prominence and bases (indices into the signal).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Peak {
    /// Index of the peak (the middle of a plateau, rounded down).
    pub index: usize,
    /// Prominence (signal units).
    pub prominence: f64,
    /// SciPy's `left_bases`: index of the left base.
    pub left_base: usize,
    /// SciPy's `right_bases`: index of the right base.
    pub right_base: usize,
}

/// Local maxima as SciPy's `_local_maxima_1d`: the midpoint of each (possibly flat) maximum.
fn local_maxima(x: &[f64]) -> Vec<usize> {
    let mut out = Vec::new();
    if x.len() < 3 {
        return out;
    }
    let i_max = x.len() - 1;
    let mut i = 1;
    while i < i_max {
        if x[i - 1] < x[i] {
            let mut ahead = i + 1;
            while ahead < i_max && x[ahead] == x[i] {
                ahead += 1;
            }
            if x[ahead] < x[i] {
                out.push((i + ahead - 1) / 2);
                i = ahead;
            }
        }
        i += 1;
    }
    out
}

/// Every peak of `x` with its prominence, as `scipy.signal.find_peaks(x)` followed by
/// `scipy.signal.peak_prominences(x, peaks)`. NaN samples are not supported (filter first).
pub fn peak_prominences(x: &[f64]) -> Vec<Peak> {
    local_maxima(x)
        .into_iter()
        .map(|peak| {
            let xp = x[peak];
            let (mut left_base, mut left_min) = (peak, xp);
            let mut i = peak as isize;
            while i >= 0 && x[i as usize] <= xp {
                if x[i as usize] < left_min {
                    left_min = x[i as usize];
                    left_base = i as usize;
                }
                i -= 1;
            }
            let (mut right_base, mut right_min) = (peak, xp);
            let mut j = peak;
            while j < x.len() && x[j] <= xp {
                if x[j] < right_min {
                    right_min = x[j];
                    right_base = j;
                }
                j += 1;
            }
            Peak { index: peak, prominence: xp - left_min.max(right_min), left_base, right_base }
        })
        .collect()
}

/// `scipy.signal.find_peaks(x, prominence=min_prominence)`: the peaks whose prominence is at
/// least `min_prominence`, in index order.
///
/// ```
/// use mex_indicators::find_peaks_prominence;
/// // scipy.signal.find_peaks([0, 2, 1, 3, 0, 1, 1, 0], prominence=1.0) -> peaks [1, 3, 5]
/// // (the plateau 5-6 peaks at its middle rounded down)
/// let x = [0.0, 2.0, 1.0, 3.0, 0.0, 1.0, 1.0, 0.0];
/// let p = find_peaks_prominence(&x, 1.0);
/// assert_eq!(p.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, 3, 5]);
/// assert_eq!(p[1].prominence, 3.0);
/// ```
pub fn find_peaks_prominence(x: &[f64], min_prominence: f64) -> Vec<Peak> {
    peak_prominences(x).into_iter().filter(|p| min_prominence <= p.prominence).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateaus_edges_and_bases_by_hand() {
        // Plateau 2..=4 at height 5: midpoint 3. Ends are never peaks.
        let x = [9.0, 1.0, 5.0, 5.0, 5.0, 2.0, 4.0, 3.0, 9.0];
        let p = peak_prominences(&x);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].index, 3);
        // Left: min 1 at index 1 (9 at index 0 stops the walk); right: min 2 at index 5 (9 at
        // index 8 stops it). Prominence 5 - max(1, 2) = 3.
        assert_eq!((p[0].left_base, p[0].right_base), (1, 5));
        assert_eq!(p[0].prominence, 3.0);
        assert_eq!(p[1].index, 6);
        // Left base 5 (2; 5 at index 4 stops), right base 7 (3; 9 stops): 4 - max(2, 3) = 1.
        assert_eq!((p[1].left_base, p[1].right_base), (5, 7));
        assert_eq!(p[1].prominence, 1.0);
        // A plateau that runs into the end is not a peak.
        assert!(peak_prominences(&[0.0, 1.0, 1.0]).is_empty());
        assert!(peak_prominences(&[1.0, 2.0]).is_empty());
    }
}
