//! The samples of an experiment and the features each variant computes from them.

use super::config::{AlignSpec, DatasetSpec, Protocol, SyntheticSpec, VariantConfig};
use crate::{Error, Result};
use mex_core::{ClassSet, GrayF32};
use mex_data::manifest::{DatasetKind, IndexOptions, MissingFrames};
use mex_data::synth::{HeadMotion, SynthConfig, SynthDataset, SynthDatasetConfig};
use mex_data::FrameSource;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Datasets named in an experiment file must be complete: a missing frame is an error.
const STRICT: IndexOptions = IndexOptions { missing_frames: MissingFrames::Error };

/// One labelled sample as the experiment sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpSample {
    /// Unique id, `dataset/subject/clip`.
    pub id: String,
    /// Dataset name.
    pub dataset: String,
    /// Subject key, `dataset/subject` (subject ids are unique only within a dataset).
    pub subject: String,
    /// Class label (index into the corpus' class set).
    pub label: usize,
    /// Subgroup fields present on the sample (`sex`, `ethnicity`, `age_band`).
    pub groups: BTreeMap<String, String>,
}

/// A change applied to the onset and apex frames of test samples (the robustness suite).
pub trait FramePerturbation: Sync {
    /// Perturbs one frame; `key` differs per sample and frame so that random perturbations are
    /// deterministic yet independent.
    fn apply(&self, frame: &GrayF32, key: u64) -> Result<GrayF32>;

    /// The apex frame to use given the annotated onset and apex (frame-rate changes move it).
    fn apex(&self, onset: usize, apex: usize) -> usize {
        let _ = onset;
        apex
    }
}

enum Source {
    /// Frames rendered or read on demand, with the manifest they belong to.
    Frames { frames: Box<dyn FrameSource + Send + Sync>, samples: Vec<mex_data::Sample> },
    /// Precomputed network inputs (released STSTNet PNGs), one per sample.
    Precomputed { inputs: Vec<Vec<f32>>, shape: (usize, usize, usize) },
}

/// The samples of an experiment, their class set, and where their frames come from.
pub struct Corpus {
    /// The samples, in a fixed order.
    pub samples: Vec<ExpSample>,
    /// The label set.
    pub classes: ClassSet,
    source: Source,
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corpus")
            .field("samples", &self.samples.len())
            .field("classes", &self.classes)
            .finish()
    }
}

/// The generator settings of a synthetic spec.
pub fn synth_dataset_config(s: &SyntheticSpec, seed: u64) -> SynthDatasetConfig {
    let synth = SynthConfig {
        size: s.size,
        fps: s.fps,
        noise_sigma: s.noise_sigma,
        head: if s.head_motion { HeadMotion::default() } else { HeadMotion::off() },
        ..SynthConfig::default()
    };
    SynthDatasetConfig {
        synth,
        n_subjects: s.n_subjects,
        clips_per_class: s.clips_per_class,
        pseudo_datasets: s.pseudo_datasets,
        amplitude_px: s.amplitude_px,
        blink_probability: s.blink_probability,
        seed,
    }
}

impl Corpus {
    /// Loads (or generates) the samples of a dataset spec.
    pub fn load(spec: &DatasetSpec, seed: u64) -> Result<Self> {
        match spec {
            DatasetSpec::Synthetic(s) => {
                let ds = SynthDataset::generate(&synth_dataset_config(s, seed))
                    .map_err(|e| Error::stage("data", "synthetic dataset", e))?;
                let manifest = ds.dataset.clone();
                Self::from_frames(manifest, Box::new(ds))
            }
            DatasetSpec::Manifest { path } => {
                let manifest = mex_data::Dataset::read_json(path)
                    .map_err(|e| Error::stage("data", path.display().to_string(), e))?;
                Self::from_frames(manifest, Box::new(mex_data::DiskFrames))
            }
            DatasetSpec::Casme2(f) => Self::from_files(DatasetKind::Casme2, f),
            DatasetSpec::Samm(f) => Self::from_files(DatasetKind::Samm, f),
            DatasetSpec::Smic(f) => Self::from_files(DatasetKind::Smic, f),
            DatasetSpec::CasmeSq(f) => Self::from_files(DatasetKind::CasmeSq, f),
            DatasetSpec::SammLv(f) => Self::from_files(DatasetKind::SammLv, f),
            DatasetSpec::Megc2019(f) => {
                let r = mex_data::manifest::index_megc_files(f, &STRICT)
                    .map_err(|e| Error::stage("data", "megc2019", e))?;
                Self::from_frames(r.dataset, Box::new(mex_data::DiskFrames))
            }
            DatasetSpec::StstnetInputs { path } => {
                let ds = mex_classify::data::load_ststnet_inputs(path)
                    .map_err(|e| Error::stage("data", path.display().to_string(), e))?;
                let mut samples = Vec::with_capacity(ds.len());
                let mut inputs = Vec::with_capacity(ds.len());
                for (i, s) in ds.samples().iter().enumerate() {
                    let dataset = mex_classify::data::composite_dataset_of(&s.subject).to_string();
                    samples.push(ExpSample {
                        id: format!("{dataset}/{}/{}", s.subject, s.id),
                        subject: format!("{dataset}/{}", s.subject),
                        dataset,
                        label: s.label as usize,
                        groups: BTreeMap::new(),
                    });
                    inputs.push(ds.input(i).to_vec());
                }
                Ok(Self {
                    samples,
                    classes: ClassSet::megc3(),
                    source: Source::Precomputed { inputs, shape: ds.shape() },
                })
            }
            DatasetSpec::SyntheticLong(_) | DatasetSpec::LongVideo(_) => {
                Err(Error::Invalid("long-video datasets are for spotting experiments".into()))
            }
        }
    }

    /// A dataset read as shipped; a clip whose frames are missing is an error naming the coding
    /// file's row (index with `mex data index` and use `kind = "manifest"` to leave such clips out).
    fn from_files(kind: DatasetKind, files: &mex_data::manifest::DataFiles) -> Result<Self> {
        let r = mex_data::manifest::index(kind, files, &STRICT)
            .map_err(|e| Error::stage("data", kind.name(), e))?;
        Self::from_frames(r.dataset, Box::new(mex_data::DiskFrames))
    }

    pub(crate) fn from_frames(
        manifest: mex_data::Dataset,
        frames: Box<dyn FrameSource + Send + Sync>,
    ) -> Result<Self> {
        let mut samples = Vec::new();
        let mut kept = Vec::new();
        for (s, id) in manifest.samples.iter().zip(manifest.sample_ids()) {
            let Some(label) = s.label else { continue };
            if label >= manifest.classes.len() {
                return Err(Error::stage("data", id, "label out of range"));
            }
            let mut groups = BTreeMap::new();
            for (k, v) in [("sex", &s.sex), ("ethnicity", &s.ethnicity), ("age_band", &s.age_band)] {
                if let Some(v) = v {
                    groups.insert(k.to_string(), v.clone());
                }
            }
            samples.push(ExpSample {
                id,
                dataset: s.dataset.clone(),
                subject: format!("{}/{}", s.dataset, s.subject),
                label,
                groups,
            });
            kept.push(s.clone());
        }
        if samples.is_empty() {
            return Err(Error::stage("data", manifest.name.clone(), "no labelled samples"));
        }
        Ok(Self {
            samples,
            classes: manifest.classes.clone(),
            source: Source::Frames { frames, samples: kept },
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The fold key of every sample under `protocol` (file-name safe).
    pub fn fold_keys(&self, protocol: &Protocol, seed: u64) -> Result<Vec<String>> {
        let safe = |s: &str| s.replace(['/', '\\', ' '], "-");
        Ok(match protocol {
            Protocol::Loso | Protocol::Composite => self.samples.iter().map(|s| safe(&s.subject)).collect(),
            Protocol::Lodo => {
                let keys: Vec<String> = self.samples.iter().map(|s| safe(&s.dataset)).collect();
                if keys.iter().all(|k| *k == keys[0]) {
                    return Err(Error::Invalid("leave-one-dataset-out needs at least two datasets".into()));
                }
                keys
            }
            Protocol::Kfold { k } => {
                let mut subjects: Vec<&str> = self.samples.iter().map(|s| s.subject.as_str()).collect();
                subjects.sort_unstable();
                subjects.dedup();
                if subjects.len() < *k {
                    return Err(Error::Invalid(format!("{k} folds but only {} subjects", subjects.len())));
                }
                subjects.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x6b66_6f6c_6400));
                let fold_of: BTreeMap<&str, usize> =
                    subjects.iter().enumerate().map(|(i, s)| (*s, i % k)).collect();
                self.samples
                    .iter()
                    .map(|s| format!("fold{}", fold_of.get(s.subject.as_str()).copied().unwrap_or(0)))
                    .collect()
            }
        })
    }

    /// The onset and apex frames of sample `i` (frame-based corpora only).
    pub fn onset_apex(&self, i: usize) -> Result<(GrayF32, GrayF32)> {
        match &self.source {
            Source::Frames { frames, samples } => frames
                .onset_apex(&samples[i])
                .map_err(|e| Error::stage("data", self.samples[i].id.clone(), e)),
            Source::Precomputed { .. } => {
                Err(Error::Invalid("this dataset holds precomputed inputs, not frames".into()))
            }
        }
    }

    /// The onset frame and the apex frame that `p` selects.
    fn onset_apex_moved(&self, i: usize, p: &dyn FramePerturbation) -> Result<(GrayF32, GrayF32)> {
        let Source::Frames { frames, samples } = &self.source else {
            return self.onset_apex(i);
        };
        let s = &samples[i];
        let (Some(on), Some(ap)) = (s.onset, s.apex_or_middle()) else {
            return self.onset_apex(i);
        };
        let moved = p.apex(on, ap);
        if moved == ap {
            return self.onset_apex(i);
        }
        let err = |e| Error::stage("data", self.samples[i].id.clone(), e);
        Ok((frames.frame(s, on).map_err(err)?, frames.frame(s, moved).map_err(err)?))
    }

    /// Whether the corpus holds frames (rather than precomputed inputs).
    pub fn has_frames(&self) -> bool {
        matches!(self.source, Source::Frames { .. })
    }

    /// The network inputs of every sample for `variant`, as a `mex-classify` dataset whose
    /// "subject" is the fold key. `perturb` (robustness suite) changes the frames first.
    pub fn features(
        &self,
        variant: &VariantConfig,
        fold_keys: &[String],
        perturb: Option<&dyn FramePerturbation>,
        on_sample: &(dyn Fn() + Sync),
    ) -> Result<mex_classify::Dataset> {
        let shape = variant.model.input_shape();
        if variant.model.num_classes() != self.classes.len() {
            return Err(Error::Invalid(format!(
                "variant `{}`: the model has {} outputs but the dataset has {} classes ({}: {}); set model.num_classes = {}",
                variant.name,
                variant.model.num_classes(),
                self.classes.len(),
                self.classes.name,
                self.classes.names.join(", "),
                self.classes.len()
            )));
        }
        let computed: Vec<Vec<f32>>;
        let inputs: &[Vec<f32>] = match &self.source {
            Source::Precomputed { inputs, shape: s } => {
                if *s != shape {
                    return Err(Error::Invalid(format!(
                        "variant `{}` takes {shape:?} inputs, the dataset holds {s:?}",
                        variant.name
                    )));
                }
                if perturb.is_some() {
                    return Err(Error::Invalid("precomputed inputs cannot be perturbed".into()));
                }
                inputs
            }
            Source::Frames { .. } => {
                let flow = variant.flow.build().map_err(|e| Error::stage("flow", variant.name.clone(), e))?;
                let aligner = match variant.align {
                    AlignSpec::None => None,
                    AlignSpec::Mtcnn { size } => Some(super::align::OnsetAligner::new(size)?),
                };
                computed = (0..self.len())
                    .into_par_iter()
                    .map(|i| {
                        let id = &self.samples[i].id;
                        let (mut a, mut b) = match perturb {
                            Some(p) => self.onset_apex_moved(i, p)?,
                            None => self.onset_apex(i)?,
                        };
                        if let Some(p) = perturb {
                            let key = (i as u64) << 1;
                            a = p.apply(&a, key)?;
                            b = p.apply(&b, key | 1)?;
                        }
                        if let Some(al) = &aligner {
                            (a, b) =
                                al.align_pair(&a, &b).map_err(|e| Error::stage("align", id.clone(), e))?;
                        }
                        let f = flow.estimate(&a, &b).map_err(|e| Error::stage("flow", id.clone(), e))?;
                        let x = variant.input.build(&f).map_err(|e| Error::stage("flow", id.clone(), e))?;
                        let mut chw = x.to_chw();
                        chw.truncate(shape.0 * shape.1 * shape.2);
                        on_sample();
                        Ok(chw)
                    })
                    .collect::<Result<Vec<_>>>()?;
                &computed
            }
        };
        let mut ds = mex_classify::Dataset::new(shape);
        for (i, x) in inputs.iter().enumerate() {
            let info = mex_classify::SampleInfo {
                subject: fold_keys[i].clone(),
                id: self.samples[i].id.clone(),
                label: self.samples[i].label as u32,
            };
            ds.push(info, x).map_err(|e| Error::stage("classify", self.samples[i].id.clone(), e))?;
        }
        Ok(ds)
    }
}
