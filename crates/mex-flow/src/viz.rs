//! The Middlebury colour-wheel visualisation of a flow field (Baker et al., IJCV 2011): hue
//! encodes direction, saturation the magnitude relative to the largest (or a given) magnitude.

use crate::{Error, FlowField, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

/// The 55-entry Middlebury colour wheel (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6).
pub fn color_wheel() -> Vec<[f32; 3]> {
    let (ry, yg, gc, cb, bm, mr) = (15, 6, 4, 11, 13, 6);
    let mut w = Vec::with_capacity(55);
    for i in 0..ry {
        w.push([255.0, 255.0 * i as f32 / ry as f32, 0.0]);
    }
    for i in 0..yg {
        w.push([255.0 - 255.0 * i as f32 / yg as f32, 255.0, 0.0]);
    }
    for i in 0..gc {
        w.push([0.0, 255.0, 255.0 * i as f32 / gc as f32]);
    }
    for i in 0..cb {
        w.push([0.0, 255.0 - 255.0 * i as f32 / cb as f32, 255.0]);
    }
    for i in 0..bm {
        w.push([255.0 * i as f32 / bm as f32, 0.0, 255.0]);
    }
    for i in 0..mr {
        w.push([255.0, 0.0, 255.0 - 255.0 * i as f32 / mr as f32]);
    }
    w
}

/// The colour of one normalised flow vector (`|(u, v)| <= 1` is inside the wheel).
pub fn flow_color(wheel: &[[f32; 3]], u: f32, v: f32) -> [u8; 3] {
    if !(u.is_finite() && v.is_finite()) {
        return [0, 0, 0];
    }
    let n = wheel.len();
    let rad = u.hypot(v);
    let a = (-v).atan2(-u) / std::f32::consts::PI;
    let fk = (a + 1.0) / 2.0 * (n - 1) as f32;
    let k0 = (fk.floor() as usize).min(n - 1);
    let k1 = if k0 + 1 == n { 0 } else { k0 + 1 };
    let f = fk - k0 as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        let col = ((1.0 - f) * wheel[k0][c] + f * wheel[k1][c]) / 255.0;
        let col = if rad <= 1.0 { 1.0 - rad * (1.0 - col) } else { col * 0.75 };
        out[c] = (255.0 * col).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Colours a field; magnitudes are divided by `max_magnitude`, or by the field's largest
/// magnitude when `None` (a zero field is white).
pub fn flow_to_rgb(flow: &FlowField, max_magnitude: Option<f32>) -> RgbImage {
    let wheel = color_wheel();
    let maxm = max_magnitude.unwrap_or_else(|| {
        flow.u().iter().zip(flow.v()).map(|(a, b)| a.hypot(*b)).filter(|m| m.is_finite()).fold(0.0, f32::max)
    });
    let scale = if maxm > 0.0 { 1.0 / maxm } else { 0.0 };
    let (w, h) = flow.size();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        Rgb(flow_color(&wheel, flow.u()[i] * scale, flow.v()[i] * scale))
    })
}

/// Writes the colour-wheel visualisation as PNG, through a temporary file in the same folder and
/// a rename (a failed write leaves no file).
pub fn save_flow_png(path: impl AsRef<Path>, flow: &FlowField, max_magnitude: Option<f32>) -> Result<()> {
    save_png_atomic(path.as_ref(), |tmp| {
        flow_to_rgb(flow, max_magnitude).save_with_format(tmp, image::ImageFormat::Png)
    })
}

/// Writes `path` through [`mex_core::write_atomic_with`], errors naming `path`.
fn save_png_atomic(p: &Path, save: impl FnOnce(&Path) -> image::ImageResult<()>) -> Result<()> {
    let shown = || p.display().to_string();
    mex_core::write_atomic_with(p, |tmp| save(tmp).map_err(|e| Error::Image { path: shown(), source: e }))
        .map_err(|e| e.into_error(|_, source| Error::Io { path: shown(), source }))
}

/// Writes a scalar plane (e.g. optical strain) as an 8-bit gray PNG, min-max scaled, through a
/// temporary file in the same folder and a rename (a failed write leaves no file).
pub fn save_plane_png(path: impl AsRef<Path>, plane: &[f32], w: usize, h: usize) -> Result<()> {
    let p = path.as_ref();
    if plane.len() != w * h {
        return Err(Error::SizeMismatch { left: (plane.len(), 1), right: (w, h) });
    }
    let mut v = plane.to_vec();
    crate::strain::min_max_normalise(&mut v);
    let img = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([(v[y as usize * w + x as usize] * 255.0).round() as u8])
    });
    save_png_atomic(p, |tmp| img.save_with_format(tmp, image::ImageFormat::Png))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_colours_of_cardinal_directions() {
        let w = color_wheel();
        assert_eq!(w.len(), 55);
        // zero flow is white; unit flow to the right is red (wheel index 0)
        assert_eq!(flow_color(&w, 0.0, 0.0), [255, 255, 255]);
        assert_eq!(flow_color(&w, 1.0, 0.0), [255, 0, 0]);
        // unit flow to the left is the opposite side: wheel index 27, in the cyan-blue segment
        assert_eq!(flow_color(&w, -1.0, 0.0), [0, 209, 255]);
        // upward flow (v = -1) is index 40.5: between blue and magenta
        let up = flow_color(&w, 0.0, -1.0);
        assert!(up[2] == 255 && up[1] == 0 && up[0] > 0, "{up:?}");
        // outside the wheel colours are darkened
        assert_eq!(flow_color(&w, 2.0, 0.0), [191, 0, 0]);
    }

    #[test]
    fn pngs_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let f = FlowField::from_fn(6, 4, |x, y| (x as f32 - 2.0, y as f32));
        let p = dir.path().join("flow.png");
        save_flow_png(&p, &f, None).unwrap();
        assert_eq!(image::open(&p).unwrap().to_rgb8(), flow_to_rgb(&f, None));
        let q = dir.path().join("strain.png");
        save_plane_png(&q, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 3, 2).unwrap();
        assert_eq!(image::open(&q).unwrap().to_luma8().get_pixel(2, 1).0, [255]);
        // a folder in the way: an error naming the path, and no temporary file left behind
        let blocked = dir.path().join("blocked.png");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let e = save_flow_png(&blocked, &f, None).unwrap_err();
        assert!(e.to_string().contains("blocked.png"), "{e}");
        assert!(save_plane_png(&blocked, &[0.0; 6], 3, 2).is_err());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["blocked.png", "flow.png", "strain.png"]);
    }

    #[test]
    fn flow_to_rgb_has_field_size() {
        let f = FlowField::from_fn(5, 3, |x, _| (x as f32, 0.0));
        let img = flow_to_rgb(&f, None);
        assert_eq!(img.dimensions(), (5, 3));
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
    }
}
