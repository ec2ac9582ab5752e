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

/// Converts an 8-bit RGB frame to [`GrayF32`] (0..255) with the BT.601 luma weights of
/// [`gray_f32_from_dynamic`], in one pass without an intermediate copy (video frames).
///
/// ```
/// let img = image::RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 0]));
/// let g = mex_core::gray_f32_from_rgb8(&img);
/// assert!((g.get_pixel(0, 0)[0] - 0.299 * 255.0).abs() < 1e-3);
/// ```
pub fn gray_f32_from_rgb8(img: &image::RgbImage) -> GrayF32 {
    let (w, h) = img.dimensions();
    let data = img
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    // The buffer length equals w*h by construction.
    GrayF32::from_raw(w, h, data).unwrap_or_else(|| GrayF32::new(w, h))
}

/// Largest image side any mex decoder accepts, pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest allocation any mex image decoder makes, bytes (1 GiB).
pub const MAX_IMAGE_ALLOC: u64 = 1 << 30;

/// Decodes an image file's bytes with resource limits ([`MAX_IMAGE_SIDE`] per side,
/// [`MAX_IMAGE_ALLOC`] bytes), so that a small file declaring a huge image (a decompression bomb)
/// is an error, not an allocation; and rejects a truncated JPEG (no end-of-image marker after its
/// last scan), which the decoder would otherwise fill in silently.
pub fn decode_image_limited(bytes: &[u8]) -> Result<DynamicImage> {
    let err = |reason: String| CoreError::Decode { reason };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(err("truncated JPEG: no end-of-image marker after the last scan".into()));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    reader.decode().map_err(|e| err(e.to_string()))
}

/// Whether a JPEG stream has an end-of-image marker (`FF D9`) after its last start-of-scan
/// (`FF DA`); inside entropy-coded data `FF` is always stuffed, so the markers are unambiguous.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let last_sos = b.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_eoi = b.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    matches!((last_sos, last_eoi), (Some(s), Some(e)) if e > s)
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
    fn decoder_limits_and_truncated_jpegs() {
        let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]));
        let mut jpg = Vec::new();
        image::DynamicImage::ImageRgb8(img.clone())
            .write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
            .unwrap();
        assert!(decode_image_limited(&jpg).is_ok());
        assert!(decode_image_limited(&jpg[..jpg.len() * 2 / 3]).is_err(), "a truncated JPEG is an error");
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(decode_image_limited(&png).is_ok());
        assert!(decode_image_limited(&png[..png.len() / 2]).is_err(), "a truncated PNG is an error");
        // A PNG header that declares 20000 x 20000 pixels: refused before any allocation.
        let mut bomb = png[..33].to_vec();
        bomb[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        bomb.extend_from_slice(&png[33..]);
        let e = decode_image_limited(&bomb).unwrap_err().to_string();
        assert!(e.contains("limit") || e.contains("Limit") || e.contains("dimensions"), "{e}");
        assert!(decode_image_limited(b"not an image").is_err());
    }

    fn crc32(b: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &x in b {
            c ^= u32::from(x);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

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
