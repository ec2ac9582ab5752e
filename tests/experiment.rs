//! End-to-end tests of the experiment runner on a tiny synthetic set: fold jobs, merge,
//! interruption and resume, determinism, malformed configurations.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex::experiment::{run_experiment, ExperimentConfig, RunOptions, RunOutcome};
use std::path::Path;

const TINY: &str = r#"
name = "tiny"
seed = 5
[dataset]
kind = "synthetic"
n_subjects = 3
clips_per_class = [1, 1, 1]
size = 48
[evaluation]
bootstrap = 50
permutations = 50
[[variants]]
name = "dis"
flow = { method = "dis" }
train = { lr = 0.005, epochs = 4, batch_size = 8, shuffle = true }
[[variants]]
name = "farneback"
flow = { method = "farneback" }
train = { lr = 0.005, epochs = 4, batch_size = 8, shuffle = true }
"#;

fn cfg() -> ExperimentConfig {
    ExperimentConfig::from_toml_str(TINY, "tiny.toml").unwrap()
}

fn report_of(out: RunOutcome) -> mex::experiment::Report {
    match out {
        RunOutcome::Report(r) => *r,
        RunOutcome::Fold { .. } | RunOutcome::Spotting(_) => panic!("expected a report"),
    }
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn fold_jobs_merge_resume_and_determinism() {
    let cfg = cfg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");

    // A cluster job runs one fold; merging before every fold exists names the missing one.
    let o = run_experiment(&cfg, &out, &RunOptions { fold: Some(0), ..Default::default() }).unwrap();
    assert!(matches!(o, RunOutcome::Fold { index: 0, .. }));
    let e = run_experiment(&cfg, &out, &RunOptions { merge_only: true, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("fold 1"), "{e}");
    assert!(run_experiment(&cfg, &out, &RunOptions { fold: Some(3), ..Default::default() }).is_err());

    // Fold 0 is kept: a full run does only folds 1 and 2.
    let f0 = out.join("folds/dis/synth-sub01.json");
    let t0 = mtime(&f0);
    let r1 = report_of(run_experiment(&cfg, &out, &RunOptions::default()).unwrap());
    assert_eq!(mtime(&f0), t0, "a finished fold was recomputed");
    assert_eq!(r1.n_samples, 9);
    assert_eq!(r1.n_folds, 3);
    assert_eq!(r1.variants.len(), 2);
    assert_eq!(r1.comparisons.len(), 1);
    for f in ["report.json", "report.md", "confusion_dis.png", "confusion_dis.svg", "comparison_uf1.png"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The pooled UF1 in the report is the one recomputed from the fold files.
    let v = &r1.variants[0];
    let cm_total: u64 = v.confusion.iter().flatten().sum();
    assert_eq!(cm_total, 9);
    assert!(v.uf1.lower <= v.uf1.estimate && v.uf1.estimate <= v.uf1.upper);

    // An interruption that lost one fold: the rerun recomputes exactly that fold, identically.
    let lost = out.join("folds/farneback/synth-sub02.json");
    let before = std::fs::read_to_string(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    let r2 = report_of(run_experiment(&cfg, &out, &RunOptions::default()).unwrap());
    let after = std::fs::read_to_string(&lost).unwrap();
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        v.as_object_mut().unwrap().remove("elapsed_s");
        v
    };
    assert_eq!(strip(&before), strip(&after), "same seed must give the same fold");
    let key = |r: &mex::experiment::Report| -> Vec<_> {
        r.variants.iter().map(|v| (v.confusion.clone(), v.uf1, v.uar, v.per_subject.clone())).collect()
    };
    assert_eq!(key(&r1), key(&r2));

    // The folder belongs to this configuration: another one is refused.
    let mut other = cfg.clone();
    other.seed = 6;
    let e = run_experiment(&other, &out, &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("different configuration"), "{e}");
}

#[test]
fn missing_config_file_is_a_typed_error() {
    let e = ExperimentConfig::from_file(Path::new("/nonexistent/exp.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/exp.toml"), "{e}");
}

#[test]
fn robustness_curves_start_at_the_clean_score() {
    use mex::robustness::{run_robustness, Perturbation};
    let cfg = cfg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rob");
    let suite = [Perturbation::Noise(0.0), Perturbation::Noise(20.0), Perturbation::FrameRate(4)];
    let r = run_robustness(&cfg, &suite, &out, &RunOptions::default()).unwrap();
    assert_eq!(r.points.len(), 2 * suite.len());
    for f in ["robustness.json", "robustness.md", "robustness_noise.png", "robustness_frame_rate.svg"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // Zero noise is the identity, so its score is the clean LOSO score of the same fold models.
    let clean = report_of(
        run_experiment(&cfg, &out, &RunOptions { merge_only: true, ..Default::default() }).unwrap(),
    );
    for v in &clean.variants {
        let p = r
            .points
            .iter()
            .find(|p| p.variant == v.name && p.perturbation == Perturbation::Noise(0.0))
            .unwrap();
        assert!((p.uf1 - v.uf1.estimate).abs() < 1e-9, "{} vs {}", p.uf1, v.uf1.estimate);
    }
}

#[test]
fn the_recorded_config_json_reruns_the_experiment() {
    let cfg = cfg();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    run_experiment(&cfg, &out, &RunOptions { fold: Some(0), ..Default::default() }).unwrap();
    let again = ExperimentConfig::from_file(&out.join("config.json")).unwrap();
    assert_eq!(again, cfg);
}
