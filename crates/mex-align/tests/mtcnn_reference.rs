//! MTCNN against facenet-pytorch 2.6.0's output on the same images
//! (fixture written by scripts/align_mtcnn_reference.py).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_align::{Face, Mtcnn};
use serde_json::Value;
use std::path::Path;

fn dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn mtcnn_matches_facenet_pytorch() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("tests/fixtures/mtcnn_reference.json")).unwrap(),
    )
    .unwrap();
    let det = Mtcnn::new().unwrap();
    let mut worst_box = 0.0f32;
    let mut worst_lm = 0.0f32;
    for (name, entry) in fixture["images"].as_object().unwrap() {
        let img = image::open(dir().join("tests/data").join(name)).unwrap().to_rgb8();
        assert_eq!(img.width() as u64, entry["width"].as_u64().unwrap());
        let faces: Vec<Face> = det.detect_rgb(&img).unwrap();
        let refs = entry["faces"].as_array().unwrap();
        assert_eq!(faces.len(), refs.len(), "{name}: number of faces {faces:?}");
        // Same order as facenet-pytorch (largest first).
        for (f, r) in faces.iter().zip(refs) {
            let rb: Vec<f32> =
                r["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let db = [f.bbox.x0 - rb[0], f.bbox.y0 - rb[1], f.bbox.x1 - rb[2], f.bbox.y1 - rb[3]];
            let eb = db.iter().fold(0.0f32, |m, d| m.max(d.abs()));
            let rs = r["score"].as_f64().unwrap() as f32;
            assert!((f.score - rs).abs() < 1e-3, "{name}: score {} vs {rs}", f.score);
            for (p, rp) in f.landmarks.points.iter().zip(r["landmarks"].as_array().unwrap()) {
                let (rx, ry) = (rp[0].as_f64().unwrap() as f32, rp[1].as_f64().unwrap() as f32);
                worst_lm = worst_lm.max((p.x - rx).abs()).max((p.y - ry).abs());
            }
            eprintln!("{name}: box error {eb:.4} px, score {} vs {rs}", f.score);
            worst_box = worst_box.max(eb);
        }
    }
    eprintln!("worst box error {worst_box:.4} px, worst landmark error {worst_lm:.4} px");
    assert!(worst_box <= 1.0, "box error {worst_box}");
    assert!(worst_lm <= 1.0, "landmark error {worst_lm}");
}
