//! Regional facial activity and expressivity.
//!
//! **Regional activity** of region `r` at frame `t`:
//! `a_r(t) = m_r(t) / (Δt · d)`, where `m_r(t)` is the caller's head-motion-compensated flow
//! magnitude averaged over the region between frames `t − 1` and `t` (pixels per frame), `Δt`
//! the time since the previous frame (seconds; `1 / fps` for the first frame) and `d` the
//! inter-ocular distance in the pixels the flow was measured in. Units: inter-ocular distances
//! per second, so recordings of any resolution and frame rate compare.
//!
//! **Noise floor** of a region, estimated from the recording itself ([`noise_floor`]):
//! `floor_r = median_t a_r(t) + k · 1.4826 · MAD_t a_r(t)` (`k = noise_floor_mads`, 3 by
//! default). It assumes the region is at rest in at least half of the frames, so that the
//! median and MAD describe the measurement noise (flow noise, landmark jitter, compression);
//! when the face moves more than half of the time the floor is too high and activity is
//! under-counted.
//!
//! **Fraction active**: the fraction of face frames with `a_r(t) > floor_r`.
//!
//! **Composite expressivity score** ([`expressivity_score`]):
//! `E = (1 / R) Σ_r (1 / T) Σ_t max(a_r(t) − floor_r, 0)`, the mean over the `R = 11` regions
//! of the mean activity above the region's noise floor, over the `T` face frames with motion
//! (inter-ocular distances per second). It is 0 for a face that never moves beyond its noise and
//! grows with both the amplitude and the frequency of movements.

use crate::regions::{Region, N_REGIONS};
use crate::stats::median_mad;
use serde::{Deserialize, Serialize};

/// Regional motion of one frame, measured by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegionMotion {
    /// Head-motion-compensated flow magnitude averaged over each region between the previous
    /// frame and this one, pixels per frame, in [`Region::ALL`] order.
    pub px_per_frame: [f64; N_REGIONS],
    /// Inter-ocular distance in the pixels the flow was measured in (for flow on aligned crops,
    /// the template's inter-ocular distance in the crop); `None`: the frame's landmarks' own.
    pub interocular_px: Option<f64>,
}

impl RegionMotion {
    /// Motion measured on the landmarks' own pixels.
    pub fn new(px_per_frame: [f64; N_REGIONS]) -> Self {
        Self { px_per_frame, interocular_px: None }
    }

    /// The energy (sum of squared motion) of the regions on one image side.
    pub fn side_energy(&self, side: crate::Side) -> f64 {
        Region::ALL.iter().filter(|r| r.side() == side).map(|r| self.px_per_frame[r.index()].powi(2)).sum()
    }
}

/// The noise floor `median + k · 1.4826 · MAD` of a region's activity series; `None` when empty.
///
/// ```
/// use mex_indicators::noise_floor;
/// // Mostly noise around 0.1 with one movement: the floor stays near the noise.
/// let a = [0.1, 0.12, 0.08, 0.1, 0.11, 0.09, 2.0, 0.1];
/// let f = noise_floor(&a, 3.0).unwrap();
/// assert!(f > 0.1 && f < 0.2);
/// ```
pub fn noise_floor(activity: &[f64], k: f64) -> Option<f64> {
    let (m, s) = median_mad(activity)?;
    Some(m + k * s)
}

/// The composite expressivity score of per-region activity series (module docs), with each
/// region's floor; regions with an empty series are skipped. `None` when every series is empty.
///
/// ```
/// use mex_indicators::expressivity_score;
/// let quiet = vec![0.1; 10];
/// let mut moving = vec![0.1; 10];
/// moving[5] = 1.1;
/// let s = expressivity_score(&[&quiet, &moving], &[0.1, 0.1]).unwrap();
/// // Region 1 exceeds its floor by 1.0 in one of ten frames: mean excess 0.1; region 0: 0.
/// assert!((s - 0.05).abs() < 1e-12);
/// ```
pub fn expressivity_score(series: &[&[f64]], floors: &[f64]) -> Option<f64> {
    let per: Vec<f64> = series
        .iter()
        .zip(floors)
        .filter(|(s, _)| !s.is_empty())
        .map(|(s, f)| s.iter().map(|a| (a - f).max(0.0)).sum::<f64>() / s.len() as f64)
        .collect();
    (!per.is_empty()).then(|| per.iter().sum::<f64>() / per.len() as f64)
}
