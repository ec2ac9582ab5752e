//! Criterion benches of every estimator at 128x128 and 256x256 (one `BenchmarkId` per
//! preset). Spotting throughput is in `benches/spot.rs`.
//!
//! `cargo bench -p mex-flow --bench flow -- --warm-up-time 1 --measurement-time 3`
//! (set `RAYON_NUM_THREADS=1` for single-thread figures).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
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

criterion_group!(benches, estimators);
criterion_main!(benches);
