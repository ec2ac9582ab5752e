//! `mex_metrics::study` against SciPy / statsmodels / pingouin / scikit-learn values committed by
//! `scripts/metrics_study_fixtures.py`, to 1e-6 (most agree to 1e-12).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_metrics::study::{
    benjamini_hochberg, fit_logistic, hedges_g, icc, mann_whitney, spearman, EstimateCi, LogisticConfig,
    MwuMethod,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/study_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: ours {a} vs reference {b} (diff {:e})", (a - b).abs());
}

fn close_ci(ours: &EstimateCi, r: &Value, what: &str) {
    close(ours.estimate, r["estimate"].as_f64().unwrap(), &format!("{what} estimate"));
    close(ours.ci_low, r["ci_low"].as_f64().unwrap(), &format!("{what} ci_low"));
    close(ours.ci_high, r["ci_high"].as_f64().unwrap(), &format!("{what} ci_high"));
}

#[test]
fn hedges_g_matches_pingouin() {
    let fx = fixture();
    let cases = fx["hedges"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let h = hedges_g(&f64s(&c["x"]), &f64s(&c["y"]), 0.95).unwrap();
        close(h.d, c["d"].as_f64().unwrap(), name);
        close(h.g.estimate, c["g"].as_f64().unwrap(), name);
        close(h.g.ci_low, c["ci_low"].as_f64().unwrap(), name);
        close(h.g.ci_high, c["ci_high"].as_f64().unwrap(), name);
    }
}

#[test]
fn mann_whitney_matches_scipy() {
    let fx = fixture();
    let cases = fx["mann_whitney"].as_array().unwrap();
    let mut exact = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let method = match c["method"].as_str().unwrap() {
            "auto" => MwuMethod::Auto,
            "exact" => MwuMethod::Exact,
            _ => MwuMethod::Asymptotic,
        };
        let r = mann_whitney(&f64s(&c["x"]), &f64s(&c["y"]), method).unwrap();
        exact += r.exact as usize;
        close(r.u, c["u"].as_f64().unwrap(), name);
        close(r.p_value, c["p"].as_f64().unwrap(), name);
    }
    assert!(exact >= 3 && exact < cases.len(), "both methods exercised");
}

#[test]
fn spearman_matches_scipy_and_pingouin() {
    let fx = fixture();
    for c in fx["spearman"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let s = spearman(&f64s(&c["x"]), &f64s(&c["y"]), 0.95).unwrap();
        close(s.rho.estimate, c["rho"].as_f64().unwrap(), name);
        close(s.p_value, c["p"].as_f64().unwrap(), name);
        close(s.rho.ci_low, c["ci_low"].as_f64().unwrap(), name);
        close(s.rho.ci_high, c["ci_high"].as_f64().unwrap(), name);
    }
}

#[test]
fn icc_matches_pingouin() {
    let fx = fixture();
    for c in fx["icc"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let table: Vec<Vec<f64>> = c["table"].as_array().unwrap().iter().map(f64s).collect();
        let r = icc(&table, 0.95).unwrap();
        close_ci(&r.icc1, &c["icc1"], &format!("{name} ICC(1,1)"));
        close_ci(&r.icc2_1, &c["icc2_1"], &format!("{name} ICC(2,1)"));
        close_ci(&r.icc3_1, &c["icc3_1"], &format!("{name} ICC(3,1)"));
        close(r.f, c["f"].as_f64().unwrap(), name);
        close(r.p_value, c["p"].as_f64().unwrap(), name);
    }
}

#[test]
fn benjamini_hochberg_matches_statsmodels() {
    let fx = fixture();
    let p: Vec<Option<f64>> = f64s(&fx["bh"]["p"]).into_iter().map(Some).collect();
    let adj = benjamini_hochberg(&p).unwrap();
    for (a, r) in adj.iter().zip(f64s(&fx["bh"]["adjusted"])) {
        close(a.unwrap(), r, "BH");
    }
}

#[test]
fn logistic_matches_sklearn() {
    let fx = fixture();
    for c in fx["logistic"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let x: Vec<Vec<f64>> = c["x"].as_array().unwrap().iter().map(f64s).collect();
        let y: Vec<bool> = c["y"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        let cfg = LogisticConfig { c: c["c"].as_f64().unwrap(), ..LogisticConfig::default() };
        let m = fit_logistic(&x, &y, &cfg).unwrap();
        for (a, b) in m.coef.iter().zip(f64s(&c["coef"])) {
            close(*a, b, name);
        }
        close(m.intercept, c["intercept"].as_f64().unwrap(), name);
        for (row, p) in x.iter().zip(f64s(&c["proba"])) {
            close(m.predict_proba(row), p, name);
        }
    }
}
