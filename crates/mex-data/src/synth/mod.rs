//! Synthetic micro-expression data with exact ground truth.
//!
//! A real face (the vendored public-domain astronaut portrait, or any image with its landmarks)
//! is animated with facial-action-like displacement fields ([`FacialAction`]: AU1+2, AU4, AU6+12,
//! AU9, AU14, AU15, blinks) following onset-apex-offset profiles, under sensor noise, illumination
//! changes and small head motion. Every frame's flow from the onset frame is known exactly
//! ([`SynthClip::flow`]; convention in the [`render`] module docs).
//!
//! * [`ClipConfig`]: one short clip with one expression (the unit of recognition data);
//! * [`LongVideoConfig`]: a long video with micro- and macro-expressions and blinks at random
//!   times (spotting data);
//! * [`LandmarkTrackConfig`]: 68-point landmark sequences (no image) with blinks of exact timing
//!   and depth and left/right asymmetric expressions of known ratio (indicator validation);
//! * [`SynthDatasetConfig`]: a composite dataset (subjects x classes, optionally three
//!   pseudo-datasets) that plugs into every protocol like a real dataset.
//!
//! Everything is deterministic per seed and nothing is written to disk.

pub mod action;
pub mod composite;
pub mod face;
pub mod landmarks;
pub mod render;

pub use action::{Bump, DisplacementField, FacialAction};
pub use composite::{SynthDataset, SynthDatasetConfig};
pub use face::{FaceGeometry, FaceImage, ASTRONAUT_FACE_PNG, ASTRONAUT_LANDMARKS5};
pub use landmarks::{
    neutral_landmarks68, BlinkSpec, LandmarkTrack, LandmarkTrackConfig, SidedExpression, TrackHeadMotion,
};
pub use render::{
    gaussian_blur, EventKind, ExpressionEvent, HeadMotion, Illumination, SubjectFace, SubjectStyle,
    SynthClip, SynthConfig, Synthesizer,
};

use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Blink amplitude as a fraction of the output inter-ocular distance.
pub const BLINK_AMPLITUDE: f32 = 0.07;

/// One short clip with one facial action.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    /// Rendering settings.
    pub synth: SynthConfig,
    /// The action shown.
    pub action: FacialAction,
    /// Peak displacement, output pixels (the field's largest displacement at the apex).
    pub amplitude_px: f32,
    /// Number of frames.
    pub n_frames: usize,
    /// Onset frame (0-based).
    pub onset: usize,
    /// Apex frame.
    pub apex: usize,
    /// Offset frame.
    pub offset: usize,
    /// Optional blink `(first frame, length in frames)`.
    pub blink: Option<(usize, usize)>,
    /// Subject variation.
    pub subject: SubjectStyle,
    /// Seed of noise, head motion and illumination.
    pub seed: u64,
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            synth: SynthConfig::default(),
            action: FacialAction::Smile,
            amplitude_px: 1.5,
            n_frames: 60,
            onset: 5,
            apex: 25,
            offset: 50,
            blink: None,
            subject: SubjectStyle::neutral(),
            seed: 0,
        }
    }
}

impl ClipConfig {
    /// Checks ranges (the rendering settings, the interval, the amplitude range 0..=3 px).
    pub fn validate(&self) -> Result<()> {
        self.synth.validate()?;
        if !(self.amplitude_px.is_finite() && (0.0..=3.0).contains(&self.amplitude_px)) {
            return Err(Error::param("amplitude_px", self.amplitude_px, "must be in [0, 3] px"));
        }
        mex_core::Interval::new(self.onset, self.apex, self.offset)?;
        if self.offset >= self.n_frames {
            return Err(Error::param(
                "offset",
                self.offset,
                format!("must be < n_frames = {}", self.n_frames),
            ));
        }
        if let Some((b, l)) = self.blink {
            if l < 2 || b + l > self.n_frames {
                return Err(Error::param(
                    "blink",
                    format!("{b}+{l}"),
                    "must be at least 2 frames inside the clip",
                ));
            }
        }
        if self.action == FacialAction::Blink {
            return Err(Error::param(
                "action",
                "Blink",
                "use `blink` for blinks; the action must be an expression",
            ));
        }
        Ok(())
    }

    /// The clip's events (the expression, then the optional blink).
    pub fn events(&self) -> Vec<ExpressionEvent> {
        let mut v = vec![ExpressionEvent {
            action: self.action,
            amplitude_px: self.amplitude_px,
            onset: self.onset,
            apex: self.apex,
            offset: self.offset,
            kind: if ((self.offset - self.onset + 1) as f32) < 0.5 * self.synth.fps {
                EventKind::Micro
            } else {
                EventKind::Macro
            },
        }];
        if let Some((b, l)) = self.blink {
            v.push(blink_event(&self.synth, b, l));
        }
        v
    }

    /// Builds the clip on the vendored astronaut face.
    pub fn build(&self) -> Result<SynthClip> {
        self.validate()?;
        let s = Synthesizer::astronaut(self.synth)?;
        self.build_with(&s)
    }

    /// Builds the clip with a given generator (another face); `self.synth` is ignored in favour
    /// of the generator's settings.
    pub fn build_with(&self, synth: &Synthesizer) -> Result<SynthClip> {
        self.validate()?;
        let face = synth.subject(&self.subject)?;
        synth.clip(&face, self.n_frames, &self.events(), self.seed)
    }
}

fn blink_event(cfg: &SynthConfig, start: usize, len: usize) -> ExpressionEvent {
    let amp = BLINK_AMPLITUDE * cfg.interocular_fraction * cfg.size as f32;
    ExpressionEvent {
        action: FacialAction::Blink,
        amplitude_px: amp,
        onset: start,
        apex: start + len / 2,
        offset: start + len - 1,
        kind: EventKind::Blink,
    }
}

/// A long video for spotting: micro- and macro-expressions and blinks at random, non-overlapping
/// times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LongVideoConfig {
    /// Rendering settings (CAS(ME)² records at 30 fps, SAMM at 200).
    pub synth: SynthConfig,
    /// Length in seconds.
    pub duration_s: f32,
    /// Number of micro-expressions.
    pub n_micro: usize,
    /// Number of macro-expressions.
    pub n_macro: usize,
    /// Micro-expression amplitude range, pixels.
    pub micro_amplitude_px: (f32, f32),
    /// Macro-expression amplitude range, pixels.
    pub macro_amplitude_px: (f32, f32),
    /// Micro-expression duration range, seconds (must stay below 0.5).
    pub micro_duration_s: (f32, f32),
    /// Macro-expression duration range, seconds.
    pub macro_duration_s: (f32, f32),
    /// Blinks per minute.
    pub blinks_per_minute: f32,
    /// Minimum gap between events, seconds.
    pub min_gap_s: f32,
    /// Subject variation.
    pub subject: SubjectStyle,
    /// Seed of the schedule, noise, head motion and illumination.
    pub seed: u64,
}

impl Default for LongVideoConfig {
    fn default() -> Self {
        Self {
            synth: SynthConfig { fps: 30.0, ..SynthConfig::default() },
            duration_s: 20.0,
            n_micro: 3,
            n_macro: 2,
            micro_amplitude_px: (0.4, 1.5),
            macro_amplitude_px: (1.5, 3.0),
            micro_duration_s: (0.2, 0.45),
            macro_duration_s: (0.6, 2.0),
            blinks_per_minute: 12.0,
            min_gap_s: 0.3,
            subject: SubjectStyle::neutral(),
            seed: 0,
        }
    }
}

impl LongVideoConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        self.synth.validate()?;
        if !(self.duration_s.is_finite() && self.duration_s > 0.0 && self.duration_s * self.synth.fps < 1e7) {
            return Err(Error::param("duration_s", self.duration_s, "must be positive and reasonable"));
        }
        let ok_range = |r: (f32, f32), lo: f32, hi: f32| {
            r.0.is_finite() && r.1.is_finite() && lo <= r.0 && r.0 <= r.1 && r.1 <= hi
        };
        if !ok_range(self.micro_amplitude_px, 0.0, 3.0) {
            return Err(Error::param(
                "micro_amplitude_px",
                format!("{:?}", self.micro_amplitude_px),
                "need 0 <= lo <= hi <= 3",
            ));
        }
        if !ok_range(self.macro_amplitude_px, 0.0, 3.0) {
            return Err(Error::param(
                "macro_amplitude_px",
                format!("{:?}", self.macro_amplitude_px),
                "need 0 <= lo <= hi <= 3",
            ));
        }
        if !ok_range(self.micro_duration_s, 0.0, 0.4999) || self.micro_duration_s.0 * self.synth.fps < 3.0 {
            return Err(Error::param(
                "micro_duration_s",
                format!("{:?}", self.micro_duration_s),
                "need lo <= hi < 0.5 s and at least 3 frames",
            ));
        }
        if !ok_range(self.macro_duration_s, 0.5, 60.0) {
            return Err(Error::param(
                "macro_duration_s",
                format!("{:?}", self.macro_duration_s),
                "need 0.5 <= lo <= hi <= 60 s",
            ));
        }
        if !(self.blinks_per_minute.is_finite() && self.blinks_per_minute >= 0.0) {
            return Err(Error::param("blinks_per_minute", self.blinks_per_minute, "must be >= 0"));
        }
        if !(self.min_gap_s.is_finite() && self.min_gap_s >= 0.0) {
            return Err(Error::param("min_gap_s", self.min_gap_s, "must be >= 0"));
        }
        Ok(())
    }

    /// The random schedule of events, sorted by onset. Errors when the events do not fit.
    pub fn schedule(&self) -> Result<(usize, Vec<ExpressionEvent>)> {
        self.validate()?;
        let fps = self.synth.fps;
        let n_frames = (self.duration_s * fps).round().max(1.0) as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x10e9_71de_0000_0004);
        let mut todo: Vec<(EventKind, usize)> = Vec::new();
        let frames = |s: f32| (s * fps).round().max(3.0) as usize;
        for _ in 0..self.n_macro {
            let d = self.macro_duration_s.0
                + (self.macro_duration_s.1 - self.macro_duration_s.0) * rng.random::<f32>();
            todo.push((EventKind::Macro, frames(d)));
        }
        for _ in 0..self.n_micro {
            let d = self.micro_duration_s.0
                + (self.micro_duration_s.1 - self.micro_duration_s.0) * rng.random::<f32>();
            // Strictly below 0.5 s counting frames inclusively.
            let n = frames(d).min(((0.5 * fps).ceil() as usize).saturating_sub(1)).max(3);
            todo.push((EventKind::Micro, n));
        }
        let n_blinks = (self.blinks_per_minute * self.duration_s / 60.0).round() as usize;
        for _ in 0..n_blinks {
            let d = 0.15 + 0.15 * rng.random::<f32>();
            todo.push((EventKind::Blink, frames(d)));
        }
        let gap = (self.min_gap_s * fps).ceil() as usize;
        let mut placed: Vec<(usize, usize)> = Vec::new();
        let mut events = Vec::with_capacity(todo.len());
        for (kind, len) in todo {
            if len + 2 > n_frames {
                return Err(Error::param("duration_s", self.duration_s, "too short for the events"));
            }
            let mut found = None;
            for _ in 0..2000 {
                let on = 1 + rng.random_range(0..n_frames - len - 1);
                let off = on + len - 1;
                if placed.iter().all(|&(a, b)| off + gap < a || on > b + gap) {
                    found = Some((on, off));
                    break;
                }
            }
            let (on, off) = found.ok_or_else(|| {
                Error::param("duration_s", self.duration_s, "too short to place every event")
            })?;
            placed.push((on, off));
            let ev = match kind {
                EventKind::Blink => blink_event(&self.synth, on, len),
                _ => {
                    let (lo, hi) = if kind == EventKind::Micro {
                        self.micro_amplitude_px
                    } else {
                        self.macro_amplitude_px
                    };
                    let action =
                        FacialAction::EXPRESSIONS[rng.random_range(0..FacialAction::EXPRESSIONS.len())];
                    let frac = 0.3 + 0.3 * rng.random::<f32>();
                    let apex = (on + ((len - 1) as f32 * frac).round() as usize).clamp(on + 1, off - 1);
                    ExpressionEvent {
                        action,
                        amplitude_px: lo + (hi - lo) * rng.random::<f32>(),
                        onset: on,
                        apex,
                        offset: off,
                        kind,
                    }
                }
            };
            events.push(ev);
        }
        events.sort_by_key(|e| e.onset);
        Ok((n_frames, events))
    }

    /// Builds the long video on the astronaut face.
    pub fn build(&self) -> Result<SynthClip> {
        self.validate()?;
        self.build_with(&Synthesizer::astronaut(self.synth)?)
    }

    /// Builds the long video with a given generator.
    pub fn build_with(&self, synth: &Synthesizer) -> Result<SynthClip> {
        let (n, events) = self.schedule()?;
        let face = synth.subject(&self.subject)?;
        synth.clip(&face, n, &events, self.seed)
    }
}
