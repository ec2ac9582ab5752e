//! `mex analyze` on a folder of synthetic frames: per-frame CSV with OpenFace-style columns,
//! JSON, no face images unless `--save-frames`, clear errors for bad folders.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_data::synth::{ClipConfig, FacialAction, SynthConfig};
use std::process::Command;

fn mex() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mex"))
}

fn write_clip(dir: &std::path::Path, n: usize) {
    let cfg = ClipConfig {
        synth: SynthConfig { size: 160, fps: 100.0, interocular_fraction: 0.22, ..SynthConfig::default() },
        action: FacialAction::BrowRaise,
        amplitude_px: 2.5,
        n_frames: n,
        onset: 8,
        apex: 14,
        offset: 22,
        ..ClipConfig::default()
    };
    let clip = cfg.build().unwrap();
    for (i, f) in clip.frames().iter().enumerate() {
        mex_core::gray_f32_to_luma8(f).save(dir.join(format!("img{}.png", i + 1))).unwrap();
    }
}

fn pngs_under(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += pngs_under(&p);
        } else if p.extension().is_some_and(|x| x == "png") {
            // The indicator plots are charts of numbers, not face images.
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !["ear_blinks.png", "activity.png", "asymmetry.png"].contains(&name.as_str()) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn analyze_writes_numbers_not_faces() {
    let frames = tempfile::tempdir().unwrap();
    write_clip(frames.path(), 30);
    let out = tempfile::tempdir().unwrap();
    let o = mex()
        .args([
            "analyze",
            frames.path().to_str().unwrap(),
            "--fps",
            "100",
            "--out",
            out.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.path().join("frames.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 31);
    assert!(lines[0].starts_with("frame,face_id,timestamp,confidence,success,x_0"));
    // Natural order: img2 before img10, so row k is frame k at k/100 s.
    assert!(lines[11].starts_with("10,0,0.100000,"));
    let found = lines[1..].iter().filter(|l| l.split(',').nth(4) == Some("1")).count();
    assert_eq!(found, 30, "the face is found in every frame");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("analysis.json")).unwrap()).unwrap();
    assert_eq!(json["n_frames"], 30);
    // 30 frames at 100 fps are fewer than the spotting window: said in the JSON and on stderr.
    assert!(json["warnings"][0].as_str().unwrap().contains("spotting window"), "{json}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("spotting window"));
    assert_eq!(pngs_under(out.path()), 0, "no face image without --save-frames");

    let out2 = tempfile::tempdir().unwrap();
    let o = mex()
        .args([
            "analyze",
            frames.path().to_str().unwrap(),
            "--out",
            out2.path().to_str().unwrap(),
            "--save-frames",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(pngs_under(out2.path()), 30);
}

#[test]
fn analyze_bad_input_exits_2() {
    let o = mex().args(["analyze", "/nonexistent/frames"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/frames"));
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.png"), b"not a png").unwrap();
    std::fs::write(d.path().join("b.png"), b"not a png").unwrap();
    let o = mex()
        .args(["analyze", d.path().to_str().unwrap(), "--out", d.path().join("o").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a.png"));
}

#[test]
fn no_face_in_any_frame_exits_2_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("gray");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..5 {
        image::GrayImage::from_pixel(96, 80, image::Luma([110 + i as u8]))
            .save(frames.join(format!("f{i}.png")))
            .unwrap();
    }
    let check = |o: &std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains("no face found in any of the 5 frames"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(o.stdout.is_empty(), "nothing reported as written: {}", String::from_utf8_lossy(&o.stdout));
    };
    // an output folder that did not exist: not created
    let out = d.path().join("new/out");
    let o = mex()
        .args([
            "analyze",
            frames.to_str().unwrap(),
            "--five-points",
            "--save-frames",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    check(&o);
    assert!(!d.path().join("new").exists(), "the output folder is removed again");
    // an existing output folder: left as it was (empty), no temporary files
    let out = d.path().join("existing");
    std::fs::create_dir(&out).unwrap();
    let o =
        mex().args(["analyze", frames.to_str().unwrap(), "--out", out.to_str().unwrap()]).output().unwrap();
    check(&o);
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // a frame rate of 0, NaN or past the maximum: exit 2 with one line naming --fps
    for fps in ["0", "NaN", "-30", "1e9"] {
        let o = mex()
            .args([
                "analyze",
                frames.to_str().unwrap(),
                &format!("--fps={fps}"),
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{fps}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{fps}: {err}");
        assert!(err.contains("fps"), "{fps}: {err}");
    }
}
