#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Rendering speed of the synthetic generator: a 100-frame clip (all frames, rayon across
//! frames) and the exact ground-truth flow of one frame pair.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mex_data::synth::{ClipConfig, FacialAction, SubjectStyle, SynthConfig};
use std::hint::black_box;

fn clip(size: u32) -> mex_data::synth::SynthClip {
    ClipConfig {
        synth: SynthConfig { size, ..SynthConfig::default() },
        action: FacialAction::Smile,
        amplitude_px: 2.0,
        n_frames: 100,
        onset: 10,
        apex: 40,
        offset: 80,
        blink: Some((50, 20)),
        subject: SubjectStyle::random(1),
        seed: 7,
    }
    .build()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("synth");
    g.sample_size(10);
    for size in [128u32, 256] {
        let cl = clip(size);
        g.bench_with_input(BenchmarkId::new("render_100_frames", size), &cl, |b, cl| {
            b.iter(|| black_box(cl.frames()))
        });
        g.bench_with_input(BenchmarkId::new("gt_flow_onset_apex", size), &cl, |b, cl| {
            b.iter(|| black_box(cl.flow(10, 40).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("build_clip", size), &size, |b, &s| {
            b.iter(|| black_box(clip(s)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
