//! `mex spot FRAMES_DIR`: spot micro- and macro-movements in a folder of frames.

use anyhow::{Context, Result};
use mex_flow::spot::{MovementKind, SpotterConfig};
use std::path::PathBuf;

/// Arguments of `mex spot`.
#[derive(Debug, clap::Args)]
pub struct SpotArgs {
    /// Folder of frames (png, jpg, bmp, tif), processed in file-name order.
    pub frames_dir: PathBuf,
    /// Frames per second of the video (for the micro / macro rule: micro <= 0.5 s).
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn is_image(p: &std::path::Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff")
    )
}

/// Runs `mex spot`.
pub fn run(args: SpotArgs) -> Result<()> {
    let dir = &args.frames_dir;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read frames folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.len() < 2 {
        anyhow::bail!("{} holds {} image frame(s); spotting needs at least 2", dir.display(), files.len());
    }
    let cfg = SpotterConfig { fps: args.fps, ..SpotterConfig::default() };
    let mut spotter = cfg.build().context("invalid spotting configuration")?;
    let mut events = Vec::new();
    let mut size = None;
    // decode and process in batches (flows of a batch run in parallel), memory bounded by the batch
    const BATCH: usize = 64;
    for chunk in files.chunks(BATCH) {
        let mut frames = Vec::with_capacity(chunk.len());
        for p in chunk {
            let f = crate::cmd::flow::read_gray(p)?;
            match size {
                None => size = Some((f.dimensions(), p.clone())),
                Some((d, ref first)) if d != f.dimensions() => anyhow::bail!(
                    "frame {} is {}x{} but {} is {}x{}",
                    p.display(),
                    f.width(),
                    f.height(),
                    first.display(),
                    d.0,
                    d.1
                ),
                _ => {}
            }
            frames.push(f);
        }
        spotter.push_batch(frames).with_context(|| format!("spotting failed in {}", dir.display()))?;
        events.extend(spotter.take_events());
    }
    events.extend(spotter.finish());
    let kind = |k: MovementKind| match k {
        MovementKind::Micro => "micro",
        MovementKind::Macro => "macro",
    };
    if args.json {
        let ivs: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "onset": e.interval.onset,
                    "apex": e.interval.apex,
                    "offset": e.interval.offset,
                    "kind": kind(e.kind),
                    "peak": e.peak,
                })
            })
            .collect();
        let v = serde_json::json!({ "frames": files.len(), "fps": args.fps, "intervals": ivs });
        println!("{v}");
    } else {
        println!("{} frames, {} interval(s)", files.len(), events.len());
        for e in &events {
            println!(
                "{}\tonset {}\tapex {}\toffset {}\tpeak {:.3}",
                kind(e.kind),
                e.interval.onset,
                e.interval.apex,
                e.interval.offset,
                e.peak
            );
        }
    }
    Ok(())
}
