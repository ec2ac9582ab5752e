//! The official MEGC2019 composite list (442 samples), when `MEX_TEST_DATA` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use mex_metrics::{megc_breakdown, ConfusionMatrix};

#[test]
fn all_negative_predictor_on_the_megc_list() {
    let Ok(root) = std::env::var("MEX_TEST_DATA") else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    let path = std::path::Path::new(&root).join("megc2019/combined_3class_gt.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut datasets, mut truth) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        assert_eq!(f.len(), 4, "{line}");
        datasets.push(f[0].to_string());
        truth.push(f[3].parse::<usize>().unwrap());
    }
    assert_eq!(truth.len(), 442);
    // MEGC2019 Recognition Challenge class counts (negative / positive / surprise)
    let mut counts: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for (d, &t) in datasets.iter().zip(&truth) {
        counts.entry(d.as_str()).or_default()[t] += 1;
    }
    assert_eq!(counts["smic"], [70, 51, 43]);
    assert_eq!(counts["casme2"], [88, 32, 25]);
    assert_eq!(counts["samm"], [92, 26, 15]);

    let pred = vec![0usize; truth.len()];
    let m = ConfusionMatrix::from_labels(&truth, &pred, 3).unwrap();
    assert!((m.accuracy().unwrap() - 250.0 / 442.0).abs() < 1e-12);
    assert!((m.accuracy().unwrap() - 0.5656).abs() < 1e-4);
    // By hand: negative F1 = 2*250 / (2*250 + 192 + 0) = 500/692; positive and surprise F1 = 0
    // (present in truth, never predicted) -> UF1 = (500/692)/3. Recall 1, 0, 0 -> UAR = 1/3.
    assert!((m.uf1().unwrap() - 500.0 / 692.0 / 3.0).abs() < 1e-12);
    assert!((m.uar().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    let b = megc_breakdown(&truth, &pred, &datasets, 3).unwrap();
    // SAMM: F1_neg = 2*92 / (2*92 + 41) = 184/225
    assert!((b.per_group["samm"].uf1 - 184.0 / 225.0 / 3.0).abs() < 1e-12);
    assert_eq!(b.per_group["smic"].n, 164);
    assert!((b.per_group["casme2"].uar - 1.0 / 3.0).abs() < 1e-12);
}
