//! `mex data index|check|stats` through the binary on the loader fixtures (spreadsheets in the
//! published formats) with frame folders built here; bad input exits 2 with one line naming what
//! to fix; a dataset kind in an experiment file runs through `mex eval`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap()
}

fn fx(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mex-data/tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status 2 and exactly one line on stderr, which contains every `needles`.
fn fails_with(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stdout: {}\nstderr: {e}", stdout(o));
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    for n in needles {
        assert!(e.contains(n), "`{n}` not in: {e}");
    }
}

fn frame(p: &Path, k: u32) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::GrayImage::from_fn(48, 48, |x, y| image::Luma([((x * 7 + y * 3 + k) % 256) as u8]))
        .save(p)
        .unwrap();
}

/// (subject folder, clip, onset, apex or middle, offset) of the CASME II fixture's 9 clips.
const CASME2: [(&str, &str, u32, u32, u32); 9] = [
    ("sub01", "EP02_01f", 46, 59, 86),
    ("sub01", "EP03_02", 131, 139, 161),
    ("sub02", "EP01_11f", 46, 68, 91),
    ("sub04", "EP12_01f", 10, 20, 40),
    ("sub05", "EP12_03f", 101, 120, 140),
    ("sub17", "EP15_03f", 30, 41, 60),
    ("sub24", "EP02_07", 12, 30, 52),
    ("sub26", "EP18_51", 80, 95, 110),
    ("sub26", "EP18_52", 15, 22, 48),
];

/// Every frame of every clip (raw release naming); returns the number of frames.
fn casme2_frames(root: &Path) -> usize {
    let mut n = 0;
    for (sub, clip, on, _, off) in CASME2 {
        for f in on..=off {
            frame(&root.join(sub).join(clip).join(format!("img{f}.jpg")), f);
            n += 1;
        }
    }
    n
}

#[test]
fn index_check_stats_on_casme2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("CASME2_RAW_selected");
    let n_frames = casme2_frames(&root);
    let m = dir.path().join("out/casme2.json");
    let o = mex(&[
        "data",
        "index",
        "casme2",
        "--coding",
        &fx("casme2_coding.xlsx"),
        "--frames",
        s(&root),
        "--out",
        s(&m),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("CASME II: 9 samples, 7 subjects, 0 left out"), "{out}");
    assert!(out.contains("2 samples have no class in casme2_5"), "{out}");
    assert!(out.contains("clip length, frames") && out.contains("34 [31, 46]"), "{out}");
    let ds = mex_data::Dataset::read_json(&m).unwrap();
    assert_eq!(ds.len(), 9);
    // No temporary file is left beside the manifest.
    assert_eq!(std::fs::read_dir(m.parent().unwrap()).unwrap().count(), 1);

    let o = mex(&["data", "check", s(&m)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("9 samples, {n_frames} frames, all present and decodable")),
        "{}",
        stdout(&o)
    );
    // Progress goes to stderr only on a terminal: nothing here.
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    let o = mex(&["data", "stats", s(&m), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["total"]["n_samples"], 9);
    assert_eq!(v["total"]["n_subjects"], 7);
    assert_eq!(v["total"]["classes"][1], serde_json::json!(["disgust", 2]));
    assert_eq!(v["total"]["fps"]["200"], 9);
    let o = mex(&["data", "stats", s(&m)]);
    assert!(stdout(&o).contains("subjects") && stdout(&o).contains("repression"), "{}", stdout(&o));

    // A missing frame and a corrupt one: listed on stdout, exit 2 with one summary line.
    std::fs::remove_file(root.join("sub02/EP01_11f/img68.jpg")).unwrap();
    std::fs::write(root.join("sub01/EP02_01f/img60.jpg"), b"garbage").unwrap();
    let o = mex(&["data", "check", s(&m), "--quiet"]);
    fails_with(&o, &["1 missing and 1 undecodable", "2 of 9 samples"]);
    let out = stdout(&o);
    assert!(out.contains("img68.jpg (casme2/sub02/EP01_11f): missing"), "{out}");
    assert!(out.contains("img60.jpg (casme2/sub01/EP02_01f): does not decode"), "{out}");
    // Key frames only: the corrupt frame 60 is not one of them.
    let o = mex(&["data", "check", s(&m), "--key-frames"]);
    fails_with(&o, &["1 missing and 0 undecodable"]);
    // Re-indexing leaves the clip out and says why; --strict refuses, naming the row.
    let o = mex(&[
        "data",
        "index",
        "casme2",
        "--coding",
        &fx("casme2_coding.xlsx"),
        "--frames",
        s(&root),
        "--out",
        s(&m),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("left out, frame file missing: 1"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("casme2/sub02/EP01_11f (") && stdout(&o).contains(":row 4)"),
        "{}",
        stdout(&o)
    );
    let o = mex(&[
        "data",
        "index",
        "casme2",
        "--coding",
        &fx("casme2_coding.xlsx"),
        "--frames",
        s(&root),
        "--strict",
        "--out",
        s(&dir.path().join("strict.json")),
    ]);
    fails_with(&o, &["casme2_coding.xlsx", "row 4", "img68.jpg"]);
    assert!(!dir.path().join("strict.json").exists());
}

#[test]
fn bad_input_exits_2_with_one_line_naming_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("frames");
    casme2_frames(&root);
    let out = dir.path().join("m.json");
    let idx = |kind: &str, extra: &[&str]| {
        let mut a = vec!["data", "index", kind];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--out", s(&out)]);
        mex(&a)
    };
    // The coding file of another dataset.
    let o = idx("casme2", &["--coding", &fx("samm_codes.xlsx"), "--frames", s(&root)]);
    fails_with(&o, &["samm_codes.xlsx", "SAMM coding file", "index it as `samm`"]);
    let o = idx("samm-lv", &["--coding", &fx("samm_codes.xlsx"), "--frames", s(&root)]);
    fails_with(&o, &["SAMM coding file", "not SAMM Long Videos'"]);
    // A frames folder that does not match the coding file.
    let smic = dir.path().join("HS");
    frame(&smic.join("s1/micro/negative/s1_ne_01/reg_00001.bmp"), 1);
    let o = idx("casme2", &["--coding", &fx("casme2_coding.xlsx"), "--frames", s(&smic)]);
    fails_with(&o, &["none of the 9 clips", "frame folder missing", "sub01"]);
    // The wrong release.
    let o =
        idx("casme2", &["--coding", &fx("casme2_coding.xlsx"), "--frames", s(&root), "--release", "cropped"]);
    fails_with(&o, &["release raw"]);
    // An empty folder, a missing folder, a missing --frames.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = idx("casme2", &["--coding", &fx("casme2_coding.xlsx"), "--frames", s(&empty)]);
    fails_with(&o, &["empty folder", "sub01"]);
    let o = idx("smic", &["--frames", s(&dir.path().join("nope"))]);
    fails_with(&o, &["no such folder", "s1, s2"]);
    let o = idx("samm", &["--coding", &fx("samm_codes.xlsx")]);
    fails_with(&o, &["--frames"]);
    // SMIC with a CASME II folder; a bad cell of the coding file.
    let o = idx("smic", &["--frames", s(&root)]);
    fails_with(&o, &["no SMIC-HS clip"]);
    let o = idx("casme2", &["--coding", &fx("casme2_bad_onset.xlsx"), "--frames", s(&root)]);
    fails_with(&o, &["casme2_bad_onset.xlsx", "row 3", "OnsetFrame"]);
    // megc needs parts; check and stats need a manifest.
    fails_with(&idx("megc", &[]), &["--part"]);
    fails_with(&mex(&["data", "check", s(&empty)]), &[s(&empty)]);
    fails_with(&mex(&["data", "stats", &fx("casme2_coding.xlsx")]), &["casme2_coding.xlsx"]);
    assert!(!out.exists());
}

#[test]
fn megc_composite_from_indexed_parts_matches_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let casme2 = d.join("CASME2");
    casme2_frames(&casme2);
    // SAMM: onset, apex and offset frames of the 5 fixture clips.
    for (sub, clip, frames) in [
        ("006", "006_1_2", [5562, 5588, 5632]),
        ("006", "006_1_3", [3912, 3948, 3988]),
        ("007", "007_3_1", [2245, 2270, 2301]),
        ("009", "009_2_1", [1001, 1025, 1050]),
        ("011", "011_2_3", [400, 420, 460]),
    ] {
        for n in frames {
            frame(&d.join("SAMM").join(sub).join(clip).join(format!("{sub}_{n:05}.jpg")), n);
        }
    }
    for (clip, emo) in [("s1_ne_01", "negative"), ("s1_po_02", "positive"), ("s2_sur_01", "surprise")] {
        let sub = &clip[..2];
        for n in 1..=4 {
            frame(&d.join(format!("HS/{sub}/micro/{emo}/{clip}/reg_{n:05}.bmp")), n);
        }
    }
    let p = |n: &str| d.join(n).to_string_lossy().into_owned();
    let ok = |a: &[&str]| {
        let o = mex(a);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    ok(&[
        "data",
        "index",
        "casme2",
        "--coding",
        &fx("casme2_coding.xlsx"),
        "--frames",
        &p("CASME2"),
        "--out",
        &p("c.json"),
    ]);
    ok(&[
        "data",
        "index",
        "samm",
        "--coding",
        &fx("samm_codes.xlsx"),
        "--frames",
        &p("SAMM"),
        "--out",
        &p("s.json"),
    ]);
    let out = ok(&["data", "index", "smic", "--frames", &p("HS"), "--out", &p("h.json")]);
    assert!(out.contains("SMIC-HS: 3 samples, 2 subjects"), "{out}");
    std::fs::write(
        d.join("gt.csv"),
        "casme2,sub01,EP02_01f,1\r\ncasme2,sub02,EP01_11f,0\r\ncasme2,sub05,EP12_03f,0\r\ncasme2,sub17,EP15_03f,2\r\n\
         samm,6,006_1_2,0\r\nsamm,6,006_1_3,0\r\nsamm,7,007_3_1,1\r\nsamm,11,011_2_3,2\r\n\
         smic,s01,s01_ne_01,0\r\nsmic,s01,s01_po_02,1\r\nsmic,s02,s02_sur_01,2\r\n",
    )
    .unwrap();
    let (c, sm, h, gt) = (p("c.json"), p("s.json"), p("h.json"), p("gt.csv"));
    let (megc_out, meb_out) = (p("megc.json"), p("meb.json"));
    let megc = ["data", "index", "megc", "--part", &c, "--part", &sm, "--part", &h];
    let mut a = megc.to_vec();
    a.extend_from_slice(&["--gt", &gt, "--out", &megc_out]);
    let out = ok(&a);
    assert!(out.contains("the MEGC2019 composite: 11 samples, 9 subjects, 6 left out"), "{out}");
    assert!(out.contains("left out, MEGC2019 exclusion: 2"), "{out}");
    assert!(out.contains("left out, emotion outside negative/positive/surprise: 4"), "{out}");
    assert!(out.contains("identical (11 rows)"), "{out}");
    // MEB's rules drop sub05/EP12_03f, which the list holds.
    let mut a = megc.to_vec();
    a.extend_from_slice(&["--rules", "meb", "--gt", &gt, "--out", &meb_out]);
    let out = ok(&a);
    assert!(
        out.contains("1 of them not in the manifest") && out.contains("casme2,sub05,EP12_03f,0"),
        "{out}"
    );
    let st: serde_json::Value =
        serde_json::from_str(&ok(&["data", "stats", &p("megc.json"), "--json"])).unwrap();
    assert_eq!(st["datasets"].as_array().unwrap().len(), 3);
    assert_eq!(
        st["total"]["classes"],
        serde_json::json!([["negative", 5], ["positive", 3], ["surprise", 3]])
    );
    assert_eq!(st["datasets"][2]["fps"]["100"], 3);
}

fn experiment(data: &str, num_classes: usize) -> String {
    format!(
        "name = \"casme2-tiny\"\nseed = 3\n[dataset]\n{data}\n[evaluation]\nbootstrap = 20\npermutations = 20\n\
         [[variants]]\nname = \"dis\"\nflow = {{ method = \"dis\" }}\nmodel = {{ model = \"ststnet\", num_classes = {num_classes} }}\n\
         train = {{ lr = 0.005, epochs = 2, batch_size = 8 }}\n"
    )
}

#[test]
fn a_dataset_kind_in_an_experiment_runs_through_eval() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("CASME2_RAW_selected");
    casme2_frames(&root);
    let data = format!("kind = \"casme2\"\ncoding = {:?}\nframes = {:?}", fx("casme2_coding.xlsx"), s(&root));
    let cfg: PathBuf = dir.path().join("exp.toml");
    std::fs::write(&cfg, experiment(&data, 5)).unwrap();
    let out = dir.path().join("out");
    let o = mex(&["eval", s(&cfg), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // 7 labelled clips of 6 subjects (fear and sadness have no class in casme2_5).
    assert_eq!(report["n_samples"], 7);
    assert_eq!(report["n_folds"], 6);
    // A model with the wrong number of outputs is refused with the number to set.
    std::fs::write(&cfg, experiment(&data, 3)).unwrap();
    let o = mex(&["eval", s(&cfg), "--out", s(&dir.path().join("out2")), "--quiet"]);
    fails_with(&o, &["5 classes", "num_classes = 5"]);
    // A missing frame in an experiment is an error naming the coding row (no silent drop).
    std::fs::remove_file(root.join("sub17/EP15_03f/img30.jpg")).unwrap();
    std::fs::write(&cfg, experiment(&data, 5)).unwrap();
    let o = mex(&["eval", s(&cfg), "--out", s(&dir.path().join("out3")), "--quiet"]);
    fails_with(&o, &["row 8", "img30.jpg"]);
}

#[test]
fn the_casme2_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    // The cropped release: reg_imgN.jpg; onset, apex (middle when '/') and offset frames.
    let cropped = dir.path().join("Cropped");
    for (sub, clip, on, apex, off) in CASME2 {
        for n in [on, apex, off] {
            frame(&cropped.join(sub).join(clip).join(format!("reg_img{n}.jpg")), n);
        }
    }
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/experiments/casme2_ststnet.toml");
    let text = std::fs::read_to_string(example).unwrap();
    // Point it at the data; a short recipe and few resamples keep the test fast.
    let text = text
        .replace("/path/to/CASME2/CASME2-coding-20140508.xlsx", &fx("casme2_coding.xlsx"))
        .replace("/path/to/CASME2/Cropped", s(&cropped))
        .replace("epochs = 800", "epochs = 2")
        .replace("[protocol]", "[evaluation]\nbootstrap = 20\npermutations = 20\n\n[protocol]");
    assert!(text.contains(s(&cropped)) && text.contains("epochs = 2"), "{text}");
    let cfg = dir.path().join("casme2_ststnet.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("out");
    let o = mex(&["eval", s(&cfg), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["n_samples"], 7);
    assert_eq!(report["classes"].as_array().unwrap().len(), 5);
    assert!(out.join("report.md").is_file());
}
