//! mex-metrics against scikit-learn / SciPy values committed by `scripts/metrics_sklearn_fixtures.py`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_metrics::{
    average_precision, brier_score, calibration, roc_auc, roc_curve, youden_threshold, BinaryCounts,
    ConfusionMatrix, McNemar, RocCurve,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sklearn_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-12, "{what}: ours {a} vs reference {b}");
}

#[test]
fn classification_matches_sklearn() {
    let fx = fixture();
    let cases = fx["classification"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let n = c["n_classes"].as_u64().unwrap() as usize;
        let m = ConfusionMatrix::from_labels(&usizes(&c["truth"]), &usizes(&c["pred"]), n).unwrap();
        let r = m.report().unwrap();
        close(r.accuracy, c["accuracy"].as_f64().unwrap(), name);
        close(r.macro_f1, c["macro_f1"].as_f64().unwrap(), name);
        close(r.weighted_f1, c["weighted_f1"].as_f64().unwrap(), name);
        close(m.balanced_accuracy().unwrap(), c["balanced_accuracy"].as_f64().unwrap(), name);
        close(r.uf1, c["megc_uf1"].as_f64().unwrap(), name);
        close(r.uar, c["megc_uar"].as_f64().unwrap(), name);
        match c["kappa"].as_f64() {
            Some(k) => close(r.kappa.unwrap(), k, name),
            None => assert!(r.kappa.is_none(), "{name}"),
        }
        let (p, rc, f, s) =
            (f64s(&c["precision"]), f64s(&c["recall"]), f64s(&c["f1"]), usizes(&c["support"]));
        for (i, st) in r.per_class.iter().enumerate() {
            close(st.precision, p[i], name);
            close(st.recall, rc[i], name);
            close(st.f1, f[i], name);
            assert_eq!(st.support as usize, s[i]);
        }
        let conf: Vec<Vec<u64>> = c["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect())
            .collect();
        assert_eq!(r.confusion, conf, "{name}");
    }
}

fn check_curve(ours: &RocCurve, reference: &Value, name: &str) {
    let fpr = f64s(&reference["fpr"]);
    let tpr = f64s(&reference["tpr"]);
    assert_eq!(ours.fpr.len(), fpr.len(), "{name}: curve length");
    for i in 0..fpr.len() {
        close(ours.fpr[i], fpr[i], name);
        close(ours.tpr[i], tpr[i], name);
        match reference["thresholds"][i].as_f64() {
            Some(t) => close(ours.thresholds[i], t, name),
            None => assert!(ours.thresholds[i].is_infinite()),
        }
    }
}

#[test]
fn binary_matches_sklearn() {
    let fx = fixture();
    for c in fx["binary"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let truth: Vec<bool> = c["truth"].as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect();
        let scores = f64s(&c["scores"]);
        let probs = f64s(&c["probs"]);
        check_curve(&roc_curve(&truth, &scores, true).unwrap(), &c["roc_drop"], name);
        check_curve(&roc_curve(&truth, &scores, false).unwrap(), &c["roc_full"], name);
        close(roc_auc(&truth, &scores).unwrap(), c["roc_auc"].as_f64().unwrap(), name);
        close(average_precision(&truth, &scores).unwrap(), c["average_precision"].as_f64().unwrap(), name);
        close(brier_score(&truth, &probs).unwrap(), c["brier"].as_f64().unwrap(), name);
        for bins in [5usize, 10] {
            let e = calibration(&truth, &probs, bins).unwrap();
            close(e.ece, c["ece"][bins.to_string()].as_f64().unwrap(), name);
        }
        let y = youden_threshold(&truth, &scores).unwrap();
        close(y.threshold, c["youden"]["threshold"].as_f64().unwrap(), name);
        close(y.j, c["youden"]["j"].as_f64().unwrap(), name);
        let h = BinaryCounts::at_threshold(&truth, &scores, 0.5).unwrap();
        let r = &c["at_half"];
        assert_eq!(
            (h.tp, h.fp, h.tn, h.fn_),
            (
                r["tp"].as_u64().unwrap(),
                r["fp"].as_u64().unwrap(),
                r["tn"].as_u64().unwrap(),
                r["fn"].as_u64().unwrap()
            ),
            "{name}"
        );
    }
}

#[test]
fn mcnemar_matches_scipy() {
    let fx = fixture();
    for c in fx["mcnemar"].as_array().unwrap() {
        let (b, cc) = (c["b"].as_u64().unwrap(), c["c"].as_u64().unwrap());
        let m = McNemar::from_counts(b, cc);
        let name = format!("mcnemar b={b} c={cc}");
        assert!((m.exact_p - c["exact_p"].as_f64().unwrap()).abs() < 1e-10, "{name}: {}", m.exact_p);
        close(m.chi2, c["chi2"].as_f64().unwrap(), &name);
        assert!((m.chi2_p - c["chi2_p"].as_f64().unwrap()).abs() < 1e-10, "{name}: {}", m.chi2_p);
    }
}
