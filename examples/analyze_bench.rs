//! Throughput and memory of `mex analyze` on a video: frames per second end to end (decoding,
//! detection, tracking, landmarks, alignment, spotting, CSV), the real-time factor (recording
//! duration / analysis time) and the peak resident set size.
//!
//! ```sh
//! ffmpeg -stream_loop 6 -i single_face.mp4 -an -c copy loop7.mp4     # 504 frames, 640x360
//! cargo run --release --example analyze_bench -- loop7.mp4 [--five-points] [--rounds 3]
//! ```
//!
//! Prints one line per round and the median.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mex::analyze::{run_analyze, AnalyzeConfig, LandmarkSource};
use std::time::Instant;

fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: analyze_bench VIDEO [--five-points] [--rounds N]"))?;
    let five = args.iter().any(|a| a == "--five-points");
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(3);
    let cfg = AnalyzeConfig {
        landmarks: if five { LandmarkSource::Five } else { LandmarkSource::Auto },
        ..AnalyzeConfig::default()
    };
    let out = tempfile::tempdir()?;
    let mut fps = Vec::new();
    for round in 0..rounds.max(1) {
        let t = Instant::now();
        let r = run_analyze(input.as_ref(), &cfg, out.path())?;
        let s = t.elapsed().as_secs_f64();
        let f = r.n_frames as f64 / s;
        println!(
            "round {round}: {} frames ({}x{}, {}-point landmarks) in {s:.2} s: {f:.1} frames/s, real-time factor {:.2}",
            r.n_frames,
            r.width,
            r.height,
            r.landmark_points,
            r.duration_s / s
        );
        fps.push((f, r.duration_s / s));
    }
    fps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (f, rt) = fps[fps.len() / 2];
    println!(
        "median: {f:.1} frames/s, real-time factor {rt:.2}, peak RSS {} MB",
        peak_rss_kb().unwrap_or(0) / 1024
    );
    Ok(())
}
