//! `find_peaks_prominence` against SciPy's `scipy.signal.find_peaks(x, prominence=p)` on the
//! committed fixture (made by `scripts/indicators_find_peaks.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mex_indicators::find_peaks_prominence;
use serde_json::Value;

#[test]
fn find_peaks_matches_scipy_on_fixtures() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/find_peaks_scipy.json"))
            .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut n_peaks = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let x: Vec<f64> = c["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let p = c["prominence"].as_f64().unwrap();
        let ints = |k: &str| -> Vec<usize> {
            c[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
        };
        let got = find_peaks_prominence(&x, p);
        assert_eq!(got.iter().map(|p| p.index).collect::<Vec<_>>(), ints("peaks"), "{name}: peaks");
        assert_eq!(got.iter().map(|p| p.left_base).collect::<Vec<_>>(), ints("left_bases"), "{name}");
        assert_eq!(got.iter().map(|p| p.right_base).collect::<Vec<_>>(), ints("right_bases"), "{name}");
        let want: Vec<f64> =
            c["prominences"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g.prominence - w).abs() <= 1e-12 * w.abs().max(1.0), "{name}: {} vs {w}", g.prominence);
        }
        n_peaks += got.len();
    }
    assert!(n_peaks > 100, "{n_peaks}");
}
