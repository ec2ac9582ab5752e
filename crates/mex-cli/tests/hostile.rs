//! Hostile input across commands: truncated and bomb images, partial outputs, absurd numbers.
//! Each case must exit 2 with one line on stderr and leave no file behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn mex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap()
}

fn exit_2(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn frame(path: &Path, shift: u32) {
    let img = image::GrayImage::from_fn(48, 40, |x, y| image::Luma([((x + shift) * 5 + y * 3) as u8]));
    img.save(path).unwrap();
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn truncated_and_bomb_images_are_errors_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.png"), d.path().join("b.png"));
    frame(&a, 0);
    frame(&b, 1);
    // A truncated JPEG: decoders fill the missing part silently; mex refuses it.
    let jpg = d.path().join("t.jpg");
    image::open(&a).unwrap().to_rgb8().save(&jpg).unwrap();
    let bytes = std::fs::read(&jpg).unwrap();
    std::fs::write(&jpg, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (ap, jp) = (a.to_str().unwrap(), jpg.to_str().unwrap());
    exit_2(&mex(&["flow", ap, jp]), "truncated JPEG");
    exit_2(&mex(&["align", jp]), "truncated JPEG");
    // A small PNG declaring 20000 x 20000 pixels: refused by the decoder limits.
    let png = std::fs::read(&a).unwrap();
    let mut bomb = png[..33].to_vec();
    bomb[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb.extend_from_slice(&png[33..]);
    let bp = d.path().join("bomb.png");
    std::fs::write(&bp, bomb).unwrap();
    exit_2(&mex(&["flow", ap, bp.to_str().unwrap()]), "bomb.png");
    exit_2(&mex(&["align", bp.to_str().unwrap()]), "bomb.png");
    // A folder of frames with a truncated one: analyze and spot refuse it.
    let frames = d.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..4 {
        image::open(&a).unwrap().to_rgb8().save(frames.join(format!("f{i}.jpg"))).unwrap();
    }
    std::fs::copy(&jpg, frames.join("f4.jpg")).unwrap();
    let out = d.path().join("out");
    exit_2(
        &mex(&["analyze", frames.to_str().unwrap(), "--out", out.to_str().unwrap(), "--five-points"]),
        "f4.jpg",
    );
    assert!(!out.join("frames.csv").exists());
    // spot streams the same folder (aligned when the first frame shows a face, or as it is)
    for align in ["auto", "none"] {
        let o = mex(&["spot", frames.to_str().unwrap(), "--align", align]);
        exit_2(&o, "f4.jpg");
        assert!(o.stdout.is_empty(), "no result printed: {}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn multi_file_outputs_are_all_or_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.png"), d.path().join("b.png"));
    frame(&a, 0);
    frame(&b, 1);
    let flo = d.path().join("c.flo");
    let viz = d.path().join("missing/c.png");
    let o = mex(&[
        "flow",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        flo.to_str().unwrap(),
        "--viz",
        viz.to_str().unwrap(),
    ]);
    exit_2(&o, "missing");
    assert!(!flo.exists(), "c.flo must not be left behind");
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only the inputs remain: {left:?}");
    // Both written when both can be.
    let viz = d.path().join("c.png");
    let o = mex(&[
        "flow",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        flo.to_str().unwrap(),
        "--viz",
        viz.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(flo.exists() && viz.exists());
}

#[test]
fn class_sets_are_inferred_from_names_and_said() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p.csv");
    std::fs::write(&p, "label,pred\ncat,cat\ndog,cat\nbird,bird\ndog,dog\n").unwrap();
    let o = mex(&["metrics", "classify", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("classes inferred"));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // accuracy 3/4 over the inferred classes bird, cat, dog
    assert!((j["accuracy"].as_f64().unwrap() - 0.75).abs() < 1e-12, "{j}");
    std::fs::write(&p, "label,pred\ncat,1\ndog,cat\n").unwrap();
    exit_2(&mex(&["metrics", "classify", p.to_str().unwrap()]), "unknown class `cat`");
}

#[test]
fn tables_past_the_size_limit_are_refused_before_reading() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big.csv");
    // A sparse file: 300 MiB declared, nothing written.
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(300 << 20).unwrap();
    exit_2(&mex(&["metrics", "classify", p.to_str().unwrap()]), "MiB a table may have");
}
