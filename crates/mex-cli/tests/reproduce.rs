#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! `mex reproduce ststnet`: the published result with the released weights (real data, skipped
//! without MEX_TEST_DATA) and exit status 2 on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap()
}

fn write_png(path: &Path, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(28, 28, |x, y| {
        image::Rgb([(x as u8).wrapping_mul(seed), (y as u8).wrapping_add(seed), seed])
    });
    img.save(path).unwrap();
}

/// A safetensors file with one f32 tensor of the given name and shape (zeros).
fn write_safetensors(path: &Path, name: &str, shape: &[usize]) {
    let n: usize = shape.iter().product();
    let header =
        format!("{{\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[0,{}]}}}}", n * 4);
    let mut h = header.into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(vec![0u8; n * 4]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Two subjects, two samples each, valid PNGs.
fn tiny_dataset(root: &Path) {
    for (s, sub) in ["sub01", "s1"].iter().enumerate() {
        for label in 0..2u8 {
            write_png(
                &root.join(format!("inputs/{sub}/u_test/{label}/{sub}_{label} .png")),
                3 + s as u8 * 7 + label,
            );
        }
    }
}

#[test]
fn released_weights_reproduce_0_7209_and_0_725() {
    let Ok(data) = std::env::var("MEX_TEST_DATA") else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    let dir = PathBuf::from(data).join("ststnet-composite");
    let tmp = tempfile::tempdir().unwrap();
    let preds = tmp.path().join("p.csv");
    let out = mex(&[
        "reproduce",
        "ststnet",
        "--data",
        dir.to_str().unwrap(),
        "--json",
        "--predictions-out",
        preds.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(format!("{:.4}", v["uf1"].as_f64().unwrap()), "0.7209");
    assert_eq!(format!("{:.3}", v["uar"].as_f64().unwrap()), "0.725");
    assert_eq!(format!("{:.4}", v["uar"].as_f64().unwrap()), "0.7250");
    assert_eq!(v["n"], 442);
    let n: u64 = ["casme2", "smic", "samm"].iter().map(|d| v["per_dataset"][d]["n"].as_u64().unwrap()).sum();
    assert_eq!(n, 442);
    assert_eq!(v["per_dataset"]["casme2"]["n"], 145);
    assert_eq!(v["per_dataset"]["smic"]["n"], 164);
    assert_eq!(v["per_dataset"]["samm"]["n"], 133);
    assert!(v["accuracy"].as_f64().unwrap() > 0.5 && v["elapsed_s"].as_f64().unwrap() >= 0.0);
    let csv = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "subject,file,label,pred");
    assert_eq!(csv.lines().count(), 443);
}

#[test]
fn missing_data_folder_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = mex(&["reproduce", "ststnet", "--data", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn unknown_or_unavailable_device_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    std::fs::create_dir_all(tmp.path().join("weights")).unwrap();
    let data = tmp.path().to_str().unwrap();
    let out = mex(&["reproduce", "ststnet", "--data", data, "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device"));
    if !cfg!(feature = "cuda") {
        let out = mex(&["reproduce", "ststnet", "--data", data, "--device", "cuda"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cuda"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn missing_weights_folder_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    let out = mex(&["reproduce", "ststnet", "--data", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weights"));
}

#[test]
fn corrupt_png_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    let bad = tmp.path().join("inputs/s1/u_test/1/broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n this is not a png").unwrap();
    let out = mex(&["reproduce", "ststnet", "--data", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.png"), "{err}");
}

#[test]
fn wrong_shaped_weights_exit_2_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    for s in ["sub01", "s1"] {
        write_safetensors(
            &tmp.path().join(format!("weights/{s}.safetensors")),
            "conv1.weight",
            &[3, 3, 3, 2],
        );
    }
    let out = mex(&["reproduce", "ststnet", "--data", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conv1.weight") && err.contains("[3, 3, 3, 2]"), "{err}");
}

#[test]
fn train_mode_runs_loso_on_a_tiny_set() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_dataset(tmp.path());
    let folds = tmp.path().join("folds");
    let args = [
        "reproduce",
        "ststnet",
        "--data",
        tmp.path().to_str().unwrap(),
        "--train",
        "--epochs",
        "2",
        "--json",
        "--folds-dir",
        folds.to_str().unwrap(),
    ];
    let out = mex(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 4);
    assert!(folds.join("sub01.json").exists() && folds.join("s1.safetensors").exists());
    // a rerun resumes from the fold files and gives the same result
    let again: serde_json::Value = serde_json::from_slice(&mex(&args).stdout).unwrap();
    assert_eq!(again["uf1"], v["uf1"]);
}
