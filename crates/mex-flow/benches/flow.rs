//! Criterion benches of every estimator at 128x128 and 256x256 (one `BenchmarkId` per
//! preset), and of streaming spotting throughput at 128x128.
//!
//! `cargo bench -p mex-flow --bench flow -- --warm-up-time 1 --measurement-time 3`
//! (set `RAYON_NUM_THREADS=1` for single-thread figures).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mex_flow::spot::SpotterConfig;
use mex_flow::{synth, DisConfig, FarnebackConfig, FlowConfig, FlowField, TvL1Config};
use std::hint::black_box;

fn estimators(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow");
    g.sample_size(10);
    for size in [128usize, 256] {
        let (f0, f1, _) = synth::deformed_pair(size, size, 2.0, 3);
        for cfg in [
            FlowConfig::TvL1(TvL1Config::default()),
            FlowConfig::Farneback(FarnebackConfig::default()),
            FlowConfig::Dis(DisConfig::ultrafast()),
            FlowConfig::Dis(DisConfig::fast()),
            FlowConfig::Dis(DisConfig::medium()),
        ] {
            let est = cfg.build().unwrap();
            let mut out = FlowField::zeros(size, size);
            g.bench_with_input(BenchmarkId::new(cfg.name(), size), &size, |b, _| {
                b.iter(|| est.estimate_into(black_box(&f0), black_box(&f1), &mut out).unwrap())
            });
        }
    }
    g.finish();
}

fn spotting(c: &mut Criterion) {
    let mut g = c.benchmark_group("spot");
    g.sample_size(10);
    let n = 64usize;
    let tex = synth::SmoothTexture::new(4);
    let frames: Vec<_> = (0..n)
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
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("push_batch-dis-ultrafast", 128), |b| {
        b.iter(|| {
            let mut sp = SpotterConfig::default().build().unwrap();
            sp.push_batch(frames.clone()).unwrap();
            black_box(sp.finish())
        })
    });
    g.finish();
}

criterion_group!(benches, estimators, spotting);
criterion_main!(benches);
