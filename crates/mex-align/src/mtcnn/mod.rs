//! MTCNN face detection (Zhang et al. 2016), a faithful port of facenet-pytorch 2.6.0's
//! `MTCNN.detect` / `detect_face`: the same image pyramid, `interpolate(mode="area")` resampling,
//! per-scale and cross-scale NMS, box regression, squaring (`rerec`), padding, 24x24 and 48x48 crops,
//! thresholds and the final `Min` NMS. The weights are facenet-pytorch's (MIT), vendored in the crate.

mod direct;
mod kernels;
mod nets;
pub(crate) mod ops;

use candle_core::Device;
use image::RgbImage;
use mex_core::{BBox, LandmarkScheme, Landmarks, Point2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use direct::PnetScratch;
use kernels::with_scratch;
// The three networks on their own (internals of the detector; not part of the supported API).
#[doc(hidden)]
pub use nets::{ONet, PNet, RNet};
use ops::{
    area_resize_norm, bbreg, generate_bounding_box, nms_min, nms_torchvision, pad_window, rerec, Cand,
    ResizeScratch,
};

use crate::{Error, Face, FaceDetector, Result};

thread_local! {
    /// Per-thread buffers of P-Net on one pyramid level (planes, activations).
    static PYRAMID_SCRATCH: std::cell::RefCell<(Vec<f32>, PnetScratch)> =
        std::cell::RefCell::new(Default::default());
    /// Per-thread integral images of the image being searched.
    static IMAGE: std::cell::RefCell<Image3> = std::cell::RefCell::new(Image3::default());
    /// Per-thread batch of R-Net / O-Net crops, kept between calls.
    static CROP_BATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread resampling buffers (pyramid levels and R-Net / O-Net crops).
    static CROP_SCRATCH: std::cell::RefCell<ResizeScratch> = std::cell::RefCell::new(Default::default());
}

/// Largest `max_pixels`: the resampling sums 8-bit pixels over windows of up to a whole image in
/// 32-bit integers, exact while `pixels · 255 < 2^32`.
const MAX_PIXELS_LIMIT: u64 = u32::MAX as u64 / 255;

/// Largest batch of R-Net / O-Net crops run at once (bounds memory on busy images).
const STAGE_BATCH: usize = 256;

/// MTCNN parameters. `Default` = facenet-pytorch's `MTCNN()` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MtcnnConfig {
    /// Smallest face side searched for, in pixels (facenet-pytorch: 20).
    pub min_face_size: f64,
    /// Score thresholds of P-Net, R-Net and O-Net (facenet-pytorch: 0.6, 0.7, 0.7).
    pub thresholds: [f32; 3],
    /// Scale step of the image pyramid (facenet-pytorch: 0.709).
    pub factor: f64,
    /// Order the faces by decreasing box area (facenet-pytorch's `select_largest=True`);
    /// otherwise by decreasing score.
    pub select_largest: bool,
    /// Images with more pixels than this are area-downscaled before detection and the results
    /// mapped back (bounds memory and time on huge inputs; 4096x4096 by default, which leaves every
    /// ordinary image untouched so that results equal facenet-pytorch's; at most 16 843 009).
    pub max_pixels: u64,
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        Self {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
            select_largest: true,
            max_pixels: 4096 * 4096,
        }
    }
}

impl MtcnnConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.min_face_size.is_finite() && self.min_face_size >= 12.0) {
            return Err(Error::param("min_face_size", self.min_face_size, "must be finite and >= 12"));
        }
        if !(self.factor.is_finite() && self.factor > 0.05 && self.factor < 0.99) {
            return Err(Error::param("factor", self.factor, "must lie in (0.05, 0.99)"));
        }
        for t in self.thresholds {
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::param(
                    "thresholds",
                    format!("{:?}", self.thresholds),
                    "must lie in [0, 1]",
                ));
            }
        }
        if !(144..=MAX_PIXELS_LIMIT).contains(&self.max_pixels) {
            return Err(Error::param(
                "max_pixels",
                self.max_pixels,
                "must lie in [144 (12x12), 16 843 009] (sums of 8-bit pixels must fit 32 bits)",
            ));
        }
        Ok(())
    }

    /// Validates and loads the networks (vendored weights, CPU).
    pub fn build(&self) -> Result<Mtcnn> {
        self.validate()?;
        Mtcnn::with_config(self.clone())
    }
}

/// The MTCNN detector (P-Net, R-Net, O-Net with facenet-pytorch's weights), on CPU.
///
/// ```
/// use mex_align::Mtcnn;
/// # fn main() -> mex_align::Result<()> {
/// let mtcnn = Mtcnn::new()?; // vendored weights, nothing downloaded
/// let img = mex_align::load_image("tests/data/astronaut.png")?.to_rgb8();
/// let faces = mtcnn.detect_rgb(&img)?; // largest face first
/// assert_eq!(faces.len(), 1);
/// assert!(faces[0].score > 0.99);
/// assert_eq!(faces[0].landmarks.points.len(), 5); // eyes, nose tip, mouth corners
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mtcnn {
    config: MtcnnConfig,
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
}

/// Scratch state of one detection.
#[derive(Default)]
struct Image3 {
    /// Integral images of the planes `R, G, B` (`(h + 1) x (w + 1)` each).
    ii: [Vec<u32>; 3],
    w: usize,
    h: usize,
}

impl Image3 {
    /// Refills the integral images from `img`, reusing the buffers.
    fn load(&mut self, img: &RgbImage) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        (self.w, self.h) = (w, h);
        ops::integral_images(img.as_raw(), w, h, &mut self.ii);
    }

    /// The whole image area-resampled into `dst` (3 planes of `ow x oh`) and normalised, one plane
    /// per task (the same values as [`Self::resample_into`] over the full window).
    fn pyramid_level_into(&self, dst: &mut [f32], (ow, oh): (usize, usize)) {
        let full = (0, 0, self.w, self.h);
        dst.par_chunks_exact_mut(ow * oh).zip(self.ii.par_iter()).for_each(|(d, ii)| {
            with_scratch(&CROP_SCRATCH, |tmp| area_resize_norm(ii, self.w + 1, full, d, (ow, oh), tmp));
        });
    }

    /// Area-resamples the window into `dst` (3 planes of `ow x oh`) and normalises it as
    /// facenet-pytorch does: `(x - 127.5) * 0.0078125`.
    fn resample_into(
        &self,
        win: (usize, usize, usize, usize),
        dst: &mut [f32],
        (ow, oh): (usize, usize),
        tmp: &mut ResizeScratch,
    ) {
        for (ii, d) in self.ii.iter().zip(dst.chunks_exact_mut(ow * oh)) {
            area_resize_norm(ii, self.w + 1, win, d, (ow, oh), tmp);
        }
    }
}

impl Mtcnn {
    /// The detector with facenet-pytorch's defaults.
    pub fn new() -> Result<Self> {
        MtcnnConfig::default().build()
    }

    fn with_config(config: MtcnnConfig) -> Result<Self> {
        let device = Device::Cpu;
        Ok(Self {
            pnet: PNet::load_vendored(&device)?,
            rnet: RNet::load_vendored(&device)?,
            onet: ONet::load_vendored(&device)?,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MtcnnConfig {
        &self.config
    }

    /// The pyramid scales facenet-pytorch uses for an image of this size.
    pub fn scales(&self, w: usize, h: usize) -> Vec<f64> {
        let m = 12.0 / self.config.min_face_size;
        let mut minl = w.min(h) as f64 * m;
        let mut scale = m;
        let mut scales = Vec::new();
        while minl >= 12.0 {
            scales.push(scale);
            scale *= self.config.factor;
            minl *= self.config.factor;
        }
        scales
    }

    /// The image area-reduced below `max_pixels` with the factors back to input pixels, or `None`
    /// when it is small enough already.
    fn downscaled(&self, img: &RgbImage) -> Option<(RgbImage, f32, f32)> {
        let (w, h) = img.dimensions();
        let pixels = u64::from(w) * u64::from(h);
        if pixels <= self.config.max_pixels {
            return None;
        }
        let f = (self.config.max_pixels as f64 / pixels as f64).sqrt();
        let nw = ((f64::from(w) * f).floor() as u32).max(1);
        let nh = ((f64::from(h) * f).floor() as u32).max(1);
        let small = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
        Some((small, w as f32 / nw as f32, h as f32 / nh as f32))
    }

    /// Detects faces in an RGB image. Boxes and landmarks are in input pixels; an image without a
    /// face (or too small for the smallest face) gives an empty list. Errors only on an empty image.
    pub fn detect_rgb(&self, img: &RgbImage) -> Result<Vec<Face>> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::BadImage { width: w, height: h, reason: "empty image".into() });
        }
        if let Some((small, sx, sy)) = self.downscaled(img) {
            let faces = self.detect_rgb(&small)?;
            return Ok(faces.into_iter().map(|f| scale_face(f, sx, sy)).collect());
        }
        let run = || {
            with_scratch(&IMAGE, |im| {
                im.load(img);
                let boxes = self.stage1(im)?;
                let boxes = self.stage2(im, boxes)?;
                self.stage3(im, boxes)
            })
        };
        if rayon::current_thread_index().is_some() {
            return run();
        }
        // From outside the pool: on one of its workers (the caller waits), so that the parallel
        // loops of the three stages start there instead of each waking a worker and putting
        // the caller to sleep (3 % of a one-thread detection was in the kernel's wake-ups).
        rayon::join(run, || ()).0
    }

    /// Re-fits faces at given boxes with O-Net alone (the last MTCNN stage): for each box, the
    /// face O-Net finds in its squared window (refined box, score, five landmarks), or `None`
    /// where O-Net's score is at or below the third threshold. This is the cheap per-frame step
    /// of [`crate::MultiFaceTracker`] between full detections (about one 48x48 network pass per
    /// face instead of the whole pyramid).
    pub fn refine_rgb(&self, img: &RgbImage, boxes: &[BBox]) -> Result<Vec<Option<Face>>> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::BadImage { width: w, height: h, reason: "empty image".into() });
        }
        let mut out: Vec<Option<Face>> = vec![None; boxes.len()];
        if boxes.is_empty() {
            return Ok(out);
        }
        if let Some((small, sx, sy)) = self.downscaled(img) {
            // Same downscaling as detection: the integral images must stay exact.
            let scaled: Vec<BBox> =
                boxes.iter().map(|b| BBox::new(b.x0 / sx, b.y0 / sy, b.x1 / sx, b.y1 / sy)).collect();
            return Ok(self
                .refine_rgb(&small, &scaled)?
                .into_iter()
                .map(|f| f.map(|f| scale_face(f, sx, sy)))
                .collect());
        }
        let cands: Vec<Cand> = boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                [b.x0, b.y0, b.x1, b.y1].iter().all(|v| v.is_finite()) && b.x1 > b.x0 && b.y1 > b.y0
            })
            .map(|(i, b)| {
                // Slot 5 carries the box's index through the crop stage.
                let mut c = [b.x0, b.y0, b.x1, b.y1, 0.0, i as f32, 0.0, 0.0, 0.0];
                rerec(&mut c);
                c
            })
            .collect();
        let thresh = self.config.thresholds[2];
        let mut found: Vec<(usize, Face)> = Vec::new();
        let mut err = None;
        with_scratch(&IMAGE, |im| {
            im.load(img);
            self.run_on_crops(
                im,
                &cands,
                48,
                |c| self.onet.run(c),
                |b, o| {
                    if let Some((c, p)) = decode_onet(b, o, thresh) {
                        let pts = (0..5).map(|j| Point2::new(p[2 * j], p[2 * j + 1])).collect();
                        match Landmarks::new(LandmarkScheme::Five, pts) {
                            Ok(landmarks) => found.push((
                                b[5] as usize,
                                Face { bbox: BBox::new(c[0], c[1], c[2], c[3]), score: c[4], landmarks },
                            )),
                            Err(e) => err = Some(e),
                        }
                    }
                },
            )
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        for (i, f) in found {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(f);
            }
        }
        Ok(out)
    }

    /// P-Net over the pyramid, per-scale NMS 0.5, cross-scale NMS 0.7, regression, squaring.
    fn stage1(&self, im: &Image3) -> Result<Vec<Cand>> {
        let scales = self.scales(im.w, im.h);
        let thresh = self.config.thresholds[0];
        let per_scale: Vec<Result<Vec<Cand>>> = scales
            .par_iter()
            .map(|&scale| {
                with_scratch(&PYRAMID_SCRATCH, |(buf, scratch)| {
                    let hs = (im.h as f64 * scale + 1.0) as usize;
                    let ws = (im.w as f64 * scale + 1.0) as usize;
                    kernels::fit(buf, 3 * hs * ws);
                    let planes = &mut buf[..3 * hs * ws];
                    im.pyramid_level_into(planes, (ws, hs));
                    // Only probabilities that may reach the threshold matter here.
                    let (reg, probs, oh, ow) = self.pnet.run_planes(planes, hs, ws, scratch, Some(thresh))?;
                    let mut cands = Vec::new();
                    generate_bounding_box(&reg, &probs, (ow, oh), scale, thresh, &mut cands);
                    let pick = nms_torchvision(&cands, 0.5);
                    Ok(pick.into_iter().map(|i| cands[i]).collect())
                })
            })
            .collect();
        let mut all = Vec::new();
        for r in per_scale {
            all.extend(r?);
        }
        let pick = nms_torchvision(&all, 0.7);
        let mut out = Vec::with_capacity(pick.len());
        for i in pick {
            let b = all[i];
            let regw = b[2] - b[0];
            let regh = b[3] - b[1];
            let mut c = [
                b[0] + b[5] * regw,
                b[1] + b[6] * regh,
                b[2] + b[7] * regw,
                b[3] + b[8] * regh,
                b[4],
                0.0,
                0.0,
                0.0,
                0.0,
            ];
            rerec(&mut c);
            out.push(c);
        }
        Ok(out)
    }

    /// Crops every box (after `pad`) and area-resamples it to `size x size`, normalised; boxes whose
    /// window is empty are dropped. Returns the kept boxes; the batch is `buf[..kept · 3 · size²]`.
    fn crops(&self, im: &Image3, boxes: &[Cand], size: usize, buf: &mut Vec<f32>) -> Vec<Cand> {
        let per = 3 * size * size;
        let kept: Vec<(Cand, (usize, usize, usize, usize))> =
            boxes.iter().filter_map(|b| pad_window(b, im.w, im.h).map(|win| (*b, win))).collect();
        // Every value is written below.
        kernels::fit(buf, kept.len() * per);
        buf[..kept.len() * per].par_chunks_mut(per).zip(kept.par_iter()).for_each(|(dst, (_, win))| {
            with_scratch(&CROP_SCRATCH, |tmp| im.resample_into(*win, dst, (size, size), tmp));
        });
        kept.into_iter().map(|(b, _)| b).collect()
    }

    /// Crops every box to `size x size` (see [`Self::crops`]), runs `net` on batches of at most
    /// `STAGE_BATCH` crops and hands each kept box with its network output to `keep`, in order.
    fn run_on_crops<O>(
        &self,
        im: &Image3,
        boxes: &[Cand],
        size: usize,
        net: impl Fn(&[f32]) -> Result<Vec<O>>,
        mut keep: impl FnMut(Cand, &O),
    ) -> Result<()> {
        let per = 3 * size * size;
        with_scratch(&CROP_BATCH, |buf| {
            let boxes = self.crops(im, boxes, size, buf);
            for (ci, chunk) in buf[..boxes.len() * per].chunks(STAGE_BATCH * per).enumerate() {
                for (k, o) in net(chunk)?.iter().enumerate() {
                    keep(boxes[ci * STAGE_BATCH + k], o);
                }
            }
            Ok(())
        })
    }

    /// R-Net on 24x24 crops, threshold, NMS 0.7, regression, squaring.
    fn stage2(&self, im: &Image3, boxes: Vec<Cand>) -> Result<Vec<Cand>> {
        if boxes.is_empty() {
            return Ok(boxes);
        }
        let mut cands = Vec::new();
        self.run_on_crops(
            im,
            &boxes,
            24,
            |c| self.rnet.run(c),
            |b, o| {
                let score = o[4];
                if score > self.config.thresholds[1] {
                    cands.push([b[0], b[1], b[2], b[3], score, o[0], o[1], o[2], o[3]]);
                }
            },
        )?;
        let pick = nms_torchvision(&cands, 0.7);
        Ok(pick
            .into_iter()
            .map(|i| {
                let mut b = cands[i];
                let r = [b[5], b[6], b[7], b[8]];
                bbreg(&mut b, r);
                rerec(&mut b);
                b
            })
            .collect())
    }

    /// O-Net on 48x48 crops, threshold, landmarks, regression, `Min` NMS 0.7.
    fn stage3(&self, im: &Image3, boxes: Vec<Cand>) -> Result<Vec<Face>> {
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let mut cands: Vec<Cand> = Vec::new();
        let mut points: Vec<[f32; 10]> = Vec::new();
        self.run_on_crops(
            im,
            &boxes,
            48,
            |c| self.onet.run(c),
            |b, o| {
                if let Some((c, p)) = decode_onet(b, o, self.config.thresholds[2]) {
                    cands.push(c);
                    points.push(p);
                }
            },
        )?;
        let pick = nms_min(&cands, 0.7);
        let mut faces = Vec::with_capacity(pick.len());
        for i in pick {
            let c = cands[i];
            let pts = (0..5).map(|j| Point2::new(points[i][2 * j], points[i][2 * j + 1])).collect();
            let landmarks = Landmarks::new(LandmarkScheme::Five, pts)?;
            faces.push(Face { bbox: BBox::new(c[0], c[1], c[2], c[3]), score: c[4], landmarks });
        }
        if self.config.select_largest {
            // facenet-pytorch: np.argsort(area)[::-1].
            faces.sort_by(|a, b| {
                let area = |f: &Face| (f.bbox.x1 - f.bbox.x0) * (f.bbox.y1 - f.bbox.y0);
                area(b).total_cmp(&area(a))
            });
        }
        Ok(faces)
    }
}

/// O-Net's output `o` for the crop of candidate `b`: when its score exceeds `thresh`, the
/// regressed box (score in slot 4) and the five landmarks `[x0, y0, .., x4, y4]` in pixels.
fn decode_onet(b: Cand, o: &[f32], thresh: f32) -> Option<(Cand, [f32; 10])> {
    let score = o[14];
    if score <= thresh {
        return None;
    }
    let wi = b[2] - b[0] + 1.0;
    let hi = b[3] - b[1] + 1.0;
    let mut p = [0.0f32; 10];
    for j in 0..5 {
        p[2 * j] = wi * o[4 + j] + b[0] - 1.0;
        p[2 * j + 1] = hi * o[9 + j] + b[1] - 1.0;
    }
    let mut c = [b[0], b[1], b[2], b[3], score, 0.0, 0.0, 0.0, 0.0];
    bbreg(&mut c, [o[0], o[1], o[2], o[3]]);
    Some((c, p))
}

/// A face found on a downscaled image, back in input pixels.
fn scale_face(mut f: Face, sx: f32, sy: f32) -> Face {
    f.bbox = BBox::new(f.bbox.x0 * sx, f.bbox.y0 * sy, f.bbox.x1 * sx, f.bbox.y1 * sy);
    for p in &mut f.landmarks.points {
        *p = Point2::new(p.x * sx, p.y * sy);
    }
    f
}

impl FaceDetector for Mtcnn {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Face>> {
        self.detect_rgb(img)
    }

    fn refine(&self, img: &RgbImage, boxes: &[BBox]) -> Result<Vec<Option<Face>>> {
        self.refine_rgb(img, boxes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pixels_is_bounded_by_exact_integer_sums() {
        let at = |max_pixels| MtcnnConfig { max_pixels, ..MtcnnConfig::default() }.validate();
        assert!(at(16_843_009).is_ok());
        assert!(at(MtcnnConfig::default().max_pixels).is_ok());
        assert!(at(16_843_010).is_err());
        assert!(at(143).is_err());
        // The limit: a window of that many white pixels sums below 2^32, one pixel more would not.
        assert!(16_843_009u64 * 255 <= u64::from(u32::MAX));
        assert!(16_843_010u64 * 255 > u64::from(u32::MAX));
    }
}
