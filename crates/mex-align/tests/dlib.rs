//! dlib shape predictor: against dlib's own output (fixture from scripts/align_dlib_reference.py),
//! and typed errors for corrupt models (synthetic model, no real file needed).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use image::GrayImage;
use mex_align::dlib::{RegressionTree, Split};
use mex_align::{DlibRect, Error, LandmarkModel, ShapePredictor};
use mex_core::BBox;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model_path() -> PathBuf {
    std::env::var_os("MEX_DLIB_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/dlib/shape_predictor_68_face_landmarks.dat"))
}

/// The script's gray conversion: (299 R + 587 G + 114 B + 500) // 1000.
fn gray(name: &str) -> GrayImage {
    let rgb = image::open(dir().join("tests/data").join(name)).unwrap().to_rgb8();
    let (w, h) = rgb.dimensions();
    let data = rgb
        .pixels()
        .map(|p| ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500) / 1000) as u8)
        .collect();
    GrayImage::from_raw(w, h, data).unwrap()
}

/// Our points against dlib's on the fixture's images and boxes: within 0.5 px unrounded (dlib
/// rounds its output to integer pixels), and equal after rounding.
fn check_against_dlib(path: &Path, parts: usize, fixture: &str) {
    let sp = ShapePredictor::from_file(path).unwrap();
    assert_eq!(sp.num_parts(), parts);
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("tests/fixtures").join(fixture)).unwrap())
            .unwrap();
    let mut worst = 0.0f32;
    let mut rounded_equal = 0usize;
    let mut total = 0usize;
    for case in fixture["cases"].as_array().unwrap() {
        let img = gray(case["image"].as_str().unwrap());
        let r: Vec<i64> = case["rect"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let pts = sp.predict(&img, DlibRect { left: r[0], top: r[1], right: r[2], bottom: r[3] });
        let want = case["parts"].as_array().unwrap();
        assert_eq!(pts.len(), want.len());
        for (p, q) in pts.iter().zip(want) {
            let (qx, qy) = (q[0].as_f64().unwrap() as f32, q[1].as_f64().unwrap() as f32);
            worst = worst.max((p.x - qx).abs()).max((p.y - qy).abs());
            total += 1;
            if (p.x + 0.5).floor() == qx && (p.y + 0.5).floor() == qy {
                rounded_equal += 1;
            }
        }
    }
    eprintln!(
        "dlib {parts}-point: worst |ours - dlib| = {worst:.4} px; {rounded_equal}/{total} points identical after rounding"
    );
    assert!(worst <= 0.5 + 1e-3, "worst error {worst}");
    assert_eq!(rounded_equal, total);
}

#[test]
fn shape_predictor_matches_dlib() {
    let path = model_path();
    if !path.exists() {
        eprintln!(
            "skipped: dlib model {} not found (set MEX_DLIB_MODEL or apt-get install libdlib-data)",
            path.display()
        );
        return;
    }
    check_against_dlib(&path, 68, "dlib_reference.json");
}

#[test]
fn five_point_shape_predictor_matches_dlib() {
    let Some(path) = std::env::var_os("MEX_DLIB5_MODEL").map(PathBuf::from).filter(|p| p.exists()) else {
        eprintln!(
            "skipped: set MEX_DLIB5_MODEL to shape_predictor_5_face_landmarks.dat (face_recognition_models \
             0.3.0 on PyPI; .ci/run fetches it)"
        );
        return;
    };
    check_against_dlib(&path, 5, "dlib5_reference.json");
    // Its points are eye corners and the nose base, not MTCNN's five: the LandmarkModel seam
    // refuses to label them as `LandmarkScheme::Five`.
    let sp = ShapePredictor::from_file(&path).unwrap();
    let img = gray("astronaut.png");
    let err = sp.fit(&img, &BBox::new(181.0, 62.0, 268.0, 172.0)).unwrap_err();
    assert!(matches!(err, Error::InvalidParam { .. }), "{err}");
}

fn synthetic() -> ShapePredictor {
    // Two landmarks, one level, one depth-1 tree comparing two feature pixels.
    ShapePredictor::new(
        vec![0.25, 0.5, 0.75, 0.5],
        vec![vec![RegressionTree {
            splits: vec![Split { idx1: 0, idx2: 1, thresh: 10.0 }],
            leaf_values: vec![vec![0.0, -0.25, 0.0, -0.25], vec![0.0, 0.25, 0.0, 0.25]],
        }]],
        vec![vec![0, 1]],
        vec![vec![[0.0, 0.0], [0.0, 0.0]]],
    )
    .unwrap()
}

#[test]
fn synthetic_model_round_trips_and_predicts_by_hand() {
    let sp = synthetic();
    let bytes = sp.to_bytes();
    let back = ShapePredictor::from_bytes(&bytes).unwrap();
    assert_eq!(back, sp);
    // Box (0,0)-(100,100): feature pixels at (25,50) and (75,50).
    let mut img = GrayImage::new(101, 101);
    img.put_pixel(25, 50, image::Luma([200]));
    let rect = DlibRect { left: 0, top: 0, right: 100, bottom: 100 };
    // 200 - 0 > 10: left child, leaf 0 moves both points up by 0.25 (25 px).
    let pts = back.predict(&img, rect);
    assert_eq!((pts[0].x, pts[0].y, pts[1].x, pts[1].y), (25.0, 25.0, 75.0, 25.0));
    let dark = GrayImage::new(101, 101);
    let pts = back.predict(&dark, rect);
    assert_eq!((pts[0].y, pts[1].y), (75.0, 75.0));
    // The LandmarkModel seam rejects a 2-point model (no scheme) with a typed error.
    assert!(matches!(back.fit(&dark, &BBox::new(0.0, 0.0, 100.0, 100.0)), Err(Error::InvalidParam { .. })));
}

#[test]
fn corrupt_or_truncated_models_give_typed_errors() {
    let bytes = synthetic().to_bytes();
    for cut in 0..bytes.len() {
        match ShapePredictor::from_bytes(&bytes[..cut]) {
            Err(Error::DlibModel { .. }) => {}
            other => panic!("truncated at {cut}: {other:?}"),
        }
    }
    // Wrong version.
    let mut v = bytes.clone();
    v[1] = 2;
    assert!(matches!(ShapePredictor::from_bytes(&v), Err(Error::DlibModel { .. })));
    // Garbage and a split index pointing past the feature pixels.
    assert!(matches!(ShapePredictor::from_bytes(&[0xff; 64]), Err(Error::DlibModel { .. })));
    // (a split index past the feature pixels: see the unit test of `dlib.rs`)
    // Missing file: Io error naming the path.
    let err = ShapePredictor::from_file("/nonexistent/model.dat").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.dat"));
}
