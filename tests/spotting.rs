//! Spotting experiments end to end on a tiny synthetic case (one 8 s video at 30 fps with one
//! micro- and one macro-expression and blinks): report, resume, and malformed configurations.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex::experiment::{run_experiment, ExperimentConfig, RunOptions, RunOutcome};

const TINY: &str = r#"
name = "tiny-spotting"
seed = 3
[task]
kind = "spotting"
[dataset]
kind = "synthetic_long"
seeds = 1
blinks_per_minute = 15.0
[[dataset.groups]]
fps = 30.0
duration_s = 8.0
n_micro = 1
n_macro = 1
[evaluation]
bootstrap = 50
[[variants]]
name = "global"
spotter = { method = { kind = "global" } }
[[variants]]
name = "regional"
"#;

#[test]
fn tiny_spotting_experiment_reports_and_resumes() {
    let cfg = ExperimentConfig::from_toml_str(TINY, "tiny.toml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let r = match run_experiment(&cfg, &out, &RunOptions::default()).unwrap() {
        RunOutcome::Spotting(r) => *r,
        other => panic!("expected a spotting report, got {other:?}"),
    };
    assert_eq!((r.n_videos, r.n_micro, r.n_macro), (1, 1, 1));
    assert_eq!(r.n_blinks, 2);
    assert_eq!(r.variants.len(), 2);
    assert_eq!(r.comparisons.len(), 1);
    for v in &r.variants {
        // every ground-truth interval is either found or missed
        assert_eq!(v.micro.counts.tp + v.micro.counts.fn_, 1, "{}", v.name);
        assert_eq!(v.macro_.counts.tp + v.macro_.counts.fn_, 1, "{}", v.name);
        assert_eq!(v.overall.counts, v.micro.counts + v.macro_.counts);
    }
    // the default (regional) spotter reports no blink and nothing that is not there; on this
    // video it finds the macro-expression and misses the micro-expression
    let reg = &r.variants[1];
    assert_eq!(reg.method, "regional");
    assert_eq!(reg.predictions_on_blinks, 0, "{:?}", reg.overall);
    assert_eq!((reg.overall.counts.tp, reg.overall.counts.fp), (1, 0), "{:?}", reg.overall);
    assert_eq!(reg.macro_.counts.tp, 1, "{:?}", reg.macro_);
    assert!(out.join("report.md").exists() && out.join("report.json").exists());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| regional | regional |"), "{md}");

    // a rerun reuses the spots on disk
    let spots = out.join("spots/regional.json");
    let t0 = std::fs::metadata(&spots).unwrap().modified().unwrap();
    let r2 = match run_experiment(&cfg, &out, &RunOptions::default()).unwrap() {
        RunOutcome::Spotting(r) => *r,
        other => panic!("{other:?}"),
    };
    assert_eq!(std::fs::metadata(&spots).unwrap().modified().unwrap(), t0);
    assert_eq!(r2.variants[1].overall.counts, reg.overall.counts);
}

#[test]
fn malformed_spotting_configs_name_the_field() {
    let err = |text: &str| ExperimentConfig::from_toml_str(text, "x.toml").unwrap_err().to_string();
    // a spotting task on a recognition dataset
    let e = err(&TINY.replace("kind = \"synthetic_long\"", "kind = \"synthetic\"").replace(
        "seeds = 1\nblinks_per_minute = 15.0\n[[dataset.groups]]\nfps = 30.0\nduration_s = 8.0\nn_micro = 1\nn_macro = 1\n",
        "",
    ));
    assert!(e.contains("dataset.kind"), "{e}");
    // a long-video dataset without the spotting task
    let e = err(&TINY.replace("[task]\nkind = \"spotting\"\n", ""));
    assert!(e.contains("dataset.kind") && e.contains("spotting"), "{e}");
    // events that cannot fit
    let e = err(&TINY.replace("duration_s = 8.0", "duration_s = 0.5"));
    assert!(e.contains("dataset.groups[0]"), "{e}");
    // an invalid spotter
    let e = err(&TINY.replace("{ kind = \"global\" }", "{ kind = \"regional\", high = 1.0, low = 3.0 }"));
    assert!(e.contains("variants[0].spotter") && e.contains("high"), "{e}");
    let e = err(&TINY.replace("kind = \"spotting\"", "kind = \"spotting\"\niou_threshold = 0.0"));
    assert!(e.contains("task.iou_threshold"), "{e}");
}
