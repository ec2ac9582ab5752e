//! `mex analyze INPUT [--fps F] [--max-faces N] [--detect-every N] [--dlib-model FILE | --five-points]
//! [--checkpoint FILE] [--out DIR] [--save-frames] [--quiet]`.

use anyhow::Context;
use mex::align::MultiTrackerConfig;
use mex::analyze::{run_analyze_with, AnalyzeConfig, LandmarkSource};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `mex analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A video file (MP4/MOV, AVI, MKV/WebM, ...: anything FFmpeg decodes) or a folder of frames
    /// (any format the `image` crate reads, in natural file-name order).
    pub input: PathBuf,
    /// Frames per second of a folder of frames (default 30), or of a video whose container
    /// carries no rate; a video's own rate and timestamps always win.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Most faces tracked at once (1..=64); each gets a stable `face_id`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_faces: u16,
    /// Full face detection every N frames (1..=10000); faces are re-fitted in between.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub detect_every: u16,
    /// dlib-format 68-point landmark model (default: Debian's
    /// /usr/share/dlib/shape_predictor_68_face_landmarks.dat when present, else MTCNN's 5 points).
    #[arg(long, conflicts_with = "five_points")]
    pub dlib_model: Option<PathBuf>,
    /// Use MTCNN's five points even when a 68-point model is installed.
    #[arg(long)]
    pub five_points: bool,
    /// STSTNet weights (safetensors) to classify each spotted micro-movement.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The checkpoint uses the released STSTNet input convention (BGR 0..255).
    #[arg(long, requires = "checkpoint")]
    pub released: bool,
    /// Output folder for frames.csv and analysis.json.
    #[arg(long, default_value = "mex-analysis")]
    pub out: PathBuf,
    /// Also write the aligned face crops (face images are never written otherwise).
    #[arg(long)]
    pub save_frames: bool,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `mex analyze`.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let landmarks = match (&args.dlib_model, args.five_points) {
        (Some(p), _) => LandmarkSource::Dlib(p.clone()),
        (None, true) => LandmarkSource::Five,
        (None, false) => LandmarkSource::Auto,
    };
    let cfg = AnalyzeConfig {
        fps: args.fps,
        tracker: MultiTrackerConfig {
            max_faces: usize::from(args.max_faces),
            detect_every: usize::from(args.detect_every),
            ..MultiTrackerConfig::default()
        },
        landmarks,
        checkpoint: args.checkpoint,
        released_convention: args.released,
        save_frames: args.save_frames,
        ..AnalyzeConfig::default()
    };
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::hidden();
    if show {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} frames  {per_sec}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    let mut len_set = false;
    let r = run_analyze_with(&args.input, &cfg, &args.out, &mut |p| {
        if !len_set {
            match p.n_frames {
                Some(n) => bar.set_length(n as u64),
                None => bar.set_style(
                    indicatif::ProgressStyle::with_template("{pos} frames  {per_sec}  {elapsed}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                ),
            }
            len_set = true;
        }
        bar.set_position(p.frames_done as u64);
    })
    .with_context(|| format!("analyze {}", args.input.display()));
    bar.finish_and_clear();
    let r = r?;
    for w in &r.warnings {
        eprintln!("mex: warning: {w}");
    }
    println!(
        "{} frames at {:.3} fps ({}, {}x{}), a face in {}; {} face(s) tracked; {}-point landmarks",
        r.n_frames,
        r.fps,
        r.codec,
        r.width,
        r.height,
        r.frames_with_face,
        r.faces.len(),
        r.landmark_points
    );
    for iv in &r.intervals {
        let i = iv.interval;
        let class = iv.predicted.as_deref().map(|c| format!(", class {c}")).unwrap_or_default();
        println!(
            "face {}: {} frames {}..{} (apex {}, {:.3}..{:.3} s), peak {:.3}{class}",
            iv.face_id, iv.kind, i.onset, i.offset, i.apex, iv.times_s[0], iv.times_s[2], iv.peak
        );
    }
    if r.intervals.is_empty() {
        println!("no movement spotted");
    }
    for f in &r.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}
