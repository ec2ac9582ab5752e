//! Facial-action-like displacement fields: each action is a sum of anisotropic Gaussian bumps
//! placed on the face's anchors, pushing the skin in a fixed direction.

use super::face::FaceGeometry;
use mex_core::Point2;
use serde::{Deserialize, Serialize};

/// The facial actions the generator animates (FACS action units, approximated by smooth local
/// displacement fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FacialAction {
    /// AU1+2: inner and outer brow raiser (surprise).
    BrowRaise,
    /// AU4: brow lowerer (negative).
    BrowLower,
    /// AU6+12: cheek raiser and lip corner puller, a smile (positive).
    Smile,
    /// AU9: nose wrinkler (negative).
    NoseWrinkle,
    /// AU14: dimpler (negative).
    Dimpler,
    /// AU15: lip corner depressor (negative).
    LipCornerDepressor,
    /// AU45: blink (upper lids move down; not an expression).
    Blink,
}

impl FacialAction {
    /// The expression actions, in a fixed order.
    pub const EXPRESSIONS: [FacialAction; 6] = [
        FacialAction::BrowRaise,
        FacialAction::BrowLower,
        FacialAction::Smile,
        FacialAction::NoseWrinkle,
        FacialAction::Dimpler,
        FacialAction::LipCornerDepressor,
    ];

    /// The negative-class actions (MEGC mapping).
    pub const NEGATIVE: [FacialAction; 4] = [
        FacialAction::BrowLower,
        FacialAction::NoseWrinkle,
        FacialAction::LipCornerDepressor,
        FacialAction::Dimpler,
    ];

    /// FACS action-unit numbers.
    pub fn aus(self) -> &'static [u32] {
        match self {
            FacialAction::BrowRaise => &[1, 2],
            FacialAction::BrowLower => &[4],
            FacialAction::Smile => &[6, 12],
            FacialAction::NoseWrinkle => &[9],
            FacialAction::Dimpler => &[14],
            FacialAction::LipCornerDepressor => &[15],
            FacialAction::Blink => &[45],
        }
    }

    /// Action units as the spreadsheets write them (`1+2`, `6+12`).
    pub fn au_string(self) -> String {
        self.aus().iter().map(u32::to_string).collect::<Vec<_>>().join("+")
    }

    /// MEGC 3-class label (0 negative, 1 positive, 2 surprise); `None` for a blink.
    pub fn megc3_label(self) -> Option<usize> {
        match self {
            FacialAction::BrowRaise => Some(2),
            FacialAction::Smile => Some(1),
            FacialAction::Blink => None,
            _ => Some(0),
        }
    }

    /// An emotion word for the action (`surprise`, `happiness`, `disgust`, ...).
    pub fn emotion(self) -> &'static str {
        match self {
            FacialAction::BrowRaise => "surprise",
            FacialAction::Smile => "happiness",
            FacialAction::NoseWrinkle => "disgust",
            FacialAction::BrowLower => "anger",
            FacialAction::LipCornerDepressor => "sadness",
            FacialAction::Dimpler => "contempt",
            FacialAction::Blink => "none",
        }
    }

    /// The Gaussian bumps of the action on a face (unnormalised weights).
    pub fn bumps(self, g: &FaceGeometry) -> Vec<Bump> {
        self.bumps_sided(g, [1.0, 1.0])
    }

    /// The bumps with the image-left side's weights multiplied by `gains[0]` and the
    /// image-right side's by `gains[1]` (bumps on the midline by their mean): an asymmetric
    /// action whose left/right displacement ratio is `gains[0] / gains[1]` (before the field is
    /// normalised to a unit peak). `[1, 1]` gives [`FacialAction::bumps`] exactly.
    pub fn bumps_sided(self, g: &FaceGeometry, gains: [f32; 2]) -> Vec<Bump> {
        let d = g.interocular();
        let e = g.eye_axis();
        let n = g.down_axis();
        let up = (-n.0, -n.1);
        // `out[i]`: direction away from the face's midline on side i.
        let out = [(-e.0, -e.1), e];
        let comb = |a: (f32, f32), ka: f32, b: (f32, f32), kb: f32| {
            let v = (ka * a.0 + kb * b.0, ka * a.1 + kb * b.1);
            let l = v.0.hypot(v.1).max(1e-6);
            (v.0 / l, v.1 / l)
        };
        let at = |c: Point2, a: f32, b: f32| {
            Point2::new(c.x + d * (a * e.0 + b * n.0), c.y + d * (a * e.1 + b * n.1))
        };
        let bump = |c: Point2, s_along: f32, s_across: f32, dir: (f32, f32), w: f32| Bump {
            center: c,
            sigma_along: s_along * d,
            sigma_across: s_across * d,
            axis: e,
            dir,
            weight: w,
        };
        let mut v = Vec::new();
        for (i, &o) in out.iter().enumerate() {
            let inward = (-o.0, -o.1);
            let first = v.len();
            match self {
                FacialAction::BrowRaise => {
                    v.push(bump(g.brow_inner[i], 0.2, 0.18, up, 1.0));
                    v.push(bump(g.brow_mid[i], 0.22, 0.2, up, 1.0));
                    v.push(bump(g.brow_outer[i], 0.18, 0.18, up, 0.8));
                }
                FacialAction::BrowLower => {
                    v.push(bump(g.brow_inner[i], 0.2, 0.18, comb(inward, 0.5, n, 0.85), 1.0));
                    v.push(bump(g.brow_mid[i], 0.22, 0.18, n, 0.5));
                }
                FacialAction::Smile => {
                    v.push(bump(g.mouth_corner[i], 0.18, 0.18, comb(o, 0.6, up, 0.8), 1.0));
                    v.push(bump(at(g.eye[i], if i == 0 { -0.08 } else { 0.08 }, 0.55), 0.25, 0.2, up, 0.5));
                }
                FacialAction::NoseWrinkle => {
                    let side = if i == 0 { -0.15 } else { 0.15 };
                    v.push(bump(at(g.nose_root, side, 0.45), 0.15, 0.18, comb(up, 1.0, inward, 0.3), 1.0));
                    v.push(bump(g.brow_inner[i], 0.2, 0.18, n, 0.3));
                }
                FacialAction::Dimpler => {
                    v.push(bump(g.mouth_corner[i], 0.17, 0.17, comb(o, 1.0, up, 0.1), 1.0));
                }
                FacialAction::LipCornerDepressor => {
                    v.push(bump(g.mouth_corner[i], 0.17, 0.17, comb(n, 1.0, o, 0.2), 1.0));
                }
                FacialAction::Blink => {
                    v.push(bump(at(g.eye[i], 0.0, -0.08), 0.22, 0.12, n, 1.0));
                }
            }
            for b in &mut v[first..] {
                b.weight *= gains[i];
            }
        }
        let gm = 0.5 * (gains[0] + gains[1]);
        match self {
            FacialAction::NoseWrinkle => v.push(bump(g.upper_lip, 0.2, 0.15, up, 0.4 * gm)),
            FacialAction::LipCornerDepressor => v.push(bump(g.lower_lip, 0.25, 0.15, n, 0.3 * gm)),
            _ => {}
        }
        v
    }
}

/// One anisotropic Gaussian displacement bump:
/// `weight · dir · exp(-(a²/2σa² + b²/2σb²))` where `(a, b)` are the offsets from `center`
/// along `axis` and across it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bump {
    /// Centre in pixels.
    pub center: Point2,
    /// Spread along `axis`, pixels.
    pub sigma_along: f32,
    /// Spread across `axis`, pixels.
    pub sigma_across: f32,
    /// Unit vector of the bump's first axis (the eye axis).
    pub axis: (f32, f32),
    /// Unit displacement direction.
    pub dir: (f32, f32),
    /// Relative weight.
    pub weight: f32,
}

impl Bump {
    /// Displacement at `(x, y)`.
    pub fn eval(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.center.x, y - self.center.y);
        let a = dx * self.axis.0 + dy * self.axis.1;
        let b = -dx * self.axis.1 + dy * self.axis.0;
        let q = a * a / (2.0 * self.sigma_along * self.sigma_along)
            + b * b / (2.0 * self.sigma_across * self.sigma_across);
        if q > 18.0 {
            return (0.0, 0.0);
        }
        let k = self.weight * (-q).exp();
        (k * self.dir.0, k * self.dir.1)
    }
}

/// A displacement field sampled on the pixel grid: `dx`, `dy` planes, row-major. Between pixels
/// the field is the bilinear interpolant of the planes; that interpolant *is* the field the
/// renderer and the ground truth both use, so the ground truth is exact.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplacementField {
    /// Width of the planes.
    pub width: usize,
    /// Height of the planes.
    pub height: usize,
    /// Horizontal component.
    pub dx: Vec<f32>,
    /// Vertical component.
    pub dy: Vec<f32>,
}

impl DisplacementField {
    /// Samples the bumps on a `width x height` grid and scales the result so that its largest
    /// displacement magnitude is 1 pixel (an all-zero field stays zero).
    pub fn from_bumps(width: usize, height: usize, bumps: &[Bump]) -> Self {
        let mut dx = vec![0.0f32; width * height];
        let mut dy = vec![0.0f32; width * height];
        for b in bumps {
            // Only the bump's support (the exp cut-off at q = 18, i.e. 6 sigma) is visited.
            let r = 6.0 * b.sigma_along.max(b.sigma_across);
            let x0 = ((b.center.x - r).floor().max(0.0)) as usize;
            let y0 = ((b.center.y - r).floor().max(0.0)) as usize;
            let x1 = ((b.center.x + r).ceil().max(0.0) as usize).min(width);
            let y1 = ((b.center.y + r).ceil().max(0.0) as usize).min(height);
            for y in y0..y1 {
                for x in x0..x1 {
                    let (u, v) = b.eval(x as f32, y as f32);
                    dx[y * width + x] += u;
                    dy[y * width + x] += v;
                }
            }
        }
        let m = dx.iter().zip(&dy).map(|(a, b)| a.hypot(*b)).fold(0.0f32, f32::max);
        if m > 0.0 {
            for (a, b) in dx.iter_mut().zip(dy.iter_mut()) {
                *a /= m;
                *b /= m;
            }
        }
        Self { width, height, dx, dy }
    }

    /// Bilinear interpolation at `(x, y)`, clamped to the grid.
    #[inline]
    pub fn sample(&self, x: f32, y: f32) -> (f32, f32) {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return (0.0, 0.0);
        }
        let xf = x.clamp(0.0, (w - 1) as f32);
        let yf = y.clamp(0.0, (h - 1) as f32);
        let x0 = (xf as usize).min(w.saturating_sub(2));
        let y0 = (yf as usize).min(h.saturating_sub(2));
        let (fx, fy) = (xf - x0 as f32, yf - y0 as f32);
        let x1 = (x0 + 1).min(w - 1);
        let y1 = (y0 + 1).min(h - 1);
        let (i00, i01, i10, i11) = (y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1);
        let lerp = |p: &[f32]| {
            let top = p[i00] + fx * (p[i01] - p[i00]);
            let bot = p[i10] + fx * (p[i11] - p[i10]);
            top + fy * (bot - top)
        };
        (lerp(&self.dx), lerp(&self.dy))
    }

    /// The largest absolute forward difference of either component (a Lipschitz bound of the
    /// bilinear interpolant in each axis direction); the fixed-point inversion needs
    /// `amplitude · 2 · max_gradient < 1`.
    pub fn max_gradient(&self) -> f32 {
        let (w, h) = (self.width, self.height);
        let mut m = 0.0f32;
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if x + 1 < w {
                    m = m.max((self.dx[i + 1] - self.dx[i]).abs()).max((self.dy[i + 1] - self.dy[i]).abs());
                }
                if y + 1 < h {
                    m = m.max((self.dx[i + w] - self.dx[i]).abs()).max((self.dy[i + w] - self.dy[i]).abs());
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_have_unit_peak_and_point_the_right_way() {
        let g = FaceGeometry::astronaut();
        for a in FacialAction::EXPRESSIONS.iter().chain([&FacialAction::Blink]) {
            let f = DisplacementField::from_bumps(200, 200, &a.bumps(&g));
            let m = f.dx.iter().zip(&f.dy).map(|(a, b)| a.hypot(*b)).fold(0.0f32, f32::max);
            assert!((m - 1.0).abs() < 1e-5, "{a:?}");
            assert!(f.max_gradient() < 0.25, "{a:?} {}", f.max_gradient());
        }
        // Brow raise moves the brows up; the smile moves the image-left mouth corner left and up.
        let br = DisplacementField::from_bumps(200, 200, &FacialAction::BrowRaise.bumps(&g));
        let (_, v) = br.sample(g.brow_mid[0].x, g.brow_mid[0].y);
        assert!(v < -0.8);
        let sm = DisplacementField::from_bumps(200, 200, &FacialAction::Smile.bumps(&g));
        let (u, v) = sm.sample(g.mouth_corner[0].x, g.mouth_corner[0].y);
        assert!(u < -0.3 && v < -0.4, "{u} {v}");
        // Far from the face nothing moves.
        assert_eq!(sm.sample(5.0, 5.0), (0.0, 0.0));
        assert_eq!(FacialAction::Smile.megc3_label(), Some(1));
        assert_eq!(FacialAction::Smile.au_string(), "6+12");
    }
}
