//! `mex analyze` on real videos (MEX_TEST_DATA/videos): frame counts and presentation times
//! against ffprobe, face / no-face frames, the 68-point eye aspect ratio against dlib's own
//! pipeline, memory on a looped video, OpenFace CSV reading, and bad video input.
//! References: tests/fixtures/video_reference.json, made by scripts/analyze_video_reference.py.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mex() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mex"))
}

fn videos() -> Option<PathBuf> {
    match std::env::var_os("MEX_TEST_DATA") {
        Some(d) => Some(PathBuf::from(d).join("videos")),
        None => {
            eprintln!("skipped: MEX_TEST_DATA not set");
            None
        }
    }
}

fn has_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success())
        && Command::new("ffprobe").arg("-version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: ffmpeg/ffprobe not installed (.ci/run installs them)");
    }
    ok
}

fn reference() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/video_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn analyze(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = mex();
    c.arg("analyze").arg(input).arg("--out").arg(out).args(extra);
    c.output().unwrap()
}

/// Rows of frames.csv as maps column -> cell.
fn rows(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(out.join("frames.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let body = lines.map(|l| l.split(',').map(String::from).collect::<Vec<_>>()).collect();
    (head, body)
}

fn col(head: &[String], name: &str) -> usize {
    head.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
}

fn ear(row: &[String], head: &[String], idx: [usize; 6]) -> f64 {
    let p: Vec<(f64, f64)> = idx
        .iter()
        .map(|i| {
            (
                row[col(head, &format!("x_{i}"))].parse().unwrap(),
                row[col(head, &format!("y_{i}"))].parse().unwrap(),
            )
        })
        .collect();
    let d = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).hypot(a.1 - b.1);
    (d(p[1], p[5]) + d(p[2], p[4])) / (2.0 * d(p[0], p[3]))
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn single_face_frames_times_and_blink_match_the_references() {
    let (Some(v), true) = (videos(), has_ffmpeg()) else { return };
    let Some(model) = std::env::var_os("MEX_DLIB_MODEL") else {
        eprintln!("skipped: MEX_DLIB_MODEL not set");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = analyze(&v.join("single_face.mp4"), out.path(), &["--dlib-model", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (head, body) = rows(out.path());
    assert_eq!(&head[..5], ["frame", "face_id", "timestamp", "confidence", "success"]);
    assert!(head.contains(&"x_67".to_string()) && head.contains(&"y_67".to_string()));
    assert_eq!(body.len(), 72);
    let r = reference();
    let pts = r["videos"]["single_face.mp4"]["pts_time"].as_array().unwrap();
    for (row, t) in body.iter().zip(pts) {
        let ts: f64 = row[col(&head, "timestamp")].parse().unwrap();
        assert!((ts - t.as_f64().unwrap()).abs() < 1e-4, "timestamp {ts} vs ffprobe {t}");
        assert_eq!(row[col(&head, "success")], "1");
    }
    let mine: Vec<f64> = body
        .iter()
        .map(|row| {
            (ear(row, &head, [36, 37, 38, 39, 40, 41]) + ear(row, &head, [42, 43, 44, 45, 46, 47])) / 2.0
        })
        .collect();
    let dlib: Vec<f64> = r["single_face_dlib_ear"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ear_mean"].as_f64().unwrap())
        .collect();
    let corr = pearson(&mine, &dlib);
    assert!(corr >= 0.9, "EAR correlation with dlib's own pipeline {corr:.3}");
    let argmin = mine.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert!((26..=28).contains(&argmin), "eyes closed at frame {argmin}, expected 27 +- 1");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("analysis.json")).unwrap()).unwrap();
    assert_eq!(json["n_frames"], 72);
    assert_eq!(json["fps_source"], "container");
    assert_eq!(json["landmark_points"], 68);
    // The indicators from mex's own tracked landmarks: exactly one blink, closed at frame 27 +- 1,
    // found by both detectors; the EAR columns are in the CSV; the plots are written.
    let blinks = json["indicator_details"]["blinks"].as_array().unwrap();
    assert_eq!(blinks.len(), 1, "{blinks:?}");
    let closure = blinks[0]["closure_frame"].as_u64().unwrap();
    assert!((26..=28).contains(&closure), "closure at {closure}");
    let opendbm = json["indicator_details"]["opendbm_blinks"].as_array().unwrap();
    assert_eq!(opendbm.len(), 1, "{opendbm:?}");
    assert!(json["indicators"]["blink_rate_per_min"].is_null(), "2.4 s is too short for a rate");
    assert!(json["indicators"]["asymmetry_mouth_mean"].as_f64().is_some());
    let ear_col = col(&head, "ear_mean");
    let csv_ear: f64 = body[27][ear_col].parse().unwrap();
    // The CSV landmarks are rounded to 0.01 px: the EAR from them agrees to about 1e-3.
    assert!((csv_ear - mine[27]).abs() < 1e-3, "CSV ear_mean {csv_ear} vs landmarks {}", mine[27]);
    for f in ["ear_blinks.svg", "ear_blinks.png", "activity.svg", "asymmetry.png"] {
        assert!(out.path().join(f).exists(), "{f}");
    }
}

#[test]
fn face_then_no_face_is_exactly_what_success_says() {
    let (Some(v), true) = (videos(), has_ffmpeg()) else { return };
    let out = tempfile::tempdir().unwrap();
    let o = analyze(&v.join("face_noface.mov"), out.path(), &["--five-points"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (head, body) = rows(out.path());
    assert_eq!(body.len(), 169, "one row per frame (one face at most)");
    let r = reference();
    let pts = r["videos"]["face_noface.mov"]["pts_time"].as_array().unwrap();
    for (i, (row, t)) in body.iter().zip(pts).enumerate() {
        assert_eq!(row[col(&head, "frame")], i.to_string());
        let want = if i < 72 { "1" } else { "0" };
        assert_eq!(row[col(&head, "success")], want, "frame {i}");
        if i >= 72 {
            assert!(row[col(&head, "x_0")].is_empty(), "no landmarks carried over into frame {i}");
        }
        // A variable-frame-rate file: the real presentation times, not i / fps.
        let ts: f64 = row[col(&head, "timestamp")].parse().unwrap();
        assert!((ts - t.as_f64().unwrap()).abs() < 1e-4, "frame {i}: {ts} vs ffprobe {t}");
    }
    let last: f64 = body[168][col(&head, "timestamp")].parse().unwrap();
    assert!((last - 168.0 / 30.0).abs() > 0.5, "the file is VFR: {last}");
}

#[test]
fn memory_does_not_grow_with_the_length_of_the_recording() {
    let (Some(v), true) = (videos(), has_ffmpeg()) else { return };
    let d = tempfile::tempdir().unwrap();
    // 576 frames (the spotter's 300-frame baseline window full) against four times as many.
    let loop_of = |n: &str, input: &Path, name: &str| -> PathBuf {
        let out = d.path().join(name);
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-stream_loop", n, "-i"])
            .arg(input)
            .args(["-an", "-c", "copy"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        out
    };
    let short = loop_of("7", &v.join("single_face.mp4"), "loop8.mp4");
    let long = loop_of("3", &short, "loop32.mp4");
    let peak = |input: &Path| -> (f64, u64) {
        let o = mex()
            .env("MEX_PEAK_RSS", "1")
            .arg("analyze")
            .arg(input)
            .args(["--five-points", "--quiet", "--out"])
            .arg(d.path().join("o"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        let l = err.lines().find(|l| l.contains("peak RSS")).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.path().join("o/analysis.json")).unwrap())
                .unwrap();
        (l.split_whitespace().rev().nth(1).unwrap().parse().unwrap(), json["n_frames"].as_u64().unwrap())
    };
    let (short_kb, n_short) = peak(&short);
    let (long_kb, n_long) = peak(&long);
    assert_eq!((n_short, n_long), (576, 2304));
    assert!(long_kb <= 1.2 * short_kb, "peak RSS {long_kb} kB for 2304 frames vs {short_kb} kB for 576");
}

#[test]
fn containers_and_codecs_decode() {
    let (Some(v), true) = (videos(), has_ffmpeg()) else { return };
    let d = tempfile::tempdir().unwrap();
    for (name, codec) in
        [("t.avi", "mjpeg"), ("t.mkv", "libx264"), ("t.webm", "libvpx"), ("t.mov", "libx264")]
    {
        let f = d.path().join(name);
        let src = v.join("single_face.mp4");
        assert!(make(&["-i", src.to_str().unwrap(), "-frames:v", "12", "-an", "-c:v", codec], &f), "{name}");
        let out = d.path().join(format!("o-{name}"));
        let o = analyze(&f, &out, &["--five-points", "--quiet"]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let (head, body) = rows(&out);
        assert_eq!(body.len(), 12, "{name}");
        assert!(body.iter().all(|r| r[col(&head, "success")] == "1"), "{name}");
    }
}

#[test]
fn openface_csv_with_comma_space_separators_reads() {
    let Some(v) = videos() else { return };
    let (names, rows) = mex::analyze::read_openface_csv(&v.join("OpenFace_Test.csv")).unwrap();
    assert_eq!(rows.len(), 100);
    // OpenFace 2.0's column set (no face_id yet), names trimmed of the separator's space.
    assert_eq!(&names[..4], ["frame", "timestamp", "confidence", "success"]);
    assert!(names.contains(&"x_67".to_string()) && names.contains(&"AU45_c".to_string()));
    assert!(rows.iter().all(|r| r.len() == names.len()));
    assert_eq!(rows[0][0], 1.0);
}

fn make(args: &[&str], out: &Path) -> bool {
    Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).arg(out).status().is_ok_and(|s| s.success())
}

fn assert_exit_2(o: &Output, needle: &str, out: &Path) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!out.join("frames.csv").exists() && !out.join("analysis.json").exists(), "no partial output");
    if out.is_dir() {
        let left: Vec<_> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

#[test]
fn bad_videos_exit_2_with_one_line_and_no_output() {
    let (Some(v), true) = (videos(), has_ffmpeg()) else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    // zero bytes
    let zero = d.path().join("zero.mp4");
    std::fs::write(&zero, b"").unwrap();
    assert_exit_2(&analyze(&zero, &out, &[]), "empty", &out);
    // not a video at all
    let junk = d.path().join("junk.mp4");
    std::fs::write(&junk, vec![0x5au8; 4096]).unwrap();
    assert_exit_2(&analyze(&junk, &out, &[]), "junk.mp4", &out);
    // truncated: the first half of an MP4 whose index (moov) is at the end
    let bytes = std::fs::read(v.join("single_face.mp4")).unwrap();
    let cut = d.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_exit_2(&analyze(&cut, &out, &["--five-points"]), "cut.mp4", &out);
    // an unsupported codec: an MJPEG AVI whose codec tags name no known decoder
    let avi = d.path().join("t.avi");
    assert!(make(
        &["-i", v.join("single_face.mp4").to_str().unwrap(), "-frames:v", "4", "-an", "-c:v", "mjpeg"],
        &avi
    ));
    let patched: Vec<u8> = {
        let b = std::fs::read(&avi).unwrap();
        let mut o = b.clone();
        for i in 0..b.len().saturating_sub(4) {
            if &b[i..i + 4] == b"MJPG" {
                o[i..i + 4].copy_from_slice(b"ZZZZ");
            }
        }
        o
    };
    let unknown = d.path().join("unknown.avi");
    std::fs::write(&unknown, patched).unwrap();
    assert_exit_2(&analyze(&unknown, &out, &["--five-points"]), "not found", &out);
    // audio only
    let audio = d.path().join("audio.m4a");
    assert!(make(&["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"], &audio));
    assert_exit_2(&analyze(&audio, &out, &[]), "no video stream", &out);
    // a resolution change mid-stream (two raw H.264 streams back to back: a new SPS)
    let (a, b, ab) = (d.path().join("a.h264"), d.path().join("b.h264"), d.path().join("ab.h264"));
    assert!(make(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-frames:v",
            "5",
            "-c:v",
            "libx264",
            "-f",
            "h264"
        ],
        &a
    ));
    assert!(make(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=200x150:rate=10",
            "-frames:v",
            "5",
            "-c:v",
            "libx264",
            "-f",
            "h264"
        ],
        &b
    ));
    let mut both = std::fs::read(&a).unwrap();
    both.extend(std::fs::read(&b).unwrap());
    std::fs::write(&ab, both).unwrap();
    assert_exit_2(&analyze(&ab, &out, &["--five-points"]), "size changes mid-stream", &out);
    // an output folder that cannot be written: a file where the folder should be
    let file_out = d.path().join("a_file");
    std::fs::write(&file_out, b"x").unwrap();
    let o = analyze(&v.join("single_face.mp4"), &file_out, &["--five-points"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim_end().lines().count(), 1);
    // FFmpeg missing: a clear line saying what to install
    let o = mex()
        .env("MEX_FFMPEG", "/nonexistent/ffmpeg")
        .env("MEX_FFPROBE", "/nonexistent/ffprobe")
        .arg("analyze")
        .arg(v.join("single_face.mp4"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_exit_2(&o, "install FFmpeg", &out);
}

#[test]
fn two_faces_keep_their_ids_and_max_faces_limits_them() {
    let (Some(v), true) = (videos(), has_ffmpeg()) else { return };
    let d = tempfile::tempdir().unwrap();
    // The video beside its mirror image: two faces, left and right.
    let two = d.path().join("two.mp4");
    let src = v.join("single_face.mp4");
    assert!(make(
        &[
            "-i",
            src.to_str().unwrap(),
            "-filter_complex",
            "[0:v]split[a][b];[b]hflip[c];[a][c]hstack",
            "-an",
            "-c:v",
            "libx264"
        ],
        &two
    ));
    let out = d.path().join("o");
    let o = analyze(&two, &out, &["--five-points", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (head, body) = rows(&out);
    assert_eq!(body.len(), 144, "two rows per frame");
    for row in &body {
        let id: usize = row[col(&head, "face_id")].parse().unwrap();
        let x0: f64 = row[col(&head, "face_x0")].parse().unwrap();
        assert_eq!(row[col(&head, "success")], "1");
        assert_eq!(id, usize::from(x0 >= 640.0), "face {id} at x {x0}: identities must not swap");
    }
    let out1 = d.path().join("o1");
    let o = analyze(&two, &out1, &["--five-points", "--quiet", "--max-faces", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(&out1).1.len(), 72);
    let o = analyze(&two, &d.path().join("o2"), &["--max-faces", "0"]);
    assert_eq!(o.status.code(), Some(2));
}
