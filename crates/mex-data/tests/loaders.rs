#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Loaders against fixture files in the published formats (written by
//! scripts/data_make_fixtures.py), frame folders built here, and the broken variants.

use mex_data::loaders::*;
use mex_data::{DiskFrames, Error, FrameSource};
use std::path::{Path, PathBuf};

fn fx(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn touch(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"x").unwrap();
}

#[test]
fn casme2_spreadsheet_with_its_quirks() {
    let ds = load_casme2(&Casme2Config::new(fx("casme2_coding.xlsx"))).unwrap();
    // 9 data rows; the blank row is skipped.
    assert_eq!(ds.len(), 9);
    let s = &ds.samples[0];
    assert_eq!((s.subject.as_str(), s.clip.as_str()), ("sub01", "EP02_01f"));
    assert_eq!((s.onset, s.apex, s.offset), (Some(46), Some(59), Some(86)));
    assert_eq!(s.emotion, "happiness");
    assert_eq!(s.label, Some(0)); // casme2_5: happiness is class 0
    assert!(s.provenance.ends_with(":row 2"), "{}", s.provenance);
    // '/' apex -> None; the middle frame is available as a fallback.
    let r = &ds.samples[2];
    assert_eq!((r.subject.as_str(), r.apex), ("sub02", None));
    assert_eq!(r.apex_or_middle(), Some(68));
    assert_eq!(r.au_numbers(), vec![12, 25]);
    // The sample after the blank row keeps its true spreadsheet row number.
    assert!(ds.samples[3].provenance.ends_with(":row 6"), "{}", ds.samples[3].provenance);
    // Fear and sadness have no class in the 5-class set.
    assert_eq!(ds.samples.iter().filter(|s| s.label.is_none()).count(), 2);
}

#[test]
fn casme2_frames_raw_and_cropped_and_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("CASME2_RAW_selected");
    let cropped = dir.path().join("Cropped");
    let ds0 = load_casme2(&Casme2Config::new(fx("casme2_coding.xlsx"))).unwrap();
    for s in &ds0.samples {
        for n in [s.onset.unwrap(), s.offset.unwrap()] {
            touch(&root.join(&s.subject).join(&s.clip).join(format!("img{n}.jpg")));
            touch(&cropped.join(&s.subject).join(&s.clip).join(format!("reg_img{n}.jpg")));
        }
    }
    let mut cfg = Casme2Config::new(fx("casme2_coding.xlsx"));
    cfg.frames_root = Some(root.clone());
    let ds = load_casme2(&cfg).unwrap();
    assert_eq!(ds.samples[0].frame_path(46).unwrap(), root.join("sub01/EP02_01f/img46.jpg"));
    cfg.frames_root = Some(cropped.clone());
    cfg.release = Casme2Release::Cropped;
    let ds = load_casme2(&cfg).unwrap();
    assert_eq!(ds.samples[0].frame_path(59).unwrap(), cropped.join("sub01/EP02_01f/reg_img59.jpg"));
    // A missing frame file is an error naming the spreadsheet and row.
    std::fs::remove_file(cropped.join("sub02/EP01_11f/reg_img91.jpg")).unwrap();
    match load_casme2(&cfg).unwrap_err() {
        Error::BadFramePath { path, row, frame_path } => {
            assert_eq!(path, fx("casme2_coding.xlsx"));
            assert_eq!(row, 4);
            assert!(frame_path.ends_with("sub02/EP01_11f/reg_img91.jpg"));
        }
        e => panic!("unexpected {e}"),
    }
    // The manifest round-trips through CSV and JSON.
    let m = dir.path().join("casme2.csv");
    ds.write_csv(&m).unwrap();
    assert_eq!(mex_data::Dataset::read_csv(&m, "casme2", ds.classes.clone()).unwrap(), ds);
    let j = dir.path().join("casme2.json");
    ds.write_json(&j).unwrap();
    assert_eq!(mex_data::Dataset::read_json(&j).unwrap(), ds);
    // A frame that exists but is not an image is a typed image error naming the file.
    match DiskFrames.frame(&ds.samples[0], 46).unwrap_err() {
        Error::Image { path, .. } => assert!(path.ends_with("reg_img46.jpg")),
        e => panic!("unexpected {e}"),
    }
    assert!(matches!(DiskFrames.frame(&ds.samples[0], 47).unwrap_err(), Error::BadFramePath { .. }));
    // Without verification the metadata still loads.
    cfg.verify_frames = false;
    assert_eq!(load_casme2(&cfg).unwrap().len(), 9);
}

#[test]
fn casme2_broken_files_give_typed_errors() {
    match load_casme2(&Casme2Config::new(fx("casme2_missing_apex_column.xlsx"))).unwrap_err() {
        Error::MissingColumn { path, column, header_row } => {
            assert!(path.ends_with("casme2_missing_apex_column.xlsx"));
            assert_eq!(column, "ApexFrame");
            assert_eq!(header_row, 1);
        }
        e => panic!("unexpected {e}"),
    }
    match load_casme2(&Casme2Config::new(fx("casme2_bad_onset.xlsx"))).unwrap_err() {
        Error::BadCell { row, column, value, .. } => {
            assert_eq!((row, column.as_str(), value.as_str()), (3, "OnsetFrame", "abc"));
        }
        e => panic!("unexpected {e}"),
    }
    let e = load_casme2(&Casme2Config::new(fx("nope.xlsx"))).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    // The message names the file, row and column.
    let msg = load_casme2(&Casme2Config::new(fx("casme2_bad_onset.xlsx"))).unwrap_err().to_string();
    assert!(
        msg.contains("casme2_bad_onset.xlsx") && msg.contains("row 3") && msg.contains("OnsetFrame"),
        "{msg}"
    );
}

#[test]
fn the_same_table_as_csv_loads_identically() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("coding.csv");
    // pandas-style export: blank header cells, '/' apex.
    std::fs::write(
        &p,
        "Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\n\
         1,EP02_01f,,46,59,86,,12,happiness\n2,EP01_11f,,46,/,91,,R12+25,repression\n",
    )
    .unwrap();
    let ds = load_casme2(&Casme2Config::new(&p)).unwrap();
    let x = load_casme2(&Casme2Config::new(fx("casme2_coding.xlsx"))).unwrap();
    assert_eq!(ds.samples[1].apex, None);
    for (a, b) in ds.samples.iter().zip([&x.samples[0], &x.samples[2]]) {
        assert_eq!(
            (&a.subject, &a.clip, a.onset, a.apex, a.offset, &a.emotion),
            (&b.subject, &b.clip, b.onset, b.apex, b.offset, &b.emotion)
        );
    }
}

#[test]
fn samm_header_is_found_after_the_preamble() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SammConfig::new(fx("samm_codes.xlsx"));
    let ds = load_samm(&cfg).unwrap();
    assert_eq!(ds.len(), 5);
    let s = &ds.samples[0];
    assert_eq!((s.subject.as_str(), s.clip.as_str()), ("006", "006_1_2"));
    assert_eq!((s.onset, s.apex, s.offset), (Some(5562), Some(5588), Some(5632)));
    assert_eq!(s.emotion, "Anger");
    assert_eq!(s.kind.as_deref(), Some("micro - 1/2"));
    assert!(s.provenance.ends_with(":row 15"), "{}", s.provenance);
    assert_eq!(ds.samples[3].apex, None); // -1
    assert_eq!(ds.samples[3].emotion, "Other");
    // Frames: 006/006_1_2/006_05562.jpg.
    let root = dir.path().join("SAMM");
    for s in &ds.samples {
        for n in [s.onset.unwrap(), s.offset.unwrap()] {
            touch(&root.join(&s.subject).join(&s.clip).join(format!("{}_{n:05}.jpg", s.subject)));
        }
    }
    cfg.frames_root = Some(root.clone());
    let ds = load_samm(&cfg).unwrap();
    assert_eq!(ds.samples[0].frame_path(5562).unwrap(), root.join("006/006_1_2/006_05562.jpg"));
    std::fs::remove_dir_all(root.join("011/011_2_3")).unwrap();
    assert!(matches!(load_samm(&cfg).unwrap_err(), Error::BadFramePath { row: 19, .. }));
}

#[test]
fn samm_without_the_header_row_is_an_error() {
    // The CASME II sheet has no "Onset Frame" header.
    let e = load_samm(&SammConfig::new(fx("casme_sq_code_final.xlsx"))).unwrap_err();
    assert!(matches!(e, Error::NoHeader { .. }), "{e}");
}

fn write_gray_png(p: &Path, v: u8) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(8, 6, image::Luma([v])).save(p).unwrap();
}

#[test]
fn smic_folder_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("HS");
    for k in 1..=5u8 {
        write_gray_png(&root.join(format!("s1/micro/negative/s1_ne_01/reg_{:05}.png", 10 + k)), 10 * k);
    }
    for k in 1..=4u8 {
        write_gray_png(&root.join(format!("s1/micro/positive/s1_po_01/image{}.png", 8 + k)), k);
    }
    // Frames without numbers: indexed 0.. in natural order.
    for n in ["a", "b", "c"] {
        write_gray_png(&root.join(format!("s12/micro/surprise/s12_sur_02/{n}.png")), 1);
    }
    std::fs::create_dir_all(root.join("s7")).unwrap(); // no micro folder: skipped
    let ds = load_smic(&SmicConfig::new(&root)).unwrap();
    assert_eq!(ds.len(), 3);
    let ne = &ds.samples[0];
    assert_eq!((ne.subject.as_str(), ne.clip.as_str(), ne.label), ("s01", "s01_ne_01", Some(0)));
    assert_eq!((ne.onset, ne.apex, ne.offset), (Some(11), Some(13), Some(15)));
    assert_eq!(ne.frame_pattern.as_deref(), Some("reg_{n:05}.png"));
    let po = &ds.samples[1];
    assert_eq!((po.onset, po.apex, po.offset, po.label), (Some(9), Some(10), Some(12), Some(1)));
    let su = &ds.samples[2];
    assert_eq!(
        (su.subject.as_str(), su.onset, su.offset, su.frame_pattern.clone()),
        ("s12", Some(0), Some(2), None)
    );
    // Frames load through DiskFrames: onset (value 10*1) and apex (value 10*3).
    let (on, ap) = DiskFrames.onset_apex(ne).unwrap();
    assert!((on.get_pixel(0, 0)[0] - 10.0).abs() < 1e-3 && (ap.get_pixel(0, 0)[0] - 30.0).abs() < 1e-3);
    assert_eq!(DiskFrames.clip_frames(su).unwrap().len(), 3);
    // Configurable apex.
    let mut cfg = SmicConfig::new(&root);
    cfg.apex = ApexRule::Unset;
    assert_eq!(load_smic(&cfg).unwrap().samples[0].apex, None);
    cfg.apex = ApexRule::Fraction(1.0);
    assert_eq!(load_smic(&cfg).unwrap().samples[0].apex, Some(15));
    // An empty clip folder is a typed error naming the folder.
    std::fs::create_dir_all(root.join("s2/micro/surprise/s2_sur_01")).unwrap();
    match load_smic(&SmicConfig::new(&root)).unwrap_err() {
        Error::EmptyFolder { path, .. } => assert!(path.ends_with("s2/micro/surprise/s2_sur_01")),
        e => panic!("unexpected {e}"),
    }
    // A folder that is not an emotion.
    std::fs::remove_dir_all(root.join("s2")).unwrap();
    std::fs::create_dir_all(root.join("s3/micro/happy/x")).unwrap();
    assert!(matches!(load_smic(&SmicConfig::new(&root)).unwrap_err(), Error::BadName { .. }));
    // A root without clips.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(load_smic(&SmicConfig::new(&empty)).unwrap_err(), Error::EmptyFolder { .. }));
}

#[test]
fn casme_sq_code_final_without_header() {
    let dir = tempfile::tempdir().unwrap();
    let ds = load_casme_sq(&CasmeSqConfig::new(fx("casme_sq_code_final.xlsx"))).unwrap();
    assert_eq!(ds.len(), 3);
    let a = &ds.samples[0];
    assert_eq!((a.subject.as_str(), a.clip.as_str()), ("s15", "15_0101disgustingteeth"));
    assert_eq!(
        (a.onset, a.apex, a.offset, a.kind.as_deref()),
        (Some(557), Some(572), Some(608), Some("macro"))
    );
    // offset 0 -> apex is the end.
    let b = &ds.samples[1];
    assert_eq!((b.onset, b.offset, b.kind.as_deref()), (Some(1200), Some(1210), Some("micro")));
    // A numeric video code 401 is the folder code 0401.
    assert_eq!((ds.samples[2].subject.as_str(), ds.samples[2].clip.as_str()), ("s16", "16_0401anger1"));
    let videos = long_video::by_video(&ds);
    assert_eq!(videos.len(), 2);
    // With frames: rawpic/s15/15_0101disgustingteeth/img557.jpg.
    let root = dir.path().join("rawpic");
    std::fs::create_dir_all(root.join("s15/15_0101disgustingteeth")).unwrap();
    let mut cfg = CasmeSqConfig::new(fx("casme_sq_code_final.xlsx"));
    cfg.frames_root = Some(root.clone());
    match load_casme_sq(&cfg).unwrap_err() {
        Error::BadFramePath { row, frame_path, .. } => {
            assert_eq!(row, 3);
            assert!(frame_path.ends_with("s16/16_0401anger1"));
        }
        e => panic!("unexpected {e}"),
    }
    std::fs::create_dir_all(root.join("s16/16_0401anger1")).unwrap();
    let ds = load_casme_sq(&cfg).unwrap();
    assert_eq!(ds.samples[0].frame_path(557).unwrap(), root.join("s15/15_0101disgustingteeth/img557.jpg"));
}

#[test]
fn samm_long_videos() {
    let ds = load_samm_lv(&SammLvConfig::new(fx("samm_lv.xlsx"))).unwrap();
    assert_eq!(ds.len(), 3);
    let s = &ds.samples[0];
    assert_eq!((s.subject.as_str(), s.clip.as_str(), s.kind.as_deref()), ("006", "006_1", Some("macro")));
    assert_eq!((s.onset, s.apex, s.offset), (Some(566), Some(648), Some(743)));
    assert!(s.provenance.contains(":row 12"), "{}", s.provenance);
    assert_eq!(ds.samples[1].kind.as_deref(), Some("micro"));
    assert_eq!(ds.samples[2].apex, None);
    assert_eq!(long_video::by_video(&ds).len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SammLvConfig::new(fx("samm_lv.xlsx"));
    cfg.frames_root = Some(dir.path().to_path_buf());
    assert!(matches!(load_samm_lv(&cfg).unwrap_err(), Error::BadFramePath { row: 12, .. }));
}

#[test]
fn ststnet_layout() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for (p, _) in [
        ("sub01/u_test/1/sub01_EP02_01f .png", 0),
        ("sub01/u_test/0/sub01_EP19_05f .png", 0),
        ("s01/u_test/0/s01_s01_ne_01 .png", 0),
        ("006/u_test/2/006_006_3_5.png", 0),
    ] {
        touch(&r.join(p));
    }
    let ds = load_ststnet_inputs(r).unwrap();
    assert_eq!(ds.len(), 4);
    let rows: Vec<_> = ds
        .samples
        .iter()
        .map(|s| (s.dataset.as_str(), s.subject.as_str(), s.clip.as_str(), s.label.unwrap()))
        .collect();
    assert!(rows.contains(&("casme2", "sub01", "EP02_01f", 1)));
    assert!(rows.contains(&("smic", "s01", "s01_ne_01", 0)));
    assert!(rows.contains(&("samm", "006", "006_3_5", 2)));
    std::fs::create_dir_all(r.join("sub02")).unwrap();
    assert!(matches!(load_ststnet_inputs(r).unwrap_err(), Error::EmptyFolder { .. }));
    std::fs::create_dir_all(r.join("sub02/u_test")).unwrap();
    std::fs::create_dir_all(r.join("bogus")).unwrap();
    assert!(matches!(load_ststnet_inputs(r).unwrap_err(), Error::BadName { .. }));
}

#[test]
fn ststnet_release_matches_the_official_list() {
    let Ok(data) = std::env::var("MEX_TEST_DATA") else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    let data = PathBuf::from(data);
    let ds = load_ststnet_inputs(&data.join("ststnet-composite/inputs")).unwrap();
    let gt = mex_data::megc::read_megc_gt(&data.join("megc2019/combined_3class_gt.csv")).unwrap();
    let mut a = mex_data::megc::megc_rows(&ds);
    let mut b = gt.clone();
    a.sort();
    b.sort();
    assert_eq!(a.len(), 442);
    assert_eq!(a, b);
    assert_eq!(ds.subjects().len(), 68);
}
