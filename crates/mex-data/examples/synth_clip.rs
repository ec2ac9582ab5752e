#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Renders a synthetic micro-expression clip and prints its ground truth.
//!
//! ```text
//! cargo run -p mex-data --example synth_clip --release [-- OUTPUT_DIR]
//! ```
//!
//! Images are written only when an output directory is given (onset, apex and a flow-magnitude
//! image as 8-bit PNG).

use mex_core::gray_f32_to_luma8;
use mex_data::synth::{ClipConfig, FacialAction, SubjectStyle, SynthConfig};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).map(std::path::PathBuf::from);
    let cfg = ClipConfig {
        synth: SynthConfig { size: 256, ..SynthConfig::default() },
        action: FacialAction::Smile,
        amplitude_px: 2.0,
        n_frames: 100,
        onset: 10,
        apex: 40,
        offset: 80,
        blink: Some((55, 20)),
        subject: SubjectStyle::random(42),
        seed: 1,
    };
    let t0 = Instant::now();
    let clip = cfg.build()?;
    let frames = clip.frames();
    let render = t0.elapsed();
    let iv = clip.interval().expect("the clip has an expression");
    println!(
        "rendered {} frames of {}x{} at {} fps in {:.1} ms",
        frames.len(),
        clip.size().0,
        clip.size().1,
        clip.fps(),
        render.as_secs_f64() * 1e3
    );
    println!(
        "expression: {:?} (AU {}), label {:?}, onset {} apex {} offset {} ({:.3} s)",
        cfg.action,
        cfg.action.au_string(),
        clip.label(),
        iv.onset,
        iv.apex,
        iv.offset,
        iv.duration_s(f64::from(clip.fps()))
    );
    for e in clip.events() {
        println!(
            "  event {:?} {:?} amplitude {:.2} px, frames {}..={}",
            e.kind, e.action, e.amplitude_px, e.onset, e.offset
        );
    }
    for t in [iv.onset, (iv.onset + iv.apex) / 2, iv.apex, (iv.apex + iv.offset) / 2, iv.offset] {
        let f = clip.flow_from_onset(t)?;
        let mag = f.magnitude();
        let peak = mag.iter().copied().fold(0.0f32, f32::max);
        let moving = mag.iter().filter(|&&m| m > 0.1).count();
        println!(
            "  GT flow onset->{t:3}: mean {:.3} px, peak {:.3} px, {:5} pixels move > 0.1 px",
            f.mean_magnitude(),
            peak,
            moving
        );
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        gray_f32_to_luma8(&frames[iv.onset]).save(dir.join("onset.png"))?;
        gray_f32_to_luma8(&frames[iv.apex]).save(dir.join("apex.png"))?;
        let f = clip.flow_from_onset(iv.apex)?;
        let mag = f.magnitude();
        let peak = mag.iter().copied().fold(1e-6f32, f32::max);
        let img = image::GrayImage::from_fn(clip.size().0, clip.size().1, |x, y| {
            image::Luma([(255.0 * mag[(y * clip.size().0 + x) as usize] / peak) as u8])
        });
        img.save(dir.join("flow_magnitude.png"))?;
        println!("wrote onset.png, apex.png, flow_magnitude.png to {}", dir.display());
    }
    Ok(())
}
