#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The MEGC2019 composite builder, run through the real loaders on fixture metadata shaped like
//! the published spreadsheets and folders (the official rows plus the extra rows the real files
//! hold: other emotions, the excluded samples, subjects without usable samples).

use mex_data::loaders::*;
use mex_data::megc::{build_megc2019, build_megc2019_with, megc_rows, read_megc_gt, MegcRow, MegcRules};
use mex_data::{loso, Dataset};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    casme2: PathBuf,
    samm: PathBuf,
    smic: PathBuf,
}

/// Writes CASME II (CSV export of the coding sheet, blank header cells, '/' apexes), SAMM (CSV
/// with the text preamble) and a SMIC-HS folder tree holding `rows` plus the extra rows.
fn write_fixture(rows: &[MegcRow]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let casme2 = dir.path().join("CASME2-coding-20140508.csv");
    let samm = dir.path().join("SAMM_Micro_FACS_Codes_v2.csv");
    let smic = dir.path().join("SMIC/HS");

    let mut c =
        String::from("Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\n");
    let mut neg_i = 0usize;
    let mut casme_subjects = BTreeSet::new();
    for (i, r) in rows.iter().filter(|r| r.dataset == "casme2").enumerate() {
        let n: u32 = r.subject.trim_start_matches("sub").parse().unwrap();
        casme_subjects.insert(n);
        let em = match r.label {
            0 => {
                neg_i += 1;
                if neg_i.is_multiple_of(2) {
                    "disgust"
                } else {
                    "repression"
                }
            }
            1 => "happiness",
            _ => "surprise",
        };
        let apex = if i % 7 == 3 { "/".to_string() } else { "60".to_string() };
        writeln!(c, "{n},{},,40,{apex},90,,4+7,{em}", r.video).unwrap();
    }
    // Extra rows of the real sheet: other emotions on every subject and the three exclusions.
    for (k, n) in casme_subjects.iter().enumerate() {
        writeln!(c, "{n},EP99_{k:02}o,,10,20,30,,L10,others").unwrap();
        if k < 7 {
            writeln!(c, "{n},EP98_{k:02}s,,10,20,30,,4+15,sadness").unwrap();
        }
        if k < 2 {
            writeln!(c, "{n},EP97_{k:02}f,,10,/,30,,4,fear").unwrap();
        }
    }
    writeln!(c, "4,EP12_01f,,10,20,30,,4,repression").unwrap();
    writeln!(c, "24,EP02_07,,10,20,30,,12,happiness").unwrap();
    std::fs::write(&casme2, c).unwrap();

    let mut s = String::from("SAMM Micro-Movement FACS codes\n\nVersion 2\n,\n");
    for _ in 0..9 {
        s.push('\n');
    }
    s.push_str("Subject,Filename,Inducement Code,Onset Frame,Apex Frame,Offset Frame,Duration,Micro,Action Units,Estimated Emotion,Objective Classes,Notes\n");
    let negs = ["Anger", "Contempt", "Disgust", "Fear", "Sadness"];
    let mut samm_subjects = BTreeSet::new();
    for (i, r) in rows.iter().filter(|r| r.dataset == "samm").enumerate() {
        let n: u32 = r.subject.parse().unwrap();
        samm_subjects.insert(n);
        let em = match r.label {
            0 => negs[i % negs.len()],
            1 => "Happiness",
            _ => "Surprise",
        };
        writeln!(s, "{n},{},1,100,120,150,51,Micro - 1/2,4,{em},1,", r.video).unwrap();
    }
    for (k, n) in samm_subjects.iter().enumerate().take(22) {
        writeln!(s, "{n},{n:03}_9_{k},2,100,-1,150,51,Micro - 1/2,4,Other,7,").unwrap();
    }
    // Four subjects whose only movements are 'Other': not in the composite.
    for n in [8, 25, 27, 29] {
        writeln!(s, "{n},{n:03}_1_1,2,100,120,150,51,Micro - 1/2,4,Other,7,").unwrap();
    }
    std::fs::write(&samm, s).unwrap();

    for r in rows.iter().filter(|r| r.dataset == "smic") {
        let n: u32 = r.subject.trim_start_matches('s').parse().unwrap();
        let emo = ["negative", "positive", "surprise"][r.label];
        // Published folders use s1 (not s01) in the subject and clip names.
        let clip = r.video.replacen(&r.subject, &format!("s{n}"), 1);
        let d = smic.join(format!("s{n}/micro/{emo}/{clip}"));
        std::fs::create_dir_all(&d).unwrap();
        for f in 1..=3 {
            std::fs::write(d.join(format!("reg_{f:05}.bmp")), b"x").unwrap();
        }
    }
    for n in [7, 10, 16, 17] {
        std::fs::create_dir_all(smic.join(format!("s{n}"))).unwrap();
    }
    Fixture { _dir: dir, casme2, samm, smic }
}

fn build(f: &Fixture) -> Dataset {
    let c = load_casme2(&Casme2Config::new(&f.casme2)).unwrap();
    let s = load_samm(&SammConfig::new(&f.samm)).unwrap();
    let m = load_smic(&SmicConfig::new(&f.smic)).unwrap();
    build_megc2019(&[&m, &c, &s])
}

fn check_counts(ds: &Dataset) {
    // MEGC2019 Recognition Challenge document (Facial-Micro-ExpressionGC/MEGC2019).
    assert_eq!(ds.len(), 442);
    assert_eq!(ds.class_counts(), vec![250, 109, 83]);
    let by = ds.class_counts_by_dataset();
    assert_eq!(by["smic"], vec![70, 51, 43]);
    assert_eq!(by["casme2"], vec![88, 32, 25]);
    assert_eq!(by["samm"], vec![92, 26, 15]);
    let subjects = ds.subjects();
    assert_eq!(subjects.len(), 68);
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for (d, _) in &subjects {
        *per.entry(d.as_str()).or_default() += 1;
    }
    assert_eq!(per["smic"], 16);
    assert_eq!(per["casme2"], 24);
    assert_eq!(per["samm"], 28);
    assert_eq!(loso(ds).len(), 68);
}

/// A list shaped like the official one from the published counts alone (no data needed).
fn counts_shaped_rows() -> Vec<MegcRow> {
    let mut rows = Vec::new();
    let spec: [(&str, [usize; 3], Vec<String>); 3] = [
        (
            "casme2",
            [88, 32, 25],
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24, 25, 26]
                .iter()
                .map(|n| format!("sub{n:02}"))
                .collect(),
        ),
        (
            "samm",
            [92, 26, 15],
            (6..=37).filter(|n| ![8, 25, 27, 29].contains(n)).map(|n| format!("{n:03}")).collect(),
        ),
        (
            "smic",
            [70, 51, 43],
            [1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20]
                .iter()
                .map(|n| format!("s{n:02}"))
                .collect(),
        ),
    ];
    for (ds, counts, subjects) in spec {
        let mut k = 0usize;
        for (label, &n) in counts.iter().enumerate() {
            for i in 0..n {
                let subj = subjects[k % subjects.len()].clone();
                k += 1;
                let video = match ds {
                    "casme2" => format!("EP{:02}_{:02}f", label + 1, i),
                    "samm" => format!("{subj}_{}_{}", label + 1, i),
                    _ => format!("{subj}_{}_{:02}", ["ne", "po", "sur"][label], i),
                };
                rows.push(MegcRow { dataset: ds.into(), subject: subj, video, label });
            }
        }
    }
    rows
}

fn assert_same_rows(built: &Dataset, expected: &[MegcRow]) {
    let mut a = megc_rows(built);
    let mut b = expected.to_vec();
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}

#[test]
fn builder_reproduces_a_counts_shaped_list_through_the_loaders() {
    let rows = counts_shaped_rows();
    let f = write_fixture(&rows);
    let ds = build(&f);
    check_counts(&ds);
    assert_same_rows(&ds, &rows);
    assert!(ds.samples.iter().all(|s| !mex_data::megc::is_excluded(s)));
    // Sample order: CASME II, SAMM, SMIC.
    assert_eq!(ds.samples[0].dataset, "casme2");
    assert_eq!(ds.samples[441].dataset, "smic");
}

#[test]
fn builder_reproduces_the_official_442_list() {
    let Ok(data) = std::env::var("MEX_TEST_DATA") else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    let gt = read_megc_gt(&Path::new(&data).join("megc2019/combined_3class_gt.csv")).unwrap();
    assert_eq!(gt.len(), 442);
    let f = write_fixture(&gt);
    let ds = build(&f);
    check_counts(&ds);
    assert_same_rows(&ds, &gt);
    // MEB's variant drops sub05/EP12_03f, which the official list holds.
    let c = load_casme2(&Casme2Config::new(&f.casme2)).unwrap();
    let meb = build_megc2019_with(&[&c], &MegcRules::meb());
    assert_eq!(meb.len(), 144);
    assert!(gt.iter().any(|r| r.subject == "sub05" && r.video == "EP12_03f"));
}
