//! Streaming spotting of facial movements in long videos.
//!
//! Frames are pushed one at a time (or in batches, which computes the flows in parallel). For
//! every frame `t >= k` the spotter computes the flow between frames `t - k` and `t`, removes
//! head motion, and takes the mean flow magnitude over the region of interest: the per-frame
//! motion signal. The signal is smoothed by a centred moving average; a frame is *active* when
//! its smoothed signal exceeds `max(min_signal, median + threshold · 1.4826 · MAD)` of the last
//! `window` smoothed values (a robust running baseline). A run of active frames `[a, b]` becomes
//! an interval with `onset = a - 1`, `offset = b - (k - 1)` (the signal of a movement that ends at
//! frame `f` lasts until `f + k - 1`), apex at the largest smoothed signal, classified as a
//! micro-movement when it lasts at most `micro_max_s` seconds.
//!
//! Memory is bounded by `k + 1` frames and `window` signal values, whatever the video length.

use crate::error::{invalid, Result};
use crate::features::remove_global_similarity_into;
use crate::{DisConfig, FlowConfig, FlowEstimator, FlowField, GrayF32};
use mex_core::{BBox, Interval, Point2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How head (global) motion is removed from each flow before measuring.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadMotion {
    /// No compensation.
    None,
    /// Subtract the mean flow of a `(2 half + 1)²` patch (SOFTNet: 11 x 11 around the nose).
    Patch {
        /// Patch centre x.
        x: usize,
        /// Patch centre y.
        y: usize,
        /// Half side.
        half: usize,
    },
    /// Remove a least-squares similarity fitted on a grid of every `step`-th pixel.
    Similarity {
        /// Grid step in pixels.
        step: usize,
    },
}

/// Spotter parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpotterConfig {
    /// Flow estimator (default DIS ultrafast, for speed).
    pub flow: FlowConfig,
    /// Frame distance of the flow (`t - k` to `t`).
    pub k: usize,
    /// Frames per second (for the micro / macro duration rule).
    pub fps: f64,
    /// Region measured (default: the whole crop).
    pub roi: Option<BBox>,
    /// Head-motion compensation.
    pub head_motion: HeadMotion,
    /// Length of the centred moving average (odd; 1 disables smoothing).
    pub smooth: usize,
    /// Frames in the running baseline.
    pub window: usize,
    /// Robust z threshold above the baseline.
    pub threshold: f32,
    /// Absolute floor of the threshold (pixels of mean magnitude).
    pub min_signal: f32,
    /// Longest micro-movement in seconds (MEGC: 0.5 s).
    pub micro_max_s: f64,
    /// Shortest interval kept, in frames.
    pub min_frames: usize,
}

impl Default for SpotterConfig {
    fn default() -> Self {
        Self {
            flow: FlowConfig::Dis(DisConfig::ultrafast()),
            k: 3,
            fps: 30.0,
            roi: None,
            head_motion: HeadMotion::Similarity { step: 4 },
            smooth: 3,
            window: 300,
            threshold: 4.0,
            min_signal: 0.05,
            micro_max_s: 0.5,
            min_frames: 2,
        }
    }
}

impl SpotterConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(invalid("k", self.k, "must be >= 1"));
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return Err(invalid("fps", self.fps, "must be finite and > 0"));
        }
        if self.smooth == 0 || self.smooth.is_multiple_of(2) {
            return Err(invalid("smooth", self.smooth, "must be odd"));
        }
        if self.window < 8 {
            return Err(invalid("window", self.window, "must be >= 8"));
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(invalid("threshold", self.threshold, "must be finite and >= 0"));
        }
        if !(self.min_signal.is_finite() && self.min_signal >= 0.0) {
            return Err(invalid("min_signal", self.min_signal, "must be finite and >= 0"));
        }
        if !(self.micro_max_s.is_finite() && self.micro_max_s > 0.0) {
            return Err(invalid("micro_max_s", self.micro_max_s, "must be finite and > 0"));
        }
        if let HeadMotion::Similarity { step: 0 } = self.head_motion {
            return Err(invalid("head_motion.step", 0, "must be >= 1"));
        }
        Ok(())
    }

    /// Validates and builds a spotter.
    pub fn build(&self) -> Result<Spotter> {
        self.validate()?;
        Ok(Spotter {
            est: self.flow.build()?,
            cfg: self.clone(),
            frames: VecDeque::with_capacity(self.k + 1),
            next_index: 0,
            raw: VecDeque::with_capacity(self.smooth),
            history: VecDeque::with_capacity(self.window),
            scratch: Scratch::default(),
            run: None,
            events: Vec::new(),
            extra: Vec::new(),
        })
    }
}

/// Micro- or macro-movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MovementKind {
    /// At most `micro_max_s` seconds.
    Micro,
    /// Longer.
    Macro,
}

/// A spotted movement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spotted {
    /// Onset, apex and offset frame indices.
    pub interval: Interval,
    /// Micro or macro by duration.
    pub kind: MovementKind,
    /// Largest smoothed signal in the interval.
    pub peak: f32,
}

#[derive(Debug)]
struct Scratch {
    flow: FlowField,
    comp: FlowField,
    src: Vec<Point2>,
    dst: Vec<Point2>,
    sorted: Vec<f32>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            flow: FlowField::zeros(0, 0),
            comp: FlowField::zeros(0, 0),
            src: Vec::new(),
            dst: Vec::new(),
            sorted: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    peak_at: usize,
    peak: f32,
}

impl Spotter {
    /// Inactive frames that still join two active runs: the signal of a movement dips between
    /// its rise and its fall (displacement relative to `t - k` is flat at the apex).
    fn merge_gap(&self) -> usize {
        self.cfg.k + self.cfg.smooth
    }
}

/// The streaming spotter (see the module docs). Build it with [`SpotterConfig::build`].
pub struct Spotter {
    cfg: SpotterConfig,
    est: Box<dyn FlowEstimator + Send + Sync>,
    frames: VecDeque<GrayF32>,
    next_index: usize,
    /// Raw signal values awaiting smoothing, with their frame index.
    raw: VecDeque<(usize, f32)>,
    /// Smoothed values of the baseline window.
    history: VecDeque<f32>,
    scratch: Scratch,
    run: Option<Run>,
    events: Vec<Spotted>,
    /// Extra estimators for parallel batches.
    extra: Vec<Box<dyn FlowEstimator + Send + Sync>>,
}

impl std::fmt::Debug for Spotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spotter").field("cfg", &self.cfg).field("next_index", &self.next_index).finish()
    }
}

/// Motion signal of one flow: mean magnitude over the ROI after head-motion compensation.
fn motion_signal(
    flow: &FlowField,
    cfg: &SpotterConfig,
    comp: &mut FlowField,
    src: &mut Vec<Point2>,
    dst: &mut Vec<Point2>,
) -> Result<f32> {
    let f: &FlowField = match cfg.head_motion {
        HeadMotion::None => flow,
        HeadMotion::Patch { x, y, half } => {
            *comp = crate::features::subtract_patch_mean(flow, x, y, half)?;
            comp
        }
        HeadMotion::Similarity { step } => {
            remove_global_similarity_into(flow, cfg.roi.as_ref(), step, src, dst, comp)?;
            comp
        }
    };
    let (w, h) = f.size();
    let (x0, y0, x1, y1) = match &cfg.roi {
        None => (0, 0, w, h),
        Some(b) => {
            let c = |v: f32, n: usize| (v.max(0.0).round() as usize).min(n);
            (c(b.x0, w), c(b.y0, h), c(b.x1, w), c(b.y1, h))
        }
    };
    if x1 <= x0 || y1 <= y0 {
        return Err(invalid("roi", format!("{:?}", cfg.roi), "has no pixels inside the frame"));
    }
    let mut s = 0.0f64;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = y * w + x;
            s += f64::from(f.u()[i].hypot(f.v()[i]));
        }
    }
    Ok((s / ((x1 - x0) * (y1 - y0)) as f64) as f32)
}

impl Spotter {
    /// The configuration.
    pub fn config(&self) -> &SpotterConfig {
        &self.cfg
    }

    /// Number of frames pushed so far.
    pub fn frames_seen(&self) -> usize {
        self.next_index
    }

    /// Pushes the next frame; returns its raw motion signal (`None` for the first `k` frames).
    pub fn push(&mut self, frame: GrayF32) -> Result<Option<f32>> {
        let t = self.next_index;
        let sig = if self.frames.len() == self.cfg.k {
            let prev = &self.frames[0];
            self.est.estimate_into(prev, &frame, &mut self.scratch.flow)?;
            let sc = &mut self.scratch;
            Some(motion_signal(&sc.flow, &self.cfg, &mut sc.comp, &mut sc.src, &mut sc.dst)?)
        } else {
            if let Some(f0) = self.frames.front() {
                if f0.dimensions() != frame.dimensions() {
                    let (a, b) = (f0.dimensions(), frame.dimensions());
                    return Err(crate::Error::SizeMismatch {
                        left: (a.0 as usize, a.1 as usize),
                        right: (b.0 as usize, b.1 as usize),
                    });
                }
            }
            None
        };
        if self.frames.len() == self.cfg.k {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
        self.next_index += 1;
        if let Some(s) = sig {
            self.feed(t, s);
        }
        Ok(sig)
    }

    /// Pushes several frames, computing their flows in parallel (one estimator per thread);
    /// returns their raw signals. Equivalent to pushing them one at a time.
    pub fn push_batch(&mut self, frames: Vec<GrayF32>) -> Result<Vec<Option<f32>>> {
        let k = self.cfg.k;
        if let (Some(a), Some(b)) = (self.frames.front().or(frames.first()), frames.first()) {
            if a.dimensions() != b.dimensions() {
                let (a, b) = (a.dimensions(), b.dimensions());
                return Err(crate::Error::SizeMismatch {
                    left: (a.0 as usize, a.1 as usize),
                    right: (b.0 as usize, b.1 as usize),
                });
            }
        }
        // all frames in order: the kept history then the batch
        let hist: Vec<&GrayF32> = self.frames.iter().collect();
        let all: Vec<&GrayF32> = hist.iter().copied().chain(frames.iter()).collect();
        let base = self.next_index - hist.len();
        let threads = rayon::current_num_threads().max(1);
        while self.extra.len() + 1 < threads {
            self.extra.push(self.cfg.flow.build()?);
        }
        // pair j: frames (t - k, t) with t = index of the j-th batch frame
        let targets: Vec<usize> = (hist.len()..all.len()).collect();
        let chunk = targets.len().div_ceil(threads).max(1);
        let cfg = &self.cfg;
        let ests: Vec<&(dyn FlowEstimator + Send + Sync)> =
            std::iter::once(self.est.as_ref()).chain(self.extra.iter().map(|e| e.as_ref())).collect();
        let results: Vec<Result<Vec<Option<f32>>>> = targets
            .par_chunks(chunk)
            .enumerate()
            .map(|(ci, idx)| {
                let est = ests[ci % ests.len()];
                let mut sc = Scratch::default();
                let mut out = Vec::with_capacity(idx.len());
                for &j in idx {
                    let t = base + j;
                    if t < k || j < k {
                        out.push(None);
                        continue;
                    }
                    est.estimate_into(all[j - k], all[j], &mut sc.flow)?;
                    out.push(Some(motion_signal(&sc.flow, cfg, &mut sc.comp, &mut sc.src, &mut sc.dst)?));
                }
                Ok(out)
            })
            .collect();
        let mut sigs = Vec::with_capacity(frames.len());
        for r in results {
            sigs.extend(r?);
        }
        for (frame, s) in frames.into_iter().zip(&sigs) {
            let t = self.next_index;
            if self.frames.len() == k {
                self.frames.pop_front();
            }
            self.frames.push_back(frame);
            self.next_index += 1;
            if let Some(s) = s {
                self.feed(t, *s);
            }
        }
        Ok(sigs)
    }

    fn feed(&mut self, t: usize, s: f32) {
        self.raw.push_back((t, s));
        let m = self.cfg.smooth;
        if self.raw.len() > m {
            self.raw.pop_front();
        }
        if self.raw.len() == m {
            let (ct, _) = self.raw[m / 2];
            let avg = self.raw.iter().map(|(_, v)| v).sum::<f32>() / m as f32;
            self.observe(ct, avg);
        }
    }

    fn threshold(&mut self) -> f32 {
        let sorted = &mut self.scratch.sorted;
        sorted.clear();
        sorted.extend(self.history.iter().copied());
        if sorted.len() < 8 {
            return f32::INFINITY;
        }
        let mid = sorted.len() / 2;
        sorted.select_nth_unstable_by(mid, f32::total_cmp);
        let med = sorted[mid];
        sorted.iter_mut().for_each(|v| *v = (*v - med).abs());
        sorted.select_nth_unstable_by(mid, f32::total_cmp);
        let mad = sorted[mid];
        (med + self.cfg.threshold * 1.4826 * mad).max(self.cfg.min_signal)
    }

    fn observe(&mut self, t: usize, s: f32) {
        let thr = self.threshold();
        // the baseline learns from inactive frames only, so that long movements do not raise it
        let active = s > thr;
        if !active || self.history.len() < 8 {
            if self.history.len() == self.cfg.window {
                self.history.pop_front();
            }
            self.history.push_back(s);
        }
        match (&mut self.run, active) {
            (Some(r), true) => {
                r.end = t;
                if s > r.peak {
                    r.peak = s;
                    r.peak_at = t;
                }
            }
            (None, true) => self.run = Some(Run { start: t, end: t, peak_at: t, peak: s }),
            (Some(r), false) => {
                if t > r.end + self.cfg.k + self.cfg.smooth {
                    self.close_run();
                }
            }
            (None, false) => {}
        }
    }

    /// Closes the open run (when its gap is over, or at the end of the stream).
    fn close_run(&mut self) {
        let _ = self.merge_gap();
        if let Some(r) = self.run.take() {
            let onset = r.start.saturating_sub(1);
            let offset = r.end.saturating_sub(self.cfg.k - 1).max(onset);
            let apex = r.peak_at.clamp(onset, offset);
            let len = offset - onset + 1;
            if len < self.cfg.min_frames {
                return;
            }
            let kind = if len as f64 / self.cfg.fps <= self.cfg.micro_max_s {
                MovementKind::Micro
            } else {
                MovementKind::Macro
            };
            if let Ok(interval) = Interval::new(onset, apex, offset) {
                self.events.push(Spotted { interval, kind, peak: r.peak });
            }
        }
    }

    /// Takes the intervals completed so far.
    pub fn take_events(&mut self) -> Vec<Spotted> {
        std::mem::take(&mut self.events)
    }

    /// Ends the stream: closes an open interval and returns the remaining events.
    pub fn finish(&mut self) -> Vec<Spotted> {
        // flush the smoothing queue with the values that have a full window
        self.close_run();
        self.take_events()
    }
}

/// Apex selection for a clip `frames[0..]` whose first frame is the onset: the frame whose flow
/// from the onset (after head-motion compensation) has the largest mean magnitude over the ROI.
pub fn select_apex(
    frames: &[GrayF32],
    est: &(dyn FlowEstimator + Send + Sync),
    head_motion: HeadMotion,
    roi: Option<BBox>,
) -> Result<usize> {
    if frames.len() < 2 {
        return Err(crate::Error::Empty { what: "apex selection needs at least two frames" });
    }
    let cfg = SpotterConfig { head_motion, roi, ..SpotterConfig::default() };
    let mut sc = Scratch::default();
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, f) in frames.iter().enumerate().skip(1) {
        est.estimate_into(&frames[0], f, &mut sc.flow)?;
        let s = motion_signal(&sc.flow, &cfg, &mut sc.comp, &mut sc.src, &mut sc.dst)?;
        if s > best.1 {
            best = (i, s);
        }
    }
    Ok(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{bumps_field, pair_from_texture, Bump, SmoothTexture};

    /// A synthetic clip: a static texture with one smooth local movement (a Gaussian bump that
    /// rises and falls) over frames `on..=off`.
    fn clip(n: usize, on: usize, off: usize, amp: f32) -> Vec<GrayF32> {
        let tex = SmoothTexture::new(9);
        (0..n)
            .map(|t| {
                let a = if t >= on && t <= off {
                    let ph = (t - on) as f32 / (off - on) as f32;
                    amp * (std::f32::consts::PI * ph).sin()
                } else {
                    0.0
                };
                let f = bumps_field(48, 48, &[Bump { cx: 24.0, cy: 24.0, sigma: 6.0, ax: a, ay: 0.5 * a }]);
                pair_from_texture(&tex, &f).0
            })
            .collect()
    }

    #[test]
    fn spots_a_single_movement() {
        let frames = clip(120, 60, 72, 2.0);
        let cfg = SpotterConfig { fps: 30.0, ..Default::default() };
        let mut sp = cfg.build().unwrap();
        let mut ev = Vec::new();
        for f in frames {
            sp.push(f).unwrap();
            ev.extend(sp.take_events());
        }
        ev.extend(sp.finish());
        assert_eq!(ev.len(), 1, "{ev:?}");
        let truth = Interval::new(60, 66, 72).unwrap();
        assert!(ev[0].interval.iou(&truth) >= 0.5, "{ev:?}");
        assert_eq!(ev[0].kind, MovementKind::Micro);
    }

    #[test]
    fn batch_equals_streaming() {
        let frames = clip(50, 25, 35, 1.5);
        let cfg = SpotterConfig::default();
        let mut a = cfg.build().unwrap();
        let mut b = cfg.build().unwrap();
        let sa: Vec<Option<f32>> = frames.iter().map(|f| a.push(f.clone()).unwrap()).collect();
        let mut sb = b.push_batch(frames[..20].to_vec()).unwrap();
        sb.extend(b.push_batch(frames[20..].to_vec()).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn apex_of_a_clip() {
        let frames = clip(13, 0, 12, 2.0);
        let est = FlowConfig::Dis(DisConfig::fast()).build().unwrap();
        let apex = select_apex(&frames, est.as_ref(), HeadMotion::None, None).unwrap();
        assert!((5..=7).contains(&apex), "{apex}");
    }

    #[test]
    fn bad_config_and_sizes_are_errors() {
        assert!(SpotterConfig { k: 0, ..Default::default() }.build().is_err());
        assert!(SpotterConfig { smooth: 4, ..Default::default() }.build().is_err());
        let mut sp = SpotterConfig::default().build().unwrap();
        sp.push(GrayF32::new(32, 32)).unwrap();
        assert!(sp.push(GrayF32::new(32, 30)).is_err());
    }
}
