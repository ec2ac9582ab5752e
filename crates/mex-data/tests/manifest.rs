#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! `manifest::{index, check, stats}` on the loader fixtures (spreadsheets in the published
//! formats, written by scripts/data_make_fixtures.py) with frame folders built here, and on bad
//! input: a coding file of another dataset, a frames folder that does not match, an empty folder.

use mex_core::ClassSet;
use mex_data::loaders::{load_casme2, Casme2Config};
use mex_data::manifest::*;
use mex_data::megc::MegcRules;
use mex_data::{Dataset, Error, Sample};
use std::path::{Path, PathBuf};

fn fx(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn jpeg(p: &Path, v: u8) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(8, 8, image::Luma([v])).save(p).unwrap();
}

/// Every frame onset..=offset of every clip of the CASME II fixture, raw release naming.
/// Returns the number of frames written.
fn casme2_frames(root: &Path) -> usize {
    let ds = load_casme2(&Casme2Config::new(fx("casme2_coding.xlsx"))).unwrap();
    let mut n = 0;
    for s in &ds.samples {
        for f in s.onset.unwrap()..=s.offset.unwrap() {
            jpeg(&root.join(&s.subject).join(&s.clip).join(format!("img{f}.jpg")), (f % 200) as u8);
            n += 1;
        }
    }
    n
}

fn files(coding: Option<PathBuf>, frames: &Path) -> DataFiles {
    DataFiles { coding, frames: frames.to_path_buf(), release: None, demographics: None }
}

fn param_reason(e: Error) -> (String, String) {
    match e {
        Error::InvalidParam { name, reason, .. } => (name.to_string(), reason),
        other => panic!("expected InvalidParam, got {other}"),
    }
}

#[test]
fn coding_files_are_recognised() {
    assert_eq!(sniff_coding(&fx("casme2_coding.xlsx")), Some(DatasetKind::Casme2));
    assert_eq!(sniff_coding(&fx("casme2_bad_onset.xlsx")), Some(DatasetKind::Casme2));
    assert_eq!(sniff_coding(&fx("samm_codes.xlsx")), Some(DatasetKind::Samm));
    assert_eq!(sniff_coding(&fx("samm_lv.xlsx")), Some(DatasetKind::SammLv));
    assert_eq!(sniff_coding(&fx("casme_sq_code_final.xlsx")), Some(DatasetKind::CasmeSq));
    assert_eq!(sniff_coding(&fx("nope.xlsx")), None);
    for k in DatasetKind::ALL {
        assert_eq!(k.cli_name().parse::<DatasetKind>().unwrap(), k);
        assert_eq!(k.name().parse::<DatasetKind>().unwrap(), k);
    }
    assert!("casme3".parse::<DatasetKind>().is_err());
}

#[test]
fn casme2_index_drops_clips_without_frames_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("CASME2_RAW_selected");
    let n_frames = casme2_frames(&root);
    let f = files(Some(fx("casme2_coding.xlsx")), &root);
    let r = index(DatasetKind::Casme2, &f, &IndexOptions::default()).unwrap();
    assert_eq!((r.dataset.len(), r.dropped.len()), (9, 0));
    assert_eq!(r.dataset.samples[0].frame_path(46).unwrap(), root.join("sub01/EP02_01f/img46.jpg"));
    // fear and sadness have no class in casme2_5: kept, and said so.
    assert_eq!(r.notes.len(), 1);
    assert!(r.notes[0].contains("2 samples") && r.notes[0].contains("fear 1"), "{}", r.notes[0]);

    // Every frame exists and decodes.
    let c = check(&r.dataset, &CheckOptions::default(), &|_, _| {});
    assert!(c.is_ok(), "{c:?}");
    assert_eq!((c.n_samples, c.n_frames), (9, n_frames));
    // Key frames: onset, apex (middle frame for the '/' apex), offset: 3 per clip.
    let k = check(&r.dataset, &CheckOptions { frames: FrameSelection::Key, decode: true }, &|_, _| {});
    assert_eq!(k.n_frames, 27);

    // A missing apex frame drops that clip only, naming the coding row and the file.
    std::fs::remove_file(root.join("sub17/EP15_03f/img41.jpg")).unwrap();
    let r2 = index(DatasetKind::Casme2, &f, &IndexOptions::default()).unwrap();
    assert_eq!(r2.dataset.len(), 8);
    assert_eq!(r2.dropped.len(), 1);
    let d = &r2.dropped[0];
    assert_eq!((d.sample.as_str(), d.reason.as_str()), ("casme2/sub17/EP15_03f", "frame file missing"));
    assert!(d.provenance.ends_with(":row 8") && d.detail.ends_with("img41.jpg"), "{d:?}");
    // ... and check on the earlier manifest reports the file.
    let c = check(&r.dataset, &CheckOptions::default(), &|_, _| {});
    assert_eq!((c.missing.len(), c.undecodable.len(), c.n_bad_samples), (1, 0, 1));
    assert!(c.missing[0].path.ends_with("sub17/EP15_03f/img41.jpg"));
    assert_eq!(c.missing[0].sample, "casme2/sub17/EP15_03f");
    // Strict: the error names the coding file, row and frame.
    let strict = IndexOptions { missing_frames: MissingFrames::Error };
    match index(DatasetKind::Casme2, &f, &strict).unwrap_err() {
        Error::BadFramePath { path, row, frame_path } => {
            assert_eq!((path, row), (fx("casme2_coding.xlsx"), 8));
            assert!(frame_path.ends_with("img41.jpg"));
        }
        e => panic!("unexpected {e}"),
    }
    // A frame that is not an image is reported as undecodable; a whole folder gone, as missing.
    std::fs::write(root.join("sub01/EP02_01f/img50.jpg"), b"not a jpeg").unwrap();
    std::fs::remove_dir_all(root.join("sub26/EP18_52")).unwrap();
    let c = check(&r.dataset, &CheckOptions::default(), &|_, _| {});
    assert_eq!((c.missing.len(), c.undecodable.len(), c.n_bad_samples), (2, 1, 3));
    assert!(c.undecodable[0].path.ends_with("img50.jpg") && c.undecodable[0].problem.contains("decode"));
    let exist_only =
        check(&r.dataset, &CheckOptions { frames: FrameSelection::All, decode: false }, &|_, _| {});
    assert_eq!((exist_only.missing.len(), exist_only.undecodable.len()), (2, 0));
    // Progress reaches the total.
    let last = std::sync::atomic::AtomicUsize::new(0);
    let c = check(&r.dataset, &CheckOptions::default(), &|d, t| {
        assert!(d <= t);
        last.fetch_max(d, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(last.into_inner(), c.n_frames);
}

#[test]
fn casme2_release_mismatch_says_which_release_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    casme2_frames(&root);
    let mut f = files(Some(fx("casme2_coding.xlsx")), &root);
    f.release = Some(Release::Cropped);
    let (name, reason) = param_reason(index(DatasetKind::Casme2, &f, &IndexOptions::default()).unwrap_err());
    assert_eq!(name, "frames");
    assert!(reason.contains("none of the 9 clips") && reason.contains("release raw"), "{reason}");
}

#[test]
fn bad_input_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("frames");
    casme2_frames(&root);
    let opts = IndexOptions::default();
    // The coding file of another dataset.
    let (name, reason) = param_reason(
        index(DatasetKind::Casme2, &files(Some(fx("samm_codes.xlsx")), &root), &opts).unwrap_err(),
    );
    assert_eq!(name, "coding");
    assert!(reason.contains("SAMM coding file") && reason.contains("`samm`"), "{reason}");
    let (_, reason) =
        param_reason(index(DatasetKind::Samm, &files(Some(fx("samm_lv.xlsx")), &root), &opts).unwrap_err());
    assert!(reason.contains("SAMM Long Videos") && reason.contains("`samm-lv`"), "{reason}");
    let (_, reason) = param_reason(
        index(DatasetKind::SammLv, &files(Some(fx("casme2_coding.xlsx")), &root), &opts).unwrap_err(),
    );
    assert!(reason.contains("CASME II") && reason.contains("`casme2`"), "{reason}");
    let (_, reason) = param_reason(
        index(DatasetKind::Casme2, &files(Some(fx("casme_sq_code_final.xlsx")), &root), &opts).unwrap_err(),
    );
    assert!(reason.contains("CAS(ME)^2") && reason.contains("`casme-sq`"), "{reason}");
    // A frames folder that does not match the coding file (SAMM's layout for CASME II's file).
    let samm_like = dir.path().join("samm");
    jpeg(&samm_like.join("006/006_1_2/006_05562.jpg"), 1);
    let (name, reason) = param_reason(
        index(DatasetKind::Casme2, &files(Some(fx("casme2_coding.xlsx")), &samm_like), &opts).unwrap_err(),
    );
    assert_eq!(name, "frames");
    assert!(reason.contains("none of the 9 clips") && reason.contains("sub01"), "{reason}");
    // An empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    match index(DatasetKind::Casme2, &files(Some(fx("casme2_coding.xlsx")), &empty), &opts).unwrap_err() {
        Error::EmptyFolder { path, what } => {
            assert_eq!(path, empty);
            assert!(what.contains("sub01"), "{what}");
        }
        e => panic!("unexpected {e}"),
    }
    // A folder that does not exist, a coding file that does not exist, none at all.
    let (name, _) = param_reason(
        index(DatasetKind::Casme2, &files(Some(fx("casme2_coding.xlsx")), &dir.path().join("x")), &opts)
            .unwrap_err(),
    );
    assert_eq!(name, "frames");
    let (name, _) =
        param_reason(index(DatasetKind::Casme2, &files(Some(fx("nope.xlsx")), &root), &opts).unwrap_err());
    assert_eq!(name, "coding");
    let (name, _) = param_reason(index(DatasetKind::Samm, &files(None, &root), &opts).unwrap_err());
    assert_eq!(name, "coding");
    // SMIC ships no coding file; only CASME II has a release choice; the SMIC layout is named.
    let (name, _) = param_reason(
        index(DatasetKind::Smic, &files(Some(fx("samm_codes.xlsx")), &root), &opts).unwrap_err(),
    );
    assert_eq!(name, "coding");
    let mut f = files(Some(fx("samm_codes.xlsx")), &root);
    f.release = Some(Release::Cropped);
    assert_eq!(param_reason(index(DatasetKind::Samm, &f, &opts).unwrap_err()).0, "release");
    match index(DatasetKind::Smic, &files(None, &root), &opts).unwrap_err() {
        Error::EmptyFolder { what, .. } => assert!(what.contains("s1/micro"), "{what}"),
        e => panic!("unexpected {e}"),
    }
    // The loaders' cell checks come through with file, row and column.
    let msg = index(DatasetKind::Casme2, &files(Some(fx("casme2_bad_onset.xlsx")), &root), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("casme2_bad_onset.xlsx") && msg.contains("row 3") && msg.contains("OnsetFrame"),
        "{msg}"
    );
}

#[test]
fn samm_and_long_videos_index_with_their_frame_numbering() {
    let dir = tempfile::tempdir().unwrap();
    // SAMM: 006/006_1_2/006_05562.jpg; only onset, apex, offset written, clip 011_2_3 absent.
    let samm = dir.path().join("SAMM");
    let meta =
        mex_data::loaders::load_samm(&mex_data::loaders::SammConfig::new(fx("samm_codes.xlsx"))).unwrap();
    for s in meta.samples.iter().filter(|s| s.clip != "011_2_3") {
        for n in [s.onset, s.apex_or_middle(), s.offset].into_iter().flatten() {
            jpeg(&samm.join(&s.subject).join(&s.clip).join(format!("{}_{n:05}.jpg", s.subject)), 3);
        }
    }
    let r = index(DatasetKind::Samm, &files(Some(fx("samm_codes.xlsx")), &samm), &IndexOptions::default())
        .unwrap();
    assert_eq!(r.dataset.len(), 4);
    assert_eq!(r.dropped_by_reason().get("frame folder missing"), Some(&1));
    assert!(r.dropped[0].provenance.ends_with(":row 19"), "{:?}", r.dropped[0]);
    let k = check(&r.dataset, &CheckOptions { frames: FrameSelection::Key, decode: true }, &|_, _| {});
    assert!(k.is_ok(), "{k:?}");

    // SAMM Long Videos: 006_1 numbered consecutively (pattern inferred), 007_5 not. Indexing does
    // not decode, so the frames are placeholders here.
    let lv = dir.path().join("SAMM_longvideos");
    let touch = |p: PathBuf| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    };
    for n in 560..=750 {
        touch(lv.join(format!("006_1/006_1_{n:05}.jpg")));
    }
    for n in 2990..=3090 {
        touch(lv.join(format!("006_1/006_1_{n:05}.jpg")));
    }
    for n in (90..=190).step_by(2) {
        touch(lv.join(format!("007_5/007_5_{n:04}.jpg")));
    }
    let r = index(DatasetKind::SammLv, &files(Some(fx("samm_lv.xlsx")), &lv), &IndexOptions::default());
    // 006_1 has a gap (751..2989): its numbering is not consecutive either.
    let (name, reason) = param_reason(r.unwrap_err());
    assert_eq!(name, "frames");
    assert!(reason.contains("frame numbering not recognised"), "{reason}");
    for n in 751..2990 {
        touch(lv.join(format!("006_1/006_1_{n:05}.jpg")));
    }
    let r =
        index(DatasetKind::SammLv, &files(Some(fx("samm_lv.xlsx")), &lv), &IndexOptions::default()).unwrap();
    assert_eq!(r.dataset.len(), 2);
    assert_eq!(r.dataset.samples[0].frame_pattern.as_deref(), Some("006_1_{n:05}.jpg"));
    assert_eq!(r.dataset.samples[1].frame_path(3030).unwrap(), lv.join("006_1/006_1_03030.jpg"));
    assert_eq!(r.dropped_by_reason().get("frame numbering not recognised"), Some(&1));
    // Movements of one video share frames: check reads each file once.
    let c = check(&r.dataset, &CheckOptions { frames: FrameSelection::Key, decode: false }, &|_, _| {});
    assert_eq!(c.n_frames, 6);
}

#[test]
fn casme_sq_indexes_through_the_naming_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("rawpic");
    for n in [557, 572, 608, 1200, 1210] {
        jpeg(&raw.join(format!("s15/15_0101disgustingteeth/img{n}.jpg")), 4);
    }
    let r = index(
        DatasetKind::CasmeSq,
        &files(Some(fx("casme_sq_code_final.xlsx")), &raw),
        &IndexOptions::default(),
    )
    .unwrap();
    assert_eq!(r.dataset.len(), 2);
    assert_eq!(r.dropped.len(), 1);
    assert!(r.dropped[0].detail.ends_with("s16/16_0401anger1"), "{:?}", r.dropped[0]);
    let st = stats(&r.dataset);
    assert_eq!(st.total.kinds.get("macro"), Some(&1));
    assert_eq!(st.total.kinds.get("micro"), Some(&1));
    assert_eq!(st.total.n_videos, 1);
    assert_eq!(st.total.fps.get("30"), Some(&2));
}

#[test]
fn stats_match_hand_counts() {
    // CASME II fixture, metadata only: 9 clips of 7 subjects.
    let mut ds = load_casme2(&Casme2Config::new(fx("casme2_coding.xlsx"))).unwrap();
    ds.samples[0].sex = Some("F".into()); // sub01 (two clips)
    ds.samples[2].sex = Some("M".into()); // sub02
    let s = stats(&ds);
    assert_eq!(s.datasets.len(), 1);
    let t = &s.total;
    assert_eq!((t.n_samples, t.n_labelled, t.n_subjects, t.n_videos), (9, 7, 7, 9));
    let counts: Vec<usize> = t.classes.iter().map(|c| c.1).collect();
    // happiness, disgust, repression, surprise, others
    assert_eq!(counts, vec![1, 2, 2, 1, 1]);
    assert_eq!(t.emotions.get("fear"), Some(&1));
    // Lengths 41 31 46 31 40 31 41 31 34 frames.
    let d = t.clip_frames.unwrap();
    assert_eq!((d.n, d.min, d.median, d.max), (9, 31.0, 34.0, 46.0));
    assert!((d.mean - 326.0 / 9.0).abs() < 1e-12);
    let ms = t.clip_ms.unwrap();
    assert_eq!((ms.min, ms.median, ms.max), (155.0, 170.0, 230.0));
    assert_eq!(t.n_apex_annotated, 8);
    // onset->apex 13 8 10 19 11 18 15 7
    let a = t.onset_to_apex_frames.unwrap();
    assert_eq!((a.min, a.median, a.max), (7.0, 12.0, 19.0));
    let sps = t.samples_per_subject.unwrap();
    assert_eq!((sps.min, sps.median, sps.max), (1.0, 1.0, 2.0));
    // Sex counts subjects, not samples; the rest are unknown.
    assert_eq!(t.sex.get("F"), Some(&1));
    assert_eq!(t.sex.get("M"), Some(&1));
    assert_eq!(t.sex.get("unknown"), Some(&5));
    assert!(t.ethnicity.is_empty());
    let text = s.to_text();
    assert!(text.contains("clip length, frames") && text.contains("34 [31, 46]"), "{text}");
    assert!(text.contains("sex (subjects)") && !text.contains("ethnicity"), "{text}");
    let back: Stats = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

fn sample(dataset: &str, subject: &str, clip: &str, emotion: &str) -> Sample {
    Sample {
        dataset: dataset.into(),
        subject: subject.into(),
        clip: clip.into(),
        emotion: emotion.into(),
        onset: Some(1),
        offset: Some(10),
        fps: Some(if dataset == "smic" { 100.0 } else { 200.0 }),
        provenance: format!("{dataset}.xlsx:row 2"),
        ..Default::default()
    }
}

#[test]
fn megc_composite_lists_what_it_leaves_out() {
    let casme2 = Dataset::new(
        "casme2",
        ClassSet::casme2_5(),
        vec![
            sample("casme2", "sub01", "EP02_01f", "happiness"),
            sample("casme2", "sub01", "EP03_02", "others"),
            sample("casme2", "sub04", "EP12_01f", "disgust"),
            sample("casme2", "sub05", "EP12_03f", "repression"),
            sample("casme2", "sub26", "EP18_52", "fear"),
        ],
    );
    let samm = Dataset::new(
        "samm",
        mex_data::loaders::samm::samm_classes(),
        vec![sample("samm", "006", "006_1_2", "Anger"), sample("samm", "009", "009_2_1", "Other")],
    );
    let smic = Dataset::new("smic", ClassSet::megc3(), vec![sample("smic", "s01", "s01_po_01", "positive")]);
    let r = index_megc(&[&smic, &casme2, &samm], &MegcRules::default()).unwrap();
    assert_eq!(r.dataset.len(), 4);
    let ids: Vec<String> =
        r.dataset.samples.iter().map(|s| format!("{}/{}", s.clip, s.label.unwrap())).collect();
    assert_eq!(ids, vec!["EP02_01f/1", "EP12_03f/0", "006_1_2/0", "s01_po_01/1"]);
    let by = r.dropped_by_reason();
    assert_eq!(by.get("MEGC2019 exclusion"), Some(&1));
    assert_eq!(by.get("emotion outside negative/positive/surprise"), Some(&3));
    assert!(r.notes.is_empty());
    // MEB's rules also drop sub05/EP12_03f.
    let r = index_megc(&[&casme2, &samm, &smic], &MegcRules::meb()).unwrap();
    assert_eq!(r.dataset.len(), 3);
    // A missing part is noted; a part of another dataset is refused.
    let r = index_megc(&[&casme2, &samm], &MegcRules::default()).unwrap();
    assert!(r.notes[0].contains("smic"), "{:?}", r.notes);
    let lv = Dataset::new("samm_lv", ClassSet::megc3(), vec![sample("samm_lv", "006", "006_1", "x")]);
    assert!(matches!(index_megc(&[&casme2, &lv], &MegcRules::default()), Err(Error::InvalidParam { .. })));
}

#[test]
fn demographics_are_attached_per_subject_and_counted_per_subject() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    casme2_frames(&root);
    let demo = dir.path().join("participants.csv");
    // Subjects as numbers or folder names; an age in years or a band; sub26 absent; an extra row.
    std::fs::write(&demo, "Subject,Gender,Age,Ethnicity\n1,F,23,Chinese\nsub02,M,31,\n4,F,,Chinese\n5,M,29,Chinese\n17,F,20,Chinese\n24,M,19,Chinese\n99,F,40,x\n").unwrap();
    let mut f = files(Some(fx("casme2_coding.xlsx")), &root);
    f.demographics = Some(demo.clone());
    let r = index(DatasetKind::Casme2, &f, &IndexOptions::default()).unwrap();
    assert!(r.notes.iter().any(|n| n.contains("demographics of 6 of 7 subjects")), "{:?}", r.notes);
    let s0 = &r.dataset.samples[0];
    assert_eq!(
        (s0.sex.as_deref(), s0.age_band.as_deref(), s0.ethnicity.as_deref()),
        (Some("F"), Some("20-29"), Some("Chinese"))
    );
    let t = stats(&r.dataset).total;
    // 7 subjects: F sub01 sub04 sub17, M sub02 sub05 sub24, sub26 unknown.
    assert_eq!((t.sex.get("F"), t.sex.get("M"), t.sex.get("unknown")), (Some(&3), Some(&3), Some(&1)));
    // Bands: 20-29 sub01 sub05 sub17; 30-39 sub02; 10-19 sub24; sub04 (blank) and sub26 unknown.
    assert_eq!(t.age_band.get("20-29"), Some(&3));
    assert_eq!(t.age_band.get("30-39"), Some(&1));
    assert_eq!(t.age_band.get("10-19"), Some(&1));
    assert_eq!(t.age_band.get("unknown"), Some(&2));
    assert_eq!(t.ethnicity.get("Chinese"), Some(&5));
    // A bad age names the row and column; a table without any demographic column is refused.
    std::fs::write(&demo, "Subject,Age\n1,twenty\n").unwrap();
    match index(DatasetKind::Casme2, &f, &IndexOptions::default()).unwrap_err() {
        Error::BadCell { row, column, .. } => assert_eq!((row, column.as_str()), (2, "Age")),
        e => panic!("unexpected {e}"),
    }
    std::fs::write(&demo, "Subject,Notes\n1,x\n").unwrap();
    assert!(matches!(
        index(DatasetKind::Casme2, &f, &IndexOptions::default()),
        Err(Error::MissingColumn { .. })
    ));
}
