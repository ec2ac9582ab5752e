//! Streaming-spotting throughput at 128x128 (frames/s), one call of `push_batch` per 64 frames.
//!
//! `cargo run --release -p mex-flow --example spot_throughput -- [FRAMES]`
//! (`RAYON_NUM_THREADS=2` for the 2-core figure).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_flow::spot::SpotterConfig;
use mex_flow::synth;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(512);
    let tex = synth::SmoothTexture::new(4);
    let frames: Vec<_> = (0..64)
        .map(|t| {
            let a = 0.5 * ((t as f32) * 0.3).sin();
            let f = synth::bumps_field(
                128,
                128,
                &[synth::Bump { cx: 64.0, cy: 64.0, sigma: 12.0, ax: a, ay: a }],
            );
            synth::pair_from_texture(&tex, &f).0
        })
        .collect();
    let mut sp = SpotterConfig::default().build().unwrap();
    sp.push_batch(frames.clone()).unwrap();
    let t0 = Instant::now();
    let mut done = 0;
    while done < n {
        sp.push_batch(frames.clone()).unwrap();
        done += frames.len();
    }
    let dt = t0.elapsed().as_secs_f64();
    let ev = sp.finish();
    println!(
        "{done} frames of 128x128 in {:.3} s: {:.0} frames/s on {} thread(s) ({} events)",
        dt,
        done as f64 / dt,
        rayon::current_num_threads(),
        ev.len()
    );
}
