//! `mex analyze FRAMES_DIR [--fps F] [--checkpoint FILE] [--out DIR] [--save-frames]`.

use anyhow::Context;
use mex::analyze::{run_analyze, AnalyzeConfig};
use std::path::PathBuf;

/// Arguments of `mex analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Folder of frames (any format the `image` crate reads), in natural file-name order.
    pub frames_dir: PathBuf,
    /// Frames per second of the recording.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// STSTNet weights (safetensors) to classify each spotted interval.
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
}

/// Runs `mex analyze`.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let cfg = AnalyzeConfig {
        fps: args.fps,
        checkpoint: args.checkpoint,
        released_convention: args.released,
        save_frames: args.save_frames,
        ..AnalyzeConfig::default()
    };
    let r = run_analyze(&args.frames_dir, &cfg, &args.out)
        .with_context(|| format!("analyze {}", args.frames_dir.display()))?;
    let found = r.frames.iter().filter(|f| f.success).count();
    println!("{} frames at {} fps, face found in {found}", r.n_frames, r.fps);
    for iv in &r.intervals {
        let i = iv.interval;
        let class = iv.predicted.as_deref().map(|c| format!(", class {c}")).unwrap_or_default();
        println!(
            "{} frames {}..{} (apex {}, {:.3}..{:.3} s), peak {:.3}{class}",
            iv.kind,
            i.onset,
            i.offset,
            i.apex,
            i.onset as f64 / r.fps,
            i.offset as f64 / r.fps,
            iv.peak
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
