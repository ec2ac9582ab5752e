//! Criterion bench of streaming spotting throughput on 128x128 crops, one `BenchmarkId` per
//! method (global, MDMD, regional), 256 frames pushed in batches of 64 (flows in parallel).
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p mex-flow --bench spot -- --warm-up-time 1 --measurement-time 5`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mex_flow::spot::{MdmdConfig, SpotMethod, SpotterConfig};
use mex_flow::synth;
use std::hint::black_box;

fn spotting(c: &mut Criterion) {
    let mut g = c.benchmark_group("spot_methods");
    g.sample_size(10);
    let n = 256usize;
    let tex = synth::SmoothTexture::new(4);
    let frames: Vec<_> = (0..n)
        .map(|t| {
            let a = 0.5 * ((t as f32) * 0.3).sin();
            let f = synth::bumps_field(
                128,
                128,
                &[synth::Bump { cx: 64.0, cy: 80.0, sigma: 12.0, ax: a, ay: a }],
            );
            synth::pair_from_texture(&tex, &f).0
        })
        .collect();
    g.throughput(Throughput::Elements(n as u64));
    for fps in [30.0, 200.0] {
        for method in [SpotMethod::Global, SpotMethod::Mdmd(MdmdConfig::default()), SpotMethod::default()] {
            let cfg = SpotterConfig::for_fps(fps).with_method(method);
            let id = BenchmarkId::new(format!("{}-{fps}fps", cfg.method.name()), 128);
            g.bench_function(id, |b| {
                b.iter(|| {
                    let mut sp = cfg.build().unwrap();
                    for chunk in frames.chunks(64) {
                        sp.push_batch(chunk.to_vec()).unwrap();
                    }
                    black_box(sp.finish())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, spotting);
criterion_main!(benches);
