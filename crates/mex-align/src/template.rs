//! Canonical landmark templates in a unit square.
//!
//! The 68-point template is OpenFace's mean dlib face (`TEMPLATE` in `openface/align_dlib.py`,
//! Amos et al., Apache-2.0), min-max normalised to `[0, 1]²` over its 68 points as OpenFace's
//! `MINMAX_TEMPLATE` is: x from the left jaw edge (point 0) to the right (16), y from the top of the
//! brows (24) to the chin (8). The 5-point template is derived from it (eye centres = means of
//! points 36-41 and 42-47, nose tip = 30, mouth corners = 48 and 54) so that 5- and 68-point
//! alignment put a face at the same place in the crop.

use mex_core::{LandmarkScheme, Point2};

/// OpenFace's `TEMPLATE` (before min-max normalisation), shared with the synthetic generator.
const OPENFACE_TEMPLATE: [(f64, f64); 68] = mex_core::OPENFACE_MEAN_FACE_68;

/// The 68-point template, min-max normalised to `[0, 1]²`.
pub fn template_68() -> Vec<Point2> {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in &OPENFACE_TEMPLATE {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    OPENFACE_TEMPLATE
        .iter()
        .map(|&(x, y)| Point2::new(((x - x0) / (x1 - x0)) as f32, ((y - y0) / (y1 - y0)) as f32))
        .collect()
}

/// Reduces 68 iBUG points to MTCNN's five (eye centres, nose tip, mouth corners); re-exported
/// from `mex-core`.
pub use mex_core::five_from_68;

/// The 5-point template (derived from the 68-point one), in `[0, 1]²` coordinates.
pub fn template_5() -> Vec<Point2> {
    five_from_68(&template_68()).map(|f| f.to_vec()).unwrap_or_default()
}

/// The unit-square template of a scheme.
pub fn template(scheme: LandmarkScheme) -> Vec<Point2> {
    match scheme {
        LandmarkScheme::Five => template_5(),
        LandmarkScheme::SixtyEight => template_68(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_normalised_and_ordered() {
        let t = template_68();
        assert_eq!(t.len(), 68);
        assert!((t[0].x - 0.0).abs() < 1e-6 && (t[16].x - 1.0).abs() < 1.0e-6);
        assert!((t[8].y - 1.0).abs() < 1e-6 && (t[24].y - 0.0).abs() < 1e-6);
        let f = template_5();
        // Eyes level and left of right; mouth below nose below eyes.
        assert!(f[0].x < f[1].x && (f[0].y - f[1].y).abs() < 0.02);
        assert!(f[2].y > f[0].y && f[3].y > f[2].y && f[3].x < f[4].x);
    }
}
