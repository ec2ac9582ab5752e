//! Analysis of a recording (`mex analyze`): a video file or a folder of frames in; every face
//! tracked with a stable `face_id`; per-frame landmarks and a motion signal; spotted movements
//! (and, with a checkpoint, their classes). Writes numbers only (a CSV with OpenFace-compatible
//! columns, a JSON summary); face images only when asked (`save_frames`).
//!
//! # One streaming pass
//!
//! Frames are decoded one at a time ([`mex_data::video`]), faces are detected on the colour frame
//! and tracked ([`mex_align::MultiFaceTracker`]), each face is aligned to a canonical crop (the
//! 5-point similarity transform, smoothed over `2 r + 1` frames centred on the frame, so a face's
//! rows leave `r` frames after their frame) and fed to its own streaming spotter. Rows are written
//! to the CSV as they are completed. Memory is bounded by these windows, not by the length of the
//! recording: about `r + 1` decoded frames, the spotter's baseline window per face and, with a
//! checkpoint, about one second of aligned crops per face. Every output goes through a temporary
//! file renamed into place at the end: an interrupted or failed run leaves no partial file.
//!
//! ```no_run
//! use mex::analyze::{run_analyze, AnalyzeConfig};
//! # fn main() -> mex::Result<()> {
//! let r = run_analyze("recording.mp4".as_ref(), &AnalyzeConfig::default(), "out".as_ref())?;
//! println!("{} frames, {} movements", r.n_frames, r.intervals.len());
//! # Ok(())
//! # }
//! ```

use crate::{Error, Result};
use image::{GrayImage, RgbImage};
use mex_align::{
    dlib_box_from_points, AlignConfig, Aligner, LandmarkModel, Mtcnn, MultiFaceTracker, MultiTrackerConfig,
    ShapePredictor,
};
use mex_classify::{Model, ModelConfig};
use mex_core::{ClassSet, GrayF32, Interval, Landmarks, Similarity};
use mex_data::video::{open_frames, Frame, FrameStream, StreamInfo};
use mex_flow::spot::{MovementKind, Spotter, SpotterConfig};
use mex_flow::strain::StstnetInputConfig;
use mex_flow::{FlowConfig, FlowEstimator};
use mex_indicators::{FrameIndicators, FrameInput, IndicatorConfig, IndicatorTracker, RegionMotion};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where Debian's `libdlib-data` puts dlib's 68-point model; used when no model is given.
pub const DEBIAN_DLIB_MODEL: &str = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

/// Which landmark model gives the per-frame points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkSource {
    /// A dlib-format 68-point model at this path when given, else at [`DEBIAN_DLIB_MODEL`] when
    /// that file exists, else MTCNN's five points.
    Auto,
    /// MTCNN's five points only.
    Five,
    /// A dlib-format 68-point model (shape predictor `.dat`) at this path.
    Dlib(PathBuf),
}

impl LandmarkSource {
    /// The source actually used: `Auto` becomes `Dlib` of [`DEBIAN_DLIB_MODEL`] when that file
    /// exists, else `Five`; the others are returned as they are.
    pub fn resolved(&self) -> LandmarkSource {
        match self {
            LandmarkSource::Auto if Path::new(DEBIAN_DLIB_MODEL).is_file() => {
                LandmarkSource::Dlib(PathBuf::from(DEBIAN_DLIB_MODEL))
            }
            LandmarkSource::Auto => LandmarkSource::Five,
            other => other.clone(),
        }
    }
}

/// Largest frame rate an analysis accepts (`--fps`), frames per second.
pub const MAX_FPS: f64 = mex_data::video::MAX_FPS;

/// Settings of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeConfig {
    /// Frames per second for a folder of frames, or for a video whose container carries no rate
    /// (`None`: 30 for folders; a video's own rate always wins).
    pub fps: Option<f64>,
    /// Side of the aligned crops, pixels.
    pub crop_size: u32,
    /// Half-width (frames) of the temporal smoothing of the per-frame alignment.
    pub smoothing_radius: usize,
    /// Face tracking: detection interval, most faces, matching overlap.
    pub tracker: MultiTrackerConfig,
    /// The landmark model of the per-frame points.
    pub landmarks: LandmarkSource,
    /// STSTNet weights (safetensors, PyTorch names) to classify each spotted micro-movement.
    pub checkpoint: Option<PathBuf>,
    /// The checkpoint expects the released STSTNet input convention (B, G, R = strain, v, u as
    /// 0..255 floats) rather than mex's (u, v, strain in 0..1).
    pub released_convention: bool,
    /// Also write the aligned face crops as PNG (off by default: privacy).
    pub save_frames: bool,
    /// Compute the indicators (needs 68-point landmarks; on by default).
    pub indicators: bool,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        Self {
            fps: None,
            crop_size: 128,
            smoothing_radius: 2,
            tracker: MultiTrackerConfig::default(),
            landmarks: LandmarkSource::Auto,
            checkpoint: None,
            released_convention: false,
            save_frames: false,
            indicators: true,
        }
    }
}

impl AnalyzeConfig {
    /// Checks every range.
    pub fn validate(&self) -> Result<()> {
        if let Some(f) = self.fps {
            if !(f.is_finite() && f > 0.0 && f <= MAX_FPS) {
                return Err(Error::Invalid(format!("--fps {f} must be in (0, {MAX_FPS}]")));
            }
        }
        if !(16..=1024).contains(&self.crop_size) {
            return Err(Error::Invalid(format!("crop size {} must be in 16..=1024", self.crop_size)));
        }
        if self.smoothing_radius > 100 {
            return Err(Error::Invalid(format!(
                "smoothing radius {} must be at most 100",
                self.smoothing_radius
            )));
        }
        self.tracker.validate().map_err(|e| Error::Invalid(e.to_string()))
    }
}

/// Progress of a running analysis, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Frames decoded and analysed so far.
    pub frames_done: usize,
    /// Frames in the recording, when known in advance.
    pub n_frames: Option<usize>,
}

/// One spotted movement of one face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalRecord {
    /// The face that moved.
    pub face_id: usize,
    /// Onset, apex, offset frames.
    pub interval: Interval,
    /// Onset, apex and offset presentation times, seconds.
    pub times_s: [f64; 3],
    /// `micro` or `macro` by duration.
    pub kind: String,
    /// Peak of the motion signal.
    pub peak: f32,
    /// Class probabilities (negative, positive, surprise) when a checkpoint was given.
    pub probabilities: Option<Vec<f32>>,
    /// The most probable class when a checkpoint was given.
    pub predicted: Option<String>,
}

/// Per-face totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceSummary {
    /// The face's identity.
    pub face_id: usize,
    /// Frames in which the face was tracked.
    pub n_frames: usize,
    /// First and last frame with the face.
    pub first_frame: usize,
    /// Last frame with the face.
    pub last_frame: usize,
    /// Seconds with the face (sum of the frame durations).
    pub seconds: f64,
}

/// The analysis of a recording (written as `analysis.json`; the per-frame rows are in
/// `frames.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeResult {
    /// The input (video file or folder).
    pub input: PathBuf,
    /// `video` or `frames`.
    pub input_kind: String,
    /// Codec of a video (`h264`, `hevc`, ...), `frames` for a folder.
    pub codec: String,
    /// Frame size, pixels.
    pub width: u32,
    /// Frame size, pixels.
    pub height: u32,
    /// Frames analysed.
    pub n_frames: usize,
    /// Frames per second (a video's average rate, or the given rate for a folder).
    pub fps: f64,
    /// Where the rate came from: `container`, `given` or `default`.
    pub fps_source: String,
    /// Presentation time of the last frame plus one frame, seconds.
    pub duration_s: f64,
    /// `68` (dlib-format model) or `5` (MTCNN) landmark points in the CSV.
    pub landmark_points: usize,
    /// Frames in which at least one face was tracked.
    pub frames_with_face: usize,
    /// Per-face totals.
    pub faces: Vec<FaceSummary>,
    /// Spotted movements of every face, by face then onset.
    pub intervals: Vec<IntervalRecord>,
    /// Per-recording indicators of the main face (the face tracked longest), name to value
    /// (see docs/indicators.md); empty with five-point landmarks.
    pub indicators: BTreeMap<String, Option<f64>>,
    /// The main face's indicator details: why values are null, blinks of both detectors,
    /// per-movement asymmetry.
    pub indicator_details: Option<IndicatorDetails>,
    /// Things a reader should know (a clip shorter than the spotting window, ...).
    pub warnings: Vec<String>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Details of the main face's indicators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorDetails {
    /// The face they describe.
    pub face_id: usize,
    /// Why each null indicator is null.
    pub reasons: BTreeMap<String, String>,
    /// Blinks of the adaptive detector.
    pub blinks: Vec<mex_indicators::Blink>,
    /// Blinks of OpenDBM's detector.
    pub opendbm_blinks: Vec<mex_indicators::Blink>,
    /// Per spotted movement: signed motion asymmetry and peak activity.
    pub movements: Vec<mex_indicators::MovementIndicators>,
}

/// Keeps at most about `2 * cap` evenly spaced items of a stream (for plots of long recordings):
/// when full, every other item is dropped and the stride doubles.
#[derive(Debug, Clone)]
struct Decimated<T> {
    items: Vec<T>,
    stride: usize,
    seen: usize,
    cap: usize,
}

impl<T> Decimated<T> {
    fn new(cap: usize) -> Self {
        Self { items: Vec::new(), stride: 1, seen: 0, cap: cap.max(2) }
    }

    fn push(&mut self, x: T) {
        if self.seen.is_multiple_of(self.stride) {
            self.items.push(x);
            if self.items.len() >= 2 * self.cap {
                let mut i = 0;
                self.items.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }
}

/// The image files of a folder in natural order (`img2` before `img10`).
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder of frames"),
        });
    }
    let s = mex_data::Sample { path: Some(dir.to_path_buf()), ..Default::default() };
    let files = s.frame_paths().map_err(|e| Error::stage("data", dir.display().to_string(), e))?;
    if files.len() < 2 {
        return Err(Error::stage("data", dir.display().to_string(), "need at least two image frames"));
    }
    Ok(files)
}

/// A file streamed into a [`mex_core::PendingFile`] and renamed into place by
/// [`AtomicFile::commit`]; dropped uncommitted, the temporary file is removed.
struct AtomicFile {
    // declared first: dropped (closed) before the pending file removes its temporary file
    w: std::io::BufWriter<std::fs::File>,
    file: mex_core::PendingFile,
}

impl AtomicFile {
    fn create(path: &Path) -> Result<Self> {
        let file = mex_core::PendingFile::new(path);
        let f = std::fs::File::create(file.tmp())
            .map_err(|e| Error::Io { path: file.tmp().into(), source: e })?;
        Ok(Self { w: std::io::BufWriter::with_capacity(1 << 16, f), file })
    }

    fn write(&mut self, s: &str) -> Result<()> {
        self.w.write_all(s.as_bytes()).map_err(|e| Error::Io { path: self.file.tmp().into(), source: e })
    }

    fn commit(self) -> Result<()> {
        let Self { w, file } = self;
        w.into_inner().map_err(|e| Error::Io { path: file.tmp().into(), source: e.into_error() })?;
        let path = file.path().to_path_buf();
        file.commit().map_err(|e| Error::Io { path, source: e })
    }
}

/// The CSV header: OpenFace's leading columns and landmark names, then mex's own (with 68 points,
/// the per-frame indicator columns of `mex_indicators::FrameIndicators::column_names`).
pub fn csv_header(points: usize) -> String {
    let mut s = String::from("frame,face_id,timestamp,confidence,success");
    for i in 0..points {
        let _ = write!(s, ",x_{i}");
    }
    for i in 0..points {
        let _ = write!(s, ",y_{i}");
    }
    s.push_str(",face_x0,face_y0,face_x1,face_y1,motion");
    if points == 68 {
        for n in FrameIndicators::column_names() {
            s.push(',');
            s.push_str(&n);
        }
    }
    s.push('\n');
    s
}

/// One CSV row (not yet complete while its motion value is pending).
#[derive(Debug, Clone)]
struct Row {
    frame: usize,
    face_id: usize,
    timestamp: f64,
    confidence: f32,
    face: Option<([f32; 4], Vec<[f32; 2]>)>,
    motion: Option<f32>,
    /// Per-frame indicator values (68 points only).
    ind: Option<Vec<Option<f64>>>,
}

impl Row {
    fn write(&self, points: usize, s: &mut String) {
        let _ = write!(
            s,
            "{},{},{:.6},{:.4},{}",
            self.frame,
            self.face_id,
            self.timestamp,
            self.confidence,
            u8::from(self.face.is_some())
        );
        match &self.face {
            Some((b, lm)) => {
                for axis in 0..2 {
                    for i in 0..points {
                        match lm.get(i) {
                            Some(p) => {
                                let _ = write!(s, ",{:.2}", p[axis]);
                            }
                            None => s.push(','),
                        }
                    }
                }
                let _ = write!(s, ",{:.2},{:.2},{:.2},{:.2}", b[0], b[1], b[2], b[3]);
            }
            None => {
                for _ in 0..(2 * points + 4) {
                    s.push(',');
                }
            }
        }
        match self.motion {
            Some(m) => {
                let _ = write!(s, ",{m:.5}");
            }
            None => s.push(','),
        }
        if points == 68 {
            for i in 0..FrameIndicators::N_COLUMNS {
                match self.ind.as_ref().and_then(|v| v.get(i).copied().flatten()) {
                    Some(v) => {
                        let _ = write!(s, ",{v:.5}");
                    }
                    None => s.push(','),
                }
            }
        }
        s.push('\n');
    }
}

/// Frames the spotter needs before its first decision: the flow distance, the smoothing and an
/// 8-value baseline, counted twice so that there is something left to spot in.
fn spotting_window(cfg: &SpotterConfig) -> usize {
    2 * (cfg.k + cfg.smooth + 7)
}

/// The spotter for a recording at `fps`, shortened (flow distance `k`) when the recording is
/// known to be shorter than its window; the warning says so.
fn spotter_config(fps: f64, n_frames: Option<usize>) -> (SpotterConfig, Option<String>) {
    let cfg = SpotterConfig::for_fps(fps);
    let need = spotting_window(&cfg);
    match n_frames {
        Some(n) if n < need => {
            let k = (n / 2).saturating_sub(cfg.smooth + 7).max(1);
            let msg = format!(
                "the clip has {n} frames, fewer than the spotting window of {need} frames at {fps:.1} fps \
                 (flow over k = {} frames, smoothing and an 8-frame baseline, twice): spotting with k = {k}{}",
                cfg.k,
                if n < 2 * (1 + cfg.smooth + 7) { ", which may still be too short to spot anything" } else { "" }
            );
            (SpotterConfig { k, ..cfg }, Some(msg))
        }
        _ => (cfg, None),
    }
}

/// One face's state: alignment smoothing queue, spotter, pending rows.
struct FaceState {
    id: usize,
    spot_cfg: SpotterConfig,
    spotter: Spotter,
    /// First frame of the current run of consecutive frames with the face.
    segment_start: usize,
    /// Raw transforms of the run's recent frames: (frame, transform), at most `2 r + 1`.
    transforms: VecDeque<(usize, Similarity)>,
    /// Frames of the run not yet aligned (their rows wait for the motion value), with their
    /// timestamps and 68 landmarks (image pixels) for the indicators.
    pending: VecDeque<(usize, f64, Option<Landmarks>)>,
    /// The previous aligned crop of the run (regional motion between consecutive frames).
    prev_crop: Option<GrayF32>,
    /// Indicators (68 points only).
    ind: Option<IndicatorTracker>,
    /// Per-frame indicators kept for the plots (decimated on long recordings).
    plot: Decimated<FrameIndicators>,
    last_frame: usize,
    n_frames: usize,
    first_frame: usize,
    seconds: f64,
    /// Aligned crops of about the last second (with a checkpoint), for classification.
    crops: VecDeque<(usize, GrayF32)>,
    events: Vec<(usize, mex_flow::spot::Spotted)>,
}

struct Pipeline {
    cfg: AnalyzeConfig,
    aligner: Aligner,
    spot_cfg: SpotterConfig,
    keep_crops: usize,
    faces: BTreeMap<usize, FaceState>,
    /// Gray frames of the last `r + 1` frames (for the delayed, smoothed alignment).
    grays: VecDeque<(usize, GrayF32)>,
    /// Rows of the last frames, waiting for their motion values: frame -> rows.
    rows: BTreeMap<usize, Vec<Row>>,
    /// Timestamps of recent frames (for interval times).
    times: VecDeque<(usize, f64)>,
    crop_dir: Option<PathBuf>,
    written_crops: Vec<PathBuf>,
    /// Flow between consecutive aligned crops for regional activity (68 points only).
    region_flow: Option<Box<dyn FlowEstimator + Send + Sync>>,
}

/// Integer luma as dlib's Python bindings' callers commonly compute it.
fn luma_u8(img: &RgbImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let data = img
        .pixels()
        .map(|p| ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500) / 1000) as u8)
        .collect();
    GrayImage::from_raw(w, h, data).unwrap_or_else(|| GrayImage::new(w, h))
}

fn centred_mean(ts: &[Similarity]) -> Similarity {
    let n = ts.len().max(1) as f64;
    let mut s = Similarity { a: 0.0, b: 0.0, tx: 0.0, ty: 0.0 };
    for x in ts {
        s.a += x.a / n;
        s.b += x.b / n;
        s.tx += x.tx / n;
        s.ty += x.ty / n;
    }
    s
}

impl Pipeline {
    /// Aligns and spots every pending frame of `face` whose centred window is complete
    /// (`upto_end`: the run ended, so the window is cut at its last frame).
    fn advance(&mut self, id: usize, upto_end: bool) -> Result<()> {
        let r = self.cfg.smoothing_radius;
        let Some(st) = self.faces.get_mut(&id) else { return Ok(()) };
        while let Some(&(f, time_s, _)) = st.pending.front() {
            let last = st.transforms.back().map_or(f, |t| t.0);
            if !upto_end && last < f + r {
                break;
            }
            let window: Vec<Similarity> = st
                .transforms
                .iter()
                .filter(|(g, _)| *g + r >= f && *g <= f + r && *g >= st.segment_start)
                .map(|(_, t)| *t)
                .collect();
            let t = centred_mean(&window);
            let gray = self
                .grays
                .iter()
                .find(|(g, _)| *g == f)
                .map(|(_, g)| g)
                .ok_or_else(|| Error::Invalid(format!("internal: frame {f} left the window")))?;
            let crop = self
                .aligner
                .warp_gray(gray, &t)
                .map_err(|e| Error::stage("align", format!("frame {f}"), e))?;
            if let Some(dir) = &self.crop_dir {
                let p = dir.join(format!("face{id}_{f:06}.png"));
                crate::io::save_image_atomic(&mex_core::gray_f32_to_luma8(&crop), &p)?;
                self.written_crops.push(p);
            }
            if self.keep_crops > 0 {
                if st.crops.len() == self.keep_crops {
                    st.crops.pop_front();
                }
                st.crops.push_back((f, crop.clone()));
            }
            // Indicators: the frame's 68 landmarks and the regional motion since the previous
            // aligned frame (flow between the crops, head motion removed, averaged per region).
            let mut ind_values = None;
            if let (Some(tracker), Some((_, _, Some(lm)))) = (st.ind.as_mut(), st.pending.front()) {
                let motion = match (&st.prev_crop, &self.region_flow) {
                    (Some(prev), Some(est)) => Some(
                        region_motion(est.as_ref(), prev, &crop, &lm.transformed(&t))
                            .map_err(|e| Error::stage("indicators", format!("frame {f}, face {id}"), e))?,
                    ),
                    _ => None,
                };
                let row = tracker
                    .push(&FrameInput { time_s, landmarks: Some(lm), motion: motion.flatten().as_ref() })
                    .map_err(|e| Error::stage("indicators", format!("frame {f}, face {id}"), e))?;
                ind_values = Some(row.values());
                st.plot.push(row);
            }
            if st.ind.is_some() {
                st.prev_crop = Some(crop.clone());
            }
            let motion = st
                .spotter
                .push(crop)
                .map_err(|e| Error::stage("flow", format!("frame {f}, face {id}"), e))?;
            for e in st.spotter.take_events() {
                st.events.push((st.segment_start, e));
            }
            if let Some(row) = self.rows.get_mut(&f).and_then(|rs| rs.iter_mut().find(|x| x.face_id == id)) {
                row.motion = motion;
                row.ind = ind_values;
            }
            st.pending.pop_front();
            while st.transforms.front().is_some_and(|(g, _)| *g + r < f + 1) {
                st.transforms.pop_front();
            }
        }
        Ok(())
    }

    /// Ends the current run of `id`: aligns its last frames and closes its spotter.
    fn end_run(&mut self, id: usize) -> Result<()> {
        self.advance(id, true)?;
        if let Some(st) = self.faces.get_mut(&id) {
            for e in st.spotter.finish() {
                st.events.push((st.segment_start, e));
            }
        }
        Ok(())
    }
}

/// Analyses a recording (video file or frames folder) into `out` (`frames.csv`, `analysis.json`).
pub fn run_analyze(input: &Path, cfg: &AnalyzeConfig, out: &Path) -> Result<AnalyzeResult> {
    run_analyze_with(input, cfg, out, &mut |_| {})
}

/// [`run_analyze`] with a progress callback, called after every frame.
pub fn run_analyze_with(
    input: &Path,
    cfg: &AnalyzeConfig,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<AnalyzeResult> {
    cfg.validate()?;
    let is_video = input.is_file();
    let mut stream: Box<dyn FrameStream> = if input.is_dir() {
        list_frames(input)?;
        open_frames(input, cfg.fps).map_err(|e| Error::stage("data", input.display().to_string(), e))?
    } else {
        open_frames(input, cfg.fps).map_err(|e| Error::stage("data", input.display().to_string(), e))?
    };
    let info: StreamInfo = stream.info().clone();
    let fps = info.fps;
    let fps_source = if info.fps_from_container {
        "container"
    } else if cfg.fps.is_some() {
        "given"
    } else {
        "default"
    };

    // The landmark model.
    let dlib: Option<ShapePredictor> = match cfg.landmarks.resolved() {
        LandmarkSource::Dlib(p) => Some(
            ShapePredictor::from_file(&p).map_err(|e| Error::stage("align", p.display().to_string(), e))?,
        ),
        _ => None,
    };
    if let Some(d) = &dlib {
        if d.num_parts() != 68 {
            return Err(Error::Invalid(format!("the landmark model has {} points, not 68", d.num_parts())));
        }
    }
    let points = if dlib.is_some() { 68 } else { 5 };

    // Declared before every output so that it is dropped after them (a failed run's temporary
    // files are gone before its folders are removed).
    let mut leftovers = crate::io::Leftovers::default();
    leftovers.create_dir_all(out)?;
    if !out.is_dir() {
        return Err(Error::Io {
            path: out.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "the output path is not a folder"),
        });
    }
    let csv_path = out.join("frames.csv");
    let mut csv = AtomicFile::create(&csv_path)?;
    csv.write(&csv_header(points))?;

    let detector = Mtcnn::new().map_err(|e| Error::stage("align", "MTCNN", e))?;
    let mut tracker =
        MultiFaceTracker::new(detector, cfg.tracker).map_err(|e| Error::stage("align", "tracker", e))?;
    let aligner = AlignConfig { size: cfg.crop_size, ..AlignConfig::default() }
        .build()
        .map_err(|e| Error::stage("align", "aligner", e))?;
    let (spot_cfg, short_warning) = spotter_config(fps, info.n_frames);
    spot_cfg.validate().map_err(|e| Error::stage("flow", "spotter", e))?;
    let mut warnings: Vec<String> = short_warning.into_iter().collect();
    let keep_crops =
        if cfg.checkpoint.is_some() { (1.2 * fps).ceil() as usize + 4 * spot_cfg.k + 8 } else { 0 };
    let model = match &cfg.checkpoint {
        Some(p) => Some(
            Model::load(&ModelConfig::Ststnet(Default::default()), p, &candle_core::Device::Cpu)
                .map_err(|e| Error::stage("classify", p.display().to_string(), e))?,
        ),
        None => None,
    };
    let crop_dir = if cfg.save_frames {
        let d = out.join("aligned_frames");
        leftovers.create_dir_all(&d)?;
        Some(d)
    } else {
        None
    };

    let mut p = Pipeline {
        cfg: cfg.clone(),
        aligner,
        spot_cfg,
        keep_crops,
        faces: BTreeMap::new(),
        grays: VecDeque::new(),
        rows: BTreeMap::new(),
        times: VecDeque::new(),
        crop_dir,
        written_crops: Vec::new(),
        region_flow: if points == 68 && cfg.indicators {
            Some(
                FlowConfig::Dis(mex_flow::DisConfig::ultrafast())
                    .build()
                    .map_err(|e| Error::stage("flow", "DIS", e))?,
            )
        } else {
            None
        },
    };
    let ind_cfg = IndicatorConfig::default();
    let mut n_frames = 0usize;
    let mut frames_with_face = 0usize;
    let mut last_ts = 0.0f64;
    let mut prev_ts: Option<f64> = None;
    let mut buf = String::new();
    let mut all_events: Vec<IntervalRecord> = Vec::new();
    let result = (|| -> Result<()> {
        while let Some(Frame { index, timestamp, image }) =
            stream.next_frame().map_err(|e| Error::stage("data", input.display().to_string(), e))?
        {
            n_frames += 1;
            let dt = prev_ts.map_or(1.0 / fps, |pt| (timestamp - pt).max(0.0));
            prev_ts = Some(timestamp);
            last_ts = timestamp;
            let gray = mex_core::gray_f32_from_rgb8(&image);
            let tracked =
                tracker.track(&image).map_err(|e| Error::stage("align", format!("frame {index}"), e))?;
            let gray8 = dlib.as_ref().map(|_| luma_u8(&image));
            let mut rows = Vec::with_capacity(tracked.len().max(1));
            let mut present = Vec::with_capacity(tracked.len());
            for tf in &tracked {
                let lm: Landmarks = match (&dlib, &gray8) {
                    (Some(d), Some(g)) => {
                        let b = dlib_box_from_points(d.initial_shape(), &tf.face.landmarks)
                            .map_err(|e| Error::stage("align", format!("frame {index}"), e))?;
                        d.fit(g, &b).map_err(|e| Error::stage("align", format!("frame {index}"), e))?
                    }
                    _ => tf.face.landmarks.clone(),
                };
                let b = tf.face.bbox;
                rows.push(Row {
                    frame: index,
                    face_id: tf.face_id,
                    timestamp,
                    confidence: tf.face.score,
                    face: Some(([b.x0, b.y0, b.x1, b.y1], lm.points.iter().map(|q| [q.x, q.y]).collect())),
                    motion: None,
                    ind: None,
                });
                let t = p
                    .aligner
                    .transform(&tf.face.landmarks)
                    .map_err(|e| Error::stage("align", format!("frame {index}"), e))?;
                present.push((tf.face_id, t, (points == 68).then_some(lm)));
            }
            if tracked.is_empty() {
                rows.push(Row {
                    frame: index,
                    face_id: 0,
                    timestamp,
                    confidence: 0.0,
                    face: None,
                    motion: None,
                    ind: None,
                });
            } else {
                frames_with_face += 1;
            }
            p.rows.insert(index, rows);
            p.grays.push_back((index, gray));
            p.times.push_back((index, timestamp));
            while p.times.len() > 4 * (p.keep_crops + p.spot_cfg.window + 64) {
                p.times.pop_front();
            }
            // Faces that left: end their runs (before the frame buffer moves on).
            let ids: Vec<usize> = p.faces.keys().copied().collect();
            for id in ids {
                let gone = !present.iter().any(|(pid, _, _)| *pid == id);
                let running = p.faces.get(&id).is_some_and(|s| s.last_frame + 1 == index);
                if gone && running {
                    p.end_run(id)?;
                }
                if gone {
                    // The face is absent: its indicators count the frame as one without a face.
                    if let Some(st) = p.faces.get_mut(&id) {
                        if let Some(tr) = st.ind.as_mut() {
                            let row = tr
                                .push(&FrameInput { time_s: timestamp, landmarks: None, motion: None })
                                .map_err(|e| {
                                    Error::stage("indicators", format!("frame {index}, face {id}"), e)
                                })?;
                            st.plot.push(row);
                        }
                    }
                }
            }
            for (id, t, lm68) in present {
                let spot_cfg = p.spot_cfg.clone();
                let st = match p.faces.entry(id) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => v.insert(FaceState {
                        id,
                        spotter: spot_cfg.build().map_err(|e| Error::stage("flow", "spotter", e))?,
                        spot_cfg: spot_cfg.clone(),
                        segment_start: index,
                        transforms: VecDeque::new(),
                        pending: VecDeque::new(),
                        last_frame: index,
                        n_frames: 0,
                        first_frame: index,
                        seconds: 0.0,
                        crops: VecDeque::new(),
                        events: Vec::new(),
                        prev_crop: None,
                        ind: if points == 68 && cfg.indicators {
                            Some(ind_cfg.build(fps).map_err(|e| Error::stage("indicators", "config", e))?)
                        } else {
                            None
                        },
                        plot: Decimated::new(5000),
                    }),
                };
                if st.n_frames > 0 && st.last_frame + 1 != index {
                    // A new run after a gap: a fresh spotter, frames counted from here.
                    st.spotter = st.spot_cfg.build().map_err(|e| Error::stage("flow", "spotter", e))?;
                    st.segment_start = index;
                    st.transforms.clear();
                    st.pending.clear();
                    st.crops.clear();
                    st.prev_crop = None;
                }
                st.transforms.push_back((index, t));
                st.pending.push_back((index, timestamp, lm68));
                st.last_frame = index;
                st.n_frames += 1;
                st.seconds += dt;
                p.advance(id, false)?;
            }
            // Rows whose frames every face has aligned are complete.
            let oldest_pending =
                p.faces.values().filter_map(|s| s.pending.front().map(|q| q.0)).min().unwrap_or(index + 1);
            let done: Vec<usize> = p.rows.keys().copied().filter(|&f| f < oldest_pending).collect();
            for f in done {
                if let Some(rs) = p.rows.remove(&f) {
                    for row in rs {
                        row.write(points, &mut buf);
                    }
                }
            }
            if buf.len() > 1 << 16 {
                csv.write(&buf)?;
                buf.clear();
            }
            // Decoded frames are kept only while a face still has to align them.
            while p.grays.front().is_some_and(|(g, _)| *g < oldest_pending) {
                p.grays.pop_front();
            }
            collect_events(&mut p, model.as_ref(), &mut all_events, cfg)?;
            progress(Progress { frames_done: n_frames, n_frames: info.n_frames });
        }
        let ids: Vec<usize> = p.faces.keys().copied().collect();
        for id in ids {
            p.end_run(id)?;
        }
        for (_, rs) in std::mem::take(&mut p.rows) {
            for row in rs {
                row.write(points, &mut buf);
            }
        }
        csv.write(&buf)?;
        collect_events(&mut p, model.as_ref(), &mut all_events, cfg)?;
        Ok(())
    })();
    // from here on, a failure removes the crops too
    leftovers.files.append(&mut p.written_crops);
    result?;
    if n_frames < 2 {
        return Err(Error::stage("data", input.display().to_string(), "need at least two frames"));
    }
    if frames_with_face == 0 {
        // nothing to analyse: an error, and no output (the guards remove what was written)
        return Err(Error::NoFace { n_frames });
    }
    all_events.sort_by_key(|e| (e.face_id, e.interval.onset));
    let faces: Vec<FaceSummary> = p
        .faces
        .values()
        .map(|s| FaceSummary {
            face_id: s.id,
            n_frames: s.n_frames,
            first_frame: s.first_frame,
            last_frame: s.last_frame,
            seconds: s.seconds,
        })
        .collect();
    let mut files = vec![csv_path.clone(), out.join("analysis.json")];
    if let Some(d) = &p.crop_dir {
        files.push(d.clone());
    }
    // Indicators of the main face (tracked in the most frames), with their plots.
    let main =
        p.faces.values().max_by(|a, b| a.n_frames.cmp(&b.n_frames).then(b.id.cmp(&a.id))).map(|s| s.id);
    let mut indicators = BTreeMap::new();
    let mut indicator_details = None;
    if points != 68 && cfg.indicators {
        warnings.push(
            "indicators (blinks, asymmetry, regional activity) need 68-point landmarks: give --dlib-model \
             or install Debian's libdlib-data"
                .into(),
        );
    }
    if let Some(st) = main.and_then(|id| p.faces.remove(&id)) {
        if let Some(tr) = st.ind {
            let first = st.first_frame;
            let movements: Vec<Interval> = all_events
                .iter()
                .filter(|e| e.face_id == st.id)
                .filter_map(|e| {
                    let i = e.interval;
                    Interval::new(
                        i.onset - first.min(i.onset),
                        i.apex - first.min(i.apex),
                        i.offset - first.min(i.offset),
                    )
                    .ok()
                })
                .collect();
            let summary =
                tr.finish(Some(&movements)).map_err(|e| Error::stage("indicators", "summary", e))?;
            let spans: Vec<(f64, f64)> = all_events
                .iter()
                .filter(|e| e.face_id == st.id)
                .map(|e| (e.times_s[0], e.times_s[2]))
                .collect();
            // each figure's files join the leftovers as soon as they exist: a later failure
            // removes them with the rest of this run's outputs
            let mut written = |v: Vec<PathBuf>| {
                leftovers.files.extend(v.iter().cloned());
                files.extend(v);
            };
            written(crate::indicator_plots::ear_with_blinks(
                &out.join("ear_blinks"),
                &st.plot.items,
                &summary.blinks,
                &summary.opendbm_blinks,
            )?);
            written(crate::indicator_plots::regional_activity(&out.join("activity"), &st.plot.items)?);
            written(crate::indicator_plots::asymmetry_over_time(
                &out.join("asymmetry"),
                &st.plot.items,
                &spans,
            )?);
            let shift = |mut b: mex_indicators::Blink| {
                b.onset_frame += first;
                b.closure_frame += first;
                b.offset_frame += first;
                b
            };
            indicators = summary.values.clone();
            indicator_details = Some(IndicatorDetails {
                face_id: st.id,
                reasons: summary.reasons.clone(),
                blinks: summary.blinks.iter().copied().map(shift).collect(),
                opendbm_blinks: summary.opendbm_blinks.iter().copied().map(shift).collect(),
                movements: summary
                    .movements
                    .iter()
                    .map(|m| mex_indicators::MovementIndicators {
                        onset: m.onset + first,
                        offset: m.offset + first,
                        ..*m
                    })
                    .collect(),
            });
        }
    }
    let result = AnalyzeResult {
        input: input.to_path_buf(),
        input_kind: if is_video { "video" } else { "frames" }.into(),
        codec: info.codec.clone(),
        width: info.width,
        height: info.height,
        n_frames,
        fps,
        fps_source: fps_source.into(),
        duration_s: last_ts + 1.0 / fps,
        landmark_points: points,
        frames_with_face,
        faces,
        intervals: all_events,
        indicators,
        indicator_details,
        warnings,
        files,
    };
    csv.commit()?;
    leftovers.files.push(csv_path);
    crate::io::write_json_atomic(&out.join("analysis.json"), &result)?;
    leftovers.keep();
    Ok(result)
}

/// Mean head-motion-compensated flow magnitude in each facial region between two aligned crops;
/// `None` when a region falls outside the crop. `lm` are the 68 landmarks in crop pixels.
fn region_motion(
    est: &(dyn FlowEstimator + Send + Sync),
    prev: &GrayF32,
    crop: &GrayF32,
    lm: &Landmarks,
) -> std::result::Result<Option<RegionMotion>, String> {
    let flow = est.estimate(prev, crop).map_err(|e| e.to_string())?;
    let (comp, _) =
        mex_flow::features::remove_global_similarity(&flow, None, 4).map_err(|e| e.to_string())?;
    let mag: Vec<f32> = comp.u().iter().zip(comp.v()).map(|(u, v)| u.hypot(*v)).collect();
    let (w, h) = comp.size();
    let means = mex_indicators::regional_means(lm, &mag, w, h).map_err(|e| e.to_string())?;
    let mut px = [0.0f64; mex_indicators::N_REGIONS];
    for (o, m) in px.iter_mut().zip(means) {
        match m {
            Some(v) => *o = v,
            None => return Ok(None),
        }
    }
    let iod = mex_indicators::interocular_distance(lm).map_err(|e| e.to_string())?;
    Ok(Some(RegionMotion { px_per_frame: px, interocular_px: Some(iod) }))
}

/// Moves the spotters' finished events into interval records (classifying micro-movements
/// with the checkpoint's model while their crops are still held).
fn collect_events(
    p: &mut Pipeline,
    model: Option<&Model>,
    out: &mut Vec<IntervalRecord>,
    cfg: &AnalyzeConfig,
) -> Result<()> {
    let time_of = |times: &VecDeque<(usize, f64)>, f: usize, fps: f64| {
        times.iter().find(|(g, _)| *g == f).map_or(f as f64 / fps, |(_, t)| *t)
    };
    let fps = p.spot_cfg.fps;
    for st in p.faces.values_mut() {
        for (start, s) in std::mem::take(&mut st.events) {
            let iv =
                Interval::new(s.interval.onset + start, s.interval.apex + start, s.interval.offset + start)
                    .map_err(|e| Error::stage("flow", "interval", e))?;
            let (probabilities, predicted) = match (model, s.kind) {
                (Some(m), MovementKind::Micro) => {
                    let find = |f: usize| st.crops.iter().find(|(g, _)| *g == f).map(|(_, c)| c);
                    match (find(iv.onset), find(iv.apex)) {
                        (Some(a), Some(b)) => {
                            let (pr, best) = classify(m, a, b, cfg)?;
                            (Some(pr), best)
                        }
                        _ => (None, None),
                    }
                }
                _ => (None, None),
            };
            out.push(IntervalRecord {
                face_id: st.id,
                interval: iv,
                times_s: [
                    time_of(&p.times, iv.onset, fps),
                    time_of(&p.times, iv.apex, fps),
                    time_of(&p.times, iv.offset, fps),
                ],
                kind: match s.kind {
                    MovementKind::Micro => "micro".into(),
                    MovementKind::Macro => "macro".into(),
                },
                peak: s.peak,
                probabilities,
                predicted,
            });
        }
    }
    Ok(())
}

fn classify(
    m: &Model,
    onset: &GrayF32,
    apex: &GrayF32,
    cfg: &AnalyzeConfig,
) -> Result<(Vec<f32>, Option<String>)> {
    let tvl1 = FlowConfig::TvL1(Default::default()).build().map_err(|e| Error::stage("flow", "TV-L1", e))?;
    let input = StstnetInputConfig::default();
    let flow = tvl1.estimate(onset, apex).map_err(|e| Error::stage("flow", "interval", e))?;
    let x = input.build(&flow).map_err(|e| Error::stage("flow", "input", e))?;
    let x = if cfg.released_convention { x.to_released_bgr_chw() } else { x.to_chw() };
    let t = candle_core::Tensor::from_vec(x, (1, 3, input.size, input.size), &candle_core::Device::Cpu)
        .map_err(|e| Error::stage("classify", "input", e))?;
    let p: Vec<f32> = m
        .predict_proba(&t)
        .and_then(|p| p.flatten_all().map_err(Into::into))
        .and_then(|p| p.to_vec1::<f32>().map_err(Into::into))
        .map_err(|e| Error::stage("classify", "predict", e))?;
    let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
    Ok((p, ClassSet::megc3().name(best).map(str::to_string)))
}

/// Reads an OpenFace 2.x `FeatureExtraction` CSV (columns separated by `,` or `", "`): the column
/// names (trimmed) and the rows as numbers (`NaN` for empty cells). Errors on duplicate column
/// names, ragged rows and non-numeric cells, naming the line and column.
pub fn read_openface_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    mex_core::check_table_size(path).map_err(Error::Invalid)?;
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let bad = |line: usize, msg: String| Error::Invalid(format!("{}:{line}: {msg}", path.display()));
    let header = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
    let names: Vec<String> =
        header.trim_start_matches('\u{feff}').split(',').map(|c| c.trim().to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n.as_str()) {
            return Err(bad(1, format!("duplicate column `{n}`")));
        }
    }
    let mut rows = Vec::new();
    for (i, l) in lines.enumerate() {
        let cells: Vec<&str> = l.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            return Err(bad(i + 2, format!("{} cells, the header has {}", cells.len(), names.len())));
        }
        let row = cells
            .iter()
            .zip(&names)
            .map(|(c, n)| {
                if c.is_empty() {
                    Ok(f64::NAN)
                } else {
                    c.parse::<f64>().map_err(|_| {
                        bad(i + 2, format!("column `{n}`: `{}` is not a number", c.escape_debug()))
                    })
                }
            })
            .collect::<Result<Vec<f64>>>()?;
        rows.push(row);
    }
    Ok((names, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_landmarks_resolve_to_the_model_in_use() {
        let want = if Path::new(DEBIAN_DLIB_MODEL).is_file() {
            LandmarkSource::Dlib(PathBuf::from(DEBIAN_DLIB_MODEL))
        } else {
            LandmarkSource::Five
        };
        assert_eq!(LandmarkSource::Auto.resolved(), want);
        assert_eq!(LandmarkSource::Five.resolved(), LandmarkSource::Five);
        let p = LandmarkSource::Dlib(PathBuf::from("m.dat"));
        assert_eq!(p.resolved(), p);
        // the study's cache key follows the resolved source, never `Auto`
        let a = crate::study::recordings::analyze_config(&crate::study::StudyConfig::default());
        assert_eq!(a.landmarks, want);
    }

    #[test]
    fn csv_rows_have_openface_columns_and_blank_cells_without_a_face() {
        let mut s = csv_header(5);
        Row {
            frame: 0,
            face_id: 0,
            timestamp: 0.0,
            confidence: 0.99,
            face: Some(([1.0, 2.0, 3.0, 4.0], (0..5).map(|i| [i as f32, 10.0 + i as f32]).collect())),
            motion: None,
            ind: None,
        }
        .write(5, &mut s);
        Row {
            frame: 1,
            face_id: 0,
            timestamp: 0.5,
            confidence: 0.0,
            face: None,
            motion: Some(0.25),
            ind: None,
        }
        .write(5, &mut s);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "frame,face_id,timestamp,confidence,success,x_0,x_1,x_2,x_3,x_4,y_0,y_1,y_2,y_3,y_4,face_x0,face_y0,face_x1,face_y1,motion"
        );
        let cols = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == cols));
        assert!(lines[1].starts_with("0,0,0.000000,0.9900,1,0.00,1.00,2.00,3.00,4.00,10.00"));
        assert!(lines[2].starts_with("1,0,0.500000,0.0000,0,,,,,,,,,,,,,,,0.25"));
    }

    #[test]
    fn short_clips_get_a_shorter_flow_distance_and_a_warning() {
        let (c, w) = spotter_config(200.0, Some(48));
        assert!(w.is_some());
        assert!(c.k < 20 && c.k >= 1);
        assert!(spotting_window(&c) <= 48);
        let (c, w) = spotter_config(200.0, Some(10_000));
        assert!(w.is_none());
        assert_eq!(c.k, 20);
    }

    #[test]
    fn missing_or_empty_folders_are_errors() {
        assert!(list_frames(Path::new("/nonexistent/frames")).is_err());
        let d = tempfile::tempdir().unwrap();
        assert!(list_frames(d.path()).is_err());
    }

    #[test]
    fn atomic_file_leaves_nothing_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut f = AtomicFile::create(&d.path().join("a.csv")).unwrap();
            f.write("x").unwrap();
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        let mut f = AtomicFile::create(&d.path().join("a.csv")).unwrap();
        f.write("x").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("a.csv")).unwrap(), "x");
    }
}
