use crate::{CoreError, Result};
use image::{DynamicImage, GrayImage, ImageBuffer, Luma};

/// A grayscale frame of `f32` intensities (0..255 scale by convention, as OpenCV's float images
/// of 8-bit sources), the frame type inside every mex pipeline.
pub type GrayF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Converts an 8-bit gray image to [`GrayF32`] on the 0..255 scale.
pub fn gray_f32_from_luma8(img: &GrayImage) -> GrayF32 {
    let (w, h) = img.dimensions();
    let data = img.as_raw().iter().map(|&p| f32::from(p)).collect();
    // The buffer length equals w*h by construction.
    GrayF32::from_raw(w, h, data).unwrap_or_else(|| GrayF32::new(w, h))
}

/// Converts any decoded image to [`GrayF32`] (0..255) with the ITU-R BT.601 luma weights that
/// OpenCV's `cvtColor(..., COLOR_RGB2GRAY)` uses. Errors on an empty image.
pub fn gray_f32_from_dynamic(img: &DynamicImage) -> Result<GrayF32> {
    if img.width() == 0 || img.height() == 0 {
        return Err(CoreError::Empty { what: "image" });
    }
    let rgb = img.to_rgb32f();
    let (w, h) = rgb.dimensions();
    let data: Vec<f32> = rgb.pixels().map(|p| 255.0 * (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])).collect();
    GrayF32::from_raw(w, h, data).ok_or(CoreError::Empty { what: "image" })
}

/// Converts a [`GrayF32`] (0..255) to 8-bit, rounding and clamping.
pub fn gray_f32_to_luma8(img: &GrayF32) -> GrayImage {
    let (w, h) = img.dimensions();
    let data = img.as_raw().iter().map(|&p| p.round().clamp(0.0, 255.0) as u8).collect();
    GrayImage::from_raw(w, h, data).unwrap_or_else(|| GrayImage::new(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_luma8() {
        let g = GrayImage::from_fn(5, 3, |x, y| Luma([(x * 40 + y) as u8]));
        assert_eq!(gray_f32_to_luma8(&gray_f32_from_luma8(&g)), g);
    }

    #[test]
    fn rgb_to_gray_weights() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1, 1, image::Rgb([255, 0, 0])));
        let g = gray_f32_from_dynamic(&img).unwrap();
        assert!((g.get_pixel(0, 0)[0] - 0.299 * 255.0).abs() < 1e-3);
        assert!(gray_f32_from_dynamic(&DynamicImage::new_luma8(0, 0)).is_err());
    }
}
