//! `mex spot INPUT`: spot micro- and macro-movements in a video file or a folder of frames.
//!
//! Frames stream through `mex_data::video` (FFmpeg for video files, natural file-name order for
//! folders), as in `mex analyze`. The face is aligned first, as `mex analyze` does: MTCNN finds the face of the first frame and
//! its similarity transform (`mex-align`, canonical template) warps every frame into a square
//! crop, which the spotter reads. One transform serves the whole video, so that frames stream
//! through in bounded memory (`mex analyze` smooths per-frame transforms over the whole clip);
//! the spotter removes the remaining head motion from each flow. Without a face in the first
//! frame (`--align auto`), the frames are spotted as they are with the global method, whose
//! signal covers the whole frame, because the regional method's regions only mean something on
//! aligned face crops.

use anyhow::{Context, Result};
use mex_align::{AlignConfig, Mtcnn};
use mex_data::video::open_frames;
use mex_flow::spot::{MdmdConfig, MovementKind, SpotMethod, SpotterConfig};
use std::path::PathBuf;

/// Arguments of `mex spot`.
#[derive(Debug, clap::Args)]
pub struct SpotArgs {
    /// A video file (decoded by FFmpeg) or a folder of frames (png, jpg, bmp, tif), processed in
    /// natural file-name order.
    pub input: PathBuf,
    /// Frames per second (for the micro / macro rule: micro <= 0.5 s, and the spotter's
    /// durations). Default: the video's own rate; 30 for a folder of frames.
    #[arg(long)]
    pub fps: Option<f64>,
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
    let input = &args.input;
    let mut method = method_of(&args.method)?;
    if !matches!(args.align.as_str(), "auto" | "mtcnn" | "none") {
        anyhow::bail!("unknown --align `{}` (auto, mtcnn, none)", args.align);
    }
    // the frame rate is range-checked by open_frames
    let mut stream = open_frames(input, args.fps)?;
    let fps = stream.info().fps;
    let Some(first) = stream.next_frame()? else {
        anyhow::bail!("{} holds no frames; spotting needs at least 2", input.display());
    };
    // printed once spotting has succeeded, so that a failure is the one line on stderr
    let mut note = None;
    let transform = if args.align == "none" {
        None
    } else {
        let det = Mtcnn::new().context("cannot load the MTCNN face detector")?;
        let faces = det
            .detect_rgb(&first.image)
            .with_context(|| format!("face detection failed on the first frame of {}", input.display()))?;
        match faces.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
            Some(face) => {
                let aligner = AlignConfig { size: args.crop_size, ..AlignConfig::default() }
                    .build()
                    .context("invalid --crop-size")?;
                Some((aligner.transform(&face.landmarks).context("alignment failed")?, args.crop_size))
            }
            None if args.align == "mtcnn" => {
                anyhow::bail!("no face found in the first frame of {}", input.display())
            }
            None => {
                note = Some(format!(
                    "mex: note: no face found in the first frame of {}; spotting the frames as they are with the global method",
                    input.display()
                ));
                method = SpotMethod::Global;
                None
            }
        }
    };
    let prepare = |image: &image::RgbImage| -> Result<mex_core::GrayF32> {
        let gray = mex_core::gray_f32_from_rgb8(image);
        Ok(match &transform {
            Some((t, side)) => {
                let mut a = mex_core::GrayF32::new(*side, *side);
                mex_align::align::warp_gray_into(&gray, t, &mut a).context("cannot align a frame")?;
                a
            }
            None => gray,
        })
    };
    let method_name = method.name();
    let cfg = SpotterConfig::for_fps(fps).with_method(method);
    let mut spotter = cfg.build().context("invalid spotting configuration")?;
    let mut events = Vec::new();
    // decode and process in batches (flows of a batch run in parallel), memory bounded by the batch
    const BATCH: usize = 64;
    let mut frames = vec![prepare(&first.image)?];
    let mut n = 1usize;
    while let Some(f) = stream.next_frame()? {
        frames.push(prepare(&f.image)?);
        n += 1;
        if frames.len() == BATCH {
            spotter.push_batch(std::mem::take(&mut frames)).context("spotting failed")?;
            events.extend(spotter.take_events());
        }
    }
    if n < 2 {
        anyhow::bail!("{} holds 1 frame; spotting needs at least 2", input.display());
    }
    spotter.push_batch(frames).context("spotting failed")?;
    events.extend(spotter.finish());
    let blinks = spotter.take_blinks();
    if let Some(n) = note {
        eprintln!("{n}");
    }
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
            "frames": n,
            "fps": fps,
            "method": method_name,
            "aligned": transform.is_some(),
            "intervals": ivs,
            "blinks": bl,
        });
        println!("{v}");
    } else {
        println!(
            "{} frames, {} interval(s), {} blink(s) set aside ({} method, {})",
            n,
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
