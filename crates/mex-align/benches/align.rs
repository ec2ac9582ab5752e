//! Benchmarks: MTCNN on a 640x480 frame, dlib 68-point landmarks per face, alignment per frame.
//! Threads follow RAYON_NUM_THREADS (candle and rayon both read it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use image::DynamicImage;
use mex_align::{AlignConfig, DlibRect, Mtcnn, ShapePredictor};
use mex_core::gray_f32_from_dynamic;
use std::hint::black_box;
use std::path::Path;

fn frame() -> DynamicImage {
    image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/frame640x480.png")).unwrap()
}

fn bench(c: &mut Criterion) {
    let img = frame();
    let rgb = img.to_rgb8();
    let det = Mtcnn::new().unwrap();
    let faces = det.detect_rgb(&rgb).unwrap();
    assert_eq!(faces.len(), 1);
    c.bench_function("mtcnn_640x480", |b| b.iter(|| det.detect_rgb(black_box(&rgb)).unwrap()));

    let model = std::env::var("MEX_DLIB_MODEL")
        .unwrap_or_else(|_| "/usr/share/dlib/shape_predictor_68_face_landmarks.dat".into());
    if Path::new(&model).exists() {
        let sp = ShapePredictor::from_file(&model).unwrap();
        let gray = img.to_luma8();
        let rect = DlibRect::from_bbox(&faces[0].bbox);
        c.bench_function("dlib68_per_face", |b| b.iter(|| sp.predict(black_box(&gray), rect)));
    } else {
        eprintln!("skipped dlib bench: {model} not found");
    }

    let aligner = AlignConfig::default().build().unwrap();
    let g = gray_f32_from_dynamic(&img).unwrap();
    let lm = faces[0].landmarks.clone();
    c.bench_function("align_128_per_frame", |b| b.iter(|| aligner.align_gray(black_box(&g), &lm).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
