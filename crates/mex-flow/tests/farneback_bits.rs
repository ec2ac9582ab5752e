//! Bit-level regression of Farnebäck: the flows of fixed synthetic and face pairs hash to
//! recorded values. Every kernel level gives the same bits, so the values hold under
//! `MEX_SIMD=scalar`, `avx2` and `avx512` alike; run the file under each to check all paths.
//! The hashes (FNV-1a over the `f32` bits of `u` then `v`) were recorded with the kernels as
//! they were before they moved to `farneback/kernels.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_flow::synth::{self, SmoothTexture};
use mex_flow::{FarnebackConfig, FlowEstimator, FlowField, GrayF32};

fn face(size: u32) -> GrayF32 {
    let p = format!("{}/tests/data/face{size}.png", env!("CARGO_MANIFEST_DIR"));
    mex_core::gray_f32_from_dynamic(&image::open(p).unwrap()).unwrap()
}

fn fnv1a(flow: &FlowField) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in flow.u().iter().chain(flow.v()) {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[test]
fn farneback_flows_keep_their_bits() {
    let mut cases: Vec<(&str, FarnebackConfig, GrayF32, GrayF32, u64)> = Vec::new();
    let (f0, f1, _) = synth::deformed_pair(128, 128, 3.0, 8);
    cases.push(("texture bumps 128", FarnebackConfig::default(), f0, f1, 0x47d4_c4c2_0de3_7779));
    let (f0, f1, _) = synth::translated_pair(128, 128, 1.4, 0.8, 101);
    cases.push(("texture shift 128", FarnebackConfig::default(), f0, f1, 0xb483_ec38_c665_c8c9));
    // odd sizes: vector steps with scalar tails, and a Gaussian window with poly_n 7
    let truth = synth::bumps_field(117, 83, &synth::random_bumps(117, 83, 3, 0.2, 4.0, 5));
    let (f0, f1) = synth::pair_from_texture(&SmoothTexture::new(5), &truth);
    let cfg7 = FarnebackConfig { poly_n: 7, poly_sigma: 1.5, gaussian: true, ..Default::default() };
    cases.push(("texture bumps 117x83 gaussian n7", cfg7, f0, f1, 0x87ce_190c_3199_5f33));
    // large motion: samples that leave the image
    let (f0, f1, _) = synth::translated_pair(96, 96, -9.5, 6.25, 3);
    cases.push((
        "texture shift 96 large",
        FarnebackConfig { levels: 1, ..Default::default() },
        f0,
        f1,
        0x6081_6a4a_6932_814b,
    ));
    let img = face(128);
    let truth = synth::bumps_field(128, 128, &synth::random_bumps(128, 128, 3, 0.2, 3.0, 4));
    let (f0, f1) = synth::pair_from_image(&img, &truth);
    cases.push(("face bumps 128", FarnebackConfig::default(), f0, f1, 0xb9f7_d021_016a_69ec));

    let mut failures = Vec::new();
    for (name, cfg, f0, f1, want) in cases {
        let flow = cfg.build().unwrap().estimate(&f0, &f1).unwrap();
        assert!(flow.is_finite(), "{name}");
        let got = fnv1a(&flow);
        eprintln!("{name:<34} {got:#018x} (level {:?})", mex_core::simd::level());
        if got != want {
            failures.push(format!("{name}: {got:#018x}, recorded {want:#018x}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
