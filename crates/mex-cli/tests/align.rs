//! `mex align` end to end on the vendored astronaut image.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mex-align/tests/data").join(name)
}

fn mex(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mex")).arg("align").args(args).output().unwrap()
}

#[test]
fn json_lists_the_face_in_input_pixels_and_writes_the_crop() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("aligned.png");
    let img = data("astronaut.png");
    let o = mex(&[img.to_str().unwrap(), "--json", "--size", "96", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    // facenet-pytorch's box for this image: [181.05, 62.16, 267.75, 172.05].
    let b: Vec<f64> = faces[0]["bbox"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    for (x, r) in b.iter().zip([181.05, 62.16, 267.75, 172.05]) {
        assert!((x - r).abs() < 1.0, "{b:?}");
    }
    assert!(faces[0]["score"].as_f64().unwrap() > 0.99);
    assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
    let crop = image::open(&out).unwrap();
    assert_eq!((crop.width(), crop.height()), (96, 96));
}

#[test]
fn no_face_is_an_empty_list_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.png");
    let o = mex(&[data("noface.png").to_str().unwrap(), "--json", "--out", out.to_str().unwrap()]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["faces"].as_array().unwrap().len(), 0);
    assert!(!out.exists());
}

#[test]
fn unreadable_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.png");
    let bytes = std::fs::read(data("noface.png")).unwrap();
    std::fs::write(&bad, &bytes[..200]).unwrap();
    for p in [bad.clone(), dir.path().join("missing.png")] {
        let o = mex(&[p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("cannot read image") && err.contains(p.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
    }
    // A corrupt dlib model is a clear error too.
    let model = dir.path().join("model.dat");
    std::fs::write(&model, b"not a model").unwrap();
    let o = mex(&[data("astronaut.png").to_str().unwrap(), "--dlib-model", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("dlib model"));
}

#[test]
fn dlib_model_gives_68_landmarks() {
    let model = std::env::var("MEX_DLIB_MODEL")
        .unwrap_or_else(|_| "/usr/share/dlib/shape_predictor_68_face_landmarks.dat".into());
    if !Path::new(&model).exists() {
        eprintln!("skipped: dlib model {model} not found");
        return;
    }
    let o = mex(&[data("astronaut.png").to_str().unwrap(), "--json", "--dlib-model", &model]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["faces"][0]["landmarks"].as_array().unwrap().len(), 68);
}
