//! Eye aspect ratio and blink detection.
//!
//! **EAR** (Soukupová & Čech 2016): for an eye's six points `p1..p6` (68-point indices 36-41 for
//! the image-left eye, 42-47 for the image-right eye),
//! `EAR = (|p2 − p6| + |p3 − p5|) / (2 |p1 − p4|)`. Open eyes read about 0.25-0.35 (person
//! specific), closed eyes near 0. The per-frame value used for blinks is the mean of both eyes.
//!
//! Two blink detectors run on the EAR series of the frames with a face (frames without a face
//! are left out; a gap in the face track splits the series into segments that no blink spans):
//!
//! * [`detect_blinks_adaptive`] (the default): the series is smoothed with a centred moving
//!   average of `w = 2 ⌊smooth_s · fps / 2⌋ + 1` frames; the baseline `b` is its median over the
//!   recording and `s` its scaled MAD (`1.4826 · median |EAR − b|`). Frames below
//!   `b − max(threshold_mads · s, min_relative_drop · b)` form candidate runs; a run's closure
//!   frame is its minimum `m`, the blink's depth is `b − EAR(m)`, and its onset and offset are
//!   the first and last frames of the contiguous stretch around `m` whose EAR lies below
//!   `b − edge_fraction · depth` (so edges are where the lid has travelled `edge_fraction` of the
//!   way to its deepest point). Blinks longer than `max_duration_s` (eye closures) are dropped;
//!   a blink is complete when its depth is at least `complete_fraction · b`.
//! * [`detect_blinks_opendbm`]: OpenDBM's `movement/eye_blink.py`: the peaks of `−EAR` (the raw
//!   two-eye mean, no smoothing) with SciPy prominence at least 0.1, found by
//!   [`find_peaks_prominence`] on the face frames joined end to end
//!   (OpenDBM drops the frames without a face). Onset and offset are SciPy's left and right bases.

use crate::geometry::check_68;
use crate::peaks::find_peaks_prominence;
use crate::stats::median_mad;
use crate::{Error, Result};
use mex_core::{Landmarks, Point2};
use serde::{Deserialize, Serialize};

/// EAR of one eye from its six points in the 68-point order (corner, two upper-lid points,
/// corner, two lower-lid points). `None` when the eye's width is zero.
///
/// ```
/// use mex_core::Point2;
/// use mex_indicators::eye_aspect_ratio;
/// // A 30 px wide eye, 9 px open: EAR = (9 + 9) / (2 · 30) = 0.3.
/// let p = [(0.0, 0.0), (10.0, -4.5), (20.0, -4.5), (30.0, 0.0), (20.0, 4.5), (10.0, 4.5)]
///     .map(|(x, y)| Point2::new(x, y));
/// assert!((eye_aspect_ratio(&p).unwrap() - 0.3).abs() < 1e-9);
/// ```
pub fn eye_aspect_ratio(p: &[Point2; 6]) -> Option<f64> {
    let d = |a: Point2, b: Point2| (a.x as f64 - b.x as f64).hypot(a.y as f64 - b.y as f64);
    let w = d(p[0], p[3]);
    if !(w > 0.0) {
        return None;
    }
    Some((d(p[1], p[5]) + d(p[2], p[4])) / (2.0 * w))
}

/// EAR of both eyes of a 68-point set: `(image-left eye 36-41, image-right eye 42-47)`.
///
/// ```
/// use mex_core::{LandmarkScheme, Landmarks, Point2};
/// use mex_indicators::ear_68;
/// let mut pts = vec![Point2::new(0.0, 0.0); 68];
/// let eye = [(0.0, 0.0), (10.0, -3.0), (20.0, -3.0), (30.0, 0.0), (20.0, 3.0), (10.0, 3.0)];
/// for (k, (x, y)) in eye.iter().enumerate() {
///     pts[36 + k] = Point2::new(*x, *y + 100.0);
///     pts[42 + k] = Point2::new(*x + 60.0, *y + 100.0);
/// }
/// let (l, r) = ear_68(&Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap()).unwrap();
/// assert!((l - 0.2).abs() < 1e-6 && (r - 0.2).abs() < 1e-6);
/// ```
pub fn ear_68(lm: &Landmarks) -> Result<(f64, f64)> {
    check_68(lm, 0)?;
    let eye = |i: usize| -> Result<f64> {
        let p = [
            lm.points[i],
            lm.points[i + 1],
            lm.points[i + 2],
            lm.points[i + 3],
            lm.points[i + 4],
            lm.points[i + 5],
        ];
        eye_aspect_ratio(&p).ok_or(Error::DegenerateLandmarks { frame: 0, interocular: 0.0 })
    };
    Ok((eye(36)?, eye(42)?))
}

/// Settings of both blink detectors (see the module docs for the definitions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlinkConfig {
    /// Width of the centred moving average applied before the adaptive detector, seconds
    /// (`w = 2 ⌊smooth_s · fps / 2⌋ + 1` frames; 1 frame, i.e. none, at 30 fps).
    pub smooth_s: f64,
    /// Detection threshold below the baseline in scaled MADs of the EAR.
    pub threshold_mads: f64,
    /// Smallest drop below the baseline that can be a blink, as a fraction of the baseline.
    pub min_relative_drop: f64,
    /// Fraction of a blink's depth at which its onset and offset are placed.
    pub edge_fraction: f64,
    /// Longer events (onset to offset) are eye closures, not blinks, seconds.
    pub max_duration_s: f64,
    /// A blink is complete when its depth is at least this fraction of the baseline EAR.
    pub complete_fraction: f64,
    /// Prominence of OpenDBM's detector (EAR units).
    pub opendbm_prominence: f64,
}

impl Default for BlinkConfig {
    fn default() -> Self {
        Self {
            smooth_s: 0.04,
            threshold_mads: 4.0,
            min_relative_drop: 0.15,
            edge_fraction: 0.25,
            max_duration_s: 1.0,
            complete_fraction: 0.6,
            opendbm_prominence: 0.1,
        }
    }
}

impl BlinkConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if !(nonneg(self.smooth_s) && self.smooth_s <= 1.0) {
            return Err(Error::param("blinks.smooth_s", self.smooth_s, "must be in [0, 1] s"));
        }
        if !nonneg(self.threshold_mads) {
            return Err(Error::param("blinks.threshold_mads", self.threshold_mads, "must be >= 0"));
        }
        if !(self.min_relative_drop > 0.0 && self.min_relative_drop < 1.0) {
            return Err(Error::param(
                "blinks.min_relative_drop",
                self.min_relative_drop,
                "must be in (0, 1)",
            ));
        }
        if !(self.edge_fraction > 0.0 && self.edge_fraction < 1.0) {
            return Err(Error::param("blinks.edge_fraction", self.edge_fraction, "must be in (0, 1)"));
        }
        if !(self.max_duration_s > 0.0 && self.max_duration_s.is_finite()) {
            return Err(Error::param("blinks.max_duration_s", self.max_duration_s, "must be positive"));
        }
        if !(self.complete_fraction > 0.0 && self.complete_fraction <= 1.0) {
            return Err(Error::param(
                "blinks.complete_fraction",
                self.complete_fraction,
                "must be in (0, 1]",
            ));
        }
        if !nonneg(self.opendbm_prominence) {
            return Err(Error::param("blinks.opendbm_prominence", self.opendbm_prominence, "must be >= 0"));
        }
        Ok(())
    }
}

/// One EAR sample of a frame with a face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarSample {
    /// Frame index in the recording (every frame counts, with or without a face).
    pub frame: usize,
    /// Timestamp, seconds.
    pub time_s: f64,
    /// EAR (mean of both eyes).
    pub ear: f64,
}

/// A detected blink.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blink {
    /// First frame of the blink (recording frame index).
    pub onset_frame: usize,
    /// Frame of the deepest closure (the EAR minimum).
    pub closure_frame: usize,
    /// Last frame of the blink.
    pub offset_frame: usize,
    /// Onset time, seconds.
    pub onset_s: f64,
    /// Closure time, seconds.
    pub closure_s: f64,
    /// Offset time, seconds.
    pub offset_s: f64,
    /// Duration `offset_s − onset_s` plus one frame period (frames are counted inclusively).
    pub duration_s: f64,
    /// Depth: baseline EAR minus the EAR at closure (EAR units; for the OpenDBM detector, the
    /// SciPy prominence).
    pub amplitude: f64,
    /// Depth as a fraction of the baseline EAR.
    pub relative_amplitude: f64,
    /// Whether the depth reaches `complete_fraction` of the baseline.
    pub complete: bool,
}

/// Splits samples into runs of consecutive recording frames.
fn segments(s: &[EarSample]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=s.len() {
        if i == s.len() || s[i].frame != s[i - 1].frame + 1 {
            if i > start {
                out.push(start..i);
            }
            start = i;
        }
    }
    out
}

/// Centred moving average of width `w` (odd) within each segment, truncated at segment ends.
fn smooth(s: &[EarSample], w: usize) -> Vec<f64> {
    let h = w / 2;
    let mut out = vec![0.0; s.len()];
    for seg in segments(s) {
        for i in seg.clone() {
            let (a, b) = (i.saturating_sub(h).max(seg.start), (i + h + 1).min(seg.end));
            out[i] = s[a..b].iter().map(|v| v.ear).sum::<f64>() / (b - a) as f64;
        }
    }
    out
}

fn frame_period(fps: f64) -> f64 {
    if fps > 0.0 {
        1.0 / fps
    } else {
        0.0
    }
}

fn check_inputs(samples: &[EarSample], fps: f64, cfg: &BlinkConfig) -> Result<()> {
    cfg.validate()?;
    if !(fps.is_finite() && fps > 0.0) {
        return Err(Error::param("fps", fps, "must be positive and finite"));
    }
    if let Some(s) = samples.iter().find(|s| !(s.ear.is_finite() && s.time_s.is_finite())) {
        return Err(Error::param("ear", s.ear, "EAR samples must be finite"));
    }
    for w in samples.windows(2) {
        if w[1].frame <= w[0].frame || w[1].time_s <= w[0].time_s {
            return Err(Error::TimeNotIncreasing {
                frame: w[1].frame,
                time_s: w[1].time_s,
                previous_s: w[0].time_s,
            });
        }
    }
    Ok(())
}

/// The adaptive detector's baseline and scaled MAD on the smoothed series; `None` when empty.
pub fn ear_baseline(samples: &[EarSample], fps: f64, cfg: &BlinkConfig) -> Option<(f64, f64)> {
    median_mad(&smoothed(samples, fps, cfg))
}

/// The EAR series smoothed over `cfg.smooth_s` (an odd number of frames at `fps`).
fn smoothed(samples: &[EarSample], fps: f64, cfg: &BlinkConfig) -> Vec<f64> {
    smooth(samples, 2 * ((cfg.smooth_s * fps / 2.0).floor().max(0.0) as usize) + 1)
}

/// Detector (a): EAR below a per-recording robust baseline (module docs). `fps` is the nominal
/// frame rate (smoothing width, one frame period in durations).
///
/// ```
/// use mex_indicators::{detect_blinks_adaptive, BlinkConfig, EarSample};
/// // 30 fps, resting EAR 0.3, one blink closing to 0.05 at frame 50.
/// let ear = |i: usize| match i {
///     48 => 0.24, 49 => 0.12, 50 => 0.05, 51 => 0.15, 52 => 0.25,
///     _ => 0.3 + 0.002 * ((i % 3) as f64 - 1.0),
/// };
/// let s: Vec<EarSample> =
///     (0..100).map(|i| EarSample { frame: i, time_s: i as f64 / 30.0, ear: ear(i) }).collect();
/// let b = detect_blinks_adaptive(&s, 30.0, &BlinkConfig::default()).unwrap();
/// assert_eq!(b.len(), 1);
/// assert_eq!((b[0].onset_frame, b[0].closure_frame, b[0].offset_frame), (49, 50, 51));
/// assert!(b[0].complete);
/// ```
pub fn detect_blinks_adaptive(samples: &[EarSample], fps: f64, cfg: &BlinkConfig) -> Result<Vec<Blink>> {
    check_inputs(samples, fps, cfg)?;
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let e = smoothed(samples, fps, cfg);
    let Some((b, s)) = median_mad(&e) else { return Ok(Vec::new()) };
    if !(b > 0.0) {
        return Ok(Vec::new());
    }
    let thr = b - (cfg.threshold_mads * s).max(cfg.min_relative_drop * b);
    let dt = frame_period(fps);
    let mut out: Vec<Blink> = Vec::new();
    for seg in segments(samples) {
        let mut i = seg.start;
        while i < seg.end {
            if e[i] >= thr {
                i += 1;
                continue;
            }
            // Candidate run [i, j).
            let mut j = i;
            while j < seg.end && e[j] < thr {
                j += 1;
            }
            let m = (i..j).fold(i, |m, k| if e[k] < e[m] { k } else { m });
            let depth = b - e[m];
            let level = b - cfg.edge_fraction * depth;
            let mut on = m;
            while on > seg.start && e[on - 1] < level {
                on -= 1;
            }
            let mut off = m;
            while off + 1 < seg.end && e[off + 1] < level {
                off += 1;
            }
            i = j.max(off + 1);
            let blink = Blink {
                onset_frame: samples[on].frame,
                closure_frame: samples[m].frame,
                offset_frame: samples[off].frame,
                onset_s: samples[on].time_s,
                closure_s: samples[m].time_s,
                offset_s: samples[off].time_s,
                duration_s: samples[off].time_s - samples[on].time_s + dt,
                amplitude: depth,
                relative_amplitude: depth / b,
                complete: depth >= cfg.complete_fraction * b,
            };
            // Two runs inside one edge stretch are one blink (keep the deeper closure).
            if let Some(last) = out.last_mut() {
                if blink.onset_frame <= last.offset_frame {
                    if blink.amplitude > last.amplitude {
                        *last = blink;
                    }
                    continue;
                }
            }
            out.push(blink);
        }
    }
    out.retain(|bl| bl.duration_s <= cfg.max_duration_s);
    Ok(out)
}

/// Detector (b): OpenDBM's peaks of `−EAR` with prominence `cfg.opendbm_prominence` (module
/// docs). Depth is the SciPy prominence; `relative_amplitude` and `complete` use the median EAR
/// of the recording as the baseline.
///
/// ```
/// use mex_indicators::{detect_blinks_opendbm, BlinkConfig, EarSample};
/// let ear = [0.3, 0.3, 0.25, 0.1, 0.28, 0.3, 0.3, 0.22, 0.3, 0.3];
/// let s: Vec<EarSample> = ear
///     .iter()
///     .enumerate()
///     .map(|(i, &e)| EarSample { frame: i, time_s: i as f64 / 30.0, ear: e })
///     .collect();
/// let b = detect_blinks_opendbm(&s, 30.0, &BlinkConfig::default()).unwrap();
/// // Only the dip at frame 3 (prominence 0.2) passes; the one at 7 (0.08) does not.
/// assert_eq!(b.len(), 1);
/// assert_eq!(b[0].closure_frame, 3);
/// ```
pub fn detect_blinks_opendbm(samples: &[EarSample], fps: f64, cfg: &BlinkConfig) -> Result<Vec<Blink>> {
    check_inputs(samples, fps, cfg)?;
    let neg: Vec<f64> = samples.iter().map(|s| -s.ear).collect();
    let raw: Vec<f64> = samples.iter().map(|s| s.ear).collect();
    let b = crate::stats::median(&raw).unwrap_or(0.0);
    let dt = frame_period(fps);
    Ok(find_peaks_prominence(&neg, cfg.opendbm_prominence)
        .into_iter()
        .map(|p| {
            let (on, m, off) = (samples[p.left_base], samples[p.index], samples[p.right_base]);
            let rel = if b > 0.0 { p.prominence / b } else { 0.0 };
            Blink {
                onset_frame: on.frame,
                closure_frame: m.frame,
                offset_frame: off.frame,
                onset_s: on.time_s,
                closure_s: m.time_s,
                offset_s: off.time_s,
                duration_s: off.time_s - on.time_s + dt,
                amplitude: p.prominence,
                relative_amplitude: rel,
                complete: rel >= cfg.complete_fraction,
            }
        })
        .collect())
}

/// Intervals between the closures of consecutive blinks of the same face segment (no face gap
/// between them), seconds. `frames_with_face(a, b)` answers whether every frame in `a..=b` had
/// a face.
pub(crate) fn inter_blink_intervals(blinks: &[Blink], gap_free: impl Fn(usize, usize) -> bool) -> Vec<f64> {
    blinks
        .windows(2)
        .filter(|w| gap_free(w[0].closure_frame, w[1].closure_frame))
        .map(|w| w[1].closure_s - w[0].closure_s)
        .collect()
}
