//! Frames for the OpenCV peer comparison (`benches/peers/flow_opencv.py`) and our side of it.
//!
//! `flow_peer write DIR` writes, for sizes 128 and 256, 8-bit PNG frame pairs (smooth random
//! textures and the vendored face, sub-pixel to 3 px motions) and their true flow as `.flo`.
//! `flow_peer run DIR [REPS]` runs every mex-flow estimator on exactly those PNGs and prints one
//! JSON line per (estimator, size) with the mean interior EPE (8 px border) and the median time;
//! with `MEX_FLOW_DUMP=OUTDIR` it also writes each computed flow there (for bitwise A/B checks
//! between builds or thread counts). `flow_peer serve DIR [METHOD [SIZE]]` times one pass over
//! the pairs (one time per pair) per line read from stdin (for interleaved A/B timings driven by
//! another process).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_core::Similarity;
use mex_flow::synth::{self, SmoothTexture};
use mex_flow::{DisConfig, FarnebackConfig, FlowConfig, TvL1Config};
use std::path::Path;
use std::time::Instant;

fn write(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for size in [128usize, 256] {
        let face = {
            let p = format!("{}/tests/data/face{size}.png", env!("CARGO_MANIFEST_DIR"));
            mex_core::gray_f32_from_dynamic(&image::open(p).unwrap()).unwrap()
        };
        let mut cases = Vec::new();
        for (i, (dx, dy)) in [(0.4f32, -0.25f32), (1.3, 0.7), (-2.6, 1.9)].into_iter().enumerate() {
            let t = synth::translation_field(size, size, dx, dy);
            let (a, b) = synth::pair_from_texture(&SmoothTexture::new(11 + i as u64), &t);
            cases.push((format!("shift{i}"), a, b, t));
        }
        let t = synth::similarity_field(size, size, &Similarity::from_params(1.01, 0.01, 0.3, -0.2));
        let (a, b) = synth::pair_from_texture(&SmoothTexture::new(5), &t);
        cases.push(("similarity".into(), a, b, t));
        let t = synth::bumps_field(size, size, &synth::random_bumps(size, size, 3, 0.2, 3.0, 21));
        let (a, b) = synth::pair_from_texture(&SmoothTexture::new(21), &t);
        cases.push(("bumps".into(), a, b, t));
        let t = synth::bumps_field(size, size, &synth::random_bumps(size, size, 3, 0.2, 3.0, 4));
        let (a, b) = synth::pair_from_image(&face, &t);
        cases.push(("face-bumps".into(), a, b, t));
        for (name, a, b, t) in cases {
            let stem = dir.join(format!("{size}_{name}"));
            mex_core::gray_f32_to_luma8(&a).save(stem.with_extension("0.png")).unwrap();
            mex_core::gray_f32_to_luma8(&b).save(stem.with_extension("1.png")).unwrap();
            mex_flow::io::write_flo_file(stem.with_extension("flo"), &t).unwrap();
        }
    }
}

/// Times every estimator (or only `method`, only frames of `size`) on the pairs of `dir`.
fn run(dir: &Path, reps: usize, method: Option<&str>, only_size: Option<usize>) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "flo"))
        .collect();
    files.sort();
    let configs = [
        FlowConfig::TvL1(TvL1Config::default()),
        FlowConfig::Farneback(FarnebackConfig::default()),
        FlowConfig::Dis(DisConfig::ultrafast()),
        FlowConfig::Dis(DisConfig::fast()),
        FlowConfig::Dis(DisConfig::medium()),
    ];
    for size in [128usize, 256].into_iter().filter(|s| only_size.is_none_or(|o| o == *s)) {
        for cfg in configs.iter().filter(|c| method.is_none_or(|m| m == c.name())) {
            let est = cfg.build().unwrap();
            let mut epes = Vec::new();
            let mut times = Vec::new();
            let mut out = mex_flow::FlowField::zeros(0, 0);
            for f in files
                .iter()
                .filter(|f| f.file_name().unwrap().to_str().unwrap().starts_with(&format!("{size}_")))
            {
                let truth = mex_flow::io::read_flo_file(f).unwrap();
                let s = f.to_str().unwrap().trim_end_matches(".flo");
                let load = |p: String| mex_core::gray_f32_from_dynamic(&image::open(p).unwrap()).unwrap();
                let (a, b) = (load(format!("{s}.0.png")), load(format!("{s}.1.png")));
                est.estimate_into(&a, &b, &mut out).unwrap();
                for _ in 0..reps {
                    let t0 = Instant::now();
                    est.estimate_into(&a, &b, &mut out).unwrap();
                    times.push(t0.elapsed().as_secs_f64() * 1e3);
                }
                epes.push(out.epe_interior(&truth, 8).unwrap());
                if let Ok(d) = std::env::var("MEX_FLOW_DUMP") {
                    let name = format!("{}.{}.flo", f.file_stem().unwrap().to_str().unwrap(), cfg.name());
                    mex_flow::io::write_flo_file(Path::new(&d).join(name), &out).unwrap();
                }
            }
            times.sort_by(f64::total_cmp);
            let epe = epes.iter().sum::<f32>() / epes.len() as f32;
            println!(
                "{{\"impl\":\"mex\",\"method\":\"{}\",\"size\":{size},\"threads\":{},\"epe\":{epe:.4},\"ms\":{:.3}}}",
                cfg.name(),
                rayon::current_num_threads(),
                times[times.len() / 2]
            );
        }
    }
}

/// Serves timing requests (one line on stdin, one time per pair on stdout): loads the pairs of
/// `size` in `dir`, then for every line read from stdin estimates each pair once with `method`
/// and prints the milliseconds of each estimation on one line. Two such processes with different thread counts,
/// driven in alternation, time one- and two-thread runs a fraction of a second apart.
fn serve(dir: &Path, method: &str, size: usize) {
    use std::io::BufRead;
    let cfg = [
        FlowConfig::TvL1(TvL1Config::default()),
        FlowConfig::Farneback(FarnebackConfig::default()),
        FlowConfig::Dis(DisConfig::fast()),
    ]
    .into_iter()
    .find(|c| c.name() == method)
    .expect("method: tvl1, farneback or dis-fast");
    let est = cfg.build().unwrap();
    let mut pairs = Vec::new();
    let mut names: Vec<_> =
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for f in names.iter().filter(|f| {
        let n = f.file_name().unwrap().to_str().unwrap();
        n.starts_with(&format!("{size}_")) && n.ends_with(".flo")
    }) {
        let s = f.to_str().unwrap().trim_end_matches(".flo");
        let load = |p: String| mex_core::gray_f32_from_dynamic(&image::open(p).unwrap()).unwrap();
        pairs.push((load(format!("{s}.0.png")), load(format!("{s}.1.png"))));
    }
    let mut out = mex_flow::FlowField::zeros(0, 0);
    for (a, b) in &pairs {
        est.estimate_into(a, b, &mut out).unwrap();
    }
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        let ms: Vec<String> = pairs
            .iter()
            .map(|(a, b)| {
                let t0 = Instant::now();
                est.estimate_into(a, b, &mut out).unwrap();
                format!("{:.3}", t0.elapsed().as_secs_f64() * 1e3)
            })
            .collect();
        println!("{}", ms.join(" "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("write"), Some(d)) => write(Path::new(d)),
        (Some("run"), Some(d)) => run(
            Path::new(d),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5),
            args.get(4).map(String::as_str),
            args.get(5).and_then(|s| s.parse().ok()),
        ),
        (Some("serve"), Some(d)) => serve(
            Path::new(d),
            args.get(3).map_or("tvl1", String::as_str),
            args.get(4).and_then(|s| s.parse().ok()).unwrap_or(128),
        ),
        _ => eprintln!(
            "usage: flow_peer write DIR | flow_peer run DIR [REPS [METHOD [SIZE]]] | flow_peer serve DIR [METHOD [SIZE]]"
        ),
    }
}
