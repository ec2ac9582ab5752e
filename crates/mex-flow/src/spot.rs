//! Streaming spotting of facial movements in long videos.
//!
//! Frames (aligned face crops, see below) are pushed one at a time, or in batches, which
//! computes the flows in parallel. Every method keeps a bounded number of frames and signal
//! values, whatever the video length, and emits intervals (onset, apex, offset) as soon as they
//! are closed. Three methods ([`SpotMethod`]) share the flow estimator, the frame distance and
//! the head-motion compensation of [`SpotterConfig`]:
//!
//! * [`SpotMethod::Regional`] (the default; blink-aware, per facial region): the flow between
//!   frames `t - k` and `t`, head motion removed, is averaged over cells inside facial regions
//!   of the canonical aligned crop (brows, nose, cheeks, mouth corners; the eyes are regions of
//!   their own used only to recognise blinks). A region's signal is its largest cell
//!   mean-vector length; each region has its own robust running baseline (median, MAD). A
//!   movement starts when a region's robust z exceeds `high`; its extent runs from where the
//!   signal left its baseline before the apex to where it returns after it (trimmed to the
//!   frames above a fraction of the peak), so the rise (onset to apex) and the fall (apex to
//!   offset) are one event. A part of an event (a hump between minima of the signal) whose
//!   motion is clearly stronger in an eye region than in every expression region is a blink:
//!   it is set aside ([`Spotter::take_blinks`]), not reported as an expression, and the other
//!   parts stay movements. Baselines follow the head motion (the flow's error grows with it),
//!   and a slow movement seen as two (its rise, then its return after a stop at the apex) is
//!   joined back into one. See [`RegionalConfig`].
//! * [`SpotMethod::Global`]: the earlier single-signal spotter (mean flow magnitude over the
//!   whole crop or `roi`, one robust threshold, runs of active frames). Kept unchanged for
//!   comparison.
//! * [`SpotMethod::Mdmd`]: main directional maximal difference (Wang et al., Neurocomputing
//!   230, 2017), the MEGC2020 spotting baseline (He et al., FG 2020). See [`MdmdConfig`].
//!
//! The regional layout assumes the canonical crop of `mex-align` (eyes and mouth at fixed
//! points of the square crop); on frames that are not aligned face crops use
//! [`SpotMethod::Global`].
//!
//! # Global method
//!
//! For every frame `t >= k` the spotter computes the flow between frames `t - k` and `t`,
//! removes head motion, and takes the mean flow magnitude over the region of interest: the
//! per-frame motion signal. The signal is smoothed by a centred moving average; a frame is
//! *active* when its smoothed signal exceeds `max(min_signal, median + threshold · 1.4826 · MAD)`
//! of the last `window` smoothed values (a robust running baseline). A run of active frames
//! `[a, b]` becomes an interval with `onset = a - 1`, `offset = b - (k - 1)` (the signal of a
//! movement that ends at frame `f` lasts until `f + k - 1`), apex at the largest smoothed
//! signal, classified as a micro-movement when it lasts at most `micro_max_s` seconds.
//!
//! Memory is bounded by `k + 1` frames and `window` signal values (MDMD: `2 k + 1` frames;
//! regional: also the cell vectors of the longest event, `max_event_s`).

mod mdmd;
mod regional;

pub use mdmd::MdmdConfig;
pub use regional::{Reference, Region, RegionRole, RegionalConfig};

use crate::error::{invalid, Result};
use crate::features::{remove_similarity_into, TrimBuffers};
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
    /// Remove a similarity fitted on a grid of every `step`-th pixel by least squares, then
    /// refitted twice on the points whose residual is at most 2.5 times the median residual:
    /// a facial movement, which moves a minority of the face, does not pull the head motion
    /// (a plain least-squares fit absorbs part of it, most for movements far from the centre
    /// such as the mouth corners of a dimpler). The default.
    TrimmedSimilarity {
        /// Grid step in pixels.
        step: usize,
    },
}

/// The spotting method and its own parameters (serde-tagged by `kind`:
/// `method = { kind = "regional" }`, `{ kind = "global" }`, `{ kind = "mdmd", p = 0.3 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpotMethod {
    /// One signal over the whole crop (or `roi`) with one robust threshold; see the module docs.
    Global,
    /// Main directional maximal difference (the MEGC2020 baseline).
    Mdmd(MdmdConfig),
    /// Per-region, blink-aware spotting with baseline-to-baseline extents (the default).
    Regional(RegionalConfig),
}

impl Default for SpotMethod {
    fn default() -> Self {
        SpotMethod::Regional(RegionalConfig::default())
    }
}

impl SpotMethod {
    /// Short name (`"global"`, `"mdmd"`, `"regional"`).
    pub fn name(&self) -> &'static str {
        match self {
            SpotMethod::Global => "global",
            SpotMethod::Mdmd(_) => "mdmd",
            SpotMethod::Regional(_) => "regional",
        }
    }
}

/// Spotter parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpotterConfig {
    /// The method (default: [`SpotMethod::Regional`]).
    pub method: SpotMethod,
    /// Flow estimator (default DIS ultrafast, for speed).
    pub flow: FlowConfig,
    /// Frame distance of the flow (`t - k` to `t`); MDMD uses its own `k_s` instead.
    pub k: usize,
    /// Frames per second (for the micro / macro duration rule and the methods' durations).
    pub fps: f64,
    /// Region measured by the global method (default: the whole crop).
    pub roi: Option<BBox>,
    /// Head-motion compensation.
    pub head_motion: HeadMotion,
    /// Global method: length of the centred moving average (odd; 1 disables smoothing).
    pub smooth: usize,
    /// Global method: frames in the running baseline.
    pub window: usize,
    /// Global method: robust z threshold above the baseline.
    pub threshold: f32,
    /// Global method: absolute floor of the threshold (pixels of mean magnitude).
    pub min_signal: f32,
    /// Longest micro-movement in seconds (MEGC: 0.5 s).
    pub micro_max_s: f64,
    /// Shortest interval kept, in frames.
    pub min_frames: usize,
}

impl Default for SpotterConfig {
    fn default() -> Self {
        Self {
            method: SpotMethod::default(),
            flow: FlowConfig::Dis(DisConfig::ultrafast()),
            k: 3,
            fps: 30.0,
            roi: None,
            head_motion: HeadMotion::TrimmedSimilarity { step: 4 },
            smooth: 3,
            window: 300,
            threshold: 4.0,
            min_signal: 0.05,
            micro_max_s: 0.5,
            min_frames: 2,
        }
    }
}

/// The frame distance used at `fps`: 0.1 s (at least one frame), about half a short
/// micro-expression (SOFTNet's choice of k = half the average expression length).
pub fn k_for_fps(fps: f64) -> usize {
    if fps.is_finite() && fps > 0.0 {
        ((0.1 * fps).round() as usize).max(1)
    } else {
        1
    }
}

impl SpotterConfig {
    /// The default configuration for a video at `fps`: the default method, `k` = 0.1 s.
    ///
    /// ```
    /// use mex_flow::spot::SpotterConfig;
    /// let cfg = SpotterConfig::for_fps(200.0);
    /// assert_eq!((cfg.k, cfg.fps), (20, 200.0));
    /// assert_eq!(cfg.method.name(), "regional");
    /// ```
    pub fn for_fps(fps: f64) -> Self {
        Self { fps, k: k_for_fps(fps), ..Self::default() }
    }

    /// The same configuration with another method.
    pub fn with_method(self, method: SpotMethod) -> Self {
        Self { method, ..self }
    }

    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(invalid("k", self.k, "must be >= 1"));
        }
        if self.k > 100_000 {
            return Err(invalid("k", self.k, "must be <= 100000"));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 100_000.0) {
            return Err(invalid("fps", self.fps, "must be finite and in (0, 100000]"));
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
        if let HeadMotion::Similarity { step: 0 } | HeadMotion::TrimmedSimilarity { step: 0 } =
            self.head_motion
        {
            return Err(invalid("head_motion.step", 0, "must be >= 1"));
        }
        match &self.method {
            SpotMethod::Global => {}
            SpotMethod::Mdmd(m) => m.validate(self.fps)?,
            SpotMethod::Regional(r) => r.validate()?,
        }
        Ok(())
    }

    /// Frames kept before the current one (`k`, or `2 k` of MDMD).
    fn history_len(&self) -> usize {
        match &self.method {
            SpotMethod::Mdmd(m) => 2 * m.k(self.fps),
            SpotMethod::Regional(r) if matches!(r.reference, Reference::Keyframe { .. }) => 0,
            _ => self.k,
        }
    }

    /// Whether flows start from a keyframe instead of the frame `k` before.
    fn keyframe_mode(&self) -> bool {
        matches!(&self.method, SpotMethod::Regional(r) if matches!(r.reference, Reference::Keyframe { .. }))
    }

    /// Validates and builds a spotter.
    pub fn build(&self) -> Result<Spotter> {
        self.validate()?;
        let engine = match &self.method {
            SpotMethod::Global => Engine::Global(GlobalState::new(self)),
            SpotMethod::Mdmd(m) => Engine::Mdmd(mdmd::State::new(m, self)),
            SpotMethod::Regional(r) => Engine::Regional(Box::new(regional::State::new(r, self))),
        };
        Ok(Spotter {
            est: self.flow.build()?,
            cfg: self.clone(),
            hist_len: self.history_len(),
            frames: VecDeque::with_capacity(self.history_len() + 1),
            next_index: 0,
            scratch: Scratch::default(),
            layout: None,
            keyframe: None,
            engine,
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
    /// Largest signal in the interval (global: smoothed mean magnitude, pixels; regional: the
    /// strongest region's excess over its baseline, pixels; MDMD: the largest contrast value).
    pub peak: f32,
}

impl Spotted {
    fn new(onset: usize, apex: usize, offset: usize, peak: f32, cfg: &SpotterConfig) -> Option<Self> {
        let offset = offset.max(onset);
        let apex = apex.clamp(onset, offset);
        let len = offset - onset + 1;
        if len < cfg.min_frames {
            return None;
        }
        let kind =
            if len as f64 / cfg.fps <= cfg.micro_max_s { MovementKind::Micro } else { MovementKind::Macro };
        Interval::new(onset, apex, offset).ok().map(|interval| Spotted { interval, kind, peak })
    }
}

#[derive(Debug)]
struct Scratch {
    flow: FlowField,
    flow2: FlowField,
    comp: FlowField,
    comp2: FlowField,
    fit: FitBuffers,
    buf: Vec<f32>,
}

/// Buffers of the head-motion fit.
#[derive(Debug, Default)]
struct FitBuffers {
    src: Vec<Point2>,
    dst: Vec<Point2>,
    trim: TrimBuffers,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            flow: FlowField::zeros(0, 0),
            flow2: FlowField::zeros(0, 0),
            comp: FlowField::zeros(0, 0),
            comp2: FlowField::zeros(0, 0),
            fit: FitBuffers::default(),
            buf: Vec::new(),
        }
    }
}

/// What one step measures (before the method's temporal logic).
#[derive(Debug, Clone)]
enum Measured {
    Global(f32),
    Mdmd(f32),
    Regional(regional::Signals),
}

impl Measured {
    /// The scalar returned by `push`.
    fn scalar(&self) -> f32 {
        match self {
            Measured::Global(s) | Measured::Mdmd(s) => *s,
            Measured::Regional(v) => v.regions.iter().copied().fold(0.0, f32::max),
        }
    }
}

enum Engine {
    Global(GlobalState),
    Mdmd(mdmd::State),
    Regional(Box<regional::State>),
}

/// The streaming spotter (see the module docs). Build it with [`SpotterConfig::build`].
pub struct Spotter {
    cfg: SpotterConfig,
    est: Box<dyn FlowEstimator + Send + Sync>,
    /// Frames kept before the current one.
    hist_len: usize,
    frames: VecDeque<GrayF32>,
    next_index: usize,
    scratch: Scratch,
    /// Cells of the regional method, for the frame size seen.
    layout: Option<regional::Layout>,
    /// The keyframe flows start from (regional method, keyframe reference).
    keyframe: Option<GrayF32>,
    engine: Engine,
    events: Vec<Spotted>,
    /// Extra estimators for parallel batches.
    extra: Vec<Box<dyn FlowEstimator + Send + Sync>>,
}

impl std::fmt::Debug for Spotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spotter").field("cfg", &self.cfg).field("next_index", &self.next_index).finish()
    }
}

/// Removes head motion from `flow` as configured; returns the field to measure.
fn compensate<'a>(
    flow: &'a FlowField,
    head_motion: HeadMotion,
    roi: Option<&BBox>,
    comp: &'a mut FlowField,
    fit: &mut FitBuffers,
) -> Result<&'a FlowField> {
    Ok(match head_motion {
        HeadMotion::None => flow,
        HeadMotion::Patch { x, y, half } => {
            *comp = crate::features::subtract_patch_mean(flow, x, y, half)?;
            comp
        }
        HeadMotion::Similarity { step } | HeadMotion::TrimmedSimilarity { step } => {
            let trim = matches!(head_motion, HeadMotion::TrimmedSimilarity { .. }).then_some(&mut fit.trim);
            remove_similarity_into(flow, roi, step, trim, &mut fit.src, &mut fit.dst, comp)?;
            comp
        }
    })
}

/// Motion signal of one flow: mean magnitude over the ROI after head-motion compensation.
fn motion_signal(
    flow: &FlowField,
    cfg: &SpotterConfig,
    comp: &mut FlowField,
    fit: &mut FitBuffers,
) -> Result<f32> {
    let f = compensate(flow, cfg.head_motion, cfg.roi.as_ref(), comp, fit)?;
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

/// The head motion removed from `raw` to give `comp`: the mean length of their difference on
/// a grid of every 7th pixel, pixels (0 without compensation).
fn removed_motion(raw: &FlowField, comp: &FlowField) -> f32 {
    let (ru, rv, cu, cv) = (raw.u(), raw.v(), comp.u(), comp.v());
    let (mut sum, mut n) = (0.0f32, 0usize);
    for i in (0..ru.len()).step_by(7) {
        sum += (ru[i] - cu[i]).hypot(rv[i] - cv[i]);
        n += 1;
    }
    sum / n.max(1) as f32
}

/// Measures one step. `frames` holds the `hist_len + 1` frames ending at the current one.
fn measure(
    cfg: &SpotterConfig,
    layout: Option<&regional::Layout>,
    frames: &[&GrayF32],
    est: &(dyn FlowEstimator + Send + Sync),
    sc: &mut Scratch,
) -> Result<Measured> {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return Err(crate::Error::Empty { what: "spotting step without frames" });
    };
    match &cfg.method {
        SpotMethod::Global => {
            est.estimate_into(first, last, &mut sc.flow)?;
            Ok(Measured::Global(motion_signal(&sc.flow, cfg, &mut sc.comp, &mut sc.fit)?))
        }
        SpotMethod::Regional(_) => {
            let layout = layout.ok_or(crate::Error::Empty { what: "regional layout" })?;
            est.estimate_into(first, last, &mut sc.flow)?;
            let f = compensate(&sc.flow, cfg.head_motion, None, &mut sc.comp, &mut sc.fit)?;
            Ok(Measured::Regional(layout.signals(f, removed_motion(&sc.flow, f))))
        }
        SpotMethod::Mdmd(m) => {
            let mid = frames[frames.len() / 2];
            est.estimate_into(first, mid, &mut sc.flow)?;
            est.estimate_into(first, last, &mut sc.flow2)?;
            let f1 = compensate(&sc.flow, cfg.head_motion, None, &mut sc.comp, &mut sc.fit)?;
            let f2 = compensate(&sc.flow2, cfg.head_motion, None, &mut sc.comp2, &mut sc.fit)?;
            Ok(Measured::Mdmd(mdmd::feature(f1, f2, m.blocks, &mut sc.buf)))
        }
    }
}

fn size_of(f: &GrayF32) -> (usize, usize) {
    (f.width() as usize, f.height() as usize)
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

    fn check_size(&mut self, frame: &GrayF32) -> Result<()> {
        if let Some(f0) = self.frames.front().or(self.keyframe.as_ref()) {
            if f0.dimensions() != frame.dimensions() {
                return Err(crate::Error::SizeMismatch { left: size_of(f0), right: size_of(frame) });
            }
        }
        if let SpotMethod::Regional(r) = &self.cfg.method {
            if self.layout.is_none() {
                let (w, h) = size_of(frame);
                self.layout = Some(regional::Layout::new(r, w, h)?);
            }
        }
        Ok(())
    }

    /// Pushes the next frame; returns its raw motion signal (`None` until enough frames are
    /// kept). Global: the mean magnitude; regional: the largest region signal (pixels); MDMD:
    /// the feature of frame `t - k` (MDMD needs the frames `k` after the one it scores).
    pub fn push(&mut self, frame: GrayF32) -> Result<Option<f32>> {
        self.check_size(&frame)?;
        let t = self.next_index;
        if self.cfg.keyframe_mode() {
            self.next_index += 1;
            let Some(r) = self.keyframe.as_ref() else {
                self.keyframe = Some(frame);
                return Ok(None);
            };
            let m =
                measure(&self.cfg, self.layout.as_ref(), &[r, &frame], self.est.as_ref(), &mut self.scratch)?;
            let sig = m.scalar();
            self.feed(t, m);
            if self.wants_reference(t) {
                self.keyframe = Some(frame);
            }
            return Ok(Some(sig));
        }
        let m = if self.frames.len() == self.hist_len {
            let refs: Vec<&GrayF32> = self.frames.iter().chain(std::iter::once(&frame)).collect();
            Some(measure(&self.cfg, self.layout.as_ref(), &refs, self.est.as_ref(), &mut self.scratch)?)
        } else {
            None
        };
        if self.hist_len > 0 && self.frames.len() == self.hist_len {
            self.frames.pop_front();
        }
        if self.hist_len > 0 {
            self.frames.push_back(frame);
        }
        self.next_index += 1;
        let sig = m.as_ref().map(Measured::scalar);
        if let Some(m) = m {
            self.feed(t, m);
        }
        Ok(sig)
    }

    /// Pushes several frames, computing their flows in parallel (one estimator per thread);
    /// returns their raw signals. Equivalent to pushing them one at a time.
    pub fn push_batch(&mut self, frames: Vec<GrayF32>) -> Result<Vec<Option<f32>>> {
        let Some(first) = frames.first() else { return Ok(Vec::new()) };
        self.check_size(first)?;
        if let Some(bad) = frames.iter().find(|f| f.dimensions() != first.dimensions()) {
            return Err(crate::Error::SizeMismatch { left: size_of(first), right: size_of(bad) });
        }
        let threads = rayon::current_num_threads().max(1);
        while self.extra.len() + 1 < threads {
            self.extra.push(self.cfg.flow.build()?);
        }
        if self.cfg.keyframe_mode() {
            return self.push_batch_keyframe(frames);
        }
        let need = self.hist_len;
        // all frames in order: the kept history then the batch
        let all: Vec<&GrayF32> = self.frames.iter().chain(frames.iter()).collect();
        let start = self.frames.len();
        let jobs: Vec<Option<&[&GrayF32]>> =
            (start..all.len()).map(|j| (j >= need).then(|| &all[j - need..=j])).collect();
        let ms = self.measure_parallel(&jobs)?;
        let sigs: Vec<Option<f32>> = ms.iter().map(|m| m.as_ref().map(Measured::scalar)).collect();
        for (frame, m) in frames.into_iter().zip(ms) {
            let t = self.next_index;
            if need > 0 {
                if self.frames.len() == need {
                    self.frames.pop_front();
                }
                self.frames.push_back(frame);
            }
            self.next_index += 1;
            if let Some(m) = m {
                self.feed(t, m);
            }
        }
        Ok(sigs)
    }

    /// Measures the steps of `jobs` in parallel (one estimator per thread); `None` jobs give
    /// `None`.
    fn measure_parallel(&self, jobs: &[Option<&[&GrayF32]>]) -> Result<Vec<Option<Measured>>> {
        let threads = (self.extra.len() + 1).max(1);
        let chunk = jobs.len().div_ceil(threads).max(1);
        let cfg = &self.cfg;
        let layout = self.layout.as_ref();
        let ests: Vec<&(dyn FlowEstimator + Send + Sync)> =
            std::iter::once(self.est.as_ref()).chain(self.extra.iter().map(|e| e.as_ref())).collect();
        let results: Vec<Result<Vec<Option<Measured>>>> = jobs
            .par_chunks(chunk)
            .enumerate()
            .map(|(ci, js)| {
                let est = ests[ci % ests.len()];
                let mut sc = Scratch::default();
                js.iter().map(|j| j.map(|fr| measure(cfg, layout, fr, est, &mut sc)).transpose()).collect()
            })
            .collect();
        let mut ms = Vec::with_capacity(jobs.len());
        for r in results {
            ms.extend(r?);
        }
        Ok(ms)
    }

    /// Keyframe reference: the frames between two renewal points share the keyframe, so their
    /// flows run in parallel; the renewal decision is taken at the renewal point as `push` does.
    fn push_batch_keyframe(&mut self, frames: Vec<GrayF32>) -> Result<Vec<Option<f32>>> {
        let every = match &self.engine {
            Engine::Regional(st) => st.refresh_period().unwrap_or(1),
            _ => 1,
        };
        let n = frames.len();
        let mut sigs = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            if self.keyframe.is_none() {
                self.keyframe = Some(frames[i].clone());
                self.next_index += 1;
                sigs.push(None);
                i += 1;
                continue;
            }
            let t0 = self.next_index;
            let next_point = t0.div_ceil(every) * every;
            let end = n.min(i + (next_point - t0) + 1);
            let ms = {
                let Some(r) = self.keyframe.as_ref() else { break };
                let pairs: Vec<[&GrayF32; 2]> = frames[i..end].iter().map(|f| [r, f]).collect();
                let jobs: Vec<Option<&[&GrayF32]>> = pairs.iter().map(|p| Some(&p[..])).collect();
                self.measure_parallel(&jobs)?
            };
            for (j, m) in (i..end).zip(ms) {
                let t = self.next_index;
                self.next_index += 1;
                sigs.push(m.as_ref().map(Measured::scalar));
                if let Some(m) = m {
                    self.feed(t, m);
                }
                if self.wants_reference(t) {
                    self.keyframe = Some(frames[j].clone());
                }
            }
            i = end;
        }
        Ok(sigs)
    }

    fn wants_reference(&mut self, t: usize) -> bool {
        match &mut self.engine {
            Engine::Regional(st) => st.wants_reference(t),
            _ => false,
        }
    }

    fn feed(&mut self, t: usize, m: Measured) {
        let cfg = &self.cfg;
        match (&mut self.engine, m) {
            (Engine::Global(g), Measured::Global(s)) => g.feed(t, s, cfg, &mut self.events),
            (Engine::Mdmd(st), Measured::Mdmd(s)) => st.feed(t, s, cfg, &mut self.events),
            (Engine::Regional(st), Measured::Regional(v)) => st.feed(t, v, cfg, &mut self.events),
            _ => {}
        }
    }

    /// Takes the intervals completed so far.
    pub fn take_events(&mut self) -> Vec<Spotted> {
        std::mem::take(&mut self.events)
    }

    /// Takes the blinks set aside so far (regional method; empty for the others).
    pub fn take_blinks(&mut self) -> Vec<Interval> {
        match &mut self.engine {
            Engine::Regional(st) => st.take_blinks(),
            _ => Vec::new(),
        }
    }

    /// Ends the stream: closes an open interval and returns the remaining events.
    pub fn finish(&mut self) -> Vec<Spotted> {
        let cfg = &self.cfg;
        match &mut self.engine {
            Engine::Global(g) => g.close_run(cfg, &mut self.events),
            Engine::Mdmd(st) => st.finish(cfg, &mut self.events),
            Engine::Regional(st) => st.finish(cfg, &mut self.events),
        }
        self.take_events()
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    peak_at: usize,
    peak: f32,
}

/// State of the global method.
struct GlobalState {
    /// Raw signal values awaiting smoothing, with their frame index.
    raw: VecDeque<(usize, f32)>,
    /// Smoothed values of the baseline window.
    history: VecDeque<f32>,
    sorted: Vec<f32>,
    run: Option<Run>,
}

impl GlobalState {
    fn new(cfg: &SpotterConfig) -> Self {
        Self {
            raw: VecDeque::with_capacity(cfg.smooth),
            history: VecDeque::with_capacity(cfg.window),
            sorted: Vec::new(),
            run: None,
        }
    }

    fn feed(&mut self, t: usize, s: f32, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        self.raw.push_back((t, s));
        let m = cfg.smooth;
        if self.raw.len() > m {
            self.raw.pop_front();
        }
        if self.raw.len() == m {
            let (ct, _) = self.raw[m / 2];
            let avg = self.raw.iter().map(|(_, v)| v).sum::<f32>() / m as f32;
            self.observe(ct, avg, cfg, events);
        }
    }

    fn threshold(&mut self, cfg: &SpotterConfig) -> f32 {
        match robust_stats(&self.history, &mut self.sorted) {
            Some((med, mad)) => (med + cfg.threshold * 1.4826 * mad).max(cfg.min_signal),
            None => f32::INFINITY,
        }
    }

    fn observe(&mut self, t: usize, s: f32, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        let thr = self.threshold(cfg);
        // the baseline learns from inactive frames only, so that long movements do not raise it
        let active = s > thr;
        if !active || self.history.len() < 8 {
            if self.history.len() == cfg.window {
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
                // the signal of a movement dips between its rise and its fall (displacement
                // relative to `t - k` is flat at the apex): inactive frames up to `k + smooth`
                // still join two active runs
                if t > r.end + cfg.k + cfg.smooth {
                    self.close_run(cfg, events);
                }
            }
            (None, false) => {}
        }
    }

    /// Closes the open run (when its gap is over, or at the end of the stream).
    fn close_run(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        if let Some(r) = self.run.take() {
            let onset = r.start.saturating_sub(1);
            let offset = r.end.saturating_sub(cfg.k - 1).max(onset);
            if let Some(s) = Spotted::new(onset, r.peak_at, offset, r.peak, cfg) {
                events.push(s);
            }
        }
    }
}

/// Median and MAD of `values` (at least 8 of them), using `buf` as scratch.
fn robust_stats(values: &VecDeque<f32>, buf: &mut Vec<f32>) -> Option<(f32, f32)> {
    if values.len() < 8 {
        return None;
    }
    buf.clear();
    buf.extend(values.iter().copied());
    let mid = buf.len() / 2;
    buf.select_nth_unstable_by(mid, f32::total_cmp);
    let med = buf[mid];
    buf.iter_mut().for_each(|v| *v = (*v - med).abs());
    buf.select_nth_unstable_by(mid, f32::total_cmp);
    Some((med, buf[mid]))
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
        let s = motion_signal(&sc.flow, &cfg, &mut sc.comp, &mut sc.fit)?;
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
    /// rises and falls) over frames `on..=off`, centred at `(cx, cy)` of a `size²` frame.
    fn clip_at(n: usize, on: usize, off: usize, amp: f32, size: usize, cx: f32, cy: f32) -> Vec<GrayF32> {
        clip_with(n, size, cx, cy, |t| {
            if t >= on && t <= off {
                let ph = (t - on) as f32 / (off - on) as f32;
                amp * (std::f32::consts::PI * ph).sin()
            } else {
                0.0
            }
        })
    }

    /// A static texture with a Gaussian bump at `(cx, cy)` displaced by `amp(t)` pixels.
    fn clip_with(n: usize, size: usize, cx: f32, cy: f32, amp: impl Fn(usize) -> f32) -> Vec<GrayF32> {
        let tex = SmoothTexture::new(9);
        (0..n)
            .map(|t| {
                let a = amp(t);
                let f = bumps_field(size, size, &[Bump { cx, cy, sigma: 6.0, ax: a, ay: 0.5 * a }]);
                pair_from_texture(&tex, &f).0
            })
            .collect()
    }

    /// Raised-cosine step from 0 at `a` to 1 at `b`.
    fn ramp(t: usize, a: usize, b: usize) -> f32 {
        let s = ((t as f32 - a as f32) / (b - a) as f32).clamp(0.0, 1.0);
        0.5 - 0.5 * (std::f32::consts::PI * s).cos()
    }

    fn clip(n: usize, on: usize, off: usize, amp: f32) -> Vec<GrayF32> {
        clip_at(n, on, off, amp, 48, 24.0, 24.0)
    }

    fn run(cfg: &SpotterConfig, frames: Vec<GrayF32>) -> Vec<Spotted> {
        let mut sp = cfg.build().unwrap();
        let mut ev = Vec::new();
        for f in frames {
            sp.push(f).unwrap();
            ev.extend(sp.take_events());
        }
        ev.extend(sp.finish());
        ev
    }

    #[test]
    fn spots_a_single_movement() {
        let frames = clip(120, 60, 72, 2.0);
        let cfg = SpotterConfig { fps: 30.0, method: SpotMethod::Global, ..Default::default() };
        let ev = run(&cfg, frames);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let truth = Interval::new(60, 66, 72).unwrap();
        assert!(ev[0].interval.iou(&truth) >= 0.5, "{ev:?}");
        assert_eq!(ev[0].kind, MovementKind::Micro);
    }

    #[test]
    fn regional_spots_a_mouth_movement_whole() {
        // a movement at the right mouth corner of a 64² canonical crop over frames 60..=84
        // (0.8 s at 30 fps: macro); the rise and the fall must come out as one interval
        let frames = clip_at(160, 60, 84, 1.5, 64, 0.62 * 64.0, 0.6 * 64.0);
        let cfg = SpotterConfig::for_fps(30.0);
        let ev = run(&cfg, frames);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let truth = Interval::new(60, 72, 84).unwrap();
        assert!(ev[0].interval.iou(&truth) >= 0.7, "{ev:?}");
        assert_eq!(ev[0].kind, MovementKind::Macro);
    }

    #[test]
    fn regional_spots_a_movement_at_the_very_start() {
        // a mouth movement over frames 5..=19 (0.5 s at 30 fps), inside the 1 s warm-up: the
        // warm-up's baseline comes from its lower quantiles, and its frames are examined
        // against it once it is complete
        let frames = clip_at(120, 5, 19, 1.5, 64, 0.62 * 64.0, 0.6 * 64.0);
        let truth = Interval::new(5, 12, 19).unwrap();
        let ev = run(&SpotterConfig::for_fps(30.0), frames.clone());
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].interval.iou(&truth) >= 0.6, "{ev:?}");
        // without a warm-up to look back over, the movement is lost in the first baseline
        let short = RegionalConfig { warmup_s: 0.0, ..Default::default() };
        let ev = run(&SpotterConfig::for_fps(30.0).with_method(SpotMethod::Regional(short)), frames);
        assert!(ev.iter().all(|e| e.interval.iou(&truth) < 0.5), "{ev:?}");
    }

    #[test]
    fn regional_joins_a_slow_movement_that_stops_at_its_apex() {
        // a mouth movement rises over frames 40..=64, stays at its apex until frame 84 (0.67 s,
        // far longer than the join gap) and returns over 85..=109: the lag signal falls back to
        // its baseline at the apex, and the return, whose flow runs the opposite way, is joined
        // to the rise
        let (cx, cy) = (0.62 * 64.0, 0.6 * 64.0);
        let frames = clip_with(170, 64, cx, cy, |t| 2.0 * (ramp(t, 40, 64) - ramp(t, 85, 109)));
        let truth = Interval::new(40, 75, 109).unwrap();
        let ev = run(&SpotterConfig::for_fps(30.0), frames.clone());
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].interval.iou(&truth) >= 0.7, "{ev:?}");
        assert_eq!(ev[0].kind, MovementKind::Macro);
        // without joining: the rise and the return apart
        let apart = RegionalConfig { join_s: 0.0, ..Default::default() };
        let ev = run(&SpotterConfig::for_fps(30.0).with_method(SpotMethod::Regional(apart)), frames);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(ev[0].interval.offset < 75 && ev[1].interval.onset > 75, "{ev:?}");
    }

    #[test]
    fn regional_keeps_two_complete_movements_apart() {
        // two whole movements (each rises and returns) 0.5 s apart at the same place: each sums
        // to no displacement, so neither is the other's return
        let (cx, cy) = (0.62 * 64.0, 0.6 * 64.0);
        let bump = |t: usize, on: usize, off: usize| {
            if (on..=off).contains(&t) {
                1.5 * (std::f32::consts::PI * (t - on) as f32 / (off - on) as f32).sin()
            } else {
                0.0
            }
        };
        let frames = clip_with(170, 64, cx, cy, |t| bump(t, 50, 64) + bump(t, 80, 94));
        let ev = run(&SpotterConfig::for_fps(30.0), frames);
        assert_eq!(ev.len(), 2, "{ev:?}");
        for (e, truth) in
            ev.iter().zip([Interval::new(50, 57, 64).unwrap(), Interval::new(80, 87, 94).unwrap()])
        {
            assert!(e.interval.iou(&truth) >= 0.5, "{ev:?}");
        }
    }

    #[test]
    fn batch_equals_streaming() {
        for method in [SpotMethod::Global, SpotMethod::Mdmd(MdmdConfig::default()), SpotMethod::default()] {
            let frames = clip_at(70, 30, 40, 1.5, 48, 30.0, 30.0);
            let cfg = SpotterConfig::default().with_method(method);
            let mut a = cfg.build().unwrap();
            let mut b = cfg.build().unwrap();
            let sa: Vec<Option<f32>> = frames.iter().map(|f| a.push(f.clone()).unwrap()).collect();
            let mut sb = b.push_batch(frames[..20].to_vec()).unwrap();
            sb.extend(b.push_batch(frames[20..].to_vec()).unwrap());
            assert_eq!(sa, sb, "{}", cfg.method.name());
            assert_eq!(a.finish(), b.finish());
        }
    }

    #[test]
    fn mdmd_marks_a_short_movement() {
        // MDMD's contrast peaks where a movement is as long as its head-to-tail span
        let frames = clip(150, 70, 80, 2.0);
        let cfg = SpotterConfig::for_fps(30.0)
            .with_method(SpotMethod::Mdmd(MdmdConfig { k_s: 0.2, ..MdmdConfig::default() }));
        let ev = run(&cfg, frames);
        assert!(!ev.is_empty());
        assert!(ev.iter().any(|e| e.interval.onset <= 80 && e.interval.offset >= 70), "{ev:?}");
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
        let bad_regional = RegionalConfig { high: 1.0, low: 2.0, ..Default::default() };
        assert!(SpotterConfig::default().with_method(SpotMethod::Regional(bad_regional)).build().is_err());
        let no_expr = RegionalConfig {
            regions: Region::canonical().into_iter().filter(|r| r.role == RegionRole::Eye).collect(),
            ..Default::default()
        };
        assert!(SpotterConfig::default().with_method(SpotMethod::Regional(no_expr)).build().is_err());
        for bad in [
            RegionalConfig { widen: f32::NAN, ..Default::default() },
            RegionalConfig { widen: 2.0, ..Default::default() },
            RegionalConfig { warmup_s: -1.0, ..Default::default() },
            RegionalConfig { warmup_s: f64::INFINITY, ..Default::default() },
            RegionalConfig { join_s: -0.5, ..Default::default() },
            RegionalConfig { join_s: f64::NAN, ..Default::default() },
            RegionalConfig { join_s: 1e9, ..Default::default() },
        ] {
            assert!(SpotterConfig::default().with_method(SpotMethod::Regional(bad)).build().is_err());
        }
        for step in [HeadMotion::Similarity { step: 0 }, HeadMotion::TrimmedSimilarity { step: 0 }] {
            assert!(SpotterConfig { head_motion: step, ..Default::default() }.build().is_err());
        }
        let bad_mdmd = MdmdConfig { p: 1.5, ..Default::default() };
        assert!(SpotterConfig::default().with_method(SpotMethod::Mdmd(bad_mdmd)).build().is_err());
        for method in [SpotMethod::Global, SpotMethod::default()] {
            let mut sp = SpotterConfig::default().with_method(method).build().unwrap();
            sp.push(GrayF32::new(32, 32)).unwrap();
            assert!(sp.push(GrayF32::new(32, 30)).is_err());
            assert!(sp.push_batch(vec![GrayF32::new(30, 32)]).is_err());
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = SpotterConfig::for_fps(200.0).with_method(SpotMethod::Mdmd(MdmdConfig::default()));
        let s = serde_json::to_string(&cfg).unwrap();
        let back: SpotterConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(back, cfg);
        let partial: SpotterConfig =
            serde_json::from_str(r#"{"method": {"kind": "global"}, "k": 5}"#).unwrap();
        assert_eq!((partial.method.name(), partial.k), ("global", 5));
    }
}
