//! Accuracy of every estimator against synthetic ground truth: sub-pixel translations, small
//! similarity motions and Gaussian-bump deformations (0.2 to 3 px) on random smooth textures
//! (evaluated analytically) and on a real face (the public-domain astronaut image, bicubically
//! resampled). The true flow is known exactly: `frame0(x) = frame1(x + w(x))`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_core::Similarity;
use mex_flow::synth::{self, SmoothTexture};
use mex_flow::{
    DisConfig, Error, FarnebackConfig, FlowConfig, FlowEstimator, FlowField, GrayF32, TvL1Config,
};

fn face(size: u32) -> GrayF32 {
    let p = format!("{}/tests/data/face{size}.png", env!("CARGO_MANIFEST_DIR"));
    mex_core::gray_f32_from_dynamic(&image::open(p).unwrap()).unwrap()
}

struct Case {
    name: String,
    f0: GrayF32,
    f1: GrayF32,
    truth: FlowField,
}

fn cases(size: usize) -> Vec<Case> {
    let mut v = Vec::new();
    for (i, (dx, dy)) in [(0.35f32, -0.2f32), (1.4, 0.8), (-2.5, 1.7)].into_iter().enumerate() {
        let (f0, f1, truth) = synth::translated_pair(size, size, dx, dy, 100 + i as u64);
        v.push(Case { name: format!("texture shift ({dx}, {dy})"), f0, f1, truth });
    }
    let s = Similarity::from_params(1.01, 0.008, 0.4, -0.3);
    let truth = synth::similarity_field(size, size, &s);
    let (f0, f1) = synth::pair_from_texture(&SmoothTexture::new(7), &truth);
    v.push(Case { name: "texture similarity".into(), f0, f1, truth });
    let (f0, f1, truth) = synth::deformed_pair(size, size, 3.0, 8);
    v.push(Case { name: "texture bumps 0.2-3 px".into(), f0, f1, truth });
    let img = face(size as u32);
    let bumps = synth::random_bumps(size, size, 3, 0.2, 3.0, 4);
    let truth = synth::bumps_field(size, size, &bumps);
    let (f0, f1) = synth::pair_from_image(&img, &truth);
    v.push(Case { name: "face bumps 0.2-3 px".into(), f0, f1, truth });
    let truth = synth::translation_field(size, size, 0.45, 0.3);
    let (f0, f1) = synth::pair_from_image(&img, &truth);
    v.push(Case { name: "face shift (0.45, 0.3)".into(), f0, f1, truth });
    v
}

/// Runs every case and checks the interior EPE (8 px border) against `bound`.
fn check(est: &dyn FlowEstimator, size: usize, bound: &dyn Fn(&str) -> f32) {
    let mut failures = Vec::new();
    for c in cases(size) {
        let flow = est.estimate(&c.f0, &c.f1).unwrap();
        assert_eq!(flow.size(), (size, size));
        assert!(flow.is_finite());
        let epe = flow.epe_interior(&c.truth, 8).unwrap();
        let zero = FlowField::zeros(size, size).epe_interior(&c.truth, 8).unwrap();
        let b = bound(&c.name);
        eprintln!("{:<10} {:<28} EPE {epe:.4} (bound {b}, zero-flow EPE {zero:.3})", est.name(), c.name);
        if epe > b {
            failures.push(format!("{}: {epe} > {b}", c.name));
        }
    }
    assert!(failures.is_empty(), "{}: {failures:?}", est.name());
}

#[test]
fn tvl1_accuracy() {
    let est = TvL1Config::default().build().unwrap();
    check(&est, 64, &|name| if name.starts_with("face") { 0.15 } else { 0.1 });
}

#[test]
fn farneback_accuracy() {
    let est = FarnebackConfig::default().build().unwrap();
    check(&est, 96, &|name| if name.starts_with("face") { 0.25 } else { 0.12 });
}

#[test]
fn dis_medium_accuracy() {
    let est = DisConfig::medium().build().unwrap();
    check(&est, 96, &|name| if name.starts_with("face") { 0.3 } else { 0.2 });
}

#[test]
fn dis_fast_and_ultrafast_accuracy() {
    for cfg in [DisConfig::fast(), DisConfig::ultrafast()] {
        let est = cfg.build().unwrap();
        check(&est, 128, &|name| if name.starts_with("face") { 0.45 } else { 0.4 });
    }
}

#[test]
fn identical_frames_give_zero_flow() {
    let img = face(64);
    for cfg in [
        FlowConfig::TvL1(TvL1Config::default()),
        FlowConfig::Farneback(FarnebackConfig::default()),
        FlowConfig::Dis(DisConfig::medium()),
        FlowConfig::Dis(DisConfig::fast()),
    ] {
        let est = cfg.build().unwrap();
        let f = est.estimate(&img, &img).unwrap();
        // interior (8 px border): Farnebäck, as OpenCV's, drops the warped second frame's
        // expansion at the last row / column, which moves the border slightly
        let mut m = 0.0f32;
        for y in 8..56 {
            for x in 8..56 {
                let (u, v) = f.get(x, y).unwrap();
                m = m.max(u.abs()).max(v.abs());
            }
        }
        assert!(m < 5e-3, "{}: max |flow| {m}", cfg.name());
    }
}

#[test]
fn estimate_into_reuses_and_matches_estimate() {
    let (f0, f1, _) = synth::translated_pair(64, 48, 0.7, 0.2, 3);
    for cfg in [
        FlowConfig::TvL1(TvL1Config::default()),
        FlowConfig::Farneback(FarnebackConfig::default()),
        FlowConfig::Dis(DisConfig::fast()),
    ] {
        let est = cfg.build().unwrap();
        let a = est.estimate(&f0, &f1).unwrap();
        let mut out = FlowField::zeros(3, 3);
        est.estimate_into(&f0, &f1, &mut out).unwrap();
        assert_eq!(a, out, "{}", cfg.name());
        // deterministic across calls (buffers reused)
        est.estimate_into(&f0, &f1, &mut out).unwrap();
        assert_eq!(a, out, "{}", cfg.name());
    }
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let a = GrayF32::new(64, 64);
    let b = GrayF32::new(64, 60);
    let mut nan = GrayF32::new(64, 64);
    nan.put_pixel(5, 5, image::Luma([f32::NAN]));
    for cfg in [
        FlowConfig::TvL1(TvL1Config::default()),
        FlowConfig::Farneback(FarnebackConfig::default()),
        FlowConfig::Dis(DisConfig::fast()),
    ] {
        let est = cfg.build().unwrap();
        assert!(matches!(est.estimate(&a, &b), Err(Error::SizeMismatch { .. })));
        assert!(matches!(est.estimate(&a, &nan), Err(Error::NonFinite { .. })));
        assert!(matches!(est.estimate(&GrayF32::new(0, 0), &GrayF32::new(0, 0)), Err(Error::Empty { .. })));
        assert!(matches!(
            est.estimate(&GrayF32::new(4, 4), &GrayF32::new(4, 4)),
            Err(Error::TooSmall { .. })
        ));
    }
}

#[test]
fn tvl1_from_concurrent_threads_finishes_with_the_same_flow() {
    // Several callers outside the rayon pool at once: their parallel regions take turns on the
    // pool (two at once could wait for each other at their barriers), with identical results.
    let (f0, f1, _) = synth::deformed_pair(64, 64, 1.5, 9);
    let est = std::sync::Arc::new(TvL1Config::default().build().unwrap());
    let want = est.estimate(&f0, &f1).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (est, f0, f1) = (est.clone(), f0.clone(), f1.clone());
            std::thread::spawn(move || (0..4).map(|_| est.estimate(&f0, &f1).unwrap()).collect::<Vec<_>>())
        })
        .collect();
    for h in handles {
        for got in h.join().unwrap() {
            assert_eq!(got, want);
        }
    }
}

#[test]
fn tvl1_is_deterministic_across_thread_counts() {
    let (f0, f1, _) = synth::deformed_pair(64, 64, 2.0, 5);
    let est = TvL1Config::default().build().unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let a = one.install(|| est.estimate(&f0, &f1).unwrap());
    let b = two.install(|| est.estimate(&f0, &f1).unwrap());
    assert_eq!(a, b);
    // Outside any rayon pool the iterations run as one parallel region of
    // `rayon::current_num_threads()` threads (2 or more on a multi-core machine).
    let c = std::thread::spawn(move || est.estimate(&f0, &f1).unwrap()).join().unwrap();
    assert_eq!(a, c);
}
