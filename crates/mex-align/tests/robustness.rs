//! Robustness: in-plane rotation and scale invariance of the aligned crop, no-face, gray, tiny,
//! huge and truncated inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use image::{DynamicImage, Rgb, RgbImage};
use mex_align::align::ncc;
use mex_align::{decode_image, AlignConfig, Error, FacePipeline, Mtcnn};
use std::path::Path;
use std::sync::OnceLock;

fn dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pipeline() -> &'static FacePipeline<Mtcnn> {
    static P: OnceLock<FacePipeline<Mtcnn>> = OnceLock::new();
    P.get_or_init(|| FacePipeline::new(Mtcnn::new().unwrap(), AlignConfig::default().build().unwrap()))
}

fn astronaut() -> RgbImage {
    image::open(dir().join("tests/data/astronaut.png")).unwrap().to_rgb8()
}

/// Rotates by `deg` (counter-clockwise on screen) about the centre onto a canvas large enough to
/// hold the whole image, bilinear, black outside.
fn rotate(img: &RgbImage, deg: f64) -> RgbImage {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let (s, c) = deg.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil();
    let nh = (w * s.abs() + h * c.abs()).ceil();
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw / 2.0, nh / 2.0);
    RgbImage::from_fn(nw as u32, nh as u32, |u, v| {
        let (du, dv) = (u as f64 - ncx, v as f64 - ncy);
        // inverse of a screen-CCW rotation (y down)
        let x = c * du - s * dv + cx;
        let y = s * du + c * dv + cy;
        if x < 0.0 || y < 0.0 || x > w - 1.0 || y > h - 1.0 {
            return Rgb([0, 0, 0]);
        }
        let (x0, y0) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(img.width() - 1), (y0 + 1).min(img.height() - 1));
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let mut out = [0u8; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let p = |xx, yy| f64::from(img.get_pixel(xx, yy)[k]);
            let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
            *o = v.round() as u8;
        }
        Rgb(out)
    })
}

#[test]
fn aligned_crop_is_invariant_to_rotation_and_scale() {
    let base = astronaut();
    let p = pipeline();
    let reference = p.align(&DynamicImage::ImageRgb8(base.clone())).unwrap().crop;
    let mut worst = f64::INFINITY;
    for deg in [-30.0, -15.0, 10.0, 30.0] {
        let img = rotate(&base, deg);
        let crop = p.align(&DynamicImage::ImageRgb8(img)).unwrap().crop;
        let r = ncc(&reference, &crop).unwrap();
        eprintln!("rotation {deg:>5}°: NCC {r:.4}");
        worst = worst.min(r);
        assert!(r >= 0.95, "rotation {deg}: NCC {r}");
    }
    for scale in [0.5f32, 0.75, 1.5, 2.0] {
        let (w, h) = ((512.0 * scale) as u32, (512.0 * scale) as u32);
        let img = image::imageops::resize(&base, w, h, image::imageops::FilterType::Triangle);
        let crop = p.align(&DynamicImage::ImageRgb8(img)).unwrap().crop;
        let r = ncc(&reference, &crop).unwrap();
        eprintln!("scale {scale}: NCC {r:.4}");
        worst = worst.min(r);
        assert!(r >= 0.95, "scale {scale}: NCC {r}");
    }
    eprintln!("worst NCC {worst:.4}");
}

#[test]
fn no_face_gives_empty_list_and_noface_error() {
    let img = image::open(dir().join("tests/data/noface.png")).unwrap();
    let p = pipeline();
    assert!(p.detect(&img).unwrap().is_empty());
    assert!(matches!(p.align(&img), Err(Error::NoFace { .. })));
    // A flat image and noise have no face either.
    let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 150, Rgb([128, 128, 128])));
    assert!(p.detect(&flat).unwrap().is_empty());
}

#[test]
fn gray_tiny_huge_and_truncated_inputs() {
    let p = pipeline();
    // Gray input: same face found.
    let gray = DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(astronaut()).to_luma8());
    let faces = p.detect(&gray).unwrap();
    assert_eq!(faces.len(), 1);
    // Tiny images: no face, no panic; an empty image is a typed error.
    for (w, h) in [(1, 1), (5, 5), (11, 40), (24, 24)] {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([200, 100, 50])));
        assert!(p.detect(&img).unwrap().is_empty(), "{w}x{h}");
        assert!(matches!(p.align(&img), Err(Error::NoFace { .. })));
    }
    let empty = DynamicImage::ImageRgb8(RgbImage::new(0, 0));
    assert!(matches!(p.detect(&empty), Err(Error::BadImage { .. })));
    // Huge image (over the default pixel budget): downscaled, the face still found at the right place.
    let base = astronaut();
    let big = image::imageops::resize(&base, 4200, 4200, image::imageops::FilterType::Nearest);
    let faces = p.detect(&DynamicImage::ImageRgb8(big)).unwrap();
    assert_eq!(faces.len(), 1);
    let c = faces[0].0.bbox.center();
    // facenet-pytorch's box on the 512 image is centred near (224, 117).
    assert!(
        (c.x / 4200.0 * 512.0 - 224.4).abs() < 6.0 && (c.y / 4200.0 * 512.0 - 117.1).abs() < 6.0,
        "{c:?}"
    );
    // Truncated and garbage bytes: a typed decode error.
    let bytes = std::fs::read(dir().join("tests/data/noface.png")).unwrap();
    // (A PNG cut inside its final IEND chunk still decodes completely, which is fine.)
    for cut in [0, 8, 33, 100, bytes.len() / 2, bytes.len() - 20] {
        assert!(matches!(decode_image(&bytes[..cut]), Err(Error::Decode { .. })), "cut {cut}");
    }
    assert!(matches!(decode_image(&[0u8; 100]), Err(Error::Decode { .. })));
}
