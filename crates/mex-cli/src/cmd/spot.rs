//! `mex spot FRAMES_DIR`: spot micro- and macro-movements in a folder of frames.
//!
//! The face is aligned first, as `mex analyze` does: MTCNN finds the face of the first frame and
//! its similarity transform (`mex-align`, canonical template) warps every frame into a square
//! crop, which the spotter reads. One transform serves the whole video, so that frames stream
//! through in bounded memory (`mex analyze` smooths per-frame transforms over the whole clip);
//! the spotter removes the remaining head motion from each flow. Without a face in the first
//! frame (`--align auto`), the frames are spotted as they are with the global method, whose
//! signal covers the whole frame, because the regional method's regions only mean something on
//! aligned face crops.

use anyhow::{Context, Result};
use mex_align::{AlignConfig, Mtcnn};
use mex_flow::spot::{MdmdConfig, MovementKind, SpotMethod, SpotterConfig};
use std::path::PathBuf;

/// Arguments of `mex spot`.
#[derive(Debug, clap::Args)]
pub struct SpotArgs {
    /// Folder of frames (png, jpg, bmp, tif), processed in file-name order.
    pub frames_dir: PathBuf,
    /// Frames per second of the video (for the micro / macro rule: micro <= 0.5 s).
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// Spotting method: regional (blink-aware, per facial region), global or mdmd.
    #[arg(long, default_value = "regional")]
    pub method: String,
    /// Face alignment: auto (align when the first frame shows a face), mtcnn (required) or none.
    #[arg(long, default_value = "auto")]
    pub align: String,
    /// Side of the aligned crop, pixels.
    #[arg(long, default_value_t = 128)]
    pub crop_size: u32,
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

fn method_of(name: &str) -> Result<SpotMethod> {
    Ok(match name {
        "regional" => SpotMethod::default(),
        "global" => SpotMethod::Global,
        "mdmd" => SpotMethod::Mdmd(MdmdConfig::default()),
        other => anyhow::bail!("unknown spotting method `{other}` (regional, global, mdmd)"),
    })
}

/// Runs `mex spot`.
pub fn run(args: SpotArgs) -> Result<()> {
    let dir = &args.frames_dir;
    let mut method = method_of(&args.method)?;
    if !matches!(args.align.as_str(), "auto" | "mtcnn" | "none") {
        anyhow::bail!("unknown --align `{}` (auto, mtcnn, none)", args.align);
    }
    if !(args.fps.is_finite() && args.fps > 0.0) {
        anyhow::bail!("--fps {} must be a positive number", args.fps);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read frames folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.len() < 2 {
        anyhow::bail!("{} holds {} image frame(s); spotting needs at least 2", dir.display(), files.len());
    }
    let first = crate::cmd::flow::read_gray(&files[0])?;
    let transform = if args.align == "none" {
        None
    } else {
        let det = Mtcnn::new().context("cannot load the MTCNN face detector")?;
        let faces = det
            .detect_rgb(&mex::experiment::align::gray_to_rgb8(&first))
            .with_context(|| format!("face detection failed on {}", files[0].display()))?;
        match faces.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
            Some(face) => {
                let aligner = AlignConfig { size: args.crop_size, ..AlignConfig::default() }
                    .build()
                    .context("invalid --crop-size")?;
                Some((aligner.transform(&face.landmarks).context("alignment failed")?, args.crop_size))
            }
            None if args.align == "mtcnn" => {
                anyhow::bail!("no face found in the first frame {}", files[0].display())
            }
            None => {
                eprintln!(
                    "mex: note: no face found in {}; spotting the frames as they are with the global method",
                    files[0].display()
                );
                method = SpotMethod::Global;
                None
            }
        }
    };
    let method_name = method.name();
    let cfg = SpotterConfig::for_fps(args.fps).with_method(method);
    let mut spotter = cfg.build().context("invalid spotting configuration")?;
    let mut events = Vec::new();
    let mut blinks = Vec::new();
    let size = first.dimensions();
    // decode and process in batches (flows of a batch run in parallel), memory bounded by the batch
    const BATCH: usize = 64;
    for chunk in files.chunks(BATCH) {
        let mut frames = Vec::with_capacity(chunk.len());
        for p in chunk {
            let f = crate::cmd::flow::read_gray(p)?;
            if f.dimensions() != size {
                anyhow::bail!(
                    "frame {} is {}x{} but {} is {}x{}",
                    p.display(),
                    f.width(),
                    f.height(),
                    files[0].display(),
                    size.0,
                    size.1
                );
            }
            frames.push(match &transform {
                Some((t, side)) => {
                    let mut a = mex_core::GrayF32::new(*side, *side);
                    mex_align::align::warp_gray_into(&f, t, &mut a)
                        .with_context(|| format!("cannot align {}", p.display()))?;
                    a
                }
                None => f,
            });
        }
        spotter.push_batch(frames).with_context(|| format!("spotting failed in {}", dir.display()))?;
        events.extend(spotter.take_events());
    }
    events.extend(spotter.finish());
    blinks.extend(spotter.take_blinks());
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
        let bl: Vec<serde_json::Value> =
            blinks.iter().map(|b| serde_json::json!({ "onset": b.onset, "offset": b.offset })).collect();
        let v = serde_json::json!({
            "frames": files.len(),
            "fps": args.fps,
            "method": method_name,
            "aligned": transform.is_some(),
            "intervals": ivs,
            "blinks": bl,
        });
        println!("{v}");
    } else {
        println!(
            "{} frames, {} interval(s), {} blink(s) set aside ({} method, {})",
            files.len(),
            events.len(),
            blinks.len(),
            method_name,
            if transform.is_some() { "aligned face" } else { "frames as they are" }
        );
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
