//! `mex data index|check|stats` through the binary on the loader fixtures (spreadsheets in the
//! published formats) with frame folders built here; bad input exits 2 with one line naming what
//! to fix; a dataset kind in an experiment file runs through `mex eval`, and so does every example
//! experiment (examples/experiments) once pointed at frame trees built here from the fixtures.
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

/// (subject folder, clip, onset, apex or middle, offset) of the SAMM fixture's 5 clips
/// (samm_codes.xlsx rows 15-19, emotions Anger, Contempt, Happiness, Other, Surprise; 009_2_1 has
/// apex -1, so its middle frame 1001 + 49 / 2 = 1025).
const SAMM: [(&str, &str, u32, u32, u32); 5] = [
    ("006", "006_1_2", 5562, 5588, 5632),
    ("006", "006_1_3", 3912, 3948, 3988),
    ("007", "007_3_1", 2245, 2270, 2301),
    ("009", "009_2_1", 1001, 1025, 1050),
    ("011", "011_2_3", 400, 420, 460),
];

/// SAMM's published naming `006/006_1_2/006_05562.jpg`: onset, apex (or middle) and offset
/// frames of the 5 fixture clips.
fn samm_frames(root: &Path) {
    for (sub, clip, on, apex, off) in SAMM {
        for n in [on, apex, off] {
            frame(&root.join(sub).join(clip).join(format!("{sub}_{n:05}.jpg")), n);
        }
    }
}

/// CASME II's cropped release `subNN/EPxx_yy/reg_imgN.jpg`: onset, apex (middle when '/') and
/// offset frames of the 9 fixture clips.
fn casme2_cropped(root: &Path) {
    for (sub, clip, on, apex, off) in CASME2 {
        for n in [on, apex, off] {
            frame(&root.join(sub).join(clip).join(format!("reg_img{n}.jpg")), n);
        }
    }
}

/// A SMIC-HS tree built here (SMIC ships no coding file, so the tree is the data):
/// (subject folder, emotion folder, clip) of 6 clips of 3 subjects, 2 per class.
const SMIC: [(&str, &str, &str); 6] = [
    ("s1", "negative", "s1_ne_01"),
    ("s1", "positive", "s1_po_02"),
    ("s2", "surprise", "s2_sur_01"),
    ("s2", "negative", "s2_ne_03"),
    ("s3", "positive", "s3_po_01"),
    ("s3", "surprise", "s3_sur_02"),
];

/// `s1/micro/negative/s1_ne_01/reg_image046201.bmp`..: 5 consecutively numbered frames per clip
/// of [`SMIC`] (onset 46201, middle-frame apex 46203, offset 46205), plus a subject folder without
/// `micro` (as SMIC-HS has) and a `non_micro` clip, which the loader skips.
fn smic_frames(root: &Path) {
    for (sub, emo, clip) in SMIC {
        for n in 46201..=46205 {
            frame(&root.join(format!("{sub}/micro/{emo}/{clip}/reg_image{n:06}.bmp")), n);
        }
    }
    frame(&root.join("s1/non_micro/s1_no_01/reg_image000001.bmp"), 1);
    std::fs::create_dir_all(root.join("s7")).unwrap();
}

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
    samm_frames(&d.join("SAMM"));
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

/// `examples/experiments/<name>` with `edits` applied (each `(from, to)` must occur, so that a
/// changed example fails here rather than running something else), no placeholder path left.
fn example(name: &str, edits: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/experiments").join(name);
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` not in {name}");
        text = text.replace(from, to);
    }
    assert!(!text.contains("/path/to"), "a placeholder is left in {name}:\n{text}");
    text
}

/// Runs an example through `mex eval` once pointed at the data (`edits`), with a short recipe and
/// few resamples to keep the test fast; returns its report.json.
fn eval_example(dir: &Path, name: &str, edits: &[(&str, &str)]) -> serde_json::Value {
    let mut all = edits.to_vec();
    all.push(("epochs = 800", "epochs = 2"));
    all.push(("[protocol]", "[evaluation]\nbootstrap = 20\npermutations = 20\n\n[protocol]"));
    let cfg = dir.join(name);
    std::fs::write(&cfg, example(name, &all)).unwrap();
    let out = dir.join(format!("out-{name}"));
    let o = mex(&["eval", s(&cfg), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    assert!(out.join("report.md").is_file());
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// What follows from the data alone, whatever the (2-epoch) model predicts: the protocol, the
/// class names, the samples per class (the rows of the pooled confusion matrix, truth first), the
/// samples per subject, and one fold per subject (LOSO and the composite protocol alike).
fn check_report(
    r: &serde_json::Value,
    protocol: &str,
    classes: &[&str],
    per_class: &[u64],
    per_subject: &[(&str, u64)],
) {
    assert_eq!(r["protocol"], protocol);
    assert_eq!(r["classes"], serde_json::json!(classes));
    assert_eq!(r["n_samples"], per_class.iter().sum::<u64>());
    assert_eq!(r["n_folds"], per_subject.len());
    let v = &r["variants"][0];
    assert_eq!(v["n"], r["n_samples"]);
    let rows: Vec<u64> = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum())
        .collect();
    assert_eq!(rows, per_class, "truth per class");
    let mut subjects: Vec<(String, u64)> = v["per_subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["group"].as_str().unwrap().to_string(), g["n"].as_u64().unwrap()))
        .collect();
    subjects.sort();
    let want: Vec<(String, u64)> = per_subject.iter().map(|&(g, n)| (g.to_string(), n)).collect();
    assert_eq!(subjects, want, "samples per subject");
}

/// Synthetic frames hold no face for MTCNN to find: the examples that align with MTCNN are run
/// here with `align = { method = "none" }` (frames used as they are), the option the examples'
/// own comments give for face crops.
const NO_ALIGN: (&str, &str) =
    ("align = { method = \"mtcnn\", size = 128 }", "align = { method = \"none\" }");

#[test]
fn the_casme2_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let cropped = dir.path().join("Cropped");
    casme2_cropped(&cropped);
    let r = eval_example(
        dir.path(),
        "casme2_ststnet.toml",
        &[
            ("/path/to/CASME2/CASME2-coding-20140508.xlsx", &fx("casme2_coding.xlsx")),
            ("/path/to/CASME2/Cropped", s(&cropped)),
        ],
    );
    // casme2_coding.xlsx: 9 clips of 7 subjects; fear (sub26/EP18_52) and sadness (sub26/EP18_51)
    // have no class in casme2_5, which leaves 7 clips of 6 subjects: happiness 1 (sub01/EP02_01f),
    // disgust 2 (sub04, sub24), repression 2 (sub02, sub05), surprise 1 (sub17), others 1
    // (sub01/EP03_02).
    check_report(
        &r,
        "loso",
        &["happiness", "disgust", "repression", "surprise", "others"],
        &[1, 2, 2, 1, 1],
        &[
            ("casme2/sub01", 2),
            ("casme2/sub02", 1),
            ("casme2/sub04", 1),
            ("casme2/sub05", 1),
            ("casme2/sub17", 1),
            ("casme2/sub24", 1),
        ],
    );
}

#[test]
fn the_samm_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("SAMM");
    samm_frames(&root);
    let r = eval_example(
        dir.path(),
        "samm_ststnet.toml",
        &[
            ("/path/to/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx", &fx("samm_codes.xlsx")),
            ("/path/to/SAMM/SAMM", s(&root)),
            NO_ALIGN,
        ],
    );
    // samm_codes.xlsx: 5 clips of subjects 6, 6, 7, 9, 11, every emotion one of SAMM's 8 classes
    // (Anger, Contempt, Happiness, Other, Surprise: one each).
    check_report(
        &r,
        "loso",
        &["anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other"],
        &[1, 1, 0, 0, 1, 0, 1, 1],
        &[("samm/006", 2), ("samm/007", 1), ("samm/009", 1), ("samm/011", 1)],
    );
}

#[test]
fn the_smic_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("HS");
    smic_frames(&root);
    let r = eval_example(dir.path(), "smic_ststnet.toml", &[("/path/to/SMIC_all_cropped/HS", s(&root))]);
    // The tree: 6 micro clips of s1, s2, s3 (2 each), 2 per class; s7 (no micro folder) and
    // s1's non_micro clip are not samples.
    check_report(
        &r,
        "loso",
        &["negative", "positive", "surprise"],
        &[2, 2, 2],
        &[("smic/s01", 2), ("smic/s02", 2), ("smic/s03", 2)],
    );
}

#[test]
fn the_megc2019_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    casme2_cropped(&d.join("Cropped"));
    samm_frames(&d.join("SAMM"));
    smic_frames(&d.join("HS"));
    let r = eval_example(
        d,
        "megc2019_ststnet.toml",
        &[
            ("/path/to/CASME2/CASME2-coding-20140508.xlsx", &fx("casme2_coding.xlsx")),
            ("/path/to/CASME2/Cropped", s(&d.join("Cropped"))),
            ("/path/to/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx", &fx("samm_codes.xlsx")),
            ("/path/to/SAMM/SAMM", s(&d.join("SAMM"))),
            ("/path/to/SMIC_all_cropped/HS", s(&d.join("HS"))),
        ],
    );
    // CASME II: the official exclusions drop sub04/EP12_01f and sub24/EP02_07 (both disgust);
    // others (sub01/EP03_02), sadness and fear are outside the 3 classes; left: sub01 happiness
    // (positive), sub02 and sub05 repression (negative), sub17 surprise. SAMM: Anger and
    // Contempt (negative, subject 006), Happiness (positive, 007), Surprise (011); Other (009) is
    // left out. SMIC: the tree's 6 clips. 4 + 4 + 6 = 14 samples of 4 + 3 + 3 = 10 subjects;
    // negative 2 + 2 + 2, positive 1 + 1 + 2, surprise 1 + 1 + 2.
    check_report(
        &r,
        "composite",
        &["negative", "positive", "surprise"],
        &[6, 4, 4],
        &[
            ("casme2/sub01", 1),
            ("casme2/sub02", 1),
            ("casme2/sub05", 1),
            ("casme2/sub17", 1),
            ("samm/006", 2),
            ("samm/007", 1),
            ("samm/011", 1),
            ("smic/s01", 2),
            ("smic/s02", 2),
            ("smic/s03", 2),
        ],
    );
    let per_dataset: Vec<(&str, u64)> = r["variants"][0]["per_dataset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["group"].as_str().unwrap(), g["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(per_dataset, [("casme2", 4), ("samm", 4), ("smic", 6)]);
}

/// Two movements coded in one video (as in every real copy) are two samples with their own ids.
#[test]
fn the_casme_sq_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rawpic");
    // casme_sq_code_final.xlsx: s15 (subject 1 of sheet 0, folder code 15 in the subject sheet)
    // disgustingteeth (video code 0101) macro 557-572-608 and micro 1200-1210 (offset 0: the apex
    // ends it); s16 anger1 (numeric video code 401 -> 0401) micro 30-41-55. rawpic naming imgN.jpg.
    for (video, frames) in [
        ("s15/15_0101disgustingteeth", &[557, 572, 608, 1200, 1210][..]),
        ("s16/16_0401anger1", &[30, 41, 55][..]),
    ] {
        for &n in frames {
            frame(&root.join(video).join(format!("img{n}.jpg")), n);
        }
    }
    let r = eval_example(
        dir.path(),
        "casme_sq_micro_macro.toml",
        &[
            ("/path/to/CASME_sq/CAS(ME)^2code_final.xlsx", &fx("casme_sq_code_final.xlsx")),
            ("/path/to/CASME_sq/rawpic", s(&root)),
            NO_ALIGN,
        ],
    );
    // 3 movements: macro 1, micro 2; s15 2, s16 1.
    check_report(&r, "loso", &["macro", "micro"], &[1, 2], &[("casme_sq/s15", 2), ("casme_sq/s16", 1)]);
}

/// Two movements coded in one video (as in every real copy) are two samples with their own ids.
#[test]
fn the_samm_lv_example_runs_once_pointed_at_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("SAMM_longvideos");
    // samm_lv.xlsx: 006_1_1 macro 566-648-743 and 006_1_2 micro 3000-3030-3080 (video 006_1);
    // 007_5_1 macro 100-(apex -1: middle 140)-180 (video 007_5). The frame numbering is inferred
    // from the files (one prefix, consecutive numbers), so each video folder holds every frame
    // from its first annotated onset to its last offset: `006_1_00566.jpg`...; the frames mex eval
    // reads (onset, apex or middle, offset) are drawn, the others are copies of one frame.
    for (video, first, last, keys) in [
        ("006_1", 566, 3080, &[566, 648, 743, 3000, 3030, 3080][..]),
        ("007_5", 100, 180, &[100, 140, 180][..]),
    ] {
        let dir = root.join(video);
        let file = |n: u32| dir.join(format!("{video}_{n:05}.jpg"));
        for &n in keys {
            frame(&file(n), n);
        }
        let filler = std::fs::read(file(first)).unwrap();
        for n in (first..=last).filter(|n| !keys.contains(n)) {
            std::fs::write(file(n), &filler).unwrap();
        }
    }
    let r = eval_example(
        dir.path(),
        "samm_lv_micro_macro.toml",
        &[
            ("/path/to/SAMMLV/SAMM_LongVideos_V2_Release.xlsx", &fx("samm_lv.xlsx")),
            ("/path/to/SAMMLV/SAMM_longvideos", s(&root)),
            NO_ALIGN,
        ],
    );
    // 3 movements: macro 2, micro 1; subject 006 2, 007 1.
    check_report(&r, "loso", &["macro", "micro"], &[2, 1], &[("samm_lv/006", 2), ("samm_lv/007", 1)]);
}

/// The spotting example with its `[dataset]` replaced as its comment says for real data
/// (`kind = "long_video"`, CAS(ME)² and then SAMM Long Videos). Spotting aligns each video with
/// MTCNN on its first frame and has no no-alignment option, so synthetic frames cannot stand in:
/// each video folder holds the 72 frames of MEX_TEST_DATA/videos/single_face.mp4 (a real face),
/// decoded by FFmpeg at half size (320x180, for speed) and numbered from `start`. The truth counts come from the coding files alone.
#[test]
fn the_spotting_example_runs_on_long_video_trees() {
    let Some(data) = std::env::var_os("MEX_TEST_DATA").map(PathBuf::from) else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    if !Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: ffmpeg not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frames = |folder: &Path, pattern: &str, start: u32| {
        std::fs::create_dir_all(folder).unwrap();
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(data.join("videos/single_face.mp4"))
            .args(["-vf", "scale=320:-2", "-q:v", "2", "-start_number", &start.to_string()])
            .arg(folder.join(pattern))
            .status()
            .unwrap();
        assert!(st.success());
    };
    let text = example("spotting.toml", &[("bootstrap = 1000", "bootstrap = 20")]);
    // The commented real-data [dataset] block, uncommented, in place of the synthetic one.
    let from = text.find("# Real data: replace [dataset] by, e.g.,\n").unwrap();
    let block: String = text[from..]
        .lines()
        .skip(1)
        .map_while(|l| l.strip_prefix("#   "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(block.starts_with("[dataset]\nkind = \"long_video\"\n"), "{block}");
    let (a, b) = (text.find("\n[dataset]\n").unwrap(), text.find("\n[evaluation]\n").unwrap());
    let real = format!("{}\n{block}{}", &text[..a], &text[b..]);

    // CAS(ME)²: casme_sq_code_final.xlsx codes s15/15_0101disgustingteeth macro 557-608 and micro
    // 1200-1210, s16/16_0401anger1 micro 30-55: 2 videos, 2 micro, 1 macro.
    let rawpic = dir.path().join("rawpic");
    frames(&rawpic.join("s15/15_0101disgustingteeth"), "img%d.jpg", 540);
    frames(&rawpic.join("s16/16_0401anger1"), "img%d.jpg", 20);
    let casme_sq = real
        .replace("/data/CASME_sq/CAS(ME)^2code_final.xlsx", &fx("casme_sq_code_final.xlsx"))
        .replace("/data/CASME_sq/rawpic", s(&rawpic));
    // SAMM-LV: samm_lv.xlsx codes 006_1 macro 566-743 and micro 3000-3080, 007_5 macro 100-180:
    // 2 videos, 1 micro, 2 macro.
    let lv = dir.path().join("SAMM_longvideos");
    frames(&lv.join("006_1"), "006_1_%05d.jpg", 540);
    frames(&lv.join("007_5"), "007_5_%05d.jpg", 90);
    let samm_lv = casme_sq
        .replace("dataset = \"casme_sq\"", "dataset = \"samm_lv\"")
        .replace(&fx("casme_sq_code_final.xlsx"), &fx("samm_lv.xlsx"))
        .replace(s(&rawpic), s(&lv));
    assert!(samm_lv.contains("dataset = \"samm_lv\"") && samm_lv.contains(s(&lv)), "{samm_lv}");
    for (name, toml, group, n_micro, n_macro) in
        [("casme_sq", casme_sq, "casme_sq", 2, 1), ("samm_lv", samm_lv, "samm_lv", 1, 2)]
    {
        assert!(!toml.contains("/data/") && !toml.contains("synthetic_long"), "{toml}");
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let o = mex(&["eval", s(&cfg), "--out", s(&out), "--quiet"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(r["n_videos"], 2, "{name}");
        assert_eq!((r["n_micro"].as_u64(), r["n_macro"].as_u64()), (Some(n_micro), Some(n_macro)), "{name}");
        let variants = r["variants"].as_array().unwrap();
        assert_eq!(variants.len(), 3, "{name}: global, mdmd, regional");
        for v in variants {
            // Every truth interval is either matched or missed, whatever the spotter finds.
            for (kind, n) in [("micro", n_micro), ("macro_", n_macro)] {
                let c = &v[kind]["counts"];
                assert_eq!(c["tp"].as_u64().unwrap() + c["fn"].as_u64().unwrap(), n, "{name} {kind}: {v}");
            }
            assert_eq!(v["per_group"][0]["group"], group);
            assert_eq!(v["per_group"][0]["videos"], 2);
        }
    }
}
