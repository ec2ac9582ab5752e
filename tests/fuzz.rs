//! Property-based fuzzing of every parser: arbitrary bytes and mutations of valid inputs must
//! give a typed error or a valid result, never a panic, an abort or a hang.
//!
//! `cargo test --test fuzz` runs 64 cases per parser (a few seconds); set `MEX_FUZZ_CASES` for a
//! longer run, e.g. `MEX_FUZZ_CASES=20000 cargo test --release --test fuzz`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use proptest::prelude::*;
use std::path::Path;

fn cases() -> u32 {
    std::env::var("MEX_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
}

/// A valid input with up to 8 bytes replaced, a cut, or bytes inserted.
fn mutate(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = valid.len().max(1);
    (
        prop::collection::vec((0..n, any::<u8>()), 0..8),
        prop::option::of(0..n),
        prop::collection::vec(any::<u8>(), 0..4),
        0..n,
    )
        .prop_map(move |(flips, cut, ins, at)| {
            let mut v = valid.clone();
            for (i, b) in flips {
                if i < v.len() {
                    v[i] = b;
                }
            }
            if let Some(c) = cut {
                v.truncate(c);
            }
            let at = at.min(v.len());
            v.splice(at..at, ins);
            v
        })
}

fn valid_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 20, |x, y| image::Rgb([x as u8 * 9, y as u8 * 11, 77]));
    let mut b = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
        .unwrap();
    b
}

fn valid_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 20, |x, y| image::Rgb([x as u8 * 9, y as u8 * 11, 77]));
    let mut b = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Jpeg)
        .unwrap();
    b
}

fn valid_flo() -> Vec<u8> {
    let f = mex::core::FlowField::from_planes(5, 4, vec![0.5; 20], vec![-0.25; 20]).unwrap();
    let mut b = Vec::new();
    mex::flow::io::write_flo(&mut b, &f).unwrap();
    b
}

fn valid_toml() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/experiments/flow_methods.toml"))
        .unwrap()
}

fn valid_dlib_model() -> Vec<u8> {
    use mex::align::dlib::{RegressionTree, Split};
    // Two landmarks, one level, one depth-1 tree comparing two feature pixels.
    mex::align::ShapePredictor::new(
        vec![0.25, 0.5, 0.75, 0.5],
        vec![vec![RegressionTree {
            splits: vec![Split { idx1: 0, idx2: 1, thresh: 10.0 }],
            leaf_values: vec![vec![0.0, -0.25, 0.0, -0.25], vec![0.0, 0.25, 0.0, 0.25]],
        }]],
        vec![vec![0, 1]],
        vec![vec![[0.0, 0.0], [0.0, 0.0]]],
    )
    .unwrap()
    .to_bytes()
}

fn valid_checkpoint() -> Vec<u8> {
    let cfg = mex::classify::ModelConfig::Ststnet(Default::default());
    let m = mex::classify::Model::new(&cfg, 1, &candle_core::Device::Cpu).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    m.save(&p).unwrap();
    std::fs::read(p).unwrap()
}

fn valid_table() -> Vec<u8> {
    b"Subject,Filename,Onset Frame,Apex Frame,Offset Frame,Type,Action Units\n\
      006,006_1_1,566,648,743,Macro,4+7\n006,006_1_2,3000,3030,3080,Micro - 1/2,12\n"
        .to_vec()
}

fn valid_fold() -> Vec<u8> {
    let p = |id: &str, label, pred| mex::classify::Prediction {
        subject: "k".into(),
        id: id.into(),
        label,
        pred,
        probs: vec![0.2, 0.5, 0.3],
    };
    let f = mex::classify::FoldResult {
        subject: "k".into(),
        fingerprint: "fp".into(),
        predictions: vec![p("k_0", 1, 1), p("k_1", 0, 2)],
        epochs: vec![],
        selected_epoch: 0,
        elapsed_s: 0.5,
        resumed: false,
    };
    serde_json::to_vec(&f).unwrap()
}

fn valid_openface() -> Vec<u8> {
    let mut head = vec!["frame", "face_id", "timestamp", "confidence", "success"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    head.extend((0..68).map(|i| format!("x_{i}")));
    head.extend((0..68).map(|i| format!("y_{i}")));
    let mut s = head.join(", ") + "\n";
    for f in 1..=3 {
        let mut row = vec![
            f.to_string(),
            "0".into(),
            format!("{:.3}", (f - 1) as f64 / 30.0),
            "0.98".into(),
            "1".into(),
        ];
        row.extend((0..136).map(|i| format!("{:.1}", 100.0 + i as f64)));
        s += &(row.join(", ") + "\n");
    }
    s.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn images_never_panic(b in prop_oneof![mutate(valid_png()), mutate(valid_jpeg()), prop::collection::vec(any::<u8>(), 0..512)]) {
        if let Ok(img) = mex::core::decode_image_limited(&b) {
            prop_assert!(img.width() > 0 && img.height() > 0);
        }
    }

    #[test]
    fn flo_never_panics(b in prop_oneof![mutate(valid_flo()), prop::collection::vec(any::<u8>(), 0..256)]) {
        if let Ok(f) = mex::flow::io::parse_flo(&b) {
            prop_assert_eq!(f.u().len(), f.width() * f.height());
        }
    }

    #[test]
    fn experiment_toml_never_panics(b in prop_oneof![mutate(valid_toml()), prop::collection::vec(any::<u8>(), 0..256)]) {
        let text = String::from_utf8_lossy(&b);
        let _ = mex::experiment::ExperimentConfig::from_toml_str(&text, "<fuzz>");
    }

    #[test]
    fn dlib_models_never_panic(b in prop_oneof![mutate(valid_dlib_model()), prop::collection::vec(any::<u8>(), 0..512)]) {
        let _ = mex::align::ShapePredictor::from_bytes(&b);
    }

    #[test]
    fn safetensors_checkpoints_never_panic(b in prop_oneof![mutate(valid_checkpoint()), prop::collection::vec(any::<u8>(), 0..512)]) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.safetensors");
        std::fs::write(&p, &b).unwrap();
        let cfg = mex::classify::ModelConfig::Ststnet(Default::default());
        let _ = mex::classify::Model::load(&cfg, &p, &candle_core::Device::Cpu);
    }

    #[test]
    fn dataset_tables_never_panic(b in prop_oneof![mutate(valid_table()), prop::collection::vec(any::<u8>(), 0..512)]) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("coding.csv");
        std::fs::write(&p, &b).unwrap();
        if let Ok(t) = mex::data::table::Table::read(&p, 0) {
            let _ = t.find_header(&[&["subject"], &["onset", "onsetframe"]]);
        }
    }

    #[test]
    fn fold_results_never_panic(b in prop_oneof![mutate(valid_fold()), prop::collection::vec(any::<u8>(), 0..512)]) {
        let d = tempfile::tempdir().unwrap();
        let out = mex::experiment::OutDir::new(d.path());
        std::fs::create_dir_all(out.folds("v")).unwrap();
        std::fs::write(out.folds("v").join("k.json"), &b).unwrap();
        let _ = mex::experiment::run::load_folds(&out, "v", &["k".to_string()]);
    }

    #[test]
    fn openface_csvs_never_panic(b in prop_oneof![mutate(valid_openface()), prop::collection::vec(any::<u8>(), 0..512)]) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("of.csv");
        std::fs::write(&p, &b).unwrap();
        let _ = mex::analyze::read_openface_csv(&p);
    }
}

/// The valid inputs the mutations start from are valid: each parses.
#[test]
fn the_valid_seeds_parse() {
    assert!(mex::align::ShapePredictor::from_bytes(&valid_dlib_model()).is_ok());
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    std::fs::write(&p, valid_checkpoint()).unwrap();
    let cfg = mex::classify::ModelConfig::Ststnet(Default::default());
    assert!(mex::classify::Model::load(&cfg, &p, &candle_core::Device::Cpu).is_ok());
    let p = d.path().join("coding.csv");
    std::fs::write(&p, valid_table()).unwrap();
    let t = mex::data::table::Table::read(&p, 0).unwrap();
    assert!(t.find_header(&[&["subject"], &["onset", "onset frame"]]).is_ok());
    let out = mex::experiment::OutDir::new(d.path());
    std::fs::create_dir_all(out.folds("v")).unwrap();
    std::fs::write(out.folds("v").join("k.json"), valid_fold()).unwrap();
    let folds = mex::experiment::run::load_folds(&out, "v", &["k".to_string()]).unwrap();
    assert_eq!(format!("{folds:?}").matches("k_0").count(), 1, "{folds:?}");
    let p = d.path().join("of.csv");
    std::fs::write(&p, valid_openface()).unwrap();
    let (_, rows) = mex::analyze::read_openface_csv(&p).unwrap();
    assert_eq!(rows.len(), 3);
}
