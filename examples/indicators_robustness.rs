//! How the indicators of `mex analyze` move under the robustness suite's degradations
//! (`mex::robustness::Perturbation::default_suite`: brightness, gamma, noise, blur, JPEG,
//! rotation, scale, frame rate) on a real video.
//!
//! ```sh
//! cargo run --release --example indicators_robustness -- $MEX_TEST_DATA/videos/single_face.mp4
//! ```
//!
//! Each frame is read (FFmpeg), turned to gray as the suite's perturbations expect, degraded
//! (noise seeded by the frame number; a frame-rate factor `f` keeps every `f`-th frame at
//! `fps / f`) and written as a PNG into a temporary folder that `mex analyze` then reads, one
//! perturbation at a time (memory: one frame). Needs FFmpeg and, for the indicators, a 68-point
//! model (Debian's `libdlib-data`). Prints a Markdown table.
#![allow(missing_docs)]

use anyhow::{bail, Context, Result};
use mex::analyze::{run_analyze, AnalyzeConfig};
use mex::experiment::FramePerturbation;
use mex::robustness::Perturbation;
use mex_data::video::open_frames;
use std::path::PathBuf;

const KEYS: [&str; 6] = [
    "blink_amplitude_mean",
    "asymmetry_mouth_mean",
    "asymmetry_eyes_mean",
    "expressivity_score",
    "active_fraction",
    "ear_mean",
];

fn main() -> Result<()> {
    let video = match std::env::args().nth(1) {
        Some(v) => PathBuf::from(v),
        None => {
            PathBuf::from(std::env::var_os("MEX_TEST_DATA").context("give a video or set MEX_TEST_DATA")?)
                .join("videos/single_face.mp4")
        }
    };
    let fps0 = open_frames(&video, None)?.info().fps;
    print!("| perturbation | frames with a face | blinks (closure frame) | OpenDBM blinks |");
    for k in KEYS {
        print!(" {k} |");
    }
    println!();
    println!("|{}", "---|".repeat(4 + KEYS.len()));
    for p in Perturbation::default_suite() {
        let step = match p {
            Perturbation::FrameRate(f) => f as usize,
            _ => 1,
        };
        let dir = tempfile::tempdir()?;
        let frames = dir.path().join("frames");
        std::fs::create_dir(&frames)?;
        let mut stream = open_frames(&video, None)?;
        while let Some(f) = stream.next_frame()? {
            if f.index % step != 0 {
                continue;
            }
            let gray = mex::core::gray_f32_from_dynamic(&image::DynamicImage::ImageRgb8(f.image))?;
            let g = p.apply(&gray, f.index as u64)?;
            mex::core::gray_f32_to_luma8(&g).save(frames.join(format!("f{:06}.png", f.index / step)))?;
        }
        let cfg = AnalyzeConfig { fps: Some(fps0 / step as f64), ..AnalyzeConfig::default() };
        let r = match run_analyze(&frames, &cfg, &dir.path().join("out")) {
            Ok(r) => r,
            Err(e) => {
                println!("| {} {} | {e} |", p.kind(), p.strength());
                continue;
            }
        };
        let Some(d) = &r.indicator_details else { bail!("no indicators: a 68-point model is needed") };
        let closures: Vec<String> = d.blinks.iter().map(|b| b.closure_frame.to_string()).collect();
        print!(
            "| {} {} | {}/{} | {} ({}) | {} |",
            p.kind(),
            p.strength(),
            r.frames_with_face,
            r.n_frames,
            d.blinks.len(),
            closures.join(", "),
            d.opendbm_blinks.len()
        );
        for k in KEYS {
            match r.indicators.get(k).copied().flatten() {
                Some(v) => print!(" {v:.4} |"),
                None => print!(" — |"),
            }
        }
        println!();
    }
    Ok(())
}
