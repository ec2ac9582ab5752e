//! `mex demo` through the binary: the synthetic smile (exact truth: onset 100, apex 112, offset
//! 140 at 200 fps) is spotted with IoU at least 0.5, the files it names are written, and without
//! the comparison no LOSO report is claimed or written.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

#[test]
fn demo_spots_the_smile_and_writes_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = Command::new(env!("CARGO_BIN_EXE_mex"))
        .args(["demo", "--no-compare", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let t = &r["truth"]["interval"];
    assert_eq!(
        (t["onset"].as_u64(), t["apex"].as_u64(), t["offset"].as_u64()),
        (Some(100), Some(112), Some(140))
    );
    let iou = r["spotted_iou"].as_f64().expect("the smile is spotted");
    assert!(iou >= 0.5, "spotted {} with IoU {iou}", r["spotted"]);
    for f in ["result.json", "aligned_onset.png", "flow.png", "strain.png", "motion.svg", "motion.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join("loso").exists());
    assert!(!stdout.contains("loso/report.md"), "{stdout}");
}
