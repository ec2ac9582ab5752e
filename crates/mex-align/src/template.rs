//! Canonical landmark templates in a unit square.
//!
//! The 68-point template is OpenFace's mean dlib face (`TEMPLATE` in `openface/align_dlib.py`,
//! Amos et al., Apache-2.0), min-max normalised to `[0, 1]²` over its 68 points as OpenFace's
//! `MINMAX_TEMPLATE` is: x from the left jaw edge (point 0) to the right (16), y from the top of the
//! brows (24) to the chin (8). The 5-point template is derived from it (eye centres = means of
//! points 36-41 and 42-47, nose tip = 30, mouth corners = 48 and 54) so that 5- and 68-point
//! alignment put a face at the same place in the crop.

use mex_core::{LandmarkScheme, Point2};

/// OpenFace's `TEMPLATE` (before min-max normalisation).
const OPENFACE_TEMPLATE: [(f64, f64); 68] = [
    (0.0792396913815, 0.339223741112),
    (0.0829219487236, 0.456955367943),
    (0.0967927109165, 0.575648016728),
    (0.122141515615, 0.691921601066),
    (0.168687863544, 0.800341263616),
    (0.239789390707, 0.895732504778),
    (0.325662452515, 0.977068762493),
    (0.422318282013, 1.04329000149),
    (0.531777802068, 1.06080371126),
    (0.641296298053, 1.03981924107),
    (0.738105872266, 0.972268833998),
    (0.824444363295, 0.889624082279),
    (0.894792677532, 0.792494155836),
    (0.939395486253, 0.681546643421),
    (0.96111933829, 0.562238253072),
    (0.970579841181, 0.441758925744),
    (0.971193274221, 0.322118743967),
    (0.163846223133, 0.249151738053),
    (0.21780354657, 0.204255863861),
    (0.291299351124, 0.192367318323),
    (0.367460241458, 0.203582210627),
    (0.4392945113, 0.233135599851),
    (0.586445962425, 0.228141644834),
    (0.660152671635, 0.195923841854),
    (0.737466449096, 0.182360984545),
    (0.813236546239, 0.192828009114),
    (0.8707571886, 0.235293377042),
    (0.51534533827, 0.31863546193),
    (0.516221448289, 0.396200446263),
    (0.517118861835, 0.473797687758),
    (0.51816430343, 0.553157797772),
    (0.433701156035, 0.604054457668),
    (0.475501237769, 0.62076344024),
    (0.520712933176, 0.634268222208),
    (0.565874114041, 0.618796581487),
    (0.607054002672, 0.60157671656),
    (0.252418718401, 0.331052263829),
    (0.298663015648, 0.302646354002),
    (0.355749724218, 0.303020650651),
    (0.403718978315, 0.33867711083),
    (0.352507175597, 0.349987615384),
    (0.296791759886, 0.350478978225),
    (0.631326076346, 0.334136672344),
    (0.679073381078, 0.29645404267),
    (0.73597236153, 0.294721285802),
    (0.782865376271, 0.321305281656),
    (0.740312274764, 0.341849376713),
    (0.68499850091, 0.343734332172),
    (0.353167761422, 0.746189164237),
    (0.414587777921, 0.719053835073),
    (0.477677654595, 0.706835892494),
    (0.522732900812, 0.717092275768),
    (0.569832064287, 0.705414478982),
    (0.635195811927, 0.71565572516),
    (0.69951672331, 0.739419187253),
    (0.639447159575, 0.805236879972),
    (0.576410514055, 0.835436670169),
    (0.525398405766, 0.841706377792),
    (0.47641545769, 0.837505914975),
    (0.41379548902, 0.810045601727),
    (0.380084785646, 0.749979603086),
    (0.477955996282, 0.74513234612),
    (0.523389793327, 0.748924302636),
    (0.571057789237, 0.74332894691),
    (0.672409137852, 0.744177032192),
    (0.572539621444, 0.776609286626),
    (0.5240106503, 0.783370783245),
    (0.477561227414, 0.778476346951),
];

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

/// Reduces 68 iBUG points to MTCNN's five (eye centres, nose tip, mouth corners).
pub fn five_from_68(p: &[Point2]) -> Option<[Point2; 5]> {
    if p.len() != 68 {
        return None;
    }
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        let (sx, sy) = r.fold((0.0, 0.0), |(sx, sy), i| (sx + p[i].x, sy + p[i].y));
        Point2::new(sx / n, sy / n)
    };
    Some([mean(36..42), mean(42..48), p[30], p[48], p[54]])
}

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
