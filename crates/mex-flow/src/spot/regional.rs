//! The regional, blink-aware spotter (see [`RegionalConfig`]).

use super::{Spotted, SpotterConfig};
use crate::error::{invalid, Result};
use crate::FlowField;
use mex_core::Interval;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a region is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionRole {
    /// Its motion is an expression.
    Expression,
    /// An eye: its motion never starts an event; a part of an event whose motion is clearly
    /// stronger here than in every expression region (see `blink_ratio`) is a blink.
    Eye,
}

/// A rectangle of the canonical aligned crop, in fractions of the crop's side (`0..1`, x to
/// the right, y down).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Name (for reports).
    pub name: String,
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
    /// Expression or eye.
    pub role: RegionRole,
}

impl Region {
    fn new(name: &str, x0: f32, y0: f32, x1: f32, y1: f32, role: RegionRole) -> Self {
        Self { name: name.into(), x0, y0, x1, y1, role }
    }

    /// The default layout on the canonical crop of `mex-align` (5-point template, margin 0.15:
    /// eye centres at (0.344, 0.267) and (0.644, 0.261), nose tip at (0.495, 0.446), mouth
    /// corners at (0.365, 0.599) and (0.637, 0.594) of the side): brows, eyes, nose, cheeks and
    /// the two mouth corners.
    pub fn canonical() -> Vec<Region> {
        use RegionRole::{Expression as X, Eye as E};
        vec![
            Region::new("brow_l", 0.18, 0.08, 0.47, 0.22, X),
            Region::new("brow_r", 0.53, 0.08, 0.82, 0.22, X),
            Region::new("eye_l", 0.24, 0.22, 0.45, 0.31, E),
            Region::new("eye_r", 0.54, 0.22, 0.75, 0.31, E),
            Region::new("nose", 0.41, 0.30, 0.59, 0.47, X),
            Region::new("cheek_l", 0.20, 0.33, 0.41, 0.50, X),
            Region::new("cheek_r", 0.59, 0.33, 0.80, 0.50, X),
            Region::new("mouth_l", 0.24, 0.50, 0.50, 0.72, X),
            Region::new("mouth_r", 0.50, 0.50, 0.76, 0.72, X),
        ]
    }
}

/// The frame each flow starts from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reference {
    /// The frame `k` before: the signal is the velocity-like change over `k` frames; a movement
    /// shows a rise hump and a fall hump with a dip at the apex, joined by the gap rule.
    Lag,
    /// A keyframe of the last quiet moment, renewed every `refresh_s` seconds while nothing
    /// moves (and after an event cut at `max_event_s`): the signal is the displacement from
    /// the neutral face, one hump per movement from onset to offset.
    Keyframe {
        /// Renewal period, seconds.
        refresh_s: f64,
    },
}

/// Parameters of the regional, blink-aware spotter ([`super::SpotMethod::Regional`]).
///
/// Per frame `t`: the flow from the reference frame (`t - k` by default, see [`Reference`]) to
/// `t`, head motion removed, is averaged over square cells of side `cell` (fraction of the crop
/// side) tiling each region; a region's signal is its largest cell mean-vector length (pixels),
/// smoothed by a centred moving average of `smooth_s` seconds. Each region keeps a robust
/// baseline (median and MAD·1.4826, at least `noise_floor` pixels) over the last `window_s`
/// seconds of quiet frames; its robust z is `(signal − median) / scale`. With
/// `head_regression`, the baseline is a line in the head motion `h` (the mean displacement
/// removed by head-motion compensation): the flow's error grows with head motion, so the
/// signal minus `slope · h`, the slope fitted by least squares over the same quiet frames (at
/// least 0), is what the median and MAD describe. The first baseline
/// comes from the warm-up (`warmup_s`): a first estimate from its lower quantiles picks its
/// quiet frames, the baseline is made from those, and the warm-up's frames are then examined
/// against it, so that a movement at the very start is spotted. An event starts when the largest expression-region z exceeds
/// `high`; it extends back to where that z last rose above `low` and forward until it stays at
/// or below `low` for more than the join gap (`k + smooth` frames for the lag reference), so the
/// rise and the fall of one movement, with the dip between them at the apex, are one event. The
/// event is cut into humps at the local minima of z; a hump whose peak z exceeds `high` and
/// whose largest eye-region excess over baseline exceeds `blink_ratio` times its largest
/// expression-region excess is a blink, set aside. The blinks split the event: each run of the
/// other humps is one movement (reported when its peak z exceeds `high`), so that an expression
/// joined to a nearby blink by the gap rule is kept. Each run (and each blink) is trimmed to the
/// frames whose z reaches `max(low, rel_extent · peak z)`. Onset = first such frame minus one;
/// offset = last such frame minus `k - 1` (lag reference); both are then moved out by `widen`
/// times the interval's length; apex = frame of the largest z. Events last at most
/// `max_event_s` seconds.
///
/// A slow movement can fall back to its baseline at its apex, where it stops before it
/// returns, for longer than the join gap; it is then seen as two movements, the rise and the
/// return. With the lag reference, a movement is therefore held for `join_s` seconds: a
/// movement that starts within that time and whose flow runs the opposite way is its return,
/// and the two are reported as one (apex between them). "Opposite": the expression cells' mean
/// vectors summed over each movement's frames (the displacement it made, cell by cell) have a
/// cosine below −0.5. A complete movement (rise and return) sums to about zero, so it is not
/// joined to anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegionalConfig {
    /// Regions in fractions of the crop side (default [`Region::canonical`]).
    pub regions: Vec<Region>,
    /// Cell side as a fraction of the crop side.
    pub cell: f32,
    /// Robust z that starts an event.
    pub high: f32,
    /// Robust z under which the signal is back at its baseline.
    pub low: f32,
    /// Smallest robust scale, pixels (keeps z finite on noise-free video).
    pub noise_floor: f32,
    /// Centred moving average, seconds (rounded to an odd number of frames, at least 1).
    pub smooth_s: f64,
    /// Baseline window, seconds.
    pub window_s: f64,
    /// Eye / expression excess ratio above which a hump of an event is a blink.
    pub blink_ratio: f32,
    /// Longest event, seconds (bounds memory; longer movements are cut).
    pub max_event_s: f64,
    /// The frame each flow starts from.
    pub reference: Reference,
    /// The extent is trimmed to the frames whose z is at least this fraction of the event's
    /// peak z (and above `low`): the tails of strong movements end where the movement does.
    pub rel_extent: f32,
    /// The trimmed extent is widened on each side by this fraction of its length: the level
    /// cut of `rel_extent` removes the slow start and end of a smooth movement (about a fifth
    /// of its length on each side for raised-cosine onsets and offsets).
    pub widen: f32,
    /// Warm-up, seconds: the first baseline is computed from this stretch of the recording
    /// (at least 8 frames) and its frames are then examined against it, so that a movement at
    /// the very start is spotted (reported once the warm-up is over).
    pub warmup_s: f64,
    /// Lag reference: how long a movement waits for its return (a following movement whose
    /// flow runs the opposite way, joined to it), seconds; 0 turns joining off.
    pub join_s: f64,
    /// Baselines are lines in the head motion instead of constants (see above).
    pub head_regression: bool,
}

impl Default for RegionalConfig {
    /// The values chosen on the synthetic long-video benchmark (docs/spotting.md).
    fn default() -> Self {
        Self {
            regions: Region::canonical(),
            cell: 0.125,
            high: 8.0,
            low: 3.0,
            noise_floor: 0.01,
            smooth_s: 0.05,
            window_s: 10.0,
            blink_ratio: 1.5,
            max_event_s: 6.0,
            reference: Reference::Lag,
            rel_extent: 0.45,
            widen: 0.2,
            warmup_s: 1.0,
            join_s: 1.0,
            head_regression: true,
        }
    }
}

impl RegionalConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if !self.regions.iter().any(|r| r.role == RegionRole::Expression) {
            return Err(invalid("regions", self.regions.len(), "need at least one expression region"));
        }
        for r in &self.regions {
            let ok = [r.x0, r.y0, r.x1, r.y1].iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v));
            if !ok || r.x1 <= r.x0 || r.y1 <= r.y0 {
                return Err(invalid(
                    "regions",
                    format!("{} ({}, {})-({}, {})", r.name, r.x0, r.y0, r.x1, r.y1),
                    "need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1",
                ));
            }
        }
        if !(self.cell.is_finite() && self.cell > 0.0 && self.cell <= 1.0) {
            return Err(invalid("cell", self.cell, "must lie in (0, 1]"));
        }
        if !(self.low.is_finite() && self.low >= 0.0) {
            return Err(invalid("low", self.low, "must be finite and >= 0"));
        }
        if !(self.high.is_finite() && self.high >= self.low) {
            return Err(invalid("high", self.high, "must be finite and >= low"));
        }
        if !(self.noise_floor.is_finite() && self.noise_floor > 0.0) {
            return Err(invalid("noise_floor", self.noise_floor, "must be finite and > 0"));
        }
        if !(self.smooth_s.is_finite() && (0.0..=10.0).contains(&self.smooth_s)) {
            return Err(invalid("smooth_s", self.smooth_s, "must lie in [0, 10] s"));
        }
        if !(self.window_s.is_finite() && self.window_s > 0.0 && self.window_s <= 3600.0) {
            return Err(invalid("window_s", self.window_s, "must lie in (0, 3600] s"));
        }
        if !(self.blink_ratio.is_finite() && self.blink_ratio > 0.0) {
            return Err(invalid("blink_ratio", self.blink_ratio, "must be finite and > 0"));
        }
        if !(self.max_event_s.is_finite() && self.max_event_s > 0.0 && self.max_event_s <= 600.0) {
            return Err(invalid("max_event_s", self.max_event_s, "must lie in (0, 600] s"));
        }
        if !(self.rel_extent.is_finite() && (0.0..1.0).contains(&self.rel_extent)) {
            return Err(invalid("rel_extent", self.rel_extent, "must lie in [0, 1)"));
        }
        if !(self.widen.is_finite() && (0.0..=1.0).contains(&self.widen)) {
            return Err(invalid("widen", self.widen, "must lie in [0, 1]"));
        }
        if !(self.warmup_s.is_finite() && (0.0..=60.0).contains(&self.warmup_s)) {
            return Err(invalid("warmup_s", self.warmup_s, "must lie in [0, 60] s"));
        }
        if !(self.join_s.is_finite() && (0.0..=60.0).contains(&self.join_s)) {
            return Err(invalid("join_s", self.join_s, "must lie in [0, 60] s"));
        }
        if let Reference::Keyframe { refresh_s } = self.reference {
            if !(refresh_s.is_finite() && refresh_s > 0.0 && refresh_s <= 600.0) {
                return Err(invalid("reference.refresh_s", refresh_s, "must lie in (0, 600] s"));
            }
        }
        Ok(())
    }
}

/// The regions' cells in pixels for one frame size.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    width: usize,
    /// Per region: cells `(x0, y0, x1, y1)`.
    cells: Vec<Vec<(usize, usize, usize, usize)>>,
    /// Per region: an expression region (its cells' vectors give a movement's direction).
    expr: Vec<bool>,
}

/// One step's measurement.
#[derive(Debug, Clone)]
pub(crate) struct Signals {
    /// Each region's largest cell mean-vector length, pixels.
    pub(crate) regions: Vec<f32>,
    /// The mean vectors `(u, v)` of the expression regions' cells, in order, pixels.
    pub(crate) dir: Vec<f32>,
    /// Head motion: the mean displacement removed by head-motion compensation, pixels.
    pub(crate) head: f32,
}

impl Layout {
    pub(crate) fn new(cfg: &RegionalConfig, width: usize, height: usize) -> Result<Self> {
        let side = (cfg.cell * width.min(height) as f32).round().max(2.0) as usize;
        let mut cells = Vec::with_capacity(cfg.regions.len());
        for r in &cfg.regions {
            let px = |v: f32, n: usize| ((v * n as f32).round() as usize).min(n);
            let (x0, y0, x1, y1) = (px(r.x0, width), px(r.y0, height), px(r.x1, width), px(r.y1, height));
            if x1 <= x0 || y1 <= y0 {
                return Err(invalid("regions", &r.name, "has no pixels in this frame size"));
            }
            // equal cells, as close to `side` as the region allows (no slivers at the edges)
            let (nx, ny) = (((x1 - x0) as f32 / side as f32).round().max(1.0) as usize, {
                ((y1 - y0) as f32 / side as f32).round().max(1.0) as usize
            });
            let mut v = Vec::with_capacity(nx * ny);
            for j in 0..ny {
                let (ya, yb) = (y0 + (y1 - y0) * j / ny, y0 + (y1 - y0) * (j + 1) / ny);
                for i in 0..nx {
                    let (xa, xb) = (x0 + (x1 - x0) * i / nx, x0 + (x1 - x0) * (i + 1) / nx);
                    if xb > xa && yb > ya {
                        v.push((xa, ya, xb, yb));
                    }
                }
            }
            cells.push(v);
        }
        let expr = cfg.regions.iter().map(|r| r.role == RegionRole::Expression).collect();
        Ok(Self { width, cells, expr })
    }

    /// Each region's largest cell mean-vector length and the expression cells' mean vectors;
    /// `head` is the step's head motion.
    pub(crate) fn signals(&self, f: &FlowField, head: f32) -> Signals {
        let (u, v) = (f.u(), f.v());
        let w = self.width;
        let mut dir = Vec::new();
        let regions = self
            .cells
            .iter()
            .zip(&self.expr)
            .map(|(cells, &expr)| {
                let mut best = 0.0f32;
                for &(x0, y0, x1, y1) in cells {
                    let (mut su, mut sv) = (0.0f32, 0.0f32);
                    for y in y0..y1 {
                        let row = y * w;
                        su += u[row + x0..row + x1].iter().sum::<f32>();
                        sv += v[row + x0..row + x1].iter().sum::<f32>();
                    }
                    let n = ((x1 - x0) * (y1 - y0)) as f32;
                    if expr {
                        dir.extend([su / n, sv / n]);
                    }
                    best = best.max((su / n).hypot(sv / n));
                }
                best
            })
            .collect();
        Signals { regions, dir, head }
    }
}

#[derive(Debug, Clone, Copy)]
struct Recent {
    t: usize,
    /// Largest expression-region z.
    z: f32,
    /// Largest eye-region excess over baseline, pixels.
    eye_ex: f32,
    /// Largest expression-region excess over baseline, pixels.
    expr_ex: f32,
}

/// A settled movement, waiting for its return.
#[derive(Debug, Clone)]
struct Movement {
    onset: usize,
    apex: usize,
    offset: usize,
    /// Its first and last frames of signal above the extent level.
    first: usize,
    last: usize,
    /// Largest expression-region excess, pixels.
    peak: f32,
    /// The expression cells' vectors summed over its frames.
    dir: Vec<f32>,
}

impl Movement {
    /// The movement as reported (`None` when too short).
    fn spotted(&self, cfg: &SpotterConfig) -> Option<Spotted> {
        Spotted::new(self.onset, self.apex, self.offset, self.peak, cfg)
    }
}

#[derive(Debug, Clone, Copy)]
struct Active {
    start: usize,
    last_above: usize,
}

/// Streaming state of the regional method.
pub(crate) struct State {
    eye: Vec<bool>,
    high: f32,
    low: f32,
    rel: f32,
    /// Frames of the warm-up (the first baseline); 0 once it is over.
    warmup: usize,
    /// The warm-up's frames, kept until its baseline exists and then examined against it.
    pending: Vec<(usize, Signals)>,
    /// Fraction of a movement's trimmed length added on each side.
    widen: f32,
    floor: f32,
    blink_ratio: f32,
    smooth: usize,
    window: usize,
    gap: usize,
    max_len: usize,
    base_every: usize,
    /// The smoothing window's frames.
    raw: VecDeque<(usize, Signals)>,
    hist: Vec<VecDeque<f32>>,
    /// The head motion of the frames of `hist`.
    head_hist: VecDeque<f32>,
    head_regression: bool,
    /// Per region: the baseline's slope in the head motion.
    slope: Vec<f32>,
    /// A history less its head-motion part.
    residual: VecDeque<f32>,
    base: Vec<Option<(f32, f32)>>,
    since_refresh: usize,
    /// A history changed since the baselines were last computed.
    stale: bool,
    recent: VecDeque<Recent>,
    /// The expression cells' vectors of the frames of `recent`, in the same order.
    dirs: VecDeque<Vec<f32>>,
    active: Option<Active>,
    /// A settled movement waiting for its return.
    held: Option<Movement>,
    /// Frames a movement waits for its return (0: joining off).
    join: usize,
    buf: Vec<f32>,
    blinks: Vec<Interval>,
    /// Keyframe renewal period in frames (keyframe reference only).
    refresh: Option<usize>,
    /// Frames the offset is shifted back by (`k - 1` for the lag reference).
    shift: usize,
    /// Consecutive quiet frames observed.
    quiet_run: usize,
    /// Renew the keyframe at the next renewal point whatever the state.
    force_ref: bool,
}

/// The least-squares slope of `y` on `x`, at least 0; 0 when fewer than 8 pairs or when the
/// standard deviation of `x` is below `min_sd` (no head motion to learn from).
fn fit_slope(y: &VecDeque<f32>, x: &VecDeque<f32>, min_sd: f32) -> f32 {
    let n = y.len().min(x.len());
    if n < 8 {
        return 0.0;
    }
    let (mx, my) = (x.iter().sum::<f32>() / n as f32, y.iter().sum::<f32>() / n as f32);
    let (mut sxy, mut sxx) = (0.0f32, 0.0f32);
    for (&a, &b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
    }
    if sxx > 0.0 && sxx >= min_sd * min_sd * n as f32 {
        (sxy / sxx).max(0.0)
    } else {
        0.0
    }
}

/// The fewest frames a baseline is computed from.
const MIN_WARMUP: usize = 8;

fn odd_frames(s: f64, fps: f64) -> usize {
    let n = (s * fps).round().max(1.0) as usize;
    if n.is_multiple_of(2) {
        n + 1
    } else {
        n
    }
}

impl State {
    pub(crate) fn new(r: &RegionalConfig, cfg: &SpotterConfig) -> Self {
        let smooth = odd_frames(r.smooth_s, cfg.fps);
        let window = ((r.window_s * cfg.fps).round() as usize).max(16);
        let max_len = ((r.max_event_s * cfg.fps).round() as usize).max(4);
        let n = r.regions.len();
        Self {
            eye: r.regions.iter().map(|g| g.role == RegionRole::Eye).collect(),
            high: r.high,
            low: r.low,
            rel: r.rel_extent,
            warmup: ((r.warmup_s * cfg.fps).round() as usize).clamp(MIN_WARMUP, window),
            pending: Vec::new(),
            widen: r.widen,
            floor: r.noise_floor,
            blink_ratio: r.blink_ratio,
            smooth,
            window,
            gap: match r.reference {
                Reference::Lag => cfg.k + smooth,
                Reference::Keyframe { .. } => smooth + odd_frames(0.05, cfg.fps),
            },
            max_len,
            base_every: ((cfg.fps / 30.0).round() as usize).max(1),
            raw: VecDeque::with_capacity(smooth + 1),
            hist: vec![VecDeque::with_capacity(window); n],
            head_hist: VecDeque::with_capacity(window),
            head_regression: r.head_regression,
            slope: vec![0.0; n],
            residual: VecDeque::with_capacity(window),
            base: vec![None; n],
            since_refresh: usize::MAX,
            stale: true,
            recent: VecDeque::with_capacity(max_len + 2),
            dirs: VecDeque::with_capacity(max_len + 2),
            active: None,
            held: None,
            join: match r.reference {
                Reference::Lag => (r.join_s * cfg.fps).round() as usize,
                Reference::Keyframe { .. } => 0,
            },
            buf: Vec::new(),
            blinks: Vec::new(),
            refresh: match r.reference {
                Reference::Lag => None,
                Reference::Keyframe { refresh_s } => Some(((refresh_s * cfg.fps).round() as usize).max(1)),
            },
            shift: match r.reference {
                Reference::Lag => cfg.k - 1,
                Reference::Keyframe { .. } => 0,
            },
            quiet_run: 0,
            force_ref: false,
        }
    }

    /// Keyframe reference: whether frame `t` becomes the new keyframe (only at multiples of the
    /// renewal period, so that batches and single pushes agree).
    pub(crate) fn wants_reference(&mut self, t: usize) -> bool {
        let Some(every) = self.refresh else { return false };
        if !t.is_multiple_of(every) {
            return false;
        }
        let quiet = self.active.is_none() && self.quiet_run >= self.smooth;
        if self.force_ref || quiet {
            self.force_ref = false;
            return true;
        }
        false
    }

    /// Keyframe renewal period in frames (`None` for the lag reference).
    pub(crate) fn refresh_period(&self) -> Option<usize> {
        self.refresh
    }

    pub(crate) fn take_blinks(&mut self) -> Vec<Interval> {
        std::mem::take(&mut self.blinks)
    }

    pub(crate) fn feed(&mut self, t: usize, sig: Signals, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        self.raw.push_back((t, sig));
        if self.raw.len() > self.smooth {
            self.raw.pop_front();
        }
        if self.raw.len() < self.smooth {
            return;
        }
        // the centred moving average of the region signals and the head motion; the centre
        // frame's cell vectors
        let mut regions = vec![0.0f32; self.eye.len()];
        let mut head = 0.0f32;
        for (_, s) in &self.raw {
            regions.iter_mut().zip(&s.regions).for_each(|(a, x)| *a += x);
            head += s.head;
        }
        let n = self.smooth as f32;
        regions.iter_mut().for_each(|a| *a /= n);
        // every frame is the centre once: its cell vectors move on
        let (ct, centre) = &mut self.raw[self.smooth / 2];
        let (ct, dir) = (*ct, std::mem::take(&mut centre.dir));
        self.observe(ct, Signals { regions, dir, head: head / n }, cfg, events);
    }

    /// Recomputes the baselines on their schedule (every `base_every` frames), only when a
    /// history has changed since: while an event runs the histories are frozen.
    fn refresh_baselines(&mut self) {
        if self.stale {
            self.fit_slopes();
            for i in 0..self.hist.len() {
                self.detrend(i);
                self.base[i] = super::robust_stats(&self.residual, &mut self.buf)
                    .map(|(m, mad)| (m, (1.4826 * mad).max(self.floor)));
            }
            self.stale = false;
        }
        self.since_refresh = 0;
    }

    /// Each region's baseline slope in the head motion, fitted to its history (0 without
    /// `head_regression`).
    fn fit_slopes(&mut self) {
        for (h, slope) in self.hist.iter().zip(self.slope.iter_mut()) {
            *slope = if self.head_regression { fit_slope(h, &self.head_hist, self.floor) } else { 0.0 };
        }
    }

    /// Region `i`'s history less its head-motion part, into `residual`.
    fn detrend(&mut self, i: usize) {
        let slope = self.slope[i];
        self.residual.clear();
        self.residual.extend(self.hist[i].iter().zip(&self.head_hist).map(|(&x, &v)| x - slope * v));
    }

    fn observe(&mut self, t: usize, s: Signals, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        if self.warmup > 0 {
            // Warm-up: every frame joins the first baseline; once it is complete, the warm-up's
            // frames are examined against it, so that a movement at the very start is spotted.
            for (h, &x) in self.hist.iter_mut().zip(&s.regions) {
                h.push_back(x);
            }
            self.head_hist.push_back(s.head);
            self.quiet_run = self.quiet_run.saturating_add(1);
            self.pending.push((t, s));
            if self.pending.len() >= self.warmup {
                self.end_warmup(cfg, events);
            }
            return;
        }
        if self.since_refresh >= self.base_every {
            self.refresh_baselines();
        }
        self.since_refresh = self.since_refresh.saturating_add(1);
        self.step(t, s, true, cfg, events);
    }

    /// Computes the first baseline from the warm-up's frames and examines them against it.
    fn end_warmup(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        self.warmup = 0;
        // A first baseline from the lower quantiles (a movement may fill most of the warm-up):
        // for Gaussian noise the 5th and 25th percentiles lie 1.645 and 0.674 sigma below the
        // median.
        self.fit_slopes();
        let mut first = Vec::with_capacity(self.hist.len());
        for i in 0..self.hist.len() {
            self.detrend(i);
            let v = &mut self.residual;
            v.make_contiguous().sort_by(f32::total_cmp);
            let q = |p: f32| v[((v.len() - 1) as f32 * p).round() as usize];
            let scale = ((q(0.25) - q(0.05)) / 0.971).max(self.floor);
            first.push((q(0.25) + 0.674 * scale, scale));
        }
        // the histories keep the warm-up's quiet frames only (as they do afterwards)
        let quiet: Vec<bool> = self
            .pending
            .iter()
            .map(|(_, s)| {
                let z = |((&x, &(m, sc)), &slope): ((&f32, &(f32, f32)), &f32)| (x - slope * s.head - m) / sc;
                s.regions.iter().zip(&first).zip(&self.slope).all(|v| z(v) <= self.low)
            })
            .collect();
        if quiet.iter().filter(|&&q| q).count() >= MIN_WARMUP {
            let kept = || self.pending.iter().zip(&quiet).filter(|(_, &q)| q).map(|((_, s), _)| s);
            for (i, h) in self.hist.iter_mut().enumerate() {
                h.clear();
                h.extend(kept().map(|s| s.regions[i]));
            }
            self.head_hist.clear();
            self.head_hist.extend(kept().map(|s| s.head));
        }
        self.stale = true;
        self.refresh_baselines();
        self.quiet_run = 0;
        for (t, s) in std::mem::take(&mut self.pending) {
            self.step(t, s, false, cfg, events);
        }
    }

    /// One frame against the current baselines; `learn`: a quiet frame joins the baselines'
    /// histories (the warm-up's frames are in them already).
    fn step(&mut self, t: usize, s: Signals, learn: bool, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        let (mut z, mut eye_z, mut eye_ex, mut expr_ex) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (i, (&x, b)) in s.regions.iter().zip(&self.base).enumerate() {
            let (med, scale) = b.unwrap_or((0.0, 1.0));
            let x = x - self.slope[i] * s.head;
            let zi = (x - med) / scale;
            if self.eye[i] {
                eye_z = eye_z.max(zi);
                eye_ex = eye_ex.max(x - med);
            } else {
                z = z.max(zi);
                expr_ex = expr_ex.max(x - med);
            }
        }
        let quiet = z <= self.low && eye_z <= self.low;
        self.quiet_run = if quiet && self.active.is_none() { self.quiet_run.saturating_add(1) } else { 0 };
        // baselines learn from quiet frames only
        if learn && self.active.is_none() && quiet {
            for (h, &x) in self.hist.iter_mut().zip(&s.regions).chain([(&mut self.head_hist, &s.head)]) {
                if h.len() == self.window {
                    h.pop_front();
                }
                h.push_back(x);
            }
            self.stale = true;
        }
        self.recent.push_back(Recent { t, z, eye_ex, expr_ex });
        self.dirs.push_back(s.dir);
        while self.recent.len() > self.max_len + self.gap + 2 {
            self.recent.pop_front();
            self.dirs.pop_front();
        }
        // the held movement is reported once its return can no longer come (an event that
        // started in time may still be it)
        if let Some(h) = &self.held {
            let until = h.last + self.join;
            if t > until && self.active.is_none_or(|a| a.start > until) {
                self.release(cfg, events);
            }
        }
        match self.active.as_mut() {
            None => {
                if z > self.high {
                    // walk back to where the signal left its baseline
                    let mut start = t;
                    for r in self.recent.iter().rev().skip(1) {
                        if r.z > self.low && r.t + 1 == start {
                            start = r.t;
                        } else {
                            break;
                        }
                    }
                    self.active = Some(Active { start, last_above: t });
                }
            }
            Some(a) => {
                if z > self.low {
                    a.last_above = t;
                }
                if t + 1 > a.start + self.max_len {
                    // a movement that does not return to its baseline: renew the keyframe
                    self.force_ref = true;
                    self.close(cfg, events);
                } else if t > a.last_above + self.gap {
                    self.close(cfg, events);
                }
            }
        }
    }

    fn close(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        let Some(a) = self.active.take() else { return };
        let frames: Vec<Recent> =
            self.recent.iter().filter(|r| r.t >= a.start && r.t <= a.last_above).copied().collect();
        // Humps: the stretches between local minima of z. A strong hump (peak z above `high`)
        // whose eye excess exceeds `blink_ratio` times its expression excess is a blink; the
        // blinks cut the event into runs of the other humps, each of them one movement.
        let mut runs: Vec<(usize, usize, bool)> = Vec::new(); // (first index, last index, blink)
        let mut h0 = 0;
        for i in 1..=frames.len() {
            let valley = i == frames.len()
                || (frames[i].z > frames[i - 1].z && i >= 2 && frames[i - 1].z <= frames[i - 2].z);
            if !valley {
                continue;
            }
            let hump = &frames[h0..i];
            let peak = hump.iter().map(|r| r.z).fold(f32::MIN, f32::max);
            let eye = hump.iter().map(|r| r.eye_ex).fold(0.0f32, f32::max);
            let expr = hump.iter().map(|r| r.expr_ex).fold(0.0f32, f32::max);
            let blink = peak > self.high && eye > self.blink_ratio * expr;
            match runs.last_mut() {
                Some(last) if last.2 == blink => last.1 = i - 1,
                _ => runs.push((h0, i - 1, blink)),
            }
            h0 = i;
        }
        for (i0, i1, blink) in runs {
            self.settle(&frames[i0..=i1], blink, cfg, events);
        }
    }

    /// One run of humps: trimmed to the frames whose z reaches `rel_extent` of its peak, then
    /// reported as a movement or set aside as a blink.
    fn settle(&mut self, run: &[Recent], blink: bool, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        let Some(peak) = run.iter().max_by(|a, b| a.z.total_cmp(&b.z)).copied() else { return };
        if peak.z <= self.high {
            return;
        }
        let level = self.low.max(self.rel * peak.z);
        let (Some(first), Some(last)) =
            (run.iter().find(|r| r.z >= level), run.iter().rev().find(|r| r.z >= level))
        else {
            return;
        };
        let expr =
            run.iter().filter(|r| r.t >= first.t && r.t <= last.t).map(|r| r.expr_ex).fold(0.0, f32::max);
        let onset = first.t.saturating_sub(1);
        let offset = last.t.saturating_sub(self.shift).max(onset);
        // the level cut removes the slow start and end of a smooth movement
        let pad = (self.widen * (offset - onset + 1) as f32).round() as usize;
        let seen = self.recent.back().map_or(offset, |r| r.t.max(offset));
        let (onset, offset) = (onset.saturating_sub(pad), (offset + pad).min(seen));
        if blink {
            if let Ok(iv) = Interval::new(onset, peak.t.clamp(onset, offset), offset) {
                self.blinks.push(iv);
            }
        } else if self.join == 0 {
            if let Some(s) = Spotted::new(onset, peak.t, offset, expr, cfg) {
                events.push(s);
            }
        } else {
            // the displacement it made, cell by cell: its cell vectors summed over its frames
            let front = self.recent.front().map_or(0, |r| r.t);
            let mut dir = vec![0.0f32; self.dirs.back().map_or(0, Vec::len)];
            for d in (first.t..=last.t).filter_map(|t| t.checked_sub(front).and_then(|i| self.dirs.get(i))) {
                dir.iter_mut().zip(d).for_each(|(a, x)| *a += x);
            }
            let m = Movement { onset, apex: peak.t, offset, first: first.t, last: last.t, peak: expr, dir };
            self.hold(m, cfg, events);
        }
    }

    /// A settled movement waits up to `join` frames for its return: a following movement whose
    /// summed cell vectors run the opposite way (cosine below −0.5) is the same movement going
    /// back, and the two are reported as one.
    fn hold(&mut self, c: Movement, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        if let Some(h) = self.held.take() {
            let (dot, hh, cc) = h
                .dir
                .iter()
                .zip(&c.dir)
                .fold((0.0f32, 0.0f32, 0.0f32), |(d, a, b), (x, y)| (d + x * y, a + x * x, b + y * y));
            let opposite = hh > 0.0 && cc > 0.0 && dot < -0.5 * (hh * cc).sqrt();
            if opposite && c.first <= h.last + self.join && c.offset < h.onset + self.max_len {
                // the apex: where the rise ended and the return began
                let apex = ((h.last + c.first) / 2).saturating_sub(self.shift / 2);
                events.extend(Spotted::new(h.onset, apex, c.offset, h.peak.max(c.peak), cfg));
                return;
            }
            events.extend(h.spotted(cfg));
        }
        self.held = Some(c);
    }

    /// Reports the held movement.
    fn release(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        events.extend(self.held.take().and_then(|h| h.spotted(cfg)));
    }

    pub(crate) fn finish(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        // a recording shorter than the warm-up: its frames against their own baseline
        if self.warmup > 0 && self.pending.len() >= MIN_WARMUP {
            self.end_warmup(cfg, events);
        }
        self.close(cfg, events);
        self.release(cfg, events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_its_limits() {
        let x: VecDeque<f32> = (0..10).map(|i| i as f32 * 0.1).collect();
        // y = 1 + 2 x
        let y: VecDeque<f32> = x.iter().map(|v| 1.0 + 2.0 * v).collect();
        assert!((fit_slope(&y, &x, 0.01) - 2.0).abs() < 1e-5);
        // a signal that falls with head motion has no head-motion part (slope 0, not < 0)
        let down: VecDeque<f32> = x.iter().map(|v| 1.0 - v).collect();
        assert_eq!(fit_slope(&down, &x, 0.01), 0.0);
        // no head motion, head motion below the noise floor, or too few frames: no slope
        let still = VecDeque::from(vec![0.5f32; 10]);
        assert_eq!(fit_slope(&y, &still, 0.01), 0.0);
        let tiny: VecDeque<f32> = x.iter().map(|v| v * 1e-3).collect();
        assert_eq!(fit_slope(&y, &tiny, 0.01), 0.0);
        assert!(fit_slope(&y, &tiny, 1e-5) > 1000.0);
        assert_eq!(fit_slope(&y.iter().take(5).copied().collect(), &x, 0.01), 0.0);
    }
}
