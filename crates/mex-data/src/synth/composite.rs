//! A synthetic composite dataset: subjects x classes (optionally spread over three
//! pseudo-datasets), exposed as an ordinary [`Dataset`] plus a [`FrameSource`].

use super::{
    blink_event, EventKind, ExpressionEvent, FacialAction, SubjectFace, SubjectStyle, SynthClip, SynthConfig,
    Synthesizer,
};
use crate::{Dataset, Error, FrameSource, Result, Sample};
use mex_core::{ClassSet, GrayF32};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Settings of a synthetic composite dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthDatasetConfig {
    /// Rendering settings (the `fps` is that of the first pseudo-dataset; the second runs at
    /// half of it, like SMIC's 100 fps against CASME II's and SAMM's 200).
    pub synth: SynthConfig,
    /// Number of subjects (dealt round-robin into the pseudo-datasets).
    pub n_subjects: usize,
    /// Clips per subject for each MEGC class: negative, positive, surprise.
    pub clips_per_class: [usize; 3],
    /// 1 (one dataset named `synth`) or 3 (`synth_a`, `synth_b`, `synth_c`, with subject names
    /// in the CASME II, SMIC and SAMM styles).
    pub pseudo_datasets: usize,
    /// Peak displacement range, pixels.
    pub amplitude_px: (f32, f32),
    /// Probability that a clip also holds a blink.
    pub blink_probability: f32,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for SynthDatasetConfig {
    fn default() -> Self {
        Self {
            synth: SynthConfig::default(),
            n_subjects: 9,
            clips_per_class: [3, 2, 2],
            pseudo_datasets: 3,
            amplitude_px: (0.5, 2.5),
            blink_probability: 0.2,
            seed: 0,
        }
    }
}

impl SynthDatasetConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        self.synth.validate()?;
        if self.n_subjects == 0 || self.n_subjects > 999 {
            return Err(Error::param("n_subjects", self.n_subjects, "must be 1..=999"));
        }
        if self.clips_per_class.iter().sum::<usize>() == 0 {
            return Err(Error::param(
                "clips_per_class",
                format!("{:?}", self.clips_per_class),
                "no clip at all",
            ));
        }
        if self.pseudo_datasets != 1 && self.pseudo_datasets != 3 {
            return Err(Error::param("pseudo_datasets", self.pseudo_datasets, "must be 1 or 3"));
        }
        if self.pseudo_datasets > self.n_subjects {
            return Err(Error::param(
                "pseudo_datasets",
                self.pseudo_datasets,
                "more pseudo-datasets than subjects",
            ));
        }
        let (lo, hi) = self.amplitude_px;
        if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi && hi <= 3.0) {
            return Err(Error::param(
                "amplitude_px",
                format!("{:?}", self.amplitude_px),
                "need 0 < lo <= hi <= 3",
            ));
        }
        if !(0.0..=1.0).contains(&self.blink_probability) {
            return Err(Error::param("blink_probability", self.blink_probability, "must be in [0, 1]"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Entry {
    synth: usize,
    subject: usize,
    n_frames: usize,
    events: Vec<ExpressionEvent>,
    seed: u64,
}

/// A synthetic dataset: [`SynthDataset::dataset`] lists the samples (MEGC 3-class labels, AU
/// strings, onset/apex/offset in 0-based frame numbers, no paths), and the frames and ground
/// truth are rendered on demand.
#[derive(Debug, Clone)]
pub struct SynthDataset {
    /// The manifest.
    pub dataset: Dataset,
    synths: Vec<Synthesizer>,
    subjects: Vec<SubjectFace>,
    entries: Vec<Entry>,
    index: HashMap<(String, String, String), usize>,
}

impl SynthDataset {
    /// Generates the dataset (subject templates are built here; frames on demand).
    pub fn generate(cfg: &SynthDatasetConfig) -> Result<Self> {
        cfg.validate()?;
        let base = Synthesizer::astronaut(cfg.synth)?;
        let n_ds = cfg.pseudo_datasets;
        let mut synths = Vec::with_capacity(n_ds);
        for i in 0..n_ds {
            let mut c = cfg.synth;
            if i == 1 {
                c.fps = 0.5 * cfg.synth.fps;
                c.noise_sigma *= 1.5;
            } else if i == 2 {
                c.noise_sigma *= 0.8;
                c.illumination.flicker *= 2.0;
            }
            synths.push(Synthesizer::new(base.face().clone(), c)?);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xda7a_5e70_0000_0005);
        let mut subjects = Vec::with_capacity(cfg.n_subjects);
        let mut samples = Vec::new();
        let mut entries = Vec::new();
        let mut index = HashMap::new();
        let mut per_ds_count = vec![0usize; n_ds];
        for si in 0..cfg.n_subjects {
            let ds_i = si % n_ds;
            per_ds_count[ds_i] += 1;
            let k = per_ds_count[ds_i];
            let (ds_name, subj_name) = match (n_ds, ds_i) {
                (1, _) => (crate::sample::names::SYNTH.to_string(), format!("sub{k:02}")),
                (_, 0) => ("synth_a".to_string(), format!("sub{k:02}")),
                (_, 1) => ("synth_b".to_string(), format!("s{k:02}")),
                _ => ("synth_c".to_string(), format!("{:03}", k + 5)),
            };
            let style = SubjectStyle::random(rng.random());
            let face = synths[ds_i].subject(&style)?;
            subjects.push(face);
            let sc = *synths[ds_i].config();
            let fps = sc.fps;
            let mut clip_no = 0;
            for (class, &n) in cfg.clips_per_class.iter().enumerate() {
                for _ in 0..n {
                    clip_no += 1;
                    let action = match class {
                        0 => FacialAction::NEGATIVE[rng.random_range(0..FacialAction::NEGATIVE.len())],
                        1 => FacialAction::Smile,
                        _ => FacialAction::BrowRaise,
                    };
                    let onset = 2 + rng.random_range(0..4usize);
                    let rise = ((0.04 + 0.06 * rng.random::<f32>()) * fps).round().max(2.0) as usize;
                    let fall = ((0.08 + 0.14 * rng.random::<f32>()) * fps).round().max(2.0) as usize;
                    let apex = onset + rise;
                    let offset = apex + fall;
                    let n_frames = offset + 1 + 2 + rng.random_range(0..4usize);
                    let (lo, hi) = cfg.amplitude_px;
                    let amp = (lo + (hi - lo) * rng.random::<f32>())
                        .min(0.98 * synths[ds_i].max_amplitude(&subjects[si], action));
                    let mut events = vec![ExpressionEvent {
                        action,
                        amplitude_px: amp,
                        onset,
                        apex,
                        offset,
                        kind: EventKind::Micro,
                    }];
                    if rng.random::<f32>() < cfg.blink_probability {
                        let len = ((0.1 * fps).round() as usize).clamp(2, n_frames.saturating_sub(1).max(2));
                        if len < n_frames {
                            let start = rng.random_range(0..n_frames - len + 1);
                            events.push(blink_event(&sc, start, len));
                        }
                    }
                    let seed: u64 = rng.random();
                    let clip = format!("{subj_name}_{clip_no:02}");
                    let sample = Sample {
                        dataset: ds_name.clone(),
                        subject: subj_name.clone(),
                        clip: clip.clone(),
                        path: None,
                        frame_pattern: None,
                        fps: Some(fps),
                        onset: Some(onset),
                        apex: Some(apex),
                        offset: Some(offset),
                        label: action.megc3_label(),
                        emotion: action.emotion().to_string(),
                        action_units: action.au_string(),
                        consent: Some("synthetic; base face public domain (NASA)".into()),
                        provenance: format!("synthetic seed={} clip_seed={seed}", cfg.seed),
                        ..Default::default()
                    };
                    index.insert((ds_name.clone(), subj_name.clone(), clip), samples.len());
                    samples.push(sample);
                    entries.push(Entry { synth: ds_i, subject: si, n_frames, events, seed });
                }
            }
        }
        let name = if n_ds == 1 { "synth" } else { "synth_composite" };
        Ok(Self { dataset: Dataset::new(name, ClassSet::megc3(), samples), synths, subjects, entries, index })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The clip (frames and ground truth) of sample `i`.
    pub fn clip(&self, i: usize) -> Result<SynthClip> {
        let e = self.entries.get(i).ok_or(Error::OutOfRange {
            what: "sample",
            index: i,
            len: self.entries.len(),
        })?;
        self.synths[e.synth].clip(&self.subjects[e.subject], e.n_frames, &e.events, e.seed)
    }

    /// The index of a sample of this dataset (looked up by dataset, subject and clip).
    pub fn index_of(&self, s: &Sample) -> Result<usize> {
        self.index
            .get(&(s.dataset.clone(), s.subject.clone(), s.clip.clone()))
            .copied()
            .ok_or_else(|| Error::param("sample", s.id(), "not a sample of this synthetic dataset"))
    }

    /// The clip of a sample of this dataset.
    pub fn clip_for(&self, s: &Sample) -> Result<SynthClip> {
        self.clip(self.index_of(s)?)
    }
}

impl FrameSource for SynthDataset {
    fn frame(&self, sample: &Sample, n: usize) -> Result<GrayF32> {
        self.clip_for(sample)?.frame(n)
    }

    fn clip_frames(&self, sample: &Sample) -> Result<Vec<GrayF32>> {
        let c = self.clip_for(sample)?;
        let (on, off) = (sample.onset.unwrap_or(0), sample.offset.unwrap_or(c.len() - 1));
        use rayon::prelude::*;
        (on..=off.max(on)).into_par_iter().map(|t| c.frame(t)).collect()
    }
}
