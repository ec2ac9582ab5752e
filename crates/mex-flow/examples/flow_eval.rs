//! Accuracy and speed of every estimator on synthetic pairs with known flow.
//!
//! `cargo run --release -p mex-flow --example flow_eval -- [SIZE] [REPS]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_flow::synth::{self, SmoothTexture};
use mex_flow::{DisConfig, FarnebackConfig, FlowConfig, TvL1Config};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let only = args.get(3).cloned();
    let cases: Vec<(String, mex_flow::GrayF32, mex_flow::GrayF32, mex_flow::FlowField)> = {
        let mut v = Vec::new();
        for (i, (dx, dy)) in [(0.4f32, -0.25f32), (1.3, 0.7), (-2.6, 1.9)].iter().enumerate() {
            let (a, b, t) = synth::translated_pair(size, size, *dx, *dy, 11 + i as u64);
            v.push((format!("shift({dx},{dy})"), a, b, t));
        }
        for (i, amp) in [1.0f32, 3.0].iter().enumerate() {
            let (a, b, t) = synth::deformed_pair(size, size, *amp, 21 + i as u64);
            v.push((format!("bumps(<= {amp}px)"), a, b, t));
        }
        let s = mex_core::Similarity::from_params(1.01, 0.01, 0.3, -0.2);
        let t = synth::similarity_field(size, size, &s);
        let (a, b) = synth::pair_from_texture(&SmoothTexture::new(5), &t);
        v.push(("similarity".into(), a, b, t));
        v
    };
    let configs = vec![
        FlowConfig::TvL1(TvL1Config::default()),
        FlowConfig::Farneback(FarnebackConfig::default()),
        FlowConfig::Dis(DisConfig::ultrafast()),
        FlowConfig::Dis(DisConfig::fast()),
        FlowConfig::Dis(DisConfig::medium()),
    ];
    println!("size {size}x{size}, threads {}", rayon::current_num_threads());
    for cfg in configs {
        if let Some(o) = &only {
            if !cfg.name().starts_with(o.as_str()) {
                continue;
            }
        }
        let est = cfg.build().unwrap();
        let mut out = mex_flow::FlowField::zeros(0, 0);
        let mut epes = Vec::new();
        let mut total = 0.0;
        let mut count = 0;
        for (name, a, b, t) in &cases {
            est.estimate_into(a, b, &mut out).unwrap();
            let t0 = Instant::now();
            for _ in 0..reps {
                est.estimate_into(a, b, &mut out).unwrap();
            }
            total += t0.elapsed().as_secs_f64();
            count += reps;
            epes.push(format!("{name}={:.3}", out.epe_interior(t, 8).unwrap()));
        }
        println!(
            "{:<14} {:8.3} ms/pair  EPE(interior 8px): {}",
            cfg.name(),
            1e3 * total / count as f64,
            epes.join(" ")
        );
    }
}
