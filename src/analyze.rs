//! Analysis of one's own clip: per-frame face box and landmarks, motion signal, spotted intervals
//! and, with a checkpoint, class probabilities of each interval. Writes numbers (CSV with
//! OpenFace-style column names, JSON); writes face images only when asked (`save_frames`).

use crate::experiment::align::gray_to_rgb8;
use crate::io::{write_atomic, write_json_atomic};
use crate::{Error, Result};
use mex_align::{AlignConfig, ClipMode, FaceTracker, Mtcnn, TrackerConfig};
use mex_classify::{Model, ModelConfig};
use mex_core::{ClassSet, GrayF32, Interval, Landmarks};
use mex_flow::spot::{MovementKind, SpotterConfig};
use mex_flow::strain::StstnetInputConfig;
use mex_flow::FlowConfig;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Settings of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeConfig {
    /// Frames per second of the recording.
    pub fps: f64,
    /// Side of the aligned crops, pixels.
    pub crop_size: u32,
    /// Half-width (frames) of the temporal smoothing of the per-frame alignment.
    pub smoothing_radius: usize,
    /// STSTNet weights (safetensors, PyTorch names) to classify each spotted interval.
    pub checkpoint: Option<PathBuf>,
    /// The checkpoint expects the released STSTNet input convention (B, G, R = strain, v, u as
    /// 0..255 floats) rather than mex's (u, v, strain in 0..1).
    pub released_convention: bool,
    /// Also write the aligned face crops as PNG (off by default: privacy).
    pub save_frames: bool,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        Self {
            fps: 30.0,
            crop_size: 128,
            smoothing_radius: 2,
            checkpoint: None,
            released_convention: false,
            save_frames: false,
        }
    }
}

/// One frame's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Frame index (0-based, in natural file-name order).
    pub frame: usize,
    /// Seconds since the first frame.
    pub timestamp: f64,
    /// Detector confidence (0 when no face).
    pub confidence: f32,
    /// Whether a face was found.
    pub success: bool,
    /// Face box `[x0, y0, x1, y1]` in image pixels.
    pub bbox: Option<[f32; 4]>,
    /// The five MTCNN landmarks in image pixels.
    pub landmarks: Vec<[f32; 2]>,
    /// Motion signal at this frame (mean head-compensated flow magnitude of the aligned crop).
    pub motion: Option<f32>,
}

/// One spotted movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalRecord {
    /// Onset, apex, offset frames.
    pub interval: Interval,
    /// `micro` or `macro` by duration.
    pub kind: String,
    /// Peak of the motion signal.
    pub peak: f32,
    /// Class probabilities (negative, positive, surprise) when a checkpoint was given.
    pub probabilities: Option<Vec<f32>>,
    /// The most probable class when a checkpoint was given.
    pub predicted: Option<String>,
}

/// The analysis of a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeResult {
    /// Frames analysed.
    pub n_frames: usize,
    /// Frames per second.
    pub fps: f64,
    /// Per-frame numbers.
    pub frames: Vec<FrameRecord>,
    /// Spotted movements.
    pub intervals: Vec<IntervalRecord>,
    /// Files written.
    pub files: Vec<PathBuf>,
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

/// The CSV of per-frame records, OpenFace-style columns where they correspond.
pub fn frames_csv(records: &[FrameRecord]) -> String {
    let mut s = String::from("frame,timestamp,confidence,success");
    for i in 0..5 {
        let _ = write!(s, ",x_{i}");
    }
    for i in 0..5 {
        let _ = write!(s, ",y_{i}");
    }
    s.push_str(",face_x0,face_y0,face_x1,face_y1,motion\n");
    for r in records {
        let _ = write!(s, "{},{:.6},{:.4},{}", r.frame, r.timestamp, r.confidence, u8::from(r.success));
        for axis in 0..2 {
            for i in 0..5 {
                match r.landmarks.get(i) {
                    Some(p) => {
                        let _ = write!(s, ",{:.2}", p[axis]);
                    }
                    None => s.push(','),
                }
            }
        }
        match r.bbox {
            Some(b) => {
                let _ = write!(s, ",{:.2},{:.2},{:.2},{:.2}", b[0], b[1], b[2], b[3]);
            }
            None => s.push_str(",,,,"),
        }
        match r.motion {
            Some(m) => {
                let _ = writeln!(s, ",{m:.5}");
            }
            None => s.push_str(",\n"),
        }
    }
    s
}

/// Analyses the frames of `dir`, writing `frames.csv` and `analysis.json` into `out`.
pub fn run_analyze(dir: &Path, cfg: &AnalyzeConfig, out: &Path) -> Result<AnalyzeResult> {
    if !(cfg.fps.is_finite() && cfg.fps > 0.0) {
        return Err(Error::Invalid(format!("--fps {} must be a positive number", cfg.fps)));
    }
    let paths = list_frames(dir)?;
    let detector = Mtcnn::new().map_err(|e| Error::stage("align", "MTCNN", e))?;
    let mut tracker = FaceTracker::new(detector, TrackerConfig::default());
    let mut grays = Vec::with_capacity(paths.len());
    let mut records = Vec::with_capacity(paths.len());
    let mut landmarks: Vec<Option<Landmarks>> = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let g =
            mex_data::frames::read_gray(p).map_err(|e| Error::stage("data", p.display().to_string(), e))?;
        if let Some(first) = grays.first() {
            let first: &GrayF32 = first;
            if first.dimensions() != g.dimensions() {
                return Err(Error::stage(
                    "data",
                    p.display().to_string(),
                    format!("frame is {:?}, the first frame {:?}", g.dimensions(), first.dimensions()),
                ));
            }
        }
        let faces = tracker
            .track(&gray_to_rgb8(&g))
            .map_err(|e| Error::stage("align", p.display().to_string(), e))?;
        let best = faces.into_iter().max_by(|a, b| a.score.total_cmp(&b.score));
        records.push(FrameRecord {
            frame: i,
            timestamp: i as f64 / cfg.fps,
            confidence: best.as_ref().map_or(0.0, |f| f.score),
            success: best.is_some(),
            bbox: best.as_ref().map(|f| [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1]),
            landmarks: best
                .as_ref()
                .map(|f| f.landmarks.points.iter().map(|p| [p.x, p.y]).collect())
                .unwrap_or_default(),
            motion: None,
        });
        landmarks.push(best.map(|f| f.landmarks));
        grays.push(g);
    }
    let aligner = AlignConfig { size: cfg.crop_size, ..AlignConfig::default() }
        .build()
        .map_err(|e| Error::stage("align", "aligner", e))?;
    let clip = aligner
        .align_clip(&grays, &landmarks, ClipMode::PerFrame { smoothing_radius: cfg.smoothing_radius })
        .map_err(|e| Error::stage("align", dir.display().to_string(), e))?;
    drop(grays);
    let spot_cfg =
        SpotterConfig { fps: cfg.fps, k: crate::demo::spot_k(cfg.fps), ..SpotterConfig::default() };
    let mut spotter = spot_cfg.build().map_err(|e| Error::stage("flow", "spotter", e))?;
    for (r, f) in records.iter_mut().zip(&clip.frames) {
        r.motion =
            spotter.push(f.clone()).map_err(|e| Error::stage("flow", format!("frame {}", r.frame), e))?;
    }
    let mut spotted = spotter.take_events();
    spotted.extend(spotter.finish());
    let model = match &cfg.checkpoint {
        Some(p) => Some(
            Model::load(&ModelConfig::Ststnet(Default::default()), p, &candle_core::Device::Cpu)
                .map_err(|e| Error::stage("classify", p.display().to_string(), e))?,
        ),
        None => None,
    };
    let tvl1 = FlowConfig::TvL1(Default::default()).build().map_err(|e| Error::stage("flow", "TV-L1", e))?;
    let input = StstnetInputConfig::default();
    let classes = ClassSet::megc3();
    let mut intervals = Vec::with_capacity(spotted.len());
    for s in spotted {
        let (probabilities, predicted) = match &model {
            Some(m) => {
                let iv = s.interval;
                let flow = tvl1
                    .estimate(&clip.frames[iv.onset], &clip.frames[iv.apex])
                    .map_err(|e| Error::stage("flow", format!("interval {}..{}", iv.onset, iv.offset), e))?;
                let x = input.build(&flow).map_err(|e| Error::stage("flow", "input", e))?;
                let x = if cfg.released_convention { x.to_released_bgr_chw() } else { x.to_chw() };
                let t = candle_core::Tensor::from_vec(
                    x,
                    (1, 3, input.size, input.size),
                    &candle_core::Device::Cpu,
                )
                .map_err(|e| Error::stage("classify", "input", e))?;
                let p: Vec<f32> = m
                    .predict_proba(&t)
                    .and_then(|p| p.flatten_all().map_err(Into::into))
                    .and_then(|p| p.to_vec1::<f32>().map_err(Into::into))
                    .map_err(|e| Error::stage("classify", "predict", e))?;
                let best =
                    p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
                (Some(p), classes.name(best).map(str::to_string))
            }
            None => (None, None),
        };
        intervals.push(IntervalRecord {
            interval: s.interval,
            kind: match s.kind {
                MovementKind::Micro => "micro".into(),
                MovementKind::Macro => "macro".into(),
            },
            peak: s.peak,
            probabilities,
            predicted,
        });
    }
    let mut files = vec![out.join("frames.csv"), out.join("analysis.json")];
    write_atomic(&files[0], frames_csv(&records).as_bytes())?;
    if cfg.save_frames {
        let fdir = out.join("aligned_frames");
        std::fs::create_dir_all(&fdir).map_err(|e| Error::Io { path: fdir.clone(), source: e })?;
        for (i, f) in clip.frames.iter().enumerate() {
            let p = fdir.join(format!("{i:06}.png"));
            mex_core::gray_f32_to_luma8(f)
                .save(&p)
                .map_err(|e| Error::Io { path: p.clone(), source: std::io::Error::other(e) })?;
        }
        files.push(fdir);
    }
    let result = AnalyzeResult { n_frames: records.len(), fps: cfg.fps, frames: records, intervals, files };
    write_json_atomic(&out.join("analysis.json"), &result)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_openface_columns_and_blank_cells_without_a_face() {
        let r = vec![
            FrameRecord {
                frame: 0,
                timestamp: 0.0,
                confidence: 0.99,
                success: true,
                bbox: Some([1.0, 2.0, 3.0, 4.0]),
                landmarks: (0..5).map(|i| [i as f32, 10.0 + i as f32]).collect(),
                motion: None,
            },
            FrameRecord {
                frame: 1,
                timestamp: 0.5,
                confidence: 0.0,
                success: false,
                bbox: None,
                landmarks: vec![],
                motion: Some(0.25),
            },
        ];
        let csv = frames_csv(&r);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "frame,timestamp,confidence,success,x_0,x_1,x_2,x_3,x_4,y_0,y_1,y_2,y_3,y_4,face_x0,face_y0,face_x1,face_y1,motion");
        let cols = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == cols));
        assert!(lines[1].starts_with("0,0.000000,0.9900,1,0.00,1.00,2.00,3.00,4.00,10.00"));
        assert!(lines[2].starts_with("1,0.500000,0.0000,0,,,,,,,,,,,,,,,0.25"));
    }

    #[test]
    fn missing_or_empty_folders_are_errors() {
        assert!(list_frames(Path::new("/nonexistent/frames")).is_err());
        let d = tempfile::tempdir().unwrap();
        assert!(list_frames(d.path()).is_err());
    }
}
