//! Time of one `IndicatorTracker::push` (a frame with landmarks and regional motion) and of
//! `finish` on a 10-minute, 30 fps recording.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use mex_core::{LandmarkScheme, Landmarks, Point2};
use mex_indicators::{FrameInput, IndicatorConfig, RegionMotion, N_REGIONS};

fn face() -> Landmarks {
    let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
    Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap()
}

fn bench(c: &mut Criterion) {
    let lm = face();
    let motion = RegionMotion::new([0.3; N_REGIONS]);
    let mut g = c.benchmark_group("indicators");
    g.bench_function("push", |b| {
        let mut t = IndicatorConfig::default().build(30.0).unwrap();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            t.push(&FrameInput { time_s: i as f64 / 30.0, landmarks: Some(&lm), motion: Some(&motion) })
                .unwrap()
        })
    });
    g.sample_size(10);
    g.bench_function("finish_18000_frames", |b| {
        b.iter_batched(
            || {
                let mut t = IndicatorConfig::default().build(30.0).unwrap();
                for i in 0..18_000 {
                    t.push(&FrameInput {
                        time_s: i as f64 / 30.0,
                        landmarks: Some(&lm),
                        motion: Some(&motion),
                    })
                    .unwrap();
                }
                t
            },
            |t| t.finish(None).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
