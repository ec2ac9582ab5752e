//! `mex eval`: a tiny synthetic experiment through the binary, fold jobs and merge, and clear
//! errors (exit status 2, message naming file and field) for missing or malformed configs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn mex() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mex"))
}

const TINY: &str = r#"
name = "tiny-cli"
seed = 2
[dataset]
kind = "synthetic"
n_subjects = 2
clips_per_class = [1, 1, 1]
size = 48
[evaluation]
bootstrap = 20
permutations = 20
[[variants]]
name = "dis"
flow = { method = "dis" }
train = { lr = 0.005, epochs = 2, batch_size = 8 }
"#;

#[test]
fn eval_fold_jobs_then_merge() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let out = dir.path().join("out");
    for k in ["0", "1"] {
        let o = mex()
            .args(["eval", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--fold", k])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("fold {k}")));
    }
    let o = mex()
        .args(["eval", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--merge"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("UF1") && stdout.contains("dis"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["n_samples"], 6);
    assert_eq!(report["variants"][0]["n"], 6);
    assert!(report["provenance"]["git_commit"].is_string());
    assert_eq!(report["config"]["seed"], 2);
}

#[test]
fn malformed_configs_exit_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let o = mex().args(["eval", "/nonexistent/x.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.toml"));
    for (bad, field) in [
        (TINY.replace("n_subjects = 2", "n_subjects = \"two\""), "dataset.n_subjects"),
        (TINY.replace("epochs = 2", "epochs = 0"), "variants[0].train"),
        (TINY.replace("method = \"dis\"", "method = \"sift\""), "variants[0]"),
        (TINY.replace("[[variants]]", "[protocol]\nkind = \"kfold\"\nk = 1\n[[variants]]"), "protocol.k"),
    ] {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, bad).unwrap();
        let o = mex()
            .args(["eval", p.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("bad.toml") && err.contains(field), "expected `{field}` in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

/// A spotting experiment writes its intervals as `video,onset,offset,type` CSV; `mex metrics
/// spot` on those files counts what the experiment's report counts (an independent path: the
/// CLI's CSV reader and one evaluation over every video against the report's per-video scoring).
#[test]
fn spotting_csvs_score_as_the_report_does() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("spot.toml");
    std::fs::write(
        &cfg,
        r#"
name = "tiny-spot-cli"
seed = 400
[task]
kind = "spotting"
[dataset]
kind = "synthetic_long"
seeds = 2
[[dataset.groups]]
fps = 30.0
duration_s = 10.0
n_micro = 2
n_macro = 1
[evaluation]
bootstrap = 20
[[variants]]
name = "regional"
[[variants]]
name = "global"
spotter = { method = { kind = "global" } }
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = mex()
        .args(["eval", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let truth = std::fs::read_to_string(out.join("truth.csv")).unwrap();
    assert!(truth.starts_with("video,onset,offset,type\n30fps/seed400,"), "{truth}");
    assert_eq!(truth.lines().count(), 1 + 2 * 3);
    for v in report["variants"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let pred = out.join("spots").join(format!("{name}.csv"));
        let o = mex()
            .args(["metrics", "spot", "--json", "--gt"])
            .arg(out.join("truth.csv"))
            .arg("--pred")
            .arg(&pred)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for (kind, key) in [("micro", "micro"), ("macro", "macro_")] {
            let (a, b) = (&m["per_type"][kind], &v[key]["counts"]);
            let counts = |x: &serde_json::Value, f: &str| x[f].as_u64();
            assert_eq!(
                (counts(a, "tp"), counts(a, "fp"), counts(a, "fn")),
                (counts(b, "tp"), counts(b, "fp"), counts(b, "fn")),
                "{name} {kind}: {m} vs {v}"
            );
        }
    }
}
