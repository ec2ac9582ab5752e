//! Rendering of clips and their exact ground-truth flow.
//!
//! # Model and ground-truth convention
//!
//! A clip animates a subject's *template* `T` (a face-centred crop, output pixels). Frame `t` is
//!
//! ```text
//! frame_t(y) = L_t(y) · T(B_t(y)) + n_t(y),   B_t(y) = z − D_t(z),   z = H_t⁻¹(y)
//! ```
//!
//! where `D_t(z) = Σ_k a_k(t) · A_k · Φ_k(z)` sums the active facial actions (unit-peak fields
//! `Φ_k`, amplitudes `A_k` in pixels, onset-apex-offset profiles `a_k`), `H_t` is the head's
//! similarity motion (rotation about the face centre plus translation), `L_t` the illumination
//! (gain, gradient, flicker) and `n_t` Gaussian sensor noise. In words: the skin point shown at
//! template position `p` is carried to `z` with `z − D_t(z) = p` (so it moves by `D_t(z)`), then
//! the head moves it to `H_t(z)`.
//!
//! The forward flow from frame `t0` to frame `t1` at pixel `x` is the displacement of the skin
//! point seen at `x` in `t0`: with `p = B_{t0}(x)`, solve `z = p + D_{t1}(z)` by fixed-point
//! iteration (a contraction: the fields' Lipschitz constant times the amplitude is kept below 1,
//! checked at construction) and `F(x) = H_{t1}(z) − x`. Then `B_{t1}(x + F(x)) = B_{t0}(x)`
//! exactly, i.e. `frame_{t1}(x + F(x)) = frame_{t0}(x)` up to illumination and noise. `Φ_k` is
//! defined as the bilinear interpolant of its sampled planes, the same function in the renderer
//! and in the ground truth.

use super::action::{DisplacementField, FacialAction};
use super::face::{FaceGeometry, FaceImage};
use crate::{Error, Result};
use mex_core::{FlowField, GrayF32, Interval, Point2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;
use std::sync::Arc;

/// Bound on `2 · amplitude · max_gradient` of a field: keeps the deformation fold-free and the
/// ground-truth fixed-point iteration a contraction.
pub const FOLD_LIMIT: f32 = 0.9;

/// Illumination changes (all multiplicative; 0 turns a term off).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Illumination {
    /// Relative amplitude of the slow global gain drift (0.02 = ±2 %).
    pub gain_drift: f32,
    /// Relative brightness change across the crop of the linear gradient (0.03 = ±1.5 % at
    /// the edges), its direction drifting slowly.
    pub gradient: f32,
    /// Relative amplitude of the sinusoidal flicker.
    pub flicker: f32,
    /// Flicker frequency in Hz (as seen after sampling at the clip's fps).
    pub flicker_hz: f32,
}

impl Default for Illumination {
    fn default() -> Self {
        Self { gain_drift: 0.01, gradient: 0.02, flicker: 0.004, flicker_hz: 9.0 }
    }
}

impl Illumination {
    /// No illumination change.
    pub fn off() -> Self {
        Self { gain_drift: 0.0, gradient: 0.0, flicker: 0.0, flicker_hz: 0.0 }
    }
}

/// Small rigid head motion: smooth sums of two sinusoids with random phases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadMotion {
    /// Peak translation in output pixels along each axis.
    pub translation_px: f32,
    /// Peak in-plane rotation in degrees.
    pub rotation_deg: f32,
    /// Base frequency of the motion in Hz.
    pub frequency_hz: f32,
}

impl Default for HeadMotion {
    fn default() -> Self {
        Self { translation_px: 0.5, rotation_deg: 0.3, frequency_hz: 0.7 }
    }
}

impl HeadMotion {
    /// A still head.
    pub fn off() -> Self {
        Self { translation_px: 0.0, rotation_deg: 0.0, frequency_hz: 0.0 }
    }
}

/// Three smooth head-motion waves of peak at most 1 at frame `t` of a clip at `fps`: each a sum
/// of two sinusoids (`frequency_hz` and 2.3 times it) with the phases `p[2i]`, `p[2i + 1]`.
pub(crate) fn head_waves(frequency_hz: f32, t: usize, fps: f32, p: &[f32]) -> [f32; 3] {
    let w = 2.0 * PI * frequency_hz * t as f32 / fps;
    let wave = |i: usize| 0.6 * (w + p[i]).sin() + 0.4 * (2.3 * w + p[i + 1]).sin();
    [wave(0), wave(2), wave(4)]
}

/// Rendering settings shared by every clip of a generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Side of the square face-centred output crop, pixels.
    pub size: u32,
    /// Frames per second.
    pub fps: f32,
    /// Inter-ocular distance as a fraction of `size` (sets the zoom of the crop).
    pub interocular_fraction: f32,
    /// Standard deviation of the additive Gaussian sensor noise, gray levels (0..255 scale).
    pub noise_sigma: f32,
    /// Standard deviation (output pixels) of the optical blur applied to each subject's
    /// template: a real lens' softness, which also keeps bilinear re-sampling accurate.
    pub blur_sigma: f32,
    /// Illumination changes.
    pub illumination: Illumination,
    /// Head motion.
    pub head: HeadMotion,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            size: 128,
            fps: 200.0,
            interocular_fraction: 0.33,
            noise_sigma: 1.0,
            blur_sigma: 0.7,
            illumination: Illumination::default(),
            head: HeadMotion::default(),
        }
    }
}

impl SynthConfig {
    /// Defaults without noise, illumination change or head motion: frames differ only by the
    /// facial actions (for ground-truth tests).
    pub fn clean(size: u32) -> Self {
        Self {
            size,
            noise_sigma: 0.0,
            illumination: Illumination::off(),
            head: HeadMotion::off(),
            ..Self::default()
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(16..=4096).contains(&self.size) {
            return Err(Error::param("size", self.size, "must be 16..=4096"));
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return Err(Error::param("fps", self.fps, "must be positive"));
        }
        if !(self.interocular_fraction > 0.05 && self.interocular_fraction < 0.8) {
            return Err(Error::param(
                "interocular_fraction",
                self.interocular_fraction,
                "must be in (0.05, 0.8)",
            ));
        }
        let finite_nonneg = |v: f32| v.is_finite() && v >= 0.0;
        if !(finite_nonneg(self.blur_sigma) && self.blur_sigma <= 5.0) {
            return Err(Error::param("blur_sigma", self.blur_sigma, "must be in [0, 5]"));
        }
        if !finite_nonneg(self.noise_sigma) {
            return Err(Error::param("noise_sigma", self.noise_sigma, "must be finite and >= 0"));
        }
        let il = &self.illumination;
        for (name, v) in [
            ("illumination.gain_drift", il.gain_drift),
            ("illumination.gradient", il.gradient),
            ("illumination.flicker", il.flicker),
        ] {
            if !(finite_nonneg(v) && v < 0.5) {
                return Err(Error::param(name, v, "must be in [0, 0.5)"));
            }
        }
        if !finite_nonneg(il.flicker_hz) {
            return Err(Error::param("illumination.flicker_hz", il.flicker_hz, "must be >= 0"));
        }
        let h = &self.head;
        if !(finite_nonneg(h.translation_px) && h.translation_px <= 0.1 * self.size as f32) {
            return Err(Error::param("head.translation_px", h.translation_px, "must be in [0, size/10]"));
        }
        if !(finite_nonneg(h.rotation_deg) && h.rotation_deg <= 10.0) {
            return Err(Error::param("head.rotation_deg", h.rotation_deg, "must be in [0, 10]"));
        }
        if !finite_nonneg(h.frequency_hz) {
            return Err(Error::param("head.frequency_hz", h.frequency_hz, "must be >= 0"));
        }
        Ok(())
    }
}

/// Per-subject variation: face geometry, skin texture, contrast, expression strength and noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubjectStyle {
    /// Seed of the subject's random texture and anchor jitter.
    pub seed: u64,
    /// Face scale factor (1 = the base face).
    pub scale: f32,
    /// Width/height aspect change of the face (1 = none).
    pub aspect: f32,
    /// In-plane rotation of the face, degrees.
    pub rotation_deg: f32,
    /// Shift of the face in output pixels.
    pub shift: (f32, f32),
    /// Amplitude of the smooth (coarse) texture perturbation, gray levels.
    pub coarse_texture: f32,
    /// Amplitude (standard deviation) of the fine skin texture, gray levels.
    pub fine_texture: f32,
    /// Contrast factor around mid-gray.
    pub contrast: f32,
    /// Brightness offset, gray levels.
    pub brightness: f32,
    /// Random shift of each action anchor, as a fraction of the inter-ocular distance.
    pub anchor_jitter: f32,
    /// Multiplier of the expression amplitudes.
    pub amplitude_scale: f32,
    /// Multiplier of the sensor noise.
    pub noise_scale: f32,
}

impl Default for SubjectStyle {
    fn default() -> Self {
        Self::neutral()
    }
}

impl SubjectStyle {
    /// The base face unchanged.
    pub fn neutral() -> Self {
        Self {
            seed: 0,
            scale: 1.0,
            aspect: 1.0,
            rotation_deg: 0.0,
            shift: (0.0, 0.0),
            coarse_texture: 0.0,
            fine_texture: 0.0,
            contrast: 1.0,
            brightness: 0.0,
            anchor_jitter: 0.0,
            amplitude_scale: 1.0,
            noise_scale: 1.0,
        }
    }

    /// Checks that every value is finite and in a sensible range.
    pub fn validate(&self) -> Result<()> {
        let vals = [
            self.scale,
            self.aspect,
            self.rotation_deg,
            self.shift.0,
            self.shift.1,
            self.coarse_texture,
            self.fine_texture,
            self.contrast,
            self.brightness,
            self.anchor_jitter,
            self.amplitude_scale,
            self.noise_scale,
        ];
        if vals.iter().any(|v| !v.is_finite()) {
            return Err(Error::param("style", format!("{self:?}"), "non-finite value"));
        }
        if !(self.scale > 0.5 && self.scale < 2.0 && self.aspect > 0.5 && self.aspect < 2.0) {
            return Err(Error::param(
                "style.scale/aspect",
                format!("{}/{}", self.scale, self.aspect),
                "must be in (0.5, 2)",
            ));
        }
        if self.coarse_texture < 0.0 || self.fine_texture < 0.0 || self.anchor_jitter < 0.0 {
            return Err(Error::param("style.texture/jitter", format!("{self:?}"), "must be >= 0"));
        }
        if self.amplitude_scale < 0.0 || self.noise_scale < 0.0 || self.contrast <= 0.0 {
            return Err(Error::param(
                "style.scales",
                format!("{self:?}"),
                "amplitude/noise scales >= 0, contrast > 0",
            ));
        }
        Ok(())
    }

    /// A random subject drawn from `seed`: scale ±6 %, aspect ±5 %, rotation ±3°, shift ±3 % of
    /// the crop, coarse texture 2..8 gray levels, fine texture 1..4, contrast 0.8..1.2,
    /// brightness ±15, anchor jitter 3 %, amplitude 0.7..1.3, noise 0.7..1.5.
    pub fn random(seed: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5b1e_c7a1_0001);
        let mut u = |a: f32, b: f32| a + (b - a) * r.random::<f32>();
        Self {
            seed,
            scale: u(0.94, 1.06),
            aspect: u(0.95, 1.05),
            rotation_deg: u(-3.0, 3.0),
            shift: (u(-0.03, 0.03), u(-0.03, 0.03)),
            coarse_texture: u(2.0, 8.0),
            fine_texture: u(1.0, 4.0),
            contrast: u(0.8, 1.2),
            brightness: u(-15.0, 15.0),
            anchor_jitter: 0.03,
            amplitude_scale: u(0.7, 1.3),
            noise_scale: u(0.7, 1.5),
        }
    }
}

/// Kind of a timed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A micro-expression (shorter than 0.5 s).
    Micro,
    /// A macro-expression.
    Macro,
    /// A blink (a distractor, not an expression).
    Blink,
}

/// One facial action with its timing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExpressionEvent {
    /// The action.
    pub action: FacialAction,
    /// Peak displacement in output pixels (before the subject's amplitude scale).
    pub amplitude_px: f32,
    /// First frame of the movement (its displacement is still 0 there).
    pub onset: usize,
    /// Frame of greatest displacement.
    pub apex: usize,
    /// Last frame (displacement back to 0).
    pub offset: usize,
    /// Micro, macro or blink.
    pub kind: EventKind,
}

impl ExpressionEvent {
    /// The event's interval.
    pub fn interval(&self) -> Result<Interval> {
        Ok(Interval::new(self.onset, self.apex, self.offset)?)
    }

    /// The temporal profile in [0, 1]: a raised-cosine rise from onset to apex, a raised-cosine
    /// fall from apex to offset, 0 outside.
    pub fn profile(&self, t: usize) -> f32 {
        if t < self.onset || t > self.offset {
            return 0.0;
        }
        if t <= self.apex {
            if self.apex == self.onset {
                return 1.0;
            }
            let s = (t - self.onset) as f32 / (self.apex - self.onset) as f32;
            0.5 - 0.5 * (PI * s).cos()
        } else {
            let s = (t - self.apex) as f32 / (self.offset - self.apex) as f32;
            0.5 + 0.5 * (PI * s).cos()
        }
    }
}

/// A 2-D affine map `(x, y) -> (a x + b y + tx, c x + d y + ty)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Affine {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
    tx: f32,
    ty: f32,
}

impl Affine {
    fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (self.a * x + self.b * y + self.tx, self.c * x + self.d * y + self.ty)
    }

    fn inverse(&self) -> Option<Affine> {
        let det = self.a * self.d - self.b * self.c;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (a, b, c, d) = (self.d / det, -self.b / det, -self.c / det, self.a / det);
        Some(Affine { a, b, c, d, tx: -(a * self.tx + b * self.ty), ty: -(c * self.tx + d * self.ty) })
    }
}

/// A subject's face at output resolution: the template every frame is warped from and the
/// action anchors in output pixels.
#[derive(Debug, Clone)]
pub struct SubjectFace {
    /// Neutral face, `size x size`, 0..255 scale (unclamped).
    pub template: Arc<GrayF32>,
    /// Action anchors in output pixels (jittered per subject).
    pub geometry: FaceGeometry,
    /// The style the face was made with.
    pub style: SubjectStyle,
}

/// The generator: a base face and rendering settings.
#[derive(Debug, Clone)]
pub struct Synthesizer {
    face: FaceImage,
    cfg: SynthConfig,
}

impl Synthesizer {
    /// A generator over `face`; validates `cfg`.
    pub fn new(face: FaceImage, cfg: SynthConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { face, cfg })
    }

    /// A generator over the vendored astronaut face.
    pub fn astronaut(cfg: SynthConfig) -> Result<Self> {
        Self::new(FaceImage::astronaut()?, cfg)
    }

    /// The rendering settings.
    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    /// The base face.
    pub fn face(&self) -> &FaceImage {
        &self.face
    }

    /// Builds a subject's template and anchors.
    pub fn subject(&self, style: &SubjectStyle) -> Result<SubjectFace> {
        let s = self.cfg.size as usize;
        let sf = s as f32;
        let g = &self.face.geometry;
        let d_base = g.interocular();
        let k = d_base / (self.cfg.interocular_fraction * sf); // base px per output px
        let cb = g.center();
        let co = 0.5 * (sf - 1.0);
        // Crop map (output -> base): base = cb + k (y - co).
        let crop = Affine { a: k, b: 0.0, c: 0.0, d: k, tx: cb.x - k * co, ty: cb.y - k * co };
        // Subject jitter (output -> output): y' = co + M (y - co) + shift.
        style.validate()?;
        let (sr, cr) = style.rotation_deg.to_radians().sin_cos();
        let (ax, ay) = (style.aspect.sqrt(), 1.0 / style.aspect.sqrt());
        let (m_a, m_b, m_c, m_d) =
            (cr * ax / style.scale, -sr * ay / style.scale, sr * ax / style.scale, cr * ay / style.scale);
        let (shx, shy) = (style.shift.0 * sf, style.shift.1 * sf);
        let jit = Affine {
            a: m_a,
            b: m_b,
            c: m_c,
            d: m_d,
            tx: co - (m_a * co + m_b * co) + shx,
            ty: co - (m_c * co + m_d * co) + shy,
        };
        // Composite output -> base.
        let full = Affine {
            a: crop.a * jit.a + crop.b * jit.c,
            b: crop.a * jit.b + crop.b * jit.d,
            c: crop.c * jit.a + crop.d * jit.c,
            d: crop.c * jit.b + crop.d * jit.d,
            tx: crop.a * jit.tx + crop.b * jit.ty + crop.tx,
            ty: crop.c * jit.tx + crop.d * jit.ty + crop.ty,
        };
        let inv = full
            .inverse()
            .ok_or_else(|| Error::param("style", format!("{style:?}"), "degenerate face transform"))?;

        // Anti-alias the base before sampling when it is shrunk.
        let shrink = k / style.scale;
        let base = if shrink > 1.05 {
            gaussian_blur(&self.face.image, 0.45 * (shrink * shrink - 1.0).sqrt())
        } else {
            self.face.image.clone()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(style.seed ^ 0x7e37_0f5a_11ce_0002);
        // Coarse texture: a 6x6 grid of N(0,1) values, bilinearly interpolated.
        let grid = 6usize;
        let coarse: Vec<f32> = (0..grid * grid).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
        // Fine texture: blurred white noise normalised to unit standard deviation.
        let fine = if style.fine_texture > 0.0 {
            let raw = GrayF32::from_fn(s as u32, s as u32, |_, _| {
                image::Luma([rng.sample::<f32, _>(StandardNormal)])
            });
            let mut b = gaussian_blur(&raw, 0.8);
            let n = b.as_raw().len() as f32;
            let m = b.as_raw().iter().sum::<f32>() / n;
            let sd = (b.as_raw().iter().map(|v| (v - m) * (v - m)).sum::<f32>() / n).sqrt().max(1e-6);
            b.iter_mut().for_each(|v| *v = (*v - m) / sd);
            Some(b)
        } else {
            None
        };
        let mut tpl = GrayF32::new(s as u32, s as u32);
        let cs = (grid - 1) as f32 / (sf - 1.0).max(1.0);
        for y in 0..s {
            for x in 0..s {
                let (bx, by) = full.apply(x as f32, y as f32);
                let mut v = sample_bilinear(&base, bx, by);
                v = (v - 128.0) * style.contrast + 128.0 + style.brightness;
                if style.coarse_texture > 0.0 {
                    let c = bilinear_grid(&coarse, grid, x as f32 * cs, y as f32 * cs);
                    v += style.coarse_texture * c;
                }
                if let Some(f) = &fine {
                    v += style.fine_texture * f.as_raw()[y * s + x];
                }
                tpl.as_mut()[y * s + x] = v;
            }
        }
        let tpl = if self.cfg.blur_sigma > 0.0 { gaussian_blur(&tpl, self.cfg.blur_sigma) } else { tpl };
        let jitter = style.anchor_jitter * d_base / k;
        let mut geo = g.map(|p| {
            let (x, y) = inv.apply(p.x, p.y);
            Point2::new(x, y)
        });
        if jitter > 0.0 {
            let mut j = |p: Point2| {
                Point2::new(
                    p.x + jitter * rng.sample::<f32, _>(StandardNormal),
                    p.y + jitter * rng.sample::<f32, _>(StandardNormal),
                )
            };
            geo.brow_inner = geo.brow_inner.map(&mut j);
            geo.brow_mid = geo.brow_mid.map(&mut j);
            geo.brow_outer = geo.brow_outer.map(&mut j);
            geo.mouth_corner = geo.mouth_corner.map(&mut j);
            geo.nose_root = j(geo.nose_root);
            geo.upper_lip = j(geo.upper_lip);
            geo.lower_lip = j(geo.lower_lip);
        }
        Ok(SubjectFace { template: Arc::new(tpl), geometry: geo, style: *style })
    }

    /// The largest amplitude (pixels, before the subject's amplitude scale) that `action` can
    /// have on `subject` without folding the image.
    pub fn max_amplitude(&self, subject: &SubjectFace, action: FacialAction) -> f32 {
        let s = self.cfg.size as usize;
        let f = DisplacementField::from_bumps(s, s, &action.bumps(&subject.geometry));
        let scale = if action == FacialAction::Blink { 1.0 } else { subject.style.amplitude_scale };
        FOLD_LIMIT / (2.0 * f.max_gradient().max(1e-9) * scale)
    }

    /// A clip of `n_frames` frames showing `events` on `subject`; `seed` drives the noise, head
    /// motion and illumination phases. Errors when an event lies outside the clip or an
    /// amplitude would fold the image (displacement gradient too large).
    pub fn clip(
        &self,
        subject: &SubjectFace,
        n_frames: usize,
        events: &[ExpressionEvent],
        seed: u64,
    ) -> Result<SynthClip> {
        if n_frames == 0 {
            return Err(Error::param("n_frames", 0, "a clip needs at least one frame"));
        }
        let s = self.cfg.size as usize;
        let mut fields: Vec<(ExpressionEvent, f32, Arc<DisplacementField>)> =
            Vec::with_capacity(events.len());
        let mut cache: Vec<(FacialAction, Arc<DisplacementField>)> = Vec::new();
        for ev in events {
            ev.interval()?;
            if ev.offset >= n_frames {
                return Err(Error::param(
                    "event.offset",
                    ev.offset,
                    format!("beyond the clip's {n_frames} frames"),
                ));
            }
            if !(ev.amplitude_px.is_finite() && ev.amplitude_px >= 0.0) {
                return Err(Error::param("amplitude_px", ev.amplitude_px, "must be finite and >= 0"));
            }
            let field = match cache.iter().find(|(a, _)| *a == ev.action) {
                Some((_, f)) => f.clone(),
                None => {
                    let f =
                        Arc::new(DisplacementField::from_bumps(s, s, &ev.action.bumps(&subject.geometry)));
                    cache.push((ev.action, f.clone()));
                    f
                }
            };
            let amp = ev.amplitude_px
                * if ev.kind == EventKind::Blink { 1.0 } else { subject.style.amplitude_scale };
            if 2.0 * amp * field.max_gradient() >= FOLD_LIMIT {
                return Err(Error::param(
                    "amplitude_px",
                    ev.amplitude_px,
                    format!("too large for a {s}px crop: the displacement field would fold the image"),
                ));
            }
            fields.push((*ev, amp, field));
        }
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0xc11b_a5ed_0000_0003);
        let mut ph = [0.0f32; 12];
        for p in ph.iter_mut() {
            *p = 2.0 * PI * r.random::<f32>();
        }
        Ok(SynthClip {
            cfg: self.cfg,
            template: subject.template.clone(),
            geometry: subject.geometry,
            noise_sigma: self.cfg.noise_sigma * subject.style.noise_scale,
            fields,
            n_frames,
            seed,
            phases: ph,
        })
    }
}

/// A rendered-on-demand clip with exact ground truth. Frames are produced by [`SynthClip::frame`]
/// or [`SynthClip::frames`] (parallel); nothing is written to disk.
#[derive(Debug, Clone)]
pub struct SynthClip {
    cfg: SynthConfig,
    template: Arc<GrayF32>,
    geometry: FaceGeometry,
    noise_sigma: f32,
    fields: Vec<(ExpressionEvent, f32, Arc<DisplacementField>)>,
    n_frames: usize,
    seed: u64,
    phases: [f32; 12],
}

/// Per-frame state of the model.
struct FrameState<'a> {
    /// Active fields with their weight (profile x amplitude).
    active: Vec<(f32, &'a DisplacementField)>,
    /// Head rotation (cos, sin) and translation.
    cos: f32,
    sin: f32,
    tx: f32,
    ty: f32,
}

impl SynthClip {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.n_frames
    }

    /// Always false: a clip has at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Frames per second.
    pub fn fps(&self) -> f32 {
        self.cfg.fps
    }

    /// Frame size `(width, height)`.
    pub fn size(&self) -> (u32, u32) {
        (self.cfg.size, self.cfg.size)
    }

    /// The clip's events (expressions and blinks) with their timing: the ground truth for spotting.
    pub fn events(&self) -> Vec<ExpressionEvent> {
        self.fields.iter().map(|(e, _, _)| *e).collect()
    }

    /// The first expression (non-blink) event.
    pub fn expression(&self) -> Option<ExpressionEvent> {
        self.fields.iter().map(|(e, _, _)| *e).find(|e| e.kind != EventKind::Blink)
    }

    /// The first expression's interval.
    pub fn interval(&self) -> Option<Interval> {
        self.expression().and_then(|e| e.interval().ok())
    }

    /// The first expression's MEGC 3-class label.
    pub fn label(&self) -> Option<usize> {
        self.expression().and_then(|e| e.action.megc3_label())
    }

    /// Action anchors in output pixels (the subject's face geometry).
    pub fn geometry(&self) -> &FaceGeometry {
        &self.geometry
    }

    /// The subject's neutral template (before head motion, illumination and noise).
    pub fn template(&self) -> &GrayF32 {
        &self.template
    }

    /// Landmarks of the neutral face in output pixels (5 points, MTCNN order).
    pub fn landmarks5(&self) -> mex_core::Landmarks {
        self.geometry.landmarks5()
    }

    fn center(&self) -> f32 {
        0.5 * (self.cfg.size as f32 - 1.0)
    }

    fn state(&self, t: usize) -> FrameState<'_> {
        let active = self
            .fields
            .iter()
            .filter_map(|(e, amp, f)| {
                let w = e.profile(t) * amp;
                (w != 0.0).then_some((w, f.as_ref()))
            })
            .collect();
        let (tx, ty, th) = self.head(t);
        let (sin, cos) = th.sin_cos();
        FrameState { active, cos, sin, tx, ty }
    }

    /// Head translation `(tx, ty)` in pixels and rotation in radians at frame `t`.
    pub fn head(&self, t: usize) -> (f32, f32, f32) {
        let h = &self.cfg.head;
        let [a, b, c] = head_waves(h.frequency_hz, t, self.cfg.fps, &self.phases);
        (h.translation_px * a, h.translation_px * b, h.rotation_deg.to_radians() * c)
    }

    /// Illumination factor at pixel `(x, y)` of frame `t`.
    fn illumination(&self, t: usize) -> impl Fn(f32, f32) -> f32 {
        let il = self.cfg.illumination;
        let ts = t as f32 / self.cfg.fps;
        let p = self.phases;
        let gain = 1.0 + il.gain_drift * (2.0 * PI * 0.3 * ts + p[6]).sin();
        let flick = 1.0 + il.flicker * (2.0 * PI * il.flicker_hz * ts + p[7]).sin();
        let psi = p[8] + 0.5 * (2.0 * PI * 0.2 * ts + p[9]).sin();
        let s = self.cfg.size as f32;
        let (gx, gy) = (il.gradient * psi.cos() / s, il.gradient * psi.sin() / s);
        let c = self.center();
        let k = gain * flick;
        move |x, y| k * (1.0 + gx * (x - c) + gy * (y - c))
    }

    /// Where frame `t`'s pixel `(x, y)` samples the template: `B_t(y) = z − D_t(z)`, `z = H_t⁻¹(y)`.
    pub fn backward_map(&self, t: usize, x: f32, y: f32) -> (f32, f32) {
        let st = self.state(t);
        self.backward(&st, x, y)
    }

    #[inline]
    fn backward(&self, st: &FrameState<'_>, x: f32, y: f32) -> (f32, f32) {
        let c = self.center();
        let (rx, ry) = (x - c - st.tx, y - c - st.ty);
        // Inverse rotation.
        let zx = c + st.cos * rx + st.sin * ry;
        let zy = c - st.sin * rx + st.cos * ry;
        let (mut px, mut py) = (zx, zy);
        for (w, f) in &st.active {
            let (u, v) = f.sample(zx, zy);
            px -= w * u;
            py -= w * v;
        }
        (px, py)
    }

    /// Renders frame `t` into `out` (resized to the clip size when needed).
    pub fn render_into(&self, t: usize, out: &mut GrayF32) -> Result<()> {
        if t >= self.n_frames {
            return Err(Error::OutOfRange { what: "frame", index: t, len: self.n_frames });
        }
        let s = self.cfg.size;
        if out.dimensions() != (s, s) {
            *out = GrayF32::new(s, s);
        }
        let st = self.state(t);
        let light = self.illumination(t);
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, t as u64));
        let sigma = self.noise_sigma;
        let su = s as usize;
        let buf: &mut [f32] = out.as_mut();
        for y in 0..su {
            let row = &mut buf[y * su..(y + 1) * su];
            for (x, o) in row.iter_mut().enumerate() {
                let (xf, yf) = (x as f32, y as f32);
                let (px, py) = self.backward(&st, xf, yf);
                let mut v = sample_bilinear(&self.template, px, py) * light(xf, yf);
                if sigma > 0.0 {
                    v += sigma * rng.sample::<f32, _>(StandardNormal);
                }
                *o = v;
            }
        }
        Ok(())
    }

    /// Frame `t`.
    pub fn frame(&self, t: usize) -> Result<GrayF32> {
        let mut out = GrayF32::new(self.cfg.size, self.cfg.size);
        self.render_into(t, &mut out)?;
        Ok(out)
    }

    /// Every frame, rendered in parallel (deterministic: each frame has its own noise stream).
    pub fn frames(&self) -> Vec<GrayF32> {
        (0..self.n_frames)
            .into_par_iter()
            .map(|t| {
                let mut out = GrayF32::new(self.cfg.size, self.cfg.size);
                // `t` is in range, so rendering cannot fail.
                let _ = self.render_into(t, &mut out);
                out
            })
            .collect()
    }

    /// Exact forward flow from frame `t0` to frame `t1` (see the module docs for the convention):
    /// the pixel `x` of frame `t0` shows the skin point that is at `x + F(x)` in frame `t1`.
    pub fn flow(&self, t0: usize, t1: usize) -> Result<FlowField> {
        for t in [t0, t1] {
            if t >= self.n_frames {
                return Err(Error::OutOfRange { what: "frame", index: t, len: self.n_frames });
            }
        }
        let s = self.cfg.size as usize;
        let (s0, s1) = (self.state(t0), self.state(t1));
        let c = self.center();
        let mut u = vec![0.0f32; s * s];
        let mut v = vec![0.0f32; s * s];
        u.par_chunks_mut(s).zip(v.par_chunks_mut(s)).enumerate().for_each(|(y, (ur, vr))| {
            for x in 0..s {
                let (xf, yf) = (x as f32, y as f32);
                let (px, py) = self.backward(&s0, xf, yf);
                // Solve z = p + D_t1(z).
                let (mut zx, mut zy) = (px, py);
                for _ in 0..60 {
                    let (mut nx, mut ny) = (px, py);
                    for (w, f) in &s1.active {
                        let (a, b) = f.sample(zx, zy);
                        nx += w * a;
                        ny += w * b;
                    }
                    let done = (nx - zx).abs() + (ny - zy).abs() < 1e-6;
                    zx = nx;
                    zy = ny;
                    if done {
                        break;
                    }
                }
                // y = H_t1(z).
                let (rx, ry) = (zx - c, zy - c);
                let yx = c + s1.cos * rx - s1.sin * ry + s1.tx;
                let yy = c + s1.sin * rx + s1.cos * ry + s1.ty;
                ur[x] = yx - xf;
                vr[x] = yy - yf;
            }
        });
        Ok(FlowField::from_planes(s, s, u, v)?)
    }

    /// The subject's neutral 68 landmarks (OpenFace's mean face fitted to the anchors; see
    /// [`neutral_landmarks68`](super::landmarks::neutral_landmarks68)).
    pub fn neutral_landmarks68(&self) -> Result<mex_core::Landmarks> {
        super::landmarks::neutral_landmarks68(&self.geometry)
    }

    /// Ground-truth 68 landmarks of frame `t`: the skin points marked by the neutral landmarks,
    /// carried by the facial actions and the head motion (`z = p + D_t(z)` solved by fixed-point
    /// iteration, then `H_t(z)`; module docs), output pixels.
    pub fn landmarks68(&self, t: usize) -> Result<mex_core::Landmarks> {
        if t >= self.n_frames {
            return Err(Error::OutOfRange { what: "frame", index: t, len: self.n_frames });
        }
        let neutral = self.neutral_landmarks68()?;
        let st = self.state(t);
        let c = self.center();
        let pts = neutral
            .points
            .iter()
            .map(|p| {
                let (mut zx, mut zy) = (p.x, p.y);
                for _ in 0..60 {
                    let (mut nx, mut ny) = (p.x, p.y);
                    for (w, f) in &st.active {
                        let (a, b) = f.sample(zx, zy);
                        nx += w * a;
                        ny += w * b;
                    }
                    let done = (nx - zx).abs() + (ny - zy).abs() < 1e-6;
                    zx = nx;
                    zy = ny;
                    if done {
                        break;
                    }
                }
                let (rx, ry) = (zx - c, zy - c);
                Point2::new(c + st.cos * rx - st.sin * ry + st.tx, c + st.sin * rx + st.cos * ry + st.ty)
            })
            .collect();
        Ok(mex_core::Landmarks::new(mex_core::LandmarkScheme::SixtyEight, pts)?)
    }

    /// Exact flow from the first expression's onset frame to frame `t` (from frame 0 when the
    /// clip has no expression).
    pub fn flow_from_onset(&self, t: usize) -> Result<FlowField> {
        let on = self.expression().map_or(0, |e| e.onset);
        self.flow(on, t)
    }
}

/// SplitMix64 of `a` combined with `b`: independent per-frame seeds.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Bilinear sample of `img` at `(x, y)`, clamped to the border.
#[inline]
pub fn sample_bilinear(img: &GrayF32, x: f32, y: f32) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return 0.0;
    }
    let xf = x.clamp(0.0, (w - 1) as f32);
    let yf = y.clamp(0.0, (h - 1) as f32);
    let x0 = (xf as usize).min(w.saturating_sub(2));
    let y0 = (yf as usize).min(h.saturating_sub(2));
    let (fx, fy) = (xf - x0 as f32, yf - y0 as f32);
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let p = img.as_raw();
    let top = p[y0 * w + x0] + fx * (p[y0 * w + x1] - p[y0 * w + x0]);
    let bot = p[y1 * w + x0] + fx * (p[y1 * w + x1] - p[y1 * w + x0]);
    top + fy * (bot - top)
}

fn bilinear_grid(g: &[f32], n: usize, x: f32, y: f32) -> f32 {
    let xf = x.clamp(0.0, (n - 1) as f32);
    let yf = y.clamp(0.0, (n - 1) as f32);
    let x0 = (xf as usize).min(n - 2);
    let y0 = (yf as usize).min(n - 2);
    let (fx, fy) = (xf - x0 as f32, yf - y0 as f32);
    let top = g[y0 * n + x0] + fx * (g[y0 * n + x0 + 1] - g[y0 * n + x0]);
    let bot = g[(y0 + 1) * n + x0] + fx * (g[(y0 + 1) * n + x0 + 1] - g[(y0 + 1) * n + x0]);
    top + fy * (bot - top)
}

/// Separable Gaussian blur with clamped borders.
pub fn gaussian_blur(img: &GrayF32, sigma: f32) -> GrayF32 {
    if sigma.is_nan() || sigma <= 0.0 {
        return img.clone();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let ks: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / ks).collect();
    let (w, h) = (img.width() as isize, img.height() as isize);
    let src = img.as_raw();
    let mut tmp = vec![0.0f32; src.len()];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let xx = (x + j as isize - r).clamp(0, w - 1);
                acc += kv * src[(y * w + xx) as usize];
            }
            tmp[(y * w + x) as usize] = acc;
        }
    }
    let mut out = vec![0.0f32; src.len()];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let yy = (y + j as isize - r).clamp(0, h - 1);
                acc += kv * tmp[(yy * w + x) as usize];
            }
            out[(y * w + x) as usize] = acc;
        }
    }
    GrayF32::from_raw(img.width(), img.height(), out).unwrap_or_else(|| img.clone())
}
