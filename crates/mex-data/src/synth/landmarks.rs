//! 68-point ground truth: the neutral 68 landmarks of a synthetic face and landmark tracks with
//! blinks of exact timing and depth and left/right asymmetric expressions of known ratio.
//!
//! # Neutral landmarks
//!
//! [`neutral_landmarks68`] places OpenFace's mean dlib face (`TEMPLATE` of
//! `openface/align_dlib.py`, Amos et al., Apache-2.0) on a [`FaceGeometry`] by the
//! least-squares similarity that maps the template's five points (eye centres, nose tip 30,
//! mouth corners 48 and 54) onto the geometry's. A rendered clip's landmarks at frame `t`
//! ([`SynthClip::landmarks68`](super::SynthClip::landmarks68)) are those points carried by the
//! clip's displacement fields and head motion: the exact positions of the skin points they mark.
//!
//! # Landmark tracks
//!
//! [`LandmarkTrackConfig`] builds landmark sequences directly (no image), for indicator
//! validation at any frame rate and length. The neutral face is the template made exactly
//! mirror-symmetric (so that every asymmetry comes from the configured expressions):
//!
//! * a **blink** of depth `δ` with profile `a(t)` (the raised-cosine onset-apex-offset profile of
//!   [`ExpressionEvent::profile`]) moves each upper-lid point (37, 38, 43, 44) toward its lower-lid
//!   counterpart (41, 40, 47, 46) by `0.75 δ a(t)` of their neutral gap and the lower point
//!   toward the upper by `0.25 δ a(t)`, so every lid gap, hence the eye aspect ratio, is exactly
//!   `(1 − δ a(t))` times its neutral value (the eye corners stay);
//! * an **expression** moves every landmark by `A · d · a(t) · Φ(p) / max|Φ_sym|`, where `Φ` is
//!   the action's bump field with side gains ([`FacialAction::bumps_sided`]), `Φ_sym` the same
//!   field with equal gains (so `A` is the symmetric action's peak displacement in inter-ocular
//!   distances `d`), evaluated at the neutral landmark position;
//! * head motion (rotation about the face centre and translation, smooth sinusoids) is applied
//!   after the face's own motion, then i.i.d. Gaussian noise of `landmark_noise_px` per
//!   coordinate.

use super::action::{Bump, FacialAction};
use super::face::FaceGeometry;
use super::render::{EventKind, ExpressionEvent};
use crate::{Error, Result};
use mex_core::{LandmarkScheme, Landmarks, Point2, Similarity, MIRROR_68};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// OpenFace's mean dlib face (`TEMPLATE` of `openface/align_dlib.py`, Apache-2.0).
const OPENFACE_TEMPLATE: [(f64, f64); 68] = mex_core::OPENFACE_MEAN_FACE_68;

fn template_points() -> Vec<Point2> {
    OPENFACE_TEMPLATE.iter().map(|&(x, y)| Point2::new(x as f32, y as f32)).collect()
}

/// The five points of 68 (the callers' sets always hold 68).
fn five_of(p: &[Point2]) -> [Point2; 5] {
    mex_core::five_from_68(p).unwrap_or_default()
}

/// The neutral 68 landmarks of a face geometry (module docs).
pub fn neutral_landmarks68(g: &FaceGeometry) -> Result<Landmarks> {
    let t = template_points();
    let src = five_of(&t);
    let dst = [g.eye[0], g.eye[1], g.nose_tip, g.mouth_corner[0], g.mouth_corner[1]];
    let s = Similarity::estimate(&src, &dst)?;
    Ok(Landmarks::new(LandmarkScheme::SixtyEight, t.iter().map(|p| s.apply(*p)).collect())?)
}

/// The template face made exactly mirror-symmetric about the vertical line through its eye
/// midpoint (each point replaced by the mean of itself and its counterpart's mirror image),
/// scaled to inter-ocular distance `iod` px, its eye midpoint at `(2 iod, 1.6 iod)`.
fn canonical_neutral(iod: f32) -> Result<Landmarks> {
    let t = template_points();
    let f = five_of(&t);
    let d = f[0].distance(&f[1]);
    let k = iod / d;
    let (cx, cy) = (0.5 * (f[0].x + f[1].x), 0.5 * (f[0].y + f[1].y));
    let pts = (0..68)
        .map(|i| {
            let (p, q) = (t[i], t[MIRROR_68[i]]);
            let (x, y) = (0.5 * ((p.x - cx) - (q.x - cx)), 0.5 * (p.y + q.y) - cy);
            Point2::new(2.0 * iod + k * x, 1.6 * iod + k * y)
        })
        .collect();
    Ok(Landmarks::new(LandmarkScheme::SixtyEight, pts)?)
}

/// A blink with exact timing (frames) and depth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlinkSpec {
    /// First frame of the lid movement (closure still 0 there).
    pub onset: usize,
    /// Frame of deepest closure.
    pub apex: usize,
    /// Last frame (closure back to 0).
    pub offset: usize,
    /// Fraction of the lid gap closed at the apex, in (0, 1] (1: a complete blink, EAR 0).
    pub depth: f32,
}

impl BlinkSpec {
    /// Closure fraction at frame `t` (`depth` times the raised-cosine profile).
    pub fn closure(&self, t: usize) -> f32 {
        self.depth * self.event().profile(t)
    }

    fn event(&self) -> ExpressionEvent {
        ExpressionEvent {
            action: FacialAction::Blink,
            amplitude_px: 0.0,
            onset: self.onset,
            apex: self.apex,
            offset: self.offset,
            kind: EventKind::Blink,
        }
    }

    /// First and last frames whose closure is above `fraction` of the depth: the edges of the
    /// blink at that fraction (the convention a detector's onset and offset are compared with).
    pub fn edges(&self, fraction: f32) -> Option<(usize, usize)> {
        let ev = self.event();
        let on = (self.onset..=self.offset).find(|&t| ev.profile(t) > fraction)?;
        let off = (self.onset..=self.offset).rev().find(|&t| ev.profile(t) > fraction)?;
        Some((on, off))
    }
}

/// An expression with separate image-left and image-right strengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SidedExpression {
    /// The action (not a blink).
    pub action: FacialAction,
    /// Peak displacement of the symmetric action, inter-ocular distances.
    pub amplitude_iod: f32,
    /// Gains of the image-left and image-right sides (1, 1: symmetric).
    pub gains: [f32; 2],
    /// Onset frame.
    pub onset: usize,
    /// Apex frame.
    pub apex: usize,
    /// Offset frame.
    pub offset: usize,
}

/// Head motion of a landmark track: `translation_px · w(t)` and `rotation_deg · w(t)` with
/// `w` a sum of two sinusoids of base frequency `frequency_hz` and random phases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackHeadMotion {
    /// Translation amplitude, pixels.
    pub translation_px: f32,
    /// Rotation amplitude, degrees.
    pub rotation_deg: f32,
    /// Base frequency, Hz.
    pub frequency_hz: f32,
}

impl TrackHeadMotion {
    /// A still head.
    pub fn off() -> Self {
        Self { translation_px: 0.0, rotation_deg: 0.0, frequency_hz: 0.0 }
    }
}

/// A synthetic landmark track (module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandmarkTrackConfig {
    /// Frames per second.
    pub fps: f32,
    /// Number of frames.
    pub n_frames: usize,
    /// Inter-ocular distance of the face, pixels.
    pub interocular_px: f32,
    /// Blinks.
    pub blinks: Vec<BlinkSpec>,
    /// Expressions.
    pub expressions: Vec<SidedExpression>,
    /// Standard deviation of the i.i.d. Gaussian noise added to each coordinate, pixels.
    pub landmark_noise_px: f32,
    /// Head motion.
    pub head: TrackHeadMotion,
    /// Seed of the noise and head-motion phases.
    pub seed: u64,
}

impl Default for LandmarkTrackConfig {
    fn default() -> Self {
        Self {
            fps: 30.0,
            n_frames: 300,
            interocular_px: 100.0,
            blinks: Vec::new(),
            expressions: Vec::new(),
            landmark_noise_px: 0.0,
            head: TrackHeadMotion::off(),
            seed: 0,
        }
    }
}

impl LandmarkTrackConfig {
    /// Adds blinks at random times: `rate_per_min` blinks per minute (rounded), durations
    /// uniform in `duration_s` (onset to offset), apex at 40 % of the duration, depths uniform
    /// in `depth`, at least `min_gap_s` apart and 2 frames from the ends. Deterministic per
    /// `seed`. Errors when they do not fit.
    pub fn with_random_blinks(
        mut self,
        rate_per_min: f32,
        duration_s: (f32, f32),
        depth: (f32, f32),
        min_gap_s: f32,
        seed: u64,
    ) -> Result<Self> {
        let fps = self.fps;
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::param("fps", fps, "must be positive"));
        }
        let n_total = (rate_per_min * self.n_frames as f32 / fps / 60.0).round() as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb11e_0000_0000_0021);
        let gap = (min_gap_s * fps).ceil() as usize;
        let mut placed: Vec<BlinkSpec> = Vec::new();
        for _ in 0..n_total {
            let d = duration_s.0 + (duration_s.1 - duration_s.0) * rng.random::<f32>();
            let len = ((d * fps).round() as usize).max(3);
            if len + 5 > self.n_frames {
                return Err(Error::param("n_frames", self.n_frames, "too short for the blinks"));
            }
            let dep = depth.0 + (depth.1 - depth.0) * rng.random::<f32>();
            let mut found = None;
            for _ in 0..5000 {
                let on = 2 + rng.random_range(0..self.n_frames - len - 4);
                let off = on + len - 1;
                if placed.iter().all(|b| off + gap < b.onset || on > b.offset + gap) {
                    found = Some((on, off));
                    break;
                }
            }
            let (on, off) = found
                .ok_or_else(|| Error::param("rate_per_min", rate_per_min, "blinks do not fit the track"))?;
            let apex = (on + ((len - 1) as f32 * 0.4).round() as usize).clamp(on + 1, off - 1);
            placed.push(BlinkSpec { onset: on, apex, offset: off, depth: dep });
        }
        placed.sort_by_key(|b| b.onset);
        self.blinks.extend(placed);
        self.blinks.sort_by_key(|b| b.onset);
        Ok(self)
    }

    /// Checks ranges and builds the track.
    pub fn build(&self) -> Result<LandmarkTrack> {
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return Err(Error::param("fps", self.fps, "must be positive"));
        }
        if self.n_frames == 0 {
            return Err(Error::param("n_frames", 0, "a track needs at least one frame"));
        }
        if !(self.interocular_px.is_finite() && self.interocular_px >= 4.0) {
            return Err(Error::param("interocular_px", self.interocular_px, "must be >= 4"));
        }
        if !(self.landmark_noise_px.is_finite() && self.landmark_noise_px >= 0.0) {
            return Err(Error::param("landmark_noise_px", self.landmark_noise_px, "must be >= 0"));
        }
        for b in &self.blinks {
            mex_core::Interval::new(b.onset, b.apex, b.offset)?;
            if b.offset >= self.n_frames || !(b.depth > 0.0 && b.depth <= 1.0) {
                return Err(Error::param(
                    "blink",
                    format!("{}..{}..{} depth {}", b.onset, b.apex, b.offset, b.depth),
                    "must lie inside the track with depth in (0, 1]",
                ));
            }
        }
        for e in &self.expressions {
            mex_core::Interval::new(e.onset, e.apex, e.offset)?;
            let finite = e.amplitude_iod.is_finite() && e.gains.iter().all(|g| g.is_finite() && *g >= 0.0);
            if e.offset >= self.n_frames
                || !finite
                || e.amplitude_iod < 0.0
                || e.action == FacialAction::Blink
            {
                return Err(Error::param(
                    "expression",
                    format!("{e:?}"),
                    "must lie inside the track, with finite non-negative amplitude and gains, not a blink",
                ));
            }
        }
        let neutral = canonical_neutral(self.interocular_px)?;
        let geometry = FaceGeometry::from_landmarks(&neutral)?;
        let bbox = neutral.bbox();
        let fields = self
            .expressions
            .iter()
            .map(|e| {
                // Normalise by the symmetric field's peak, sampled on a 1 px grid over the face.
                let sym = e.action.bumps(&geometry);
                let mut peak = 0.0f32;
                let (x0, y0) = (bbox.x0 - 0.5 * self.interocular_px, bbox.y0 - 0.5 * self.interocular_px);
                let (w, h) = (bbox.width() + self.interocular_px, bbox.height() + self.interocular_px);
                let step = (self.interocular_px / 100.0).max(0.25);
                let (nx, ny) = ((w / step) as usize + 1, (h / step) as usize + 1);
                for j in 0..ny {
                    for i in 0..nx {
                        let (x, y) = (x0 + i as f32 * step, y0 + j as f32 * step);
                        let (u, v) = sum_bumps(&sym, x, y);
                        peak = peak.max(u.hypot(v));
                    }
                }
                let scale = if peak > 0.0 { e.amplitude_iod * self.interocular_px / peak } else { 0.0 };
                (*e, e.action.bumps_sided(&geometry, e.gains), scale)
            })
            .collect();
        let mut r = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1a4d_0000_0000_0021);
        let mut phases = [0.0f32; 6];
        for p in phases.iter_mut() {
            *p = 2.0 * PI * r.random::<f32>();
        }
        let mut track = LandmarkTrack {
            cfg: self.clone(),
            neutral,
            fields,
            phases,
            true_landmarks: Vec::with_capacity(self.n_frames),
            landmarks: Vec::with_capacity(self.n_frames),
        };
        let mut noise = ChaCha8Rng::seed_from_u64(self.seed ^ 0x9015_e000_0000_0021);
        for t in 0..self.n_frames {
            let truth = track.exact(t);
            let sigma = self.landmark_noise_px;
            let noisy: Vec<Point2> = truth
                .iter()
                .map(|p| {
                    if sigma > 0.0 {
                        Point2::new(
                            p.x + sigma * noise.sample::<f32, _>(StandardNormal),
                            p.y + sigma * noise.sample::<f32, _>(StandardNormal),
                        )
                    } else {
                        *p
                    }
                })
                .collect();
            track.true_landmarks.push(Landmarks::new(LandmarkScheme::SixtyEight, truth)?);
            track.landmarks.push(Landmarks::new(LandmarkScheme::SixtyEight, noisy)?);
        }
        Ok(track)
    }
}

fn sum_bumps(b: &[Bump], x: f32, y: f32) -> (f32, f32) {
    b.iter().fold((0.0, 0.0), |(u, v), k| {
        let (a, c) = k.eval(x, y);
        (u + a, v + c)
    })
}

/// Upper-lid / lower-lid landmark pairs of both eyes.
const LID_PAIRS: [(usize, usize); 4] = [(37, 41), (38, 40), (43, 47), (44, 46)];

/// A built landmark track with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkTrack {
    cfg: LandmarkTrackConfig,
    neutral: Landmarks,
    fields: Vec<(SidedExpression, Vec<Bump>, f32)>,
    phases: [f32; 6],
    /// Noise-free landmarks per frame.
    pub true_landmarks: Vec<Landmarks>,
    /// Landmarks with the configured noise, per frame (what a landmark model would report).
    pub landmarks: Vec<Landmarks>,
}

impl LandmarkTrack {
    /// The configuration.
    pub fn config(&self) -> &LandmarkTrackConfig {
        &self.cfg
    }

    /// The neutral face (no blink, no expression, no head motion).
    pub fn neutral(&self) -> &Landmarks {
        &self.neutral
    }

    /// Timestamp of frame `t`, seconds.
    pub fn time_s(&self, t: usize) -> f64 {
        t as f64 / self.cfg.fps as f64
    }

    /// The expressions' displacement at neutral-face position `(x, y)` in frame `t` (pixels,
    /// no head motion): the ground-truth facial motion field.
    pub fn displacement(&self, t: usize, x: f32, y: f32) -> (f32, f32) {
        self.fields.iter().fold((0.0, 0.0), |(u, v), (e, bumps, scale)| {
            let ev = ExpressionEvent {
                action: e.action,
                amplitude_px: 0.0,
                onset: e.onset,
                apex: e.apex,
                offset: e.offset,
                kind: EventKind::Macro,
            };
            let a = ev.profile(t) * scale;
            if a == 0.0 {
                return (u, v);
            }
            let (du, dv) = sum_bumps(bumps, x, y);
            (u + a * du, v + a * dv)
        })
    }

    /// Head rotation (radians) and translation (pixels) at frame `t`.
    pub fn head(&self, t: usize) -> (f32, f32, f32) {
        let h = &self.cfg.head;
        let [a, b, c] = super::render::head_waves(h.frequency_hz, t, self.cfg.fps, &self.phases);
        (h.rotation_deg.to_radians() * a, h.translation_px * b, h.translation_px * c)
    }

    fn exact(&self, t: usize) -> Vec<Point2> {
        let mut p = self.neutral.points.clone();
        // Blinks: lids close toward each other.
        let closure: f32 = self.cfg.blinks.iter().map(|b| b.closure(t)).sum::<f32>().min(1.0);
        if closure > 0.0 {
            for &(up, lo) in &LID_PAIRS {
                let (a, b) = (p[up], p[lo]);
                let (dx, dy) = (b.x - a.x, b.y - a.y);
                p[up] = Point2::new(a.x + 0.75 * closure * dx, a.y + 0.75 * closure * dy);
                p[lo] = Point2::new(b.x - 0.25 * closure * dx, b.y - 0.25 * closure * dy);
            }
        }
        // Expressions, evaluated at the neutral positions.
        for (q, n) in p.iter_mut().zip(&self.neutral.points) {
            let (u, v) = self.displacement(t, n.x, n.y);
            q.x += u;
            q.y += v;
        }
        // Head motion about the neutral face centre.
        let c = self.neutral.bbox().center();
        let (th, tx, ty) = self.head(t);
        let (s, co) = th.sin_cos();
        for q in p.iter_mut() {
            let (rx, ry) = (q.x - c.x, q.y - c.y);
            *q = Point2::new(c.x + co * rx - s * ry + tx, c.y + s * rx + co * ry + ty);
        }
        p
    }

    /// The noise-free eye aspect ratio (mean of both eyes) at frame `t`.
    pub fn true_ear(&self, t: usize) -> Option<f64> {
        let p = &self.true_landmarks.get(t)?.points;
        let d = |a: usize, b: usize| f64::from(p[a].distance(&p[b]));
        let ear = |i: usize| (d(i + 1, i + 5) + d(i + 2, i + 4)) / (2.0 * d(i, i + 3));
        Some(0.5 * (ear(36) + ear(42)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blink_scales_the_ear_exactly_and_edges_follow_the_profile() {
        let cfg = LandmarkTrackConfig {
            n_frames: 40,
            blinks: vec![BlinkSpec { onset: 10, apex: 14, offset: 20, depth: 0.8 }],
            ..LandmarkTrackConfig::default()
        };
        let tr = cfg.build().unwrap();
        let e0 = tr.true_ear(0).unwrap();
        assert!(e0 > 0.2 && e0 < 0.4, "{e0}");
        for t in 0..40 {
            let want = e0 * (1.0 - f64::from(cfg.blinks[0].closure(t)));
            assert!((tr.true_ear(t).unwrap() - want).abs() < 1e-5, "{t}");
        }
        assert!((tr.true_ear(14).unwrap() - 0.2 * e0).abs() < 1e-5);
        // Profile 0, 0.146, 0.5, 0.854, 1 over frames 10-14, then 0.933, 0.75, 0.5, 0.25, 0.067, 0.
        assert_eq!(cfg.blinks[0].edges(0.3), Some((12, 17)));
    }

    #[test]
    fn neutral_landmarks_sit_on_the_geometry() {
        let g = FaceGeometry::astronaut();
        let lm = neutral_landmarks68(&g).unwrap();
        let f = five_of(&lm.points);
        // A similarity fit of five points: within a few pixels of the hand-measured anchors.
        assert!(f[0].distance(&g.eye[0]) < 4.0 && f[4].distance(&g.mouth_corner[1]) < 4.0, "{f:?}");
    }

    #[test]
    fn sided_expression_moves_sides_by_the_gain_ratio() {
        let cfg = LandmarkTrackConfig {
            n_frames: 30,
            expressions: vec![SidedExpression {
                action: FacialAction::Smile,
                amplitude_iod: 0.05,
                gains: [1.0, 0.5],
                onset: 5,
                apex: 15,
                offset: 25,
            }],
            ..LandmarkTrackConfig::default()
        };
        let tr = cfg.build().unwrap();
        let (n, a) = (&tr.neutral().points, &tr.true_landmarks[15].points);
        let l = n[48].distance(&a[48]);
        let r = n[54].distance(&a[54]);
        assert!((r / l - 0.5).abs() < 0.05, "{l} {r}");
        assert!(l > 2.0 && l < 6.0, "{l}");
        assert_eq!(tr.true_landmarks[0], tr.neutral().clone());
        // The neutral face is mirror-symmetric about its eye midpoint's vertical.
        let n = &tr.neutral().points;
        let cx = 0.5 * (five_of(n)[0].x + five_of(n)[1].x);
        for i in 0..68 {
            let j = MIRROR_68[i];
            assert!((n[i].x + n[j].x - 2.0 * cx).abs() < 1e-3 && (n[i].y - n[j].y).abs() < 1e-3, "{i}");
        }
    }
}
