//! `mex study` run as a binary. Expected values: pandas / SciPy / pingouin / statsmodels /
//! scikit-learn on the fixture table (tests/fixtures/study/expected.json, written by
//! scripts/metrics_study_fixtures.py); bad inputs must exit 2 with one line naming the line and
//! column, and write nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study").join(name)
}

fn mex(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn close(a: &Value, b: &Value, what: &str) {
    let (x, y) = (a.as_f64().unwrap_or_else(|| panic!("{what}: {a}")), b.as_f64().unwrap());
    assert!((x - y).abs() < 1e-6, "{what}: mex {x} vs reference {y}");
}

fn close_ci(a: &Value, b: &Value, what: &str) {
    for k in ["estimate", "ci_low", "ci_high"] {
        close(&a[k], &b[k], &format!("{what}.{k}"));
    }
}

#[test]
fn study_report_matches_reference_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let table = fixture("table.csv");
    let (code, stdout, err) =
        mex(&["study", table.to_str().unwrap(), "--positive", "patient", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(stdout.contains("classifier: AUC"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["positive_group"], "patient");
    assert_eq!(report["negative_group"], "control");
    assert_eq!(report["n_subjects"]["positive"], 8);
    assert_eq!(report["n_recordings"]["negative"], 16);
    let inds = report["indicators"].as_array().unwrap();
    assert_eq!(inds.len(), 2);
    for (got, exp) in inds.iter().zip(expected["indicators"].as_array().unwrap()) {
        let name = exp["name"].as_str().unwrap();
        assert_eq!(got["name"], exp["name"]);
        assert_eq!(got["n_per_group"]["positive"], 8);
        close_ci(&got["hedges_g"], &exp["hedges_g"], &format!("{name} hedges_g"));
        close(&got["mann_whitney_p"], &exp["mann_whitney_p"], &format!("{name} MW p"));
        close(&got["p_adjusted"], &exp["p_adjusted"], &format!("{name} BH"));
        close(&got["auc"]["estimate"], &exp["auc_estimate"], &format!("{name} AUC"));
        assert!(got["auc"]["ci_low"].as_f64().unwrap() <= got["auc"]["estimate"].as_f64().unwrap());
        close_ci(&got["spearman"], &exp["spearman"], &format!("{name} spearman"));
        close_ci(&got["icc2_1"], &exp["icc2_1"], &format!("{name} icc2_1"));
        close_ci(&got["icc3_1"], &exp["icc3_1"], &format!("{name} icc3_1"));
    }
    let c = &report["classifier"];
    for k in ["sensitivity", "specificity", "threshold"] {
        assert!(c[k].as_f64().is_some(), "classifier.{k}: {c}");
    }
    assert!(c["auc"]["ci_low"].as_f64().unwrap() <= c["auc"]["ci_high"].as_f64().unwrap());
    // subgroups by sex and site
    let subs = report["subgroups"].as_array().unwrap();
    assert!(subs.iter().any(|s| s["variable"] == "sex" && s["level"] == "F"));
    assert!(subs.iter().any(|s| s["variable"] == "site" && s["level"] == "B"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("not a diagnostic device") && md.contains("no face images"));
    for f in ["plots/forest.svg", "plots/forest.png", "plots/roc.png", "plots/calibration.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // the same seed gives the same report
    let out2 = dir.path().join("out2");
    let (code, _, err) =
        mex(&["study", table.to_str().unwrap(), "--positive", "patient", "--out", out2.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let a = std::fs::read_to_string(out.join("report.json")).unwrap();
    let b = std::fs::read_to_string(out2.join("report.json")).unwrap();
    assert_eq!(a, b);
}

/// Runs `mex study` on `csv` (written to a temp folder) and expects exit 2, one stderr line
/// containing every `needle`, and no output folder.
fn expect_bad(csv: &str, toml: Option<&str>, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    std::fs::write(&table, csv).unwrap();
    let out = dir.path().join("out");
    let input = match toml {
        Some(t) => {
            let p = dir.path().join("s.toml");
            std::fs::write(&p, t).unwrap();
            p
        }
        None => table.clone(),
    };
    let (code, _, err) =
        mex(&["study", input.to_str().unwrap(), "--positive", "patient", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert!(!out.exists(), "nothing may be written on bad input");
}

const GOOD_HEAD: &str = "subject,group,x\n";

fn rows(extra: &str) -> String {
    format!("{GOOD_HEAD}p1,patient,1\np2,patient,2\nc1,control,3\nc2,control,4\n{extra}")
}

#[test]
fn bad_tables_exit_2_naming_line_and_column() {
    // a subject in both groups (line 6 is the 5th data row)
    expect_bad(&rows("p1,control,5\n"), None, &["line 6", "column `group`", "p1"]);
    // fewer than two subjects in a group
    expect_bad(
        &format!("{GOOD_HEAD}p1,patient,1\nc1,control,3\nc2,control,4\n"),
        None,
        &["`patient`", "at least 2"],
    );
    // a non-numeric column that is not a named one
    expect_bad(
        "subject,group,x,note\np1,patient,1,ok\np2,patient,2,ok\nc1,control,3,ok\nc2,control,4,ok\n",
        None,
        &["line 2", "column `note`", "not a number"],
    );
    // NaN indicator
    expect_bad(
        &format!("{GOOD_HEAD}p1,patient,1\np2,patient,NaN\nc1,control,3\nc2,control,4\n"),
        None,
        &["line 3", "column `x`", "finite"],
    );
    // duplicate header column
    expect_bad("subject,group,x,x\np1,patient,1,1\n", None, &["line 1", "column `x`", "duplicate"]);
    // missing recording
    expect_bad(
        "recording,subject,group\nnope.json,p1,patient\nnope2.json,p2,patient\nnope3.json,c1,control\nnope4.json,c2,control\n",
        None,
        &["line 2", "column `recording`", "does not exist"],
    );
    // unknown key in the study file
    expect_bad(&rows(""), Some("table = \"t.csv\"\npositive = \"patient\"\nbogus = 1\n"), &["bogus"]);
    // a renamed subject column that is absent
    expect_bad(
        &rows(""),
        Some("table = \"t.csv\"\npositive = \"patient\"\n[columns]\nsubject = \"participant\"\n"),
        &["participant", "missing"],
    );
}

#[test]
fn absurd_numbers_in_a_study_file_exit_2_naming_the_key() {
    let head = "table = \"t.csv\"\npositive = \"patient\"\n";
    let cuts: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    for (body, needles) in [
        ("bootstrap_resamples = 1000000000\n".to_string(), vec!["bootstrap_resamples", "at most 100000"]),
        ("bootstrap_resamples = 100001\n".to_string(), vec!["bootstrap_resamples", "100001"]),
        ("n_folds = 9223372036854775807\n".to_string(), vec!["n_folds", "at most 10000"]),
        (format!("age_bands = [{}]\n", cuts.join(", ")), vec!["age_bands", "101 cut points"]),
        ("[analyze]\nfps = 1e9\n".to_string(), vec!["analyze.fps", "10000"]),
    ] {
        expect_bad(&rows(""), Some(&format!("{head}{body}")), &needles);
    }
    // the largest accepted values pass validation
    let ok = format!("{head}bootstrap_resamples = 100000\nn_folds = 10000\n[analyze]\nfps = 10000\n");
    assert!(mex::study::StudyConfig::from_toml_str(&ok, Path::new("s.toml")).is_ok());
}

#[test]
fn a_recording_without_a_face_exits_2_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let gray = dir.path().join("gray");
    std::fs::create_dir(&gray).unwrap();
    for i in 0..3 {
        image::GrayImage::from_pixel(64, 64, image::Luma([120 + i as u8]))
            .save(gray.join(format!("f{i}.png")))
            .unwrap();
    }
    let mut csv = String::from("recording,subject,group\n");
    for (i, (s, g)) in
        [("p1", "patient"), ("p2", "patient"), ("c1", "control"), ("c2", "control")].iter().enumerate()
    {
        write_analysis(&dir.path().join(format!("r{i}.json")), i as f64, None);
        csv.push_str(&format!("r{i}.json,{s},{g}\n"));
    }
    csv.push_str("gray,c3,control\n");
    let t = dir.path().join("t.csv");
    std::fs::write(&t, csv).unwrap();
    let out = dir.path().join("out");
    let (code, _, err) =
        mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in ["line 6", "column `recording`", "gray", "no face found in any of the 3 frames"] {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert!(!out.exists(), "nothing may be written: {:?}", std::fs::read_dir(&out).map(|d| d.count()));
}

fn write_analysis(path: &Path, x: f64, y: Option<f64>) {
    let y = y.map_or("null".to_string(), |v| v.to_string());
    std::fs::write(path, format!("{{\"indicators\": {{\"x\": {x}, \"y\": {y}}}, \"n_frames\": 10, \"fps\": 30.0, \"duration_s\": 0.33}}")).unwrap();
}

#[test]
fn analysis_json_recordings_jobs_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("recording,subject,group,session\n");
    for (i, (s, g)) in [
        ("p1", "patient"),
        ("p2", "patient"),
        ("p3", "patient"),
        ("c1", "control"),
        ("c2", "control"),
        ("c3", "control"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("r{i}.json");
        let x = if *g == "patient" { 10.0 + i as f64 } else { i as f64 };
        write_analysis(&dir.path().join(&name), x, if i == 0 { None } else { Some(i as f64 * 0.5) });
        csv.push_str(&format!("{name},{s},{g},1\n"));
    }
    // a frames folder: media analysed into the cache by a job (not run here)
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::write(frames.join("img001.txt"), "placeholder").unwrap();
    let with_media = format!("{csv}frames,c4,control,1\n");
    std::fs::write(dir.path().join("t.csv"), &csv).unwrap();
    std::fs::write(dir.path().join("m.csv"), &with_media).unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let t = dir.path().join("t.csv");
    // job 2 of an analysis-JSON recording: nothing to analyse
    let (code, stdout, err) =
        mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o, "--recording", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("recording 2 of 6"), "{stdout}");
    let (code, _, err) =
        mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o, "--recording", "6"]);
    assert_eq!(code, 2);
    assert!(err.contains("0..5"), "{err}");
    let (code, _, err) = mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o, "--merge"]);
    assert_eq!(code, 0, "{err}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let inds = report["indicators"].as_array().unwrap();
    assert_eq!(inds.iter().map(|i| i["name"].as_str().unwrap()).collect::<Vec<_>>(), ["x", "y"]);
    // x separates the groups perfectly: AUC 1; y is null for one recording (counted missing)
    assert_eq!(inds[0]["auc"]["estimate"], 1.0);
    assert_eq!(inds[1]["n_missing_recordings"], 1);
    assert_eq!(inds[1]["n_per_group"]["positive"], 2);
    // one session only: no ICC
    assert!(inds[0]["icc2_1"].is_null());
    // a media recording not analysed yet: --merge names it and the job to run
    let m = dir.path().join("m.csv");
    let out2 = dir.path().join("out2");
    let (code, _, err) = mex(&[
        "study",
        m.to_str().unwrap(),
        "--positive",
        "patient",
        "--out",
        out2.to_str().unwrap(),
        "--merge",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("run it with --recording 6"), "{err}");
    assert!(!out2.join("report.json").exists());
}

/// Media recordings through `mex study`: four real videos (MEX_TEST_DATA/videos/single_face.mp4
/// re-encoded at four brightness levels, so four contents) analysed into the content-keyed cache,
/// one as a cluster job, the rest by the full run; a copy of one file under another name is found
/// in the cache by its content and not analysed again. Needs FFmpeg and Debian's 68-point model
/// (the indicators need 68 points); skipped otherwise.
#[test]
fn video_recordings_are_analysed_once_into_the_content_keyed_cache() {
    let Some(data) = std::env::var_os("MEX_TEST_DATA").map(PathBuf::from) else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    let ffmpeg = Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success());
    let dlib = Path::new("/usr/share/dlib/shape_predictor_68_face_landmarks.dat").is_file();
    if !ffmpeg || !dlib {
        eprintln!("skipped: needs ffmpeg and /usr/share/dlib's 68-point model (.ci/run installs both)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("recording,subject,group\n");
    for (i, (s, g)) in
        [("p1", "patient"), ("p2", "patient"), ("c1", "control"), ("c2", "control")].iter().enumerate()
    {
        let name = format!("v{i}.mp4");
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(data.join("videos/single_face.mp4"))
            .args([
                "-an",
                "-vf",
                &format!("eq=brightness={:.2}", 0.03 * i as f64),
                "-c:v",
                "libx264",
                "-crf",
                "18",
            ])
            .arg(dir.path().join(&name))
            .status()
            .unwrap();
        assert!(st.success());
        csv.push_str(&format!("{name},{s},{g}\n"));
    }
    let t = dir.path().join("t.csv");
    std::fs::write(&t, &csv).unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let cached = || std::fs::read_dir(out.join("cache")).map_or(0, |d| d.count());
    // one cluster job
    let (code, stdout, err) =
        mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o, "--recording", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("recording 1 of 4") && stdout.contains("analysed"), "{stdout}");
    let after_job = cached();
    assert!(after_job >= 1, "nothing in the cache");
    let (code, stdout, _) =
        mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o, "--recording", "1"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already available"), "{stdout}");
    assert_eq!(cached(), after_job);
    // the whole study: the three others analysed, the report written
    let (code, _, err) = mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o]);
    assert_eq!(code, 0, "{err}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["n_recordings"]["positive"], 2, "{report}");
    assert_eq!(report["n_recordings"]["negative"], 2, "{report}");
    let names: Vec<&str> =
        report["indicators"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"ear_mean"), "{names:?}");
    let full = cached();
    assert_eq!(full, 4 * after_job, "one cache entry set per recording");
    // a copy under another name, for a new subject: found by content, not analysed again
    std::fs::copy(dir.path().join("v0.mp4"), dir.path().join("copy.mp4")).unwrap();
    std::fs::write(&t, format!("{csv}copy.mp4,c3,control\n")).unwrap();
    let (code, stdout, err) =
        mex(&["study", t.to_str().unwrap(), "--positive", "patient", "--out", o, "--recording", "4"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("already available"), "{stdout}");
    assert_eq!(cached(), full);
}
