//! Integration tests of `mex flow` and `mex spot` (run the built binary).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use image::GenericImageView;

use mex_flow::synth::{self, SmoothTexture};
use std::path::Path;
use std::process::{Command, Output};

fn mex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap()
}

fn save(img: &mex_flow::GrayF32, p: &Path) {
    mex_core::gray_f32_to_luma8(img).save(p).unwrap();
}

/// Two 64x64 frames of a smooth texture, the second moved by (1.0, 0.5) px: the true flow from
/// frame0 to frame1 is (1.0, 0.5) everywhere.
fn pair(dir: &Path) -> (String, String) {
    let (f0, f1, _) = synth::translated_pair(64, 64, 1.0, 0.5, 42);
    let (a, b) = (dir.join("a.png"), dir.join("b.png"));
    save(&f0, &a);
    save(&f1, &b);
    (a.to_str().unwrap().to_string(), b.to_str().unwrap().to_string())
}

#[test]
fn flow_json_for_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    for (method, preset) in [("tvl1", None), ("farneback", None), ("dis", Some("medium")), ("dis", None)] {
        let mut args = vec!["flow", &a, &b, "--method", method, "--json"];
        if let Some(p) = preset {
            args.extend(["--preset", p]);
        }
        let out = mex(&args);
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["method"], method);
        assert_eq!(v["width"], 64);
        assert_eq!(v["height"], 64);
        assert!(v["elapsed_ms"].as_f64().unwrap() > 0.0);
        let m = v["mean_magnitude"].as_f64().unwrap();
        // true magnitude is |(1, 0.5)| = 1.118 px
        assert!((m - 1.118).abs() < 0.2, "{method}: mean magnitude {m}");
    }
}

#[test]
fn flow_writes_flo_viz_and_strain() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(dir.path());
    let flo = dir.path().join("f.flo");
    let viz = dir.path().join("f.png");
    let strain = dir.path().join("s.png");
    let out = mex(&[
        "flow",
        &a,
        &b,
        "--method",
        "farneback",
        "--out",
        flo.to_str().unwrap(),
        "--viz",
        viz.to_str().unwrap(),
        "--strain",
        strain.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f = mex_flow::io::read_flo_file(&flo).unwrap();
    assert_eq!(f.size(), (64, 64));
    let (u, v) = f.get(32, 32).unwrap();
    assert!((u - 1.0).abs() < 0.15 && (v - 0.5).abs() < 0.15, "{u} {v}");
    assert_eq!(image::open(&viz).unwrap().dimensions(), (64, 64));
    assert_eq!(image::open(&strain).unwrap().dimensions(), (64, 64));
}

#[test]
fn flow_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = pair(dir.path());
    let small = dir.path().join("small.png");
    save(&SmoothTexture::new(1).render(48, 64), &small);
    let out = mex(&["flow", &a, small.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("differ in size"));

    let missing = dir.path().join("missing.png");
    let out = mex(&["flow", &a, missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.png"));

    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, b"not an image").unwrap();
    let out = mex(&["flow", &a, garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));

    let out = mex(&["flow", &a, &a, "--method", "lucas-kanade"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown method"));

    let out = mex(&["flow", &a, &a, "--method", "dis", "--preset", "turbo"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn spot_finds_a_movement_in_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let tex = SmoothTexture::new(9);
    // 90 frames at 30 fps, one local movement over frames 40..=50 (0.37 s: micro)
    for t in 0..90usize {
        let a = if (40..=50).contains(&t) {
            2.5 * (std::f32::consts::PI * (t - 40) as f32 / 10.0).sin()
        } else {
            0.0
        };
        let f =
            synth::bumps_field(64, 64, &[synth::Bump { cx: 32.0, cy: 30.0, sigma: 8.0, ax: a, ay: 0.6 * a }]);
        let (f0, _) = synth::pair_from_texture(&tex, &f);
        save(&f0, &dir.path().join(format!("frame_{t:04}.png")));
    }
    let out = mex(&["spot", dir.path().to_str().unwrap(), "--fps", "30", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 90);
    let ivs = v["intervals"].as_array().unwrap();
    assert_eq!(ivs.len(), 1, "{v}");
    let truth = mex_core::Interval::new(40, 45, 50).unwrap();
    let got = mex_core::Interval::new(
        ivs[0]["onset"].as_u64().unwrap() as usize,
        ivs[0]["apex"].as_u64().unwrap() as usize,
        ivs[0]["offset"].as_u64().unwrap() as usize,
    )
    .unwrap();
    assert!(got.iou(&truth) >= 0.5, "{v}");
    assert_eq!(ivs[0]["kind"], "micro");
}

#[test]
fn spot_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = mex(&["spot", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // mixed sizes
    save(&SmoothTexture::new(1).render(32, 32), &dir.path().join("a.png"));
    save(&SmoothTexture::new(1).render(32, 30), &dir.path().join("b.png"));
    let out = mex(&["spot", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.png"));
    // a file that is no video (with or without FFmpeg installed): exit 2, one line
    let bad = dir.path().join("clip.mp4");
    std::fs::write(&bad, b"not a video at all").unwrap();
    let out = mex(&["spot", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "{out:?}");
    let out = mex(&["spot", dir.path().to_str().unwrap(), "--fps", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `mex spot` on a real video (MEX_TEST_DATA/videos/single_face.mp4: 72 frames at 30 fps, a
/// blink closing from about frame 25 to 30, then a smile): the rate comes from the container,
/// the face is aligned, a movement is found where the subject moves, the same frames as a
/// folder give the same result, and `mex analyze` finds its movement inside the same span.
#[test]
fn spot_a_real_video_like_its_frames_and_like_analyze() {
    let Some(data) = std::env::var_os("MEX_TEST_DATA").map(std::path::PathBuf::from) else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    let ffmpeg_ok = Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success())
        && Command::new("ffprobe").arg("-version").output().is_ok_and(|o| o.status.success());
    if !ffmpeg_ok {
        eprintln!("skipped: ffmpeg/ffprobe not installed (.ci/run installs them)");
        return;
    }
    let video = data.join("videos/single_face.mp4");
    let out = mex(&["spot", video.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["frames"].as_u64(), v["fps"].as_f64()), (Some(72), Some(30.0)), "{v}");
    assert_eq!(v["aligned"], true);
    assert_eq!(v["method"], "regional");
    let spans = |v: &serde_json::Value, key: &str| -> Vec<(u64, u64)> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["onset"].as_u64().unwrap(), i["offset"].as_u64().unwrap()))
            .collect()
    };
    let found = spans(&v, "intervals");
    assert!(found.iter().all(|&(a, b)| a <= b && b < 72), "{v}");
    let moved: Vec<(u64, u64)> = found.iter().chain(&spans(&v, "blinks")).copied().collect();
    assert!(moved.iter().any(|&(a, b)| a <= 30 && b >= 25), "nothing found at the blink: {v}");

    // the same frames as a folder of PNG files (decoded by FFmpeg to the same RGB values)
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-i", video.to_str().unwrap(), "-pix_fmt", "rgb24"])
        .arg(dir.path().join("f%04d.png"))
        .status()
        .unwrap();
    assert!(st.success());
    let out = mex(&["spot", dir.path().to_str().unwrap(), "--fps", "30", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((spans(&w, "intervals"), spans(&w, "blinks")), (found.clone(), spans(&v, "blinks")), "{w}");

    // mex analyze (per-frame tracking and alignment) finds its movement inside the same span
    let an = dir.path().join("an");
    let out = Command::new(env!("CARGO_BIN_EXE_mex"))
        .args(["analyze", video.to_str().unwrap(), "--out", an.to_str().unwrap(), "--five-points", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(an.join("analysis.json")).unwrap()).unwrap();
    let theirs: Vec<(u64, u64)> = a["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["interval"]["onset"].as_u64().unwrap(), i["interval"]["offset"].as_u64().unwrap()))
        .collect();
    assert!(!theirs.is_empty(), "{a}");
    for (a0, a1) in theirs {
        assert!(found.iter().any(|&(s0, s1)| a0 <= s1 && a1 >= s0), "analyze ({a0}, {a1}) vs spot {found:?}");
    }
}
