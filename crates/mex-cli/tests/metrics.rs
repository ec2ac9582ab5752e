//! `mex metrics classify|spot` run as a binary on fixture CSVs (crates/mex-cli/tests/fixtures/metrics).
//! Expected values: scikit-learn (classify_megc.expected.json, written by
//! scripts/metrics_cli_fixtures.py) and hand-computed counts (spotting, commented below).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics").join(name)
}

fn mex(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(args: &[&str]) -> Value {
    let (code, out, err) = mex(args);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn close(a: &Value, b: &Value, what: &str) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!((x - y).abs() < 1e-12, "{what}: mex {x} vs expected {y}");
}

#[test]
fn classify_json_matches_sklearn() {
    let csv = fixture("classify_megc.csv");
    let got = json_of(&["metrics", "classify", csv.to_str().unwrap(), "--json"]);
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("classify_megc.expected.json")).unwrap())
            .unwrap();
    assert_eq!(got["n"], exp["n"]);
    for k in ["uf1", "uar", "accuracy", "macro_f1", "weighted_f1", "kappa"] {
        close(&got[k], &exp[k], k);
    }
    assert_eq!(got["confusion"], exp["confusion"]);
    let (gp, ep) = (got["per_class"].as_array().unwrap(), exp["per_class"].as_array().unwrap());
    assert_eq!(gp.len(), 3);
    for (g, e) in gp.iter().zip(ep) {
        assert_eq!(g["label"], e["label"]);
        assert_eq!(g["support"], e["support"]);
        for k in ["precision", "recall", "f1"] {
            close(&g[k], &e[k], k);
        }
    }
    let gd = got["per_dataset"].as_object().unwrap();
    assert_eq!(gd.len(), 3);
    for (name, e) in exp["per_dataset"].as_object().unwrap() {
        assert_eq!(gd[name]["n"], e["n"], "{name}");
        close(&gd[name]["uf1"], &e["uf1"], name);
        close(&gd[name]["uar"], &e["uar"], name);
    }
}

#[test]
fn classify_table_and_bootstrap() {
    let csv = fixture("classify_megc.csv");
    let (code, out, err) = mex(&["metrics", "classify", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for needle in ["UF1", "UAR", "kappa", "negative", "surprise", "confusion", "casme2", "samm", "smic"] {
        assert!(out.contains(needle), "table lacks {needle}:\n{out}");
    }
    let a = json_of(&["metrics", "classify", csv.to_str().unwrap(), "--json", "--bootstrap", "200"]);
    let b = json_of(&["metrics", "classify", csv.to_str().unwrap(), "--json", "--bootstrap", "200"]);
    assert_eq!(a["bootstrap"], b["bootstrap"], "seeded bootstrap must be reproducible");
    assert_eq!(a["bootstrap"]["level"], "subject");
    let (lo, hi, est) = (
        a["bootstrap"]["uf1"]["lower"].as_f64().unwrap(),
        a["bootstrap"]["uf1"]["upper"].as_f64().unwrap(),
        a["uf1"].as_f64().unwrap(),
    );
    assert!(lo < est && est < hi, "{lo} {est} {hi}");
}

#[test]
fn spot_typed_hand_computed() {
    // micro: GT v1[10,19], v2[50,64]; preds v1[12,21] (IoU 8/12, TP), v2[55,80] (10/31, FP),
    //   v3[0,10] (no GT, FP) -> TP 1, FP 2, FN 1.
    // macro: GT v1[100,159], v1[300,339], v2[200,299]; preds v1[105,170] (55/71, TP), v1[400,450] FP,
    //   v2[200,260] (61/100, TP, visited first), v2[210,299] (GT taken, FP) -> TP 2, FP 2, FN 1.
    // overall: TP 3, FP 4, FN 2 -> P 3/7, R 3/5, F1 6/12.
    let (gt, pred) = (fixture("spot_gt_typed.csv"), fixture("spot_pred_typed.csv"));
    let got = json_of(&[
        "metrics",
        "spot",
        "--gt",
        gt.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!((got["tp"].as_u64(), got["fp"].as_u64(), got["fn"].as_u64()), (Some(3), Some(4), Some(2)));
    close(&got["precision"], &Value::from(3.0 / 7.0), "precision");
    close(&got["recall"], &Value::from(0.6), "recall");
    close(&got["f1"], &Value::from(0.5), "f1");
    let micro = &got["per_type"]["micro"];
    assert_eq!(
        (micro["tp"].as_u64(), micro["fp"].as_u64(), micro["fn"].as_u64()),
        (Some(1), Some(2), Some(1))
    );
    close(&micro["f1"], &Value::from(0.4), "micro f1");
    let macro_ = &got["per_type"]["macro"];
    assert_eq!(
        (macro_["tp"].as_u64(), macro_["fp"].as_u64(), macro_["fn"].as_u64()),
        (Some(2), Some(2), Some(1))
    );
    close(&macro_["f1"], &Value::from(4.0 / 7.0), "macro f1");
    assert_eq!(got["per_video"]["v3"]["fp"], 1);
}

#[test]
fn spot_untyped_and_table() {
    // a: GT [0,9], [20,29]; preds [0,9] TP, [1,10] (GT taken) FP, [22,31] (8/12) TP.
    // b: GT [5,14]; pred [30,40] FP. -> TP 2, FP 2, FN 1, F1 = 4/7.
    let (gt, pred) = (fixture("spot_gt.csv"), fixture("spot_pred.csv"));
    let args = ["metrics", "spot", "--gt", gt.to_str().unwrap(), "--pred", pred.to_str().unwrap()];
    let mut j = args.to_vec();
    j.push("--json");
    let got = json_of(&j);
    assert_eq!((got["tp"].as_u64(), got["fp"].as_u64(), got["fn"].as_u64()), (Some(2), Some(2), Some(1)));
    close(&got["f1"], &Value::from(4.0 / 7.0), "f1");
    assert!(got.get("per_type").is_none());
    let (code, out, _) = mex(&args);
    assert_eq!(code, 0);
    assert!(out.contains("overall") && out.contains("0.5714"), "{out}");
    // typed GT with untyped predictions is refused
    let gt_t = fixture("spot_gt_typed.csv");
    let (code, _, err) =
        mex(&["metrics", "spot", "--gt", gt_t.to_str().unwrap(), "--pred", pred.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("type"), "{err}");
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let (code, out, err) = mex(args);
    assert_eq!(code, 2, "args {args:?}: stdout {out} stderr {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` missing from: {err}");
    }
}

#[test]
fn malformed_classify_inputs_exit_2_with_location() {
    let f = |n: &str| fixture(n).to_str().unwrap().to_string();
    let c = |file: String, needles: &[&str]| fails_with(&["metrics", "classify", &file], needles);
    c(f("bad_missing_column.csv"), &["bad_missing_column.csv", "missing column `pred`"]);
    c(f("bad_unknown_class.csv"), &["bad_unknown_class.csv", "row 2", "line 3", "column `label`", "fear"]);
    c(
        f("bad_unequal_lengths.csv"),
        &["bad_unequal_lengths.csv", "row 2", "line 3", "3 fields", "header has 2"],
    );
    c(f("bad_empty.csv"), &["bad_empty.csv", "empty file"]);
    c(f("bad_header_only.csv"), &["bad_header_only.csv", "no data rows"]);
    c(f("bad_label_out_of_range.csv"), &["row 2", "column `pred`", "unknown class `7`"]);
    c(f("does_not_exist.csv"), &["does_not_exist.csv", "cannot read"]);
}

#[test]
fn malformed_spot_inputs_exit_2_with_location() {
    let gt = fixture("spot_gt.csv");
    let gt = gt.to_str().unwrap();
    let bad = |n: &str| fixture(n).to_str().unwrap().to_string();
    let b = bad("bad_non_numeric.csv");
    fails_with(
        &["metrics", "spot", "--gt", gt, "--pred", &b],
        &["bad_non_numeric.csv", "row 2", "column `onset`", "`ten`"],
    );
    let b = bad("bad_offset_before_onset.csv");
    fails_with(
        &["metrics", "spot", "--gt", &b, "--pred", gt],
        &["bad_offset_before_onset.csv", "row 2", "offset 30"],
    );
    let b = bad("bad_empty.csv");
    fails_with(&["metrics", "spot", "--gt", &b, "--pred", gt], &["bad_empty.csv", "empty file"]);
    let b = bad("bad_missing_column.csv");
    fails_with(&["metrics", "spot", "--gt", gt, "--pred", &b], &["missing column `video`"]);
    fails_with(&["metrics", "spot", "--gt", gt, "--pred", gt, "--iou", "1.5"], &["iou"]);
}

#[test]
fn any_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: [&[u8]; 6] = [
        b"label,pred\n\xff\xfe,0\n",
        b"\"unterminated,pred\nlabel\n",
        b"label,pred\n,\n",
        b"label,pred,label\n0,1,2\n",
        b"video,onset,offset\nv,99999999999999999999999,1\n",
        b",,,\n,,,\n",
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let p = dir.path().join(format!("in{i}.csv"));
        std::fs::write(&p, bytes).unwrap();
        for args in [
            vec!["metrics", "classify", p.to_str().unwrap()],
            vec!["metrics", "spot", "--gt", p.to_str().unwrap(), "--pred", p.to_str().unwrap()],
        ] {
            let (code, _, err) = mex(&args);
            assert!(code == 0 || code == 2, "{args:?}: exit {code}, {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn absurd_numbers_and_ambiguous_tables_exit_2_with_one_line() {
    let d = tempfile::tempdir().unwrap();
    let ok = d.path().join("ok.csv");
    std::fs::write(&ok, "label,pred\nnegative,negative\npositive,surprise\n").unwrap();
    let one_line = |args: &[&str], needle: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_mex")).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    };
    let p = ok.to_str().unwrap();
    one_line(&["metrics", "classify", p, "--bootstrap", "18446744073709551615"], "maximum of 100000");
    one_line(&["metrics", "classify", p, "--bootstrap", "4294967296"], "maximum of 100000");
    one_line(&["metrics", "classify", p, "--classes", "a,a"], "listed twice");
    one_line(&["metrics", "classify", p, "--classes", "0,1,2"], "is a number");
    let dup = d.path().join("dup.csv");
    std::fs::write(&dup, "label,pred,pred\nnegative,negative,positive\n").unwrap();
    one_line(&["metrics", "classify", dup.to_str().unwrap()], "duplicate column `pred`");
    one_line(&["eval", "x.toml", "--jobs", "100000"], "maximum of 64");
    one_line(&["reproduce", "ststnet", "--data", "x", "--train", "--parallel", "100000"], "maximum of 64");
    one_line(&["reproduce", "ststnet", "--data", "x", "--train", "--epochs", "0"], "at least 1");
    // Spotting intervals at the very end of the frame range match themselves.
    let gt = d.path().join("gt.csv");
    std::fs::write(&gt, "video,onset,offset\nv,18446744073709551610,18446744073709551615\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mex"))
        .args(["metrics", "spot", "--gt", gt.to_str().unwrap(), "--pred", gt.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tp"], 1, "{j}");
}
