//! The demo: every stage on one synthetic micro-expression, then a small LOSO comparison.
//!
//! 1. synthesise a clip from the vendored public-domain face photo (exact ground truth);
//! 2. detect the face (MTCNN) and align the clip (onset transform for every frame);
//! 3. spot the movement in the aligned clip (streaming spotter), with the apex;
//! 4. TV-L1 flow and optical strain between onset and apex;
//! 5. classify with an STSTNet trained here, on synthetic data only;
//! 6. write the figures and `result.json`;
//! 7. compare two flow variants under LOSO on a small synthetic set.

use crate::experiment::{
    run_experiment, DatasetSpec, EvaluationConfig, ExperimentConfig, Protocol, Report, RunOptions,
    RunOutcome, SyntheticSpec, VariantConfig,
};
use crate::{plots, Error, Result};
use mex_align::{AlignConfig, ClipMode, Mtcnn};
use mex_classify::{Model, ModelConfig, SampleInfo, TrainConfig};
use mex_core::{ClassSet, GrayF32, Interval};
use mex_data::synth::{ClipConfig, FacialAction, SynthConfig, SynthDataset, SynthDatasetConfig};
use mex_data::FrameSource;
use mex_flow::spot::SpotterConfig;
use mex_flow::strain::{optical_strain, StstnetInputConfig};
use mex_flow::{FlowConfig, FlowEstimator};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Demo settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoConfig {
    /// The facial action shown in the clip.
    pub action: FacialAction,
    /// Its peak displacement, pixels of the synthetic frame.
    pub amplitude_px: f32,
    /// Side of the synthetic frames.
    pub frame_size: u32,
    /// Side of the aligned crops.
    pub crop_size: u32,
    /// Frames per second.
    pub fps: f32,
    /// Seed of everything.
    pub seed: u64,
    /// Run the LOSO comparison of two variants.
    pub compare_variants: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            action: FacialAction::Smile,
            amplitude_px: 2.0,
            frame_size: 192,
            crop_size: 128,
            fps: 200.0,
            seed: 2026,
            compare_variants: true,
        }
    }
}

/// What the demo found, as written to `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoResult {
    /// A reminder of what the classifier is.
    pub note: String,
    /// Frames in the clip and their rate.
    pub n_frames: usize,
    /// Frames per second.
    pub fps: f32,
    /// The ground truth of the synthetic clip.
    pub truth: DemoTruth,
    /// Face box `[x0, y0, x1, y1]` and score on the onset frame.
    pub face_bbox: [f32; 4],
    /// Detector score.
    pub face_score: f32,
    /// The spotted interval (onset, apex, offset), if the spotter found one.
    pub spotted: Option<Interval>,
    /// IoU of the spotted interval with the true one (MEGC counts >= 0.5 as a hit).
    pub spotted_iou: Option<f64>,
    /// Onset and apex used for the flow.
    pub onset: usize,
    /// Apex used for the flow.
    pub apex: usize,
    /// Mean TV-L1 flow magnitude between onset and apex, pixels of the aligned crop.
    pub mean_flow_px: f32,
    /// Class probabilities (negative, positive, surprise).
    pub probabilities: Vec<f32>,
    /// Predicted class.
    pub predicted: String,
    /// Stage timings in milliseconds.
    pub timings_ms: Vec<(String, f64)>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Ground truth of the demo clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoTruth {
    /// Facial action.
    pub action: String,
    /// Action units.
    pub action_units: String,
    /// MEGC class.
    pub class: String,
    /// Interval in frames.
    pub interval: Interval,
}

/// Everything the demo produced.
#[derive(Debug)]
pub struct DemoOutput {
    /// The single-clip analysis.
    pub result: DemoResult,
    /// The LOSO comparison, when run.
    pub comparison: Option<Report>,
}

fn stage<E: std::fmt::Display>(name: &'static str, item: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::stage(name, item, e)
}

fn to_luma8(img: &GrayF32) -> image::GrayImage {
    mex_core::gray_f32_to_luma8(img)
}

/// The classifier of the demo: STSTNet trained on TV-L1 inputs of a synthetic composite set.
fn train_classifier(
    cfg: &DemoConfig,
    input: &StstnetInputConfig,
    flow: &(dyn FlowEstimator + Send + Sync),
) -> Result<Model> {
    let synth = SynthConfig { size: 64, fps: cfg.fps, ..SynthConfig::default() };
    let ds = SynthDataset::generate(&SynthDatasetConfig {
        synth,
        n_subjects: 6,
        clips_per_class: [3, 3, 3],
        pseudo_datasets: 1,
        amplitude_px: (0.8, 2.5),
        blink_probability: 0.2,
        seed: cfg.seed ^ 0x7261_696e,
    })
    .map_err(stage("data", "training set"))?;
    let model_cfg = ModelConfig::Ststnet(Default::default());
    let shape = model_cfg.input_shape();
    let feats: Vec<Vec<f32>> = ds
        .dataset
        .samples
        .par_iter()
        .map(|s| {
            let (a, b) = ds.onset_apex(s).map_err(stage("data", "training clip"))?;
            let f = flow.estimate(&a, &b).map_err(stage("flow", "training clip"))?;
            Ok(input.build(&f).map_err(stage("flow", "training clip"))?.to_chw())
        })
        .collect::<Result<_>>()?;
    let mut train = mex_classify::Dataset::new(shape);
    for (s, x) in ds.dataset.samples.iter().zip(&feats) {
        let label = s.label.ok_or_else(|| Error::stage("data", s.clip.clone(), "unlabelled"))? as u32;
        let info = SampleInfo { subject: s.subject.clone(), id: s.clip.clone(), label };
        train.push(info, x).map_err(stage("classify", "training set"))?;
    }
    let tc = TrainConfig {
        lr: 5e-3,
        epochs: 80,
        batch_size: 16,
        shuffle: true,
        seed: cfg.seed,
        ..TrainConfig::default()
    };
    let mut model = Model::new(&model_cfg, cfg.seed, &candle_device()).map_err(stage("classify", "model"))?;
    mex_classify::fit(&mut model, &train, &tc).map_err(stage("classify", "training"))?;
    Ok(model)
}

/// The spotter's frame distance: 0.1 s, about half a micro-expression (SOFTNet's choice of
/// k = half the average expression length).
pub fn spot_k(fps: f64) -> usize {
    mex_flow::spot::k_for_fps(fps)
}

fn candle_device() -> candle_core::Device {
    candle_core::Device::Cpu
}

/// The small experiment the demo runs: TV-L1 vs Farnebäck under LOSO on synthetic data.
pub fn comparison_config(seed: u64) -> ExperimentConfig {
    let variant = |name: &str, flow: FlowConfig| VariantConfig {
        name: name.into(),
        align: Default::default(),
        flow,
        input: StstnetInputConfig::default(),
        model: ModelConfig::Ststnet(Default::default()),
        train: TrainConfig { lr: 5e-3, epochs: 30, batch_size: 32, shuffle: true, ..TrainConfig::default() },
        spotter: None,
    };
    ExperimentConfig {
        name: "demo-flow-comparison".into(),
        seed,
        dataset: DatasetSpec::Synthetic(SyntheticSpec {
            n_subjects: 4,
            clips_per_class: [2, 2, 2],
            amplitude_px: (0.3, 1.2),
            noise_sigma: 2.0,
            ..SyntheticSpec::default()
        }),
        task: Default::default(),
        protocol: Protocol::Loso,
        evaluation: EvaluationConfig { bootstrap: 500, confidence: 0.95, permutations: 1000 },
        variants: vec![
            variant("tvl1", FlowConfig::TvL1(Default::default())),
            variant("farneback", FlowConfig::Farneback(Default::default())),
        ],
    }
}

/// Runs the demo, writing into `out` (created if needed).
pub fn run_demo(cfg: &DemoConfig, out: &Path) -> Result<DemoOutput> {
    std::fs::create_dir_all(out).map_err(|e| Error::Io { path: out.to_path_buf(), source: e })?;
    let mut timings = Vec::new();
    let mut files = Vec::new();
    let mut tick = Instant::now();
    let mut lap = |name: &str, timings: &mut Vec<(String, f64)>| {
        timings.push((name.to_string(), tick.elapsed().as_secs_f64() * 1e3));
        tick = Instant::now();
    };

    // 1. The clip.
    // 1 s: a still baseline of 0.5 s (the spotter's first baseline comes from the quiet frames
    // of its warm-up, here mostly this still lead), a 0.2 s micro-expression (apex 60 ms after
    // onset), still again.
    let sec = |s: f32| (s * cfg.fps).round() as usize;
    let n_frames = sec(1.0);
    let (onset, apex, offset) = (sec(0.5), sec(0.56), sec(0.7));
    let clip_cfg = ClipConfig {
        synth: SynthConfig {
            size: cfg.frame_size,
            fps: cfg.fps,
            interocular_fraction: 0.22,
            ..SynthConfig::default()
        },
        action: cfg.action,
        amplitude_px: cfg.amplitude_px,
        n_frames,
        onset,
        apex,
        offset,
        blink: None,
        subject: mex_data::synth::SubjectStyle::neutral(),
        seed: cfg.seed,
    };
    let clip = clip_cfg.build().map_err(stage("data", "demo clip"))?;
    let frames = clip.frames();
    let truth_interval = Interval::new(onset, apex, offset).map_err(stage("data", "demo clip"))?;
    lap("synthesise", &mut timings);

    // 2. Detect and align.
    let detector = Mtcnn::new().map_err(stage("align", "MTCNN"))?;
    let faces = detector
        .detect_rgb(&crate::experiment::align::gray_to_rgb8(&frames[0]))
        .map_err(stage("align", "onset frame"))?;
    let face = faces
        .into_iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .ok_or_else(|| Error::stage("align", "onset frame", "no face found"))?;
    let aligner = AlignConfig { size: cfg.crop_size, ..AlignConfig::default() }
        .build()
        .map_err(stage("align", "aligner"))?;
    let mut landmarks = vec![None; frames.len()];
    landmarks[0] = Some(face.landmarks.clone());
    let aligned = aligner.align_clip(&frames, &landmarks, ClipMode::Onset).map_err(stage("align", "clip"))?;
    lap("detect + align", &mut timings);

    // 3. Spot.
    let spot_cfg = SpotterConfig {
        fps: f64::from(cfg.fps),
        k: spot_k(f64::from(cfg.fps)),
        window: 60,
        ..SpotterConfig::default()
    };
    let mut spotter = spot_cfg.build().map_err(stage("flow", "spotter"))?;
    let mut signal = Vec::with_capacity(frames.len());
    for f in &aligned.frames {
        signal.push(spotter.push(f.clone()).map_err(stage("flow", "spotter"))?);
    }
    let mut events = spotter.take_events();
    events.extend(spotter.finish());
    let best = events.iter().max_by(|a, b| a.peak.total_cmp(&b.peak)).map(|s| s.interval);
    let (f_on, f_apex) = match best {
        Some(iv) => (iv.onset, iv.apex),
        None => (
            0,
            mex_flow::spot::select_apex(
                &aligned.frames,
                &*spot_cfg.flow.build().map_err(stage("flow", "apex"))?,
                spot_cfg.head_motion,
                None,
            )
            .map_err(stage("flow", "apex"))?,
        ),
    };
    lap("spot", &mut timings);

    // 4. Flow and strain.
    let tvl1 = FlowConfig::TvL1(Default::default()).build().map_err(stage("flow", "TV-L1"))?;
    let flow =
        tvl1.estimate(&aligned.frames[f_on], &aligned.frames[f_apex]).map_err(stage("flow", "onset-apex"))?;
    let input_cfg = StstnetInputConfig::default();
    let strain = optical_strain(&flow, &input_cfg.strain);
    lap("TV-L1 + strain", &mut timings);

    // 5. Classify.
    let model = train_classifier(cfg, &input_cfg, &*tvl1)?;
    lap("train classifier (synthetic)", &mut timings);
    let x = input_cfg.build(&flow).map_err(stage("flow", "input"))?.to_chw();
    let t = candle_core::Tensor::from_vec(x, (1, 3, input_cfg.size, input_cfg.size), &candle_device())
        .map_err(stage("classify", "input"))?;
    let probs: Vec<f32> = model
        .predict_proba(&t)
        .and_then(|p| p.flatten_all().map_err(Into::into))
        .and_then(|p| p.to_vec1::<f32>().map_err(Into::into))
        .map_err(stage("classify", "predict"))?;
    let classes = ClassSet::megc3();
    let best_class = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
    lap("classify", &mut timings);

    // 6. Files.
    let p = out.join("aligned_onset.png");
    crate::io::save_image_atomic(&to_luma8(&aligned.frames[f_on]), &p)?;
    files.push(p);
    let p = out.join("flow.png");
    mex_flow::viz::save_flow_png(&p, &flow, None).map_err(stage("flow", "flow.png"))?;
    files.push(p);
    let p = out.join("strain.png");
    mex_flow::viz::save_plane_png(&p, &strain, flow.width(), flow.height())
        .map_err(stage("flow", "strain.png"))?;
    files.push(p);
    let curve: Vec<(f64, f64)> =
        signal.iter().enumerate().filter_map(|(i, s)| s.map(|v| (i as f64, f64::from(v)))).collect();
    let mut shaded = vec![(truth_interval.onset as f64, truth_interval.offset as f64)];
    if let Some(iv) = best {
        shaded.push((iv.onset as f64, iv.offset as f64));
    }
    files.extend(plots::lines(
        &out.join("motion"),
        "motion signal (shaded: true and spotted intervals)",
        "frame",
        "mean flow magnitude (px)",
        &[plots::Series { name: "motion".into(), points: curve }],
        &shaded,
    )?);
    let result = DemoResult {
        note: "The classifier was trained on synthetic data only, in this run; it is a demonstration, not a diagnostic or validated model.".into(),
        n_frames: frames.len(),
        fps: cfg.fps,
        truth: DemoTruth {
            action: format!("{:?}", cfg.action),
            action_units: cfg.action.au_string(),
            class: cfg.action.megc3_label().and_then(|i| classes.name(i)).unwrap_or("none").to_string(),
            interval: truth_interval,
        },
        face_bbox: [face.bbox.x0, face.bbox.y0, face.bbox.x1, face.bbox.y1],
        face_score: face.score,
        spotted: best,
        spotted_iou: best.map(|iv| iv.iou(&truth_interval)),
        onset: f_on,
        apex: f_apex,
        mean_flow_px: flow.mean_magnitude(),
        probabilities: probs,
        predicted: classes.name(best_class).unwrap_or("?").to_string(),
        timings_ms: timings.clone(),
        files: files.clone(),
    };
    crate::io::write_json_atomic(&out.join("result.json"), &result)?;

    // 7. LOSO comparison.
    let comparison = if cfg.compare_variants {
        let ecfg = comparison_config(cfg.seed);
        let dir = out.join("loso");
        if dir.join("config.json").exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
        }
        match run_experiment(&ecfg, &dir, &RunOptions::default())? {
            RunOutcome::Report(r) => Some(*r),
            RunOutcome::Fold { .. } | RunOutcome::Spotting(_) => None,
        }
    } else {
        None
    };
    Ok(DemoOutput { result, comparison })
}
