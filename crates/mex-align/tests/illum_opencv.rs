//! Histogram equalisation and CLAHE against OpenCV 5's outputs
//! (fixtures from scripts/align_clahe_reference.py).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_align::illum::{clahe, equalize_hist, ClaheConfig};
use mex_core::{gray_f32_from_luma8, GrayF32};
use std::path::Path;

fn load(name: &str) -> GrayF32 {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/illum").join(name);
    gray_f32_from_luma8(&image::open(p).unwrap().to_luma8())
}

fn max_diff(a: &GrayF32, b: &GrayF32) -> (f32, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut worst = 0.0f32;
    let mut n = 0;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = (x - y).abs();
        worst = worst.max(d);
        n += usize::from(d > 0.0);
    }
    (worst, n)
}

#[test]
fn matches_opencv() {
    for stem in ["noface", "rotated20"] {
        let input = load(&format!("{stem}_in.png"));
        let (d, n) = max_diff(&equalize_hist(&input).unwrap(), &load(&format!("{stem}_eq.png")));
        eprintln!("{stem} equalizeHist: max diff {d}, {n} pixels differ");
        assert_eq!(d, 0.0);
        for (cfg, file) in [
            (ClaheConfig { clip_limit: 40.0, tiles_x: 8, tiles_y: 8 }, "clahe40_8"),
            (ClaheConfig { clip_limit: 2.0, tiles_x: 4, tiles_y: 4 }, "clahe2_4"),
        ] {
            let (d, n) = max_diff(&clahe(&input, &cfg).unwrap(), &load(&format!("{stem}_{file}.png")));
            eprintln!("{stem} CLAHE {file}: max diff {d}, {n} pixels differ");
            assert!(d <= 1.0, "{stem} {file}: max diff {d}");
        }
    }
}
