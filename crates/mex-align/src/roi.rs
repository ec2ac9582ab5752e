//! Landmark-based regions of interest (brows, eyes, nose, mouth corners) and an eye mask, meant
//! for aligned crops (landmarks mapped through the alignment transform) and for mex-flow.
//!
//! Sizes scale with the inter-ocular distance `d` (distance between the eye centres):
//! * 68 points: the box around each group (brows 17-21 / 22-26, eyes 36-41 / 42-47, nose 27-35)
//!   padded by `0.1·d`; mouth corners: squares of side `0.4·d` around points 48 and 54.
//! * 5 points: eyes = squares of side `0.5·d` at the eye centres; brows = boxes `0.6·d x 0.3·d`
//!   centred `0.35·d` above the eyes; nose = square of side `0.4·d`; mouth corners as above.

use image::{GrayImage, Luma};
use mex_core::{BBox, LandmarkScheme, Landmarks, Point2};
use serde::{Deserialize, Serialize};

use crate::template::five_from_68;

/// A named region of interest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Roi {
    /// Region name: `left_brow`, `right_brow`, `left_eye`, `right_eye`, `nose`,
    /// `left_mouth_corner`, `right_mouth_corner` (left/right as seen in the image).
    pub name: &'static str,
    /// The region.
    pub bbox: BBox,
}

fn around(points: &[Point2], pad: f32) -> BBox {
    let mut b = BBox::new(f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY);
    for p in points {
        b.x0 = b.x0.min(p.x);
        b.y0 = b.y0.min(p.y);
        b.x1 = b.x1.max(p.x);
        b.y1 = b.y1.max(p.y);
    }
    BBox::new(b.x0 - pad, b.y0 - pad, b.x1 + pad, b.y1 + pad)
}

fn centred(c: Point2, w: f32, h: f32) -> BBox {
    BBox::new(c.x - w / 2.0, c.y - h / 2.0, c.x + w / 2.0, c.y + h / 2.0)
}

/// The seven regions of interest of a landmark set.
pub fn landmark_rois(lm: &Landmarks) -> Vec<Roi> {
    let p = &lm.points;
    let five: [Point2; 5] = match lm.scheme {
        LandmarkScheme::Five => [p[0], p[1], p[2], p[3], p[4]],
        LandmarkScheme::SixtyEight => five_from_68(p).unwrap_or_default(),
    };
    let d = five[0].distance(&five[1]).max(1e-3);
    let corner = |c: Point2| centred(c, 0.4 * d, 0.4 * d);
    let r = |name, bbox| Roi { name, bbox };
    match lm.scheme {
        LandmarkScheme::SixtyEight => vec![
            r("left_brow", around(&p[17..22], 0.1 * d)),
            r("right_brow", around(&p[22..27], 0.1 * d)),
            r("left_eye", around(&p[36..42], 0.1 * d)),
            r("right_eye", around(&p[42..48], 0.1 * d)),
            r("nose", around(&p[27..36], 0.1 * d)),
            r("left_mouth_corner", corner(p[48])),
            r("right_mouth_corner", corner(p[54])),
        ],
        LandmarkScheme::Five => {
            let brow = |e: Point2| centred(Point2::new(e.x, e.y - 0.35 * d), 0.6 * d, 0.3 * d);
            vec![
                r("left_brow", brow(five[0])),
                r("right_brow", brow(five[1])),
                r("left_eye", centred(five[0], 0.5 * d, 0.5 * d)),
                r("right_eye", centred(five[1], 0.5 * d, 0.5 * d)),
                r("nose", centred(five[2], 0.4 * d, 0.4 * d)),
                r("left_mouth_corner", corner(five[3])),
                r("right_mouth_corner", corner(five[4])),
            ]
        }
    }
}

/// A `width x height` mask, 255 inside the eye regions (filled ellipses inscribed in the eye ROIs
/// grown by `expand` pixels on each side, as SOFTNet masks the eyes ±15 px), 0 elsewhere.
pub fn eye_mask(lm: &Landmarks, width: u32, height: u32, expand: f32) -> GrayImage {
    let rois = landmark_rois(lm);
    let mut mask = GrayImage::new(width, height);
    for roi in rois.iter().filter(|r| r.name.ends_with("_eye")) {
        let c = roi.bbox.center();
        let rx = (roi.bbox.width() / 2.0 + expand).max(0.5);
        let ry = (roi.bbox.height() / 2.0 + expand).max(0.5);
        let x0 = (c.x - rx).floor().max(0.0) as u32;
        let y0 = (c.y - ry).floor().max(0.0) as u32;
        let x1 = ((c.x + rx).ceil().max(0.0) as u32).min(width);
        let y1 = ((c.y + ry).ceil().max(0.0) as u32).min(height);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = ((x as f32 - c.x) / rx, (y as f32 - c.y) / ry);
                if dx * dx + dy * dy <= 1.0 {
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{template_5, template_68};

    fn scaled(t: Vec<Point2>, s: f32) -> Vec<Point2> {
        t.into_iter().map(|p| Point2::new(p.x * s, p.y * s)).collect()
    }

    #[test]
    fn rois_are_placed_anatomically() {
        for lm in [
            Landmarks::new(LandmarkScheme::Five, scaled(template_5(), 100.0)).unwrap(),
            Landmarks::new(LandmarkScheme::SixtyEight, scaled(template_68(), 100.0)).unwrap(),
        ] {
            let rois = landmark_rois(&lm);
            let get = |n: &str| rois.iter().find(|r| r.name == n).unwrap().bbox;
            assert!(get("left_brow").center().y < get("left_eye").center().y);
            assert!(get("left_eye").center().x < get("right_eye").center().x);
            assert!(get("nose").center().y < get("left_mouth_corner").center().y);
            assert!(get("left_mouth_corner").center().x < get("right_mouth_corner").center().x);
            // The eye mask covers the eye centres and not the nose tip.
            let m = eye_mask(&lm, 100, 100, 2.0);
            let e = get("left_eye").center();
            assert_eq!(m.get_pixel(e.x as u32, e.y as u32)[0], 255);
            let n = get("nose").center();
            assert_eq!(m.get_pixel(n.x as u32, n.y as u32)[0], 0);
        }
    }
}
