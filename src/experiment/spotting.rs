//! Spotting experiments (`[task] kind = "spotting"`): every spotter variant runs over every long
//! video of the dataset, and the spotted intervals are scored with the MEGC rule (a prediction is
//! a true positive when its frame IoU with a still unmatched ground-truth interval of the same
//! type is at least `iou_threshold`, 0.5 in MEGC; micro- and macro-expressions are matched
//! separately and "overall" pools their counts). F1 of the whole dataset is pooled (the dataset
//! is one long video), with percentile-bootstrap intervals over videos and paired bootstrap
//! intervals of the F1 differences between variants.
//!
//! Datasets: synthetic long videos of `mex-data` (`kind = "synthetic_long"`: exact truth; blinks
//! are distractors, never ground truth, so a blink spotted is a false positive) or CAS(ME)² /
//! SAMM Long Videos through their loaders (`kind = "long_video"`).
//!
//! Frames reach the spotter as aligned canonical crops: synthetic videos are warped with the
//! similarity that takes the subject's true landmarks to the `mex-align` template; real videos
//! with the similarity of the MTCNN face of their first frame.

use super::config::{DatasetSpec, ExperimentConfig};
use super::report::Provenance;
use crate::io::{read_json, write_atomic, write_json_atomic};
use crate::{Error, Result};
use mex_align::AlignConfig;
use mex_core::GrayF32;
use mex_data::synth::{EventKind, HeadMotion, LongVideoConfig, SubjectStyle, SynthConfig};
use mex_flow::spot::{MovementKind, SpotterConfig};
use mex_metrics::{
    cluster_bootstrap, evaluate_spotting, BootstrapConfig, ConfidenceInterval, ExpressionType, Span,
    SpotConfig, SpotCounts, SpotRecord,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What an experiment measures (`[task] kind = ...`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskSpec {
    /// Classification of (onset, apex) clips under a fold protocol (the default).
    #[default]
    Recognition,
    /// Spotting of micro- and macro-expression intervals in long videos.
    Spotting(SpottingTask),
}

impl TaskSpec {
    /// Whether this is the default recognition task.
    pub fn is_recognition(&self) -> bool {
        matches!(self, TaskSpec::Recognition)
    }
}

/// Parameters of a spotting experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpottingTask {
    /// A prediction is a true positive at IoU `>=` this (MEGC: 0.5).
    pub iou_threshold: f64,
    /// Side of the aligned crop the spotters see, pixels.
    pub crop_size: u32,
    /// Frames pushed to a spotter at once (their flows run in parallel).
    pub batch: usize,
}

impl Default for SpottingTask {
    fn default() -> Self {
        Self { iou_threshold: 0.5, crop_size: 128, batch: 32 }
    }
}

/// One frame rate of synthetic long videos.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthLongGroup {
    /// Frames per second.
    pub fps: f32,
    /// Length of each video, seconds.
    pub duration_s: f32,
    /// Micro-expressions per video.
    pub n_micro: usize,
    /// Macro-expressions per video.
    pub n_macro: usize,
}

/// Synthetic long videos (`mex_data::synth::LongVideoConfig`): `seeds` videos per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthLongSpec {
    /// Videos per group (seeds `0..seeds`, offset by the experiment seed).
    pub seeds: usize,
    /// Frame rates and contents.
    pub groups: Vec<SynthLongGroup>,
    /// Blinks per minute (distractors).
    pub blinks_per_minute: f32,
    /// Sensor noise standard deviation, gray levels.
    pub noise_sigma: f32,
    /// Small head motion (translation and rotation) on or off.
    pub head_motion: bool,
    /// A different random face per video instead of the neutral one.
    pub vary_subjects: bool,
}

impl Default for SynthLongSpec {
    fn default() -> Self {
        Self {
            seeds: 6,
            groups: vec![
                SynthLongGroup { fps: 30.0, duration_s: 20.0, n_micro: 3, n_macro: 2 },
                SynthLongGroup { fps: 200.0, duration_s: 6.0, n_micro: 2, n_macro: 1 },
            ],
            blinks_per_minute: 12.0,
            noise_sigma: 1.0,
            head_motion: true,
            vary_subjects: false,
        }
    }
}

/// Which long-video dataset a loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongVideoDataset {
    /// CAS(ME)² part A (30 fps).
    CasmeSq,
    /// SAMM Long Videos (200 fps).
    SammLv,
}

/// A real long-video dataset read through its `mex-data` loader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongVideoSpec {
    /// The dataset.
    pub dataset: LongVideoDataset,
    /// The annotation workbook (CAS(ME)²: `CAS(ME)^2code_final.xlsx`; SAMM-LV: the release's
    /// xlsx or CSV).
    pub coding_file: PathBuf,
    /// The folder of the video folders (CAS(ME)²: `rawpic`; SAMM-LV: the one holding `006_1`).
    pub frames_root: PathBuf,
    /// Use only the first `max_videos` videos (sorted by subject and video), for quick runs.
    #[serde(default)]
    pub max_videos: Option<usize>,
}

/// Where a video's frames come from.
#[derive(Debug, Clone)]
enum Source {
    Synth(Box<LongVideoConfig>),
    /// Frame files in order, with the frame number of each.
    Files(Vec<(usize, PathBuf)>),
}

/// One long video with its ground truth.
#[derive(Debug, Clone)]
pub struct LongVideo {
    /// Unique id (`<group>/<video>`).
    pub id: String,
    /// Group for breakdowns (synthetic: `30fps`; real: the dataset).
    pub group: String,
    /// Frames per second.
    pub fps: f64,
    /// Typed ground truth (frame numbers of the video).
    pub truth: Vec<(ExpressionType, Span)>,
    /// Blinks (synthetic only): distractors, not ground truth.
    pub blinks: Vec<Span>,
    source: Source,
}

fn synth_videos(spec: &SynthLongSpec, seed: u64) -> Result<Vec<LongVideo>> {
    let mut out = Vec::new();
    for g in &spec.groups {
        for s in 0..spec.seeds as u64 {
            let vseed = seed.wrapping_add(s);
            let base = SynthConfig::default();
            let cfg = LongVideoConfig {
                synth: SynthConfig {
                    fps: g.fps,
                    noise_sigma: spec.noise_sigma,
                    head: if spec.head_motion { HeadMotion::default() } else { HeadMotion::off() },
                    ..base
                },
                duration_s: g.duration_s,
                n_micro: g.n_micro,
                n_macro: g.n_macro,
                blinks_per_minute: spec.blinks_per_minute,
                subject: if spec.vary_subjects {
                    SubjectStyle::random(vseed)
                } else {
                    SubjectStyle::neutral()
                },
                seed: vseed,
                ..LongVideoConfig::default()
            };
            let group = format!("{}fps", g.fps);
            let id = format!("{group}/seed{vseed}");
            let (_, events) = cfg.schedule().map_err(|e| Error::stage("data", id.clone(), e))?;
            let mut truth = Vec::new();
            let mut blinks = Vec::new();
            for e in events {
                let span = Span { onset: e.onset, offset: e.offset };
                match e.kind {
                    EventKind::Micro => truth.push((ExpressionType::Micro, span)),
                    EventKind::Macro => truth.push((ExpressionType::Macro, span)),
                    EventKind::Blink => blinks.push(span),
                }
            }
            out.push(LongVideo {
                id,
                group,
                fps: f64::from(g.fps),
                truth,
                blinks,
                source: Source::Synth(Box::new(cfg)),
            });
        }
    }
    Ok(out)
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff")
    )
}

/// The image files of a folder with their frame numbers (the last run of digits of the file
/// name, as in `img12.jpg` or `006_1_0012.jpg`), sorted by number; position when a name has none.
pub fn numbered_frames(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), source: e })?;
    let mut files: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && is_image(p)).collect();
    files.sort();
    let number = |p: &Path| -> Option<usize> {
        let stem = p.file_stem()?.to_str()?;
        let digits: String = stem
            .chars()
            .rev()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse().ok()
    };
    let nums: Vec<Option<usize>> = files.iter().map(|p| number(p)).collect();
    let mut v: Vec<(usize, PathBuf)> = if nums.iter().all(Option::is_some) {
        files.into_iter().zip(nums).map(|(p, n)| (n.unwrap_or(0), p)).collect()
    } else {
        files.into_iter().enumerate().collect()
    };
    v.sort_by_key(|(n, _)| *n);
    Ok(v)
}

fn real_videos(spec: &LongVideoSpec) -> Result<Vec<LongVideo>> {
    use mex_data::loaders::long_video::by_video;
    use mex_data::loaders::{load_casme_sq, load_samm_lv, CasmeSqConfig, SammLvConfig};
    let ds = match spec.dataset {
        LongVideoDataset::CasmeSq => load_casme_sq(&CasmeSqConfig {
            frames_root: Some(spec.frames_root.clone()),
            ..CasmeSqConfig::new(&spec.coding_file)
        }),
        LongVideoDataset::SammLv => load_samm_lv(&SammLvConfig {
            frames_root: Some(spec.frames_root.clone()),
            ..SammLvConfig::new(&spec.coding_file)
        }),
    }
    .map_err(|e| Error::stage("data", spec.coding_file.display().to_string(), e))?;
    let group = ds.name.clone();
    let mut out = Vec::new();
    for ((subject, clip), samples) in by_video(&ds) {
        if spec.max_videos.is_some_and(|m| out.len() >= m) {
            break;
        }
        let Some(first) = samples.first() else { continue };
        let dir = first.path.clone().ok_or_else(|| {
            Error::stage("data", format!("{subject}/{clip}"), "the loader gave no frame folder")
        })?;
        let files = numbered_frames(&dir)?;
        if files.len() < 2 {
            return Err(Error::stage("data", dir.display().to_string(), "fewer than two frames"));
        }
        let mut truth = Vec::new();
        for s in &samples {
            let (Some(on), Some(off)) = (s.onset, s.offset) else { continue };
            let ty = match s.kind.as_deref() {
                Some("micro") => ExpressionType::Micro,
                _ => ExpressionType::Macro,
            };
            truth.push((ty, Span { onset: on, offset: off.max(on) }));
        }
        out.push(LongVideo {
            id: format!("{subject}/{clip}"),
            group: group.clone(),
            fps: f64::from(first.fps.unwrap_or(30.0)),
            truth,
            blinks: Vec::new(),
            source: Source::Files(files),
        });
    }
    if out.is_empty() {
        return Err(Error::stage("data", spec.coding_file.display().to_string(), "no annotated video"));
    }
    Ok(out)
}

/// Checks the parts of an experiment that concern spotting: the task and the dataset agree,
/// the groups and paths are usable, every variant's spotter is valid. `bad` builds the error.
pub fn validate_task(cfg: &ExperimentConfig, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
    let long = matches!(cfg.dataset, DatasetSpec::SyntheticLong(_) | DatasetSpec::LongVideo(_));
    match &cfg.task {
        TaskSpec::Recognition => {
            if long {
                return Err(bad(
                    "dataset.kind".into(),
                    "long-video datasets are for spotting: add `[task] kind = \"spotting\"`".into(),
                ));
            }
            if let Some(i) = cfg.variants.iter().position(|v| v.spotter.is_some()) {
                return Err(bad(
                    format!("variants[{i}].spotter"),
                    "a spotter needs `[task] kind = \"spotting\"`".into(),
                ));
            }
        }
        TaskSpec::Spotting(t) => {
            if !long {
                return Err(bad(
                    "dataset.kind".into(),
                    "a spotting experiment needs `kind = \"synthetic_long\"` or `\"long_video\"`".into(),
                ));
            }
            if !(t.iou_threshold > 0.0 && t.iou_threshold <= 1.0) {
                return Err(bad(
                    "task.iou_threshold".into(),
                    format!("{}: must lie in (0, 1]", t.iou_threshold),
                ));
            }
            if !(32..=1024).contains(&t.crop_size) {
                return Err(bad("task.crop_size".into(), format!("{}: must lie in 32..=1024", t.crop_size)));
            }
            if t.batch == 0 || t.batch > 4096 {
                return Err(bad("task.batch".into(), format!("{}: must lie in 1..=4096", t.batch)));
            }
            for (i, v) in cfg.variants.iter().enumerate() {
                let s = v.spotter.clone().unwrap_or_default();
                for fps in [30.0, 200.0] {
                    spotter_for(&s, fps)
                        .validate()
                        .map_err(|e| bad(format!("variants[{i}].spotter"), e.to_string()))?;
                }
            }
        }
    }
    if let DatasetSpec::SyntheticLong(s) = &cfg.dataset {
        if s.seeds == 0 || s.groups.is_empty() {
            return Err(bad("dataset".into(), "need seeds >= 1 and at least one [[dataset.groups]]".into()));
        }
        for (i, g) in s.groups.iter().enumerate() {
            let lv = LongVideoConfig {
                synth: SynthConfig { fps: g.fps, ..SynthConfig::default() },
                duration_s: g.duration_s,
                n_micro: g.n_micro,
                n_macro: g.n_macro,
                blinks_per_minute: s.blinks_per_minute,
                ..LongVideoConfig::default()
            };
            lv.schedule().map_err(|e| bad(format!("dataset.groups[{i}]"), e.to_string()))?;
        }
        if !(s.noise_sigma.is_finite() && s.noise_sigma >= 0.0) {
            return Err(bad("dataset.noise_sigma".into(), format!("{}: must be >= 0", s.noise_sigma)));
        }
    }
    Ok(())
}

/// The videos of a spotting dataset.
pub fn load_videos(ds: &DatasetSpec, seed: u64) -> Result<Vec<LongVideo>> {
    match ds {
        DatasetSpec::SyntheticLong(s) => synth_videos(s, seed),
        DatasetSpec::LongVideo(s) => real_videos(s),
        _ => Err(Error::Invalid(
            "a spotting experiment needs a long-video dataset (`kind = \"synthetic_long\"` or \"long_video\")"
                .into(),
        )),
    }
}

/// The spotter configuration used on a video: the variant's, with the video's frame rate and
/// `k` = 0.1 s ([`mex_flow::spot::k_for_fps`]).
pub fn spotter_for(v: &SpotterConfig, fps: f64) -> SpotterConfig {
    SpotterConfig { fps, k: mex_flow::spot::k_for_fps(fps), ..v.clone() }
}

/// One spotted interval of a video.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpottedInterval {
    /// Micro or macro (by duration).
    pub kind: ExpressionType,
    /// First frame number.
    pub onset: usize,
    /// Apex frame number.
    pub apex: usize,
    /// Last frame number.
    pub offset: usize,
}

/// What a variant spotted in one video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSpots {
    /// Video id.
    pub video: String,
    /// Frames processed.
    pub frames: usize,
    /// Intervals spotted.
    pub intervals: Vec<SpottedInterval>,
    /// Blinks the spotter set aside (first and last frame numbers).
    pub blinks: Vec<(usize, usize)>,
    /// Time of alignment and spotting, seconds (when several variants are spotted in one pass,
    /// the pass's alignment plus this variant's spotting).
    pub seconds: f64,
}

/// Runs one spotter over one video (frames aligned into `crop_size²` canonical crops, pushed in
/// batches of `batch`).
pub fn spot_video(
    v: &LongVideo,
    spotter: &SpotterConfig,
    crop_size: u32,
    batch: usize,
) -> Result<VideoSpots> {
    let (mut spots, _) = spot_video_with(v, std::slice::from_ref(spotter), crop_size, batch)?;
    spots.pop().ok_or_else(|| Error::Invalid("no spotter".into()))
}

/// Runs several spotters over one video in one pass: every frame is rendered or read and
/// aligned once, then pushed to each spotter (in batches of `batch`). Returns each spotter's
/// spots, whose `seconds` are the pass's alignment time plus that spotter's own time (what it
/// would take alone), and the pass's wall time.
pub fn spot_video_with(
    v: &LongVideo,
    spotters: &[SpotterConfig],
    crop_size: u32,
    batch: usize,
) -> Result<(Vec<VideoSpots>, f64)> {
    let t0 = Instant::now();
    let flow_err = |e: mex_flow::Error| Error::stage("flow", v.id.clone(), e);
    let mut sps = spotters
        .iter()
        .map(|s| spotter_for(s, v.fps).build().map_err(flow_err))
        .collect::<Result<Vec<_>>>()?;
    let aligner = AlignConfig { size: crop_size, ..AlignConfig::default() }
        .build()
        .map_err(|e| Error::stage("align", "aligner", e))?;
    let batch = batch.max(1);
    let n = sps.len();
    let mut events = vec![Vec::new(); n];
    let mut spent = vec![0.0f64; n];
    // one batch to every spotter (the last one takes the frames, the others a copy)
    let mut push = |frames: Vec<GrayF32>, sps: &mut [mex_flow::spot::Spotter]| -> Result<()> {
        let mut frames = Some(frames);
        for (i, sp) in sps.iter_mut().enumerate() {
            let t = Instant::now();
            let batch = if i + 1 == n {
                frames.take().unwrap_or_default()
            } else {
                frames.clone().unwrap_or_default()
            };
            sp.push_batch(batch).map_err(flow_err)?;
            events[i].extend(sp.take_events());
            spent[i] += t.elapsed().as_secs_f64();
        }
        Ok(())
    };
    let mut numbers: Vec<usize> = Vec::new();
    let mut buf = Vec::with_capacity(batch);
    for_each_aligned(v, &aligner, crop_size, |a, num| {
        buf.push(a);
        numbers.push(num);
        if buf.len() == batch {
            push(std::mem::take(&mut buf), &mut sps)?;
        }
        Ok(())
    })?;
    push(buf, &mut sps)?;
    let mut blinks = Vec::with_capacity(n);
    for (i, sp) in sps.iter_mut().enumerate() {
        let t = Instant::now();
        events[i].extend(sp.finish());
        blinks.push(sp.take_blinks());
        spent[i] += t.elapsed().as_secs_f64();
    }
    let pass = t0.elapsed().as_secs_f64();
    let shared = (pass - spent.iter().sum::<f64>()).max(0.0);
    let num = |i: usize| numbers.get(i).copied().unwrap_or(i);
    let spots = events
        .iter()
        .zip(&blinks)
        .zip(&spent)
        .map(|((events, blinks), spent)| VideoSpots {
            video: v.id.clone(),
            frames: numbers.len(),
            intervals: events
                .iter()
                .map(|e| SpottedInterval {
                    kind: match e.kind {
                        MovementKind::Micro => ExpressionType::Micro,
                        MovementKind::Macro => ExpressionType::Macro,
                    },
                    onset: num(e.interval.onset),
                    apex: num(e.interval.apex),
                    offset: num(e.interval.offset),
                })
                .collect(),
            blinks: blinks.iter().map(|b| (num(b.onset), num(b.offset))).collect(),
            seconds: shared + spent,
        })
        .collect();
    Ok((spots, pass))
}

/// Renders (synthetic) or reads (files) every frame of `v` in order, aligns it to the canonical
/// `crop_size` crop (synthetic videos with the subject's true landmarks, files with the MTCNN
/// face of the first frame, one transform for the whole video) and hands it to `f` with its
/// frame number.
fn for_each_aligned(
    v: &LongVideo,
    aligner: &mex_align::align::Aligner,
    crop_size: u32,
    mut f: impl FnMut(GrayF32, usize) -> Result<()>,
) -> Result<()> {
    let warp = |g: &GrayF32, t: &mex_core::Similarity, what: &dyn Fn() -> String| {
        let mut a = GrayF32::new(crop_size, crop_size);
        mex_align::align::warp_gray_into(g, t, &mut a).map_err(|e| Error::stage("align", what(), e))?;
        Ok::<_, Error>(a)
    };
    match &v.source {
        Source::Synth(lv) => {
            let clip = lv.build().map_err(|e| Error::stage("data", v.id.clone(), e))?;
            let t =
                aligner.transform(&clip.landmarks5()).map_err(|e| Error::stage("align", v.id.clone(), e))?;
            let (w, h) = clip.size();
            let mut raw = GrayF32::new(w, h);
            for i in 0..clip.len() {
                clip.render_into(i, &mut raw).map_err(|e| Error::stage("data", v.id.clone(), e))?;
                f(warp(&raw, &t, &|| v.id.clone())?, i)?;
            }
        }
        Source::Files(files) => {
            let mut transform = None;
            for (n, p) in files {
                let g = mex_data::frames::read_gray(p)
                    .map_err(|e| Error::stage("data", p.display().to_string(), e))?;
                let t = match &transform {
                    Some(t) => t,
                    None => {
                        let onset = super::align::OnsetAligner::new(crop_size)?;
                        transform.insert(onset.transform(&g, &p.display().to_string())?)
                    }
                };
                f(warp(&g, t, &|| p.display().to_string())?, *n)?;
            }
        }
    }
    Ok(())
}

/// Typed TP/FP/FN of one video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TypedCounts {
    /// Micro-expressions.
    pub micro: SpotCounts,
    /// Macro-expressions.
    pub macro_: SpotCounts,
}

impl TypedCounts {
    /// Micro + macro.
    pub fn overall(&self) -> SpotCounts {
        self.micro + self.macro_
    }
}

/// Scores one video's predictions against its truth (MEGC rule, typed).
pub fn score_video(v: &LongVideo, spots: &VideoSpots, iou_threshold: f64) -> Result<TypedCounts> {
    let rec = |kind: ExpressionType, span: Span| SpotRecord { video: v.id.clone(), kind: Some(kind), span };
    let gt: Vec<SpotRecord> = v.truth.iter().map(|&(k, s)| rec(k, s)).collect();
    let pred: Vec<SpotRecord> =
        spots.intervals.iter().map(|i| rec(i.kind, Span { onset: i.onset, offset: i.offset })).collect();
    let cfg = SpotConfig { iou_threshold, ..SpotConfig::default() };
    let e = evaluate_spotting(&gt, &pred, &cfg).map_err(|e| Error::stage("metrics", v.id.clone(), e))?;
    let t = e.per_type.unwrap_or_default();
    Ok(TypedCounts {
        micro: t.get(&ExpressionType::Micro).copied().unwrap_or_default(),
        macro_: t.get(&ExpressionType::Macro).copied().unwrap_or_default(),
    })
}

/// Pooled counts with the F1 interval over videos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotScore {
    /// Pooled counts.
    pub counts: SpotCounts,
    /// Pooled precision.
    pub precision: f64,
    /// Pooled recall.
    pub recall: f64,
    /// Pooled F1 with its video-bootstrap interval.
    pub f1: ConfidenceInterval,
}

/// Counts of one group of videos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotGroup {
    /// Group (frame rate or dataset).
    pub group: String,
    /// Videos.
    pub videos: usize,
    /// Overall counts (micro + macro).
    pub overall: SpotCounts,
    /// Micro-expression counts.
    pub micro: SpotCounts,
    /// Macro-expression counts.
    pub macro_: SpotCounts,
}

/// Results of one spotting variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotVariantReport {
    /// Variant name.
    pub name: String,
    /// Spotting method.
    pub method: String,
    /// Overall (micro + macro pooled).
    pub overall: SpotScore,
    /// Micro-expressions.
    pub micro: SpotScore,
    /// Macro-expressions.
    pub macro_: SpotScore,
    /// Per group (frame rate or dataset).
    pub per_group: Vec<SpotGroup>,
    /// Predictions overlapping a blink and no expression (synthetic data).
    pub predictions_on_blinks: u64,
    /// Blinks the spotter set aside.
    pub blinks_set_aside: u64,
    /// Frames processed.
    pub frames: u64,
    /// Frames per second of wall time (alignment and spotting, videos in parallel). Variants
    /// spotted in one pass share its wall time in proportion to their `seconds` (alignment
    /// counted for each): what the variant would take alone.
    pub frames_per_s: f64,
}

/// A paired comparison of two spotting variants over the same videos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotComparison {
    /// First variant.
    pub a: String,
    /// Second variant.
    pub b: String,
    /// `F1(a) − F1(b)` (overall) with its paired video-bootstrap interval.
    pub f1_difference: ConfidenceInterval,
}

/// The report of a spotting experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotReport {
    /// Experiment name.
    pub experiment: String,
    /// Seed.
    pub seed: u64,
    /// Videos.
    pub n_videos: usize,
    /// Ground-truth micro-expressions.
    pub n_micro: usize,
    /// Ground-truth macro-expressions.
    pub n_macro: usize,
    /// Blinks in the videos (distractors).
    pub n_blinks: usize,
    /// IoU threshold of a true positive.
    pub iou_threshold: f64,
    /// Per variant.
    pub variants: Vec<SpotVariantReport>,
    /// Every pair of variants.
    pub comparisons: Vec<SpotComparison>,
    /// The configuration.
    pub config: ExperimentConfig,
    /// Versions, commit, time.
    pub provenance: Provenance,
}

fn pooled(counts: &[SpotCounts], idx: &[usize]) -> SpotCounts {
    idx.iter().fold(SpotCounts::default(), |a, &i| a + counts[i])
}

fn score(counts: &[SpotCounts], boot: &BootstrapConfig) -> Result<SpotScore> {
    let ids: Vec<usize> = (0..counts.len()).collect();
    let all = pooled(counts, &ids);
    let f1 = cluster_bootstrap(&ids, |idx| Ok(pooled(counts, idx).f1()), boot)
        .map_err(|e| Error::stage("metrics", "spotting bootstrap", e))?;
    Ok(SpotScore { counts: all, precision: all.precision(), recall: all.recall(), f1 })
}

fn overlaps(a: (usize, usize), b: Span) -> bool {
    a.0 <= b.offset && b.onset <= a.1
}

/// Builds the report from every variant's spots (in video order).
pub fn build_spot_report(
    cfg: &ExperimentConfig,
    task: &SpottingTask,
    videos: &[LongVideo],
    spots: &[(String, Vec<VideoSpots>, f64)],
) -> Result<SpotReport> {
    let boot = BootstrapConfig {
        n_resamples: cfg.evaluation.bootstrap,
        confidence: cfg.evaluation.confidence,
        seed: cfg.seed,
    };
    let mut per_variant_counts: Vec<Vec<TypedCounts>> = Vec::new();
    let mut variants = Vec::new();
    for (vi, (name, vs, wall)) in spots.iter().enumerate() {
        let counts: Vec<TypedCounts> = videos
            .iter()
            .zip(vs)
            .map(|(v, s)| score_video(v, s, task.iou_threshold))
            .collect::<Result<_>>()?;
        let overall: Vec<SpotCounts> = counts.iter().map(TypedCounts::overall).collect();
        let micro: Vec<SpotCounts> = counts.iter().map(|c| c.micro).collect();
        let macro_: Vec<SpotCounts> = counts.iter().map(|c| c.macro_).collect();
        let mut groups: BTreeMap<String, SpotGroup> = BTreeMap::new();
        for (v, c) in videos.iter().zip(&counts) {
            let g = groups.entry(v.group.clone()).or_insert_with(|| SpotGroup {
                group: v.group.clone(),
                videos: 0,
                overall: SpotCounts::default(),
                micro: SpotCounts::default(),
                macro_: SpotCounts::default(),
            });
            g.videos += 1;
            g.overall += c.overall();
            g.micro += c.micro;
            g.macro_ += c.macro_;
        }
        let mut on_blinks = 0u64;
        for (v, s) in videos.iter().zip(vs) {
            for i in &s.intervals {
                let p = (i.onset, i.offset);
                if v.blinks.iter().any(|b| overlaps(p, *b)) && !v.truth.iter().any(|(_, t)| overlaps(p, *t)) {
                    on_blinks += 1;
                }
            }
        }
        let frames: u64 = vs.iter().map(|s| s.frames as u64).sum();
        let method = cfg.variants[vi].spotter.as_ref().map_or("regional", |s| s.method.name()).to_string();
        variants.push(SpotVariantReport {
            name: name.clone(),
            method,
            overall: score(&overall, &boot)?,
            micro: score(&micro, &boot)?,
            macro_: score(&macro_, &boot)?,
            per_group: groups.into_values().collect(),
            predictions_on_blinks: on_blinks,
            blinks_set_aside: vs.iter().map(|s| s.blinks.len() as u64).sum(),
            frames,
            frames_per_s: if *wall > 0.0 { frames as f64 / wall } else { 0.0 },
        });
        per_variant_counts.push(counts);
    }
    let mut comparisons = Vec::new();
    let ids: Vec<usize> = (0..videos.len()).collect();
    for a in 0..spots.len() {
        for b in a + 1..spots.len() {
            let ca: Vec<SpotCounts> = per_variant_counts[a].iter().map(TypedCounts::overall).collect();
            let cb: Vec<SpotCounts> = per_variant_counts[b].iter().map(TypedCounts::overall).collect();
            let d = cluster_bootstrap(&ids, |idx| Ok(pooled(&ca, idx).f1() - pooled(&cb, idx).f1()), &boot)
                .map_err(|e| Error::stage("metrics", "spotting comparison", e))?;
            comparisons.push(SpotComparison {
                a: spots[a].0.clone(),
                b: spots[b].0.clone(),
                f1_difference: d,
            });
        }
    }
    let count =
        |ty: ExpressionType| videos.iter().map(|v| v.truth.iter().filter(|(k, _)| *k == ty).count()).sum();
    Ok(SpotReport {
        experiment: cfg.name.clone(),
        seed: cfg.seed,
        n_videos: videos.len(),
        n_micro: count(ExpressionType::Micro),
        n_macro: count(ExpressionType::Macro),
        n_blinks: videos.iter().map(|v| v.blinks.len()).sum(),
        iou_threshold: task.iou_threshold,
        variants,
        comparisons,
        config: cfg.clone(),
        provenance: Provenance::current(),
    })
}

fn ci(c: &ConfidenceInterval) -> String {
    format!("{:.3} [{:.3}, {:.3}]", c.estimate, c.lower, c.upper)
}

fn counts(c: &SpotCounts) -> String {
    format!("{}/{}/{}", c.tp, c.fp, c.fn_)
}

/// The report as Markdown.
pub fn spot_markdown(r: &SpotReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Spotting experiment `{}`\n", r.experiment);
    let _ = writeln!(
        s,
        "{} videos; ground truth: {} micro- and {} macro-expressions; {} blinks (distractors, never \
         ground truth). A prediction is a true positive at IoU >= {} with an unmatched ground-truth \
         interval of its type (MEGC); F1 pooled over the videos, {:.0}% percentile-bootstrap \
         intervals over videos ({} resamples, seed {}).\n",
        r.n_videos,
        r.n_micro,
        r.n_macro,
        r.n_blinks,
        r.iou_threshold,
        r.config.evaluation.confidence * 100.0,
        r.config.evaluation.bootstrap,
        r.seed
    );
    let _ = writeln!(s, "| variant | method | F1 overall | F1 micro | F1 macro | P | R | TP/FP/FN | on blinks | blinks set aside | frames/s |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for v in &r.variants {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {:.0} |",
            v.name,
            v.method,
            ci(&v.overall.f1),
            ci(&v.micro.f1),
            ci(&v.macro_.f1),
            v.overall.precision,
            v.overall.recall,
            counts(&v.overall.counts),
            v.predictions_on_blinks,
            v.blinks_set_aside,
            v.frames_per_s
        );
    }
    let _ = writeln!(s, "\n## Per group\n");
    let _ = writeln!(s, "| variant | group | videos | F1 overall | F1 micro | F1 macro | TP/FP/FN overall |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for v in &r.variants {
        for g in &v.per_group {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {} |",
                v.name,
                g.group,
                g.videos,
                g.overall.f1(),
                g.micro.f1(),
                g.macro_.f1(),
                counts(&g.overall)
            );
        }
    }
    if !r.comparisons.is_empty() {
        let _ = writeln!(s, "\n## Paired comparisons (overall F1, video bootstrap)\n");
        let _ = writeln!(s, "| a | b | F1(a) − F1(b) |");
        let _ = writeln!(s, "|---|---|---|");
        for c in &r.comparisons {
            let _ = writeln!(s, "| {} | {} | {} |", c.a, c.b, ci(&c.f1_difference));
        }
    }
    let _ =
        writeln!(s, "\n- full configuration: `config.json` beside this file and `config` in `report.json`");
    s
}

/// Runs a spotting experiment into `out`: each variant's spots are written to
/// `out/spots/<variant>.json` (a rerun reuses them) and, as `video,onset,offset,type` CSV (the
/// columns `mex metrics spot` reads), to `out/spots/<variant>.csv`, the ground truth to
/// `out/truth.csv`; then `report.json` and `report.md`.
pub fn run_spotting(
    cfg: &ExperimentConfig,
    task: &SpottingTask,
    out: &Path,
    progress: bool,
) -> Result<SpotReport> {
    let videos = load_videos(&cfg.dataset, cfg.seed)?;
    let dir = out.join("spots");
    let path = |name: &str| dir.join(format!("{name}.json"));
    // the variants without saved spots are spotted together, one pass over each video
    let todo: Vec<usize> =
        (0..cfg.variants.len()).filter(|&i| !path(&cfg.variants[i].name).exists()).collect();
    let mut fresh: Vec<Option<SavedSpots>> = vec![None; cfg.variants.len()];
    if !todo.is_empty() {
        if progress {
            let names: Vec<&str> = todo.iter().map(|&i| cfg.variants[i].name.as_str()).collect();
            eprintln!("{}: spotting {} videos", names.join(", "), videos.len());
        }
        let spotters: Vec<SpotterConfig> =
            todo.iter().map(|&i| cfg.variants[i].spotter.clone().unwrap_or_default()).collect();
        let t0 = Instant::now();
        let per_video: Vec<(Vec<VideoSpots>, f64)> = videos
            .par_iter()
            .map(|video| spot_video_with(video, &spotters, task.crop_size, task.batch))
            .collect::<Result<_>>()?;
        let wall = t0.elapsed().as_secs_f64();
        let passes: f64 = per_video.iter().map(|(_, p)| p).sum();
        let mut by_variant = vec![Vec::with_capacity(videos.len()); todo.len()];
        for (spots, _) in per_video {
            by_variant.iter_mut().zip(spots).for_each(|(vs, s)| vs.push(s));
        }
        for (&i, vs) in todo.iter().zip(by_variant) {
            let own: f64 = vs.iter().map(|s| s.seconds).sum();
            let wall_s = if passes > 0.0 { wall * own / passes } else { wall };
            let saved = SavedSpots { videos: vs, wall_s };
            write_json_atomic(&path(&cfg.variants[i].name), &saved)?;
            fresh[i] = Some(saved);
        }
    }
    let mut spots = Vec::with_capacity(cfg.variants.len());
    for (v, fresh) in cfg.variants.iter().zip(fresh) {
        let path = path(&v.name);
        let saved: SavedSpots = match fresh {
            Some(s) => s,
            None => read_json(&path)?,
        };
        let vs = saved.videos;
        if vs.len() != videos.len() || vs.iter().zip(&videos).any(|(s, v)| s.video != v.id) {
            return Err(Error::Invalid(format!(
                "{} does not hold the spots of this experiment's videos; delete it to rerun",
                path.display()
            )));
        }
        spots.push((v.name.clone(), vs, saved.wall_s));
    }
    // the intervals as CSV (`video,onset,offset,type`, what `mex metrics spot` reads)
    let truth =
        videos.iter().flat_map(|v| v.truth.iter().map(|&(k, s)| (v.id.as_str(), s.onset, s.offset, k)));
    write_atomic(&out.join("truth.csv"), &intervals_csv(truth)?)?;
    for (name, vs, _) in &spots {
        let rows =
            vs.iter().flat_map(|s| s.intervals.iter().map(|i| (s.video.as_str(), i.onset, i.offset, i.kind)));
        write_atomic(&path(name).with_extension("csv"), &intervals_csv(rows)?)?;
    }
    let report = build_spot_report(cfg, task, &videos, &spots)?;
    write_json_atomic(&out.join("report.json"), &report)?;
    write_atomic(&out.join("report.md"), spot_markdown(&report).as_bytes())?;
    Ok(report)
}

/// Intervals as CSV with the header `video,onset,offset,type`.
fn intervals_csv<'a>(rows: impl Iterator<Item = (&'a str, usize, usize, ExpressionType)>) -> Result<Vec<u8>> {
    let csv_err = |e: csv::Error| Error::Invalid(format!("writing intervals as CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["video", "onset", "offset", "type"]).map_err(csv_err)?;
    for (video, onset, offset, kind) in rows {
        w.write_record([video, &onset.to_string(), &offset.to_string(), &kind.to_string()])
            .map_err(csv_err)?;
    }
    w.into_inner().map_err(|e| Error::Invalid(format!("writing intervals as CSV: {e}")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedSpots {
    videos: Vec<VideoSpots>,
    wall_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_spots_as_separate_passes_do() {
        // one short synthetic video, two spotters: pushed the same frames in one pass, each finds
        // what it finds alone
        let spec = SynthLongSpec {
            seeds: 1,
            groups: vec![SynthLongGroup { fps: 30.0, duration_s: 4.0, n_micro: 1, n_macro: 1 }],
            ..SynthLongSpec::default()
        };
        let videos = load_videos(&DatasetSpec::SyntheticLong(spec), 7).unwrap();
        let a = SpotterConfig::default();
        let b = SpotterConfig::default().with_method(mex_flow::spot::SpotMethod::Global);
        let (both, pass) = spot_video_with(&videos[0], &[a.clone(), b.clone()], 64, 16).unwrap();
        let alone =
            [spot_video(&videos[0], &a, 64, 16).unwrap(), spot_video(&videos[0], &b, 64, 16).unwrap()];
        for (x, y) in both.iter().zip(&alone) {
            assert_eq!(
                (&x.video, x.frames, &x.intervals, &x.blinks),
                (&y.video, y.frames, &y.intervals, &y.blinks)
            );
            assert!(x.seconds > 0.0 && x.seconds <= pass);
        }
        assert!(!both[0].intervals.is_empty() && both[0].intervals != both[1].intervals, "{both:?}");
    }

    #[test]
    fn numbered_frames_sort_by_number() {
        let d = tempfile::tempdir().unwrap();
        for n in [10, 2, 1] {
            std::fs::write(d.path().join(format!("img{n}.jpg")), b"x").unwrap();
        }
        std::fs::write(d.path().join("notes.txt"), b"x").unwrap();
        let v = numbered_frames(d.path()).unwrap();
        let nums: Vec<usize> = v.iter().map(|(n, _)| *n).collect();
        assert_eq!(nums, vec![1, 2, 10]);
    }

    #[test]
    fn typed_scoring_counts_blinks_as_false_positives() {
        let v = LongVideo {
            id: "v".into(),
            group: "g".into(),
            fps: 30.0,
            truth: vec![
                (ExpressionType::Micro, Span { onset: 10, offset: 19 }),
                (ExpressionType::Macro, Span { onset: 100, offset: 159 }),
            ],
            blinks: vec![Span { onset: 50, offset: 56 }],
            source: Source::Files(Vec::new()),
        };
        let i = |kind, onset, offset| SpottedInterval { kind, onset, apex: onset, offset };
        let spots = VideoSpots {
            video: "v".into(),
            frames: 200,
            intervals: vec![
                // IoU 8/12 with the micro truth: TP
                i(ExpressionType::Micro, 12, 21),
                // the blink: FP
                i(ExpressionType::Micro, 50, 56),
                // right place, wrong type: FP for macro, and the micro truth is already taken
                i(ExpressionType::Macro, 10, 19),
                // IoU 30/60 with the macro truth: TP (>= 0.5)
                i(ExpressionType::Macro, 100, 129),
            ],
            blinks: vec![],
            seconds: 0.0,
        };
        let c = score_video(&v, &spots, 0.5).unwrap();
        assert_eq!((c.micro.tp, c.micro.fp, c.micro.fn_), (1, 1, 0));
        assert_eq!((c.macro_.tp, c.macro_.fp, c.macro_.fn_), (1, 1, 0));
        assert_eq!(c.overall().f1(), 2.0 * 0.5 * 1.0 / 1.5);
    }
}
