//! The robustness suite: an experiment's models, trained on clean clips, evaluated on test clips
//! under controlled perturbations (lighting, noise, blur, compression, camera angle and distance,
//! frame rate). Degradation curves answer "how much does lighting or camera angle change the
//! result" with a measurement.

use crate::experiment::corpus::FramePerturbation;
use crate::experiment::run::{claim_out_dir, predictions_in_order, prepare, train_folds, OutDir};
use crate::experiment::{ExperimentConfig, RunOptions};
use crate::io::{write_atomic, write_json_atomic};
use crate::{plots, Error, Result};
use mex_core::{GrayF32, Similarity};
use mex_metrics::ConfusionMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// One kind of perturbation at one strength.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "strength", rename_all = "snake_case")]
pub enum Perturbation {
    /// Multiply intensities by a gain (1 = unchanged).
    Brightness(f32),
    /// Gamma curve `255·(x/255)^γ` (1 = unchanged).
    Gamma(f32),
    /// Additive Gaussian noise of this standard deviation, gray levels (0 = none).
    Noise(f32),
    /// Gaussian blur of this standard deviation, pixels (0 = none).
    Blur(f32),
    /// JPEG compression at this quality, 1..=100 (100 = nearly lossless).
    Jpeg(u8),
    /// In-plane rotation about the centre, degrees.
    Rotation(f32),
    /// Zoom about the centre (1 = unchanged; < 1 moves the camera away).
    Scale(f32),
    /// Frame-rate reduction by this integer factor: the apex becomes the last frame a camera at
    /// `fps / factor` (in phase with the onset) captures at or before the true apex.
    FrameRate(u32),
}

impl Perturbation {
    /// Kind name (groups a degradation curve).
    pub fn kind(&self) -> &'static str {
        match self {
            Perturbation::Brightness(_) => "brightness",
            Perturbation::Gamma(_) => "gamma",
            Perturbation::Noise(_) => "noise",
            Perturbation::Blur(_) => "blur",
            Perturbation::Jpeg(_) => "jpeg",
            Perturbation::Rotation(_) => "rotation",
            Perturbation::Scale(_) => "scale",
            Perturbation::FrameRate(_) => "frame_rate",
        }
    }

    /// Strength as a number (the curve's x axis).
    pub fn strength(&self) -> f64 {
        match *self {
            Perturbation::Brightness(x)
            | Perturbation::Gamma(x)
            | Perturbation::Noise(x)
            | Perturbation::Blur(x)
            | Perturbation::Rotation(x)
            | Perturbation::Scale(x) => f64::from(x),
            Perturbation::Jpeg(q) => f64::from(q),
            Perturbation::FrameRate(f) => f64::from(f),
        }
    }

    /// Checks the strength's range.
    pub fn validate(&self) -> Result<()> {
        // Upper limits keep every perturbation's cost bounded (a blur kernel, a rescaled frame).
        let ok = match *self {
            Perturbation::Brightness(x) | Perturbation::Gamma(x) => x.is_finite() && x > 0.0 && x <= 100.0,
            Perturbation::Scale(x) => x.is_finite() && (0.05..=4.0).contains(&x),
            Perturbation::Noise(x) => x.is_finite() && (0.0..=255.0).contains(&x),
            Perturbation::Blur(x) => x.is_finite() && (0.0..=20.0).contains(&x),
            Perturbation::Rotation(x) => x.is_finite() && x.abs() <= 180.0,
            Perturbation::Jpeg(q) => (1..=100).contains(&q),
            Perturbation::FrameRate(f) => (1..=1000).contains(&f),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "perturbation {self:?} is out of range (brightness and gamma in (0, 100], scale in \
                 [0.05, 4], noise in [0, 255], blur in [0, 20], rotation in [-180, 180], JPEG quality \
                 in 1..=100, frame-rate step in 1..=1000)"
            )))
        }
    }

    /// The default suite: each kind at a few strengths, the identity first.
    pub fn default_suite() -> Vec<Perturbation> {
        use Perturbation::*;
        let mut v = Vec::new();
        v.extend([0.5, 0.75, 1.0, 1.25, 1.5].map(Brightness));
        v.extend([0.5, 0.75, 1.0, 1.5, 2.0].map(Gamma));
        v.extend([0.0, 2.0, 5.0, 10.0].map(Noise));
        v.extend([0.0, 0.5, 1.0, 2.0].map(Blur));
        v.extend([100, 75, 50, 25, 10].map(Jpeg));
        v.extend([0.0, 5.0, 10.0, 20.0, 30.0].map(Rotation));
        v.extend([0.5, 0.75, 1.0, 1.5, 2.0].map(Scale));
        v.extend([1, 2, 4, 8].map(FrameRate));
        v
    }
}

fn about_centre(img: &GrayF32, scale: f64, angle_deg: f64) -> Result<GrayF32> {
    let (cx, cy) = (f64::from(img.width()) / 2.0, f64::from(img.height()) / 2.0);
    let r = Similarity::from_params(scale, angle_deg.to_radians(), 0.0, 0.0);
    let (rx, ry) = r.apply_f64(cx, cy);
    let t = Similarity { tx: cx - rx, ty: cy - ry, ..r };
    let mut out = GrayF32::new(img.width(), img.height());
    mex_align::align::warp_gray_into(img, &t, &mut out).map_err(|e| Error::stage("robustness", "warp", e))?;
    Ok(out)
}

impl FramePerturbation for Perturbation {
    fn apply(&self, frame: &GrayF32, key: u64) -> Result<GrayF32> {
        let map = |f: &dyn Fn(f32) -> f32| {
            let mut o = frame.clone();
            o.iter_mut().for_each(|p| *p = f(*p).clamp(0.0, 255.0));
            o
        };
        Ok(match *self {
            Perturbation::Brightness(g) => map(&|x| x * g),
            Perturbation::Gamma(g) => map(&|x| 255.0 * (x.max(0.0) / 255.0).powf(g)),
            Perturbation::Noise(s) => {
                if s <= 0.0 {
                    return Ok(frame.clone());
                }
                let mut rng = ChaCha8Rng::seed_from_u64(key ^ 0x6e6f_6973_6500);
                let n = Normal::new(0.0f32, s).map_err(|e| Error::Invalid(e.to_string()))?;
                let mut o = frame.clone();
                o.iter_mut().for_each(|p| *p = (*p + n.sample(&mut rng)).clamp(0.0, 255.0));
                o
            }
            Perturbation::Blur(s) => mex_data::synth::gaussian_blur(frame, s),
            Perturbation::Jpeg(q) => {
                let g8 = mex_core::gray_f32_to_luma8(frame);
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q)
                    .encode_image(&g8)
                    .map_err(|e| Error::stage("robustness", "jpeg encode", e))?;
                let back = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
                    .map_err(|e| Error::stage("robustness", "jpeg decode", e))?;
                mex_core::gray_f32_from_luma8(&back.to_luma8())
            }
            Perturbation::Rotation(d) => about_centre(frame, 1.0, f64::from(d))?,
            Perturbation::Scale(s) => about_centre(frame, f64::from(s), 0.0)?,
            Perturbation::FrameRate(_) => frame.clone(),
        })
    }

    fn apex(&self, onset: usize, apex: usize) -> usize {
        match *self {
            Perturbation::FrameRate(f) if f > 1 && apex > onset => {
                onset + (apex - onset) / f as usize * f as usize
            }
            _ => apex,
        }
    }
}

/// One point of a degradation curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessPoint {
    /// Variant.
    pub variant: String,
    /// The perturbation.
    pub perturbation: Perturbation,
    /// Pooled UF1 on the perturbed test clips.
    pub uf1: f64,
    /// Pooled UAR on the perturbed test clips.
    pub uar: f64,
    /// Accuracy.
    pub accuracy: f64,
}

/// The robustness report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessReport {
    /// Experiment name.
    pub experiment: String,
    /// Every variant at every perturbation.
    pub points: Vec<RobustnessPoint>,
}

/// Trains (or resumes) the experiment's folds on clean clips, keeping each fold's weights, then
/// evaluates every fold's model on its perturbed test clips for each perturbation.
pub fn run_robustness(
    cfg: &ExperimentConfig,
    suite: &[Perturbation],
    out: &Path,
    opts: &RunOptions,
) -> Result<RobustnessReport> {
    for p in suite {
        p.validate()?;
    }
    let out = OutDir::new(out);
    claim_out_dir(cfg, &out)?;
    let (corpus, keys, folds) = prepare(cfg)?;
    if !corpus.has_frames() {
        return Err(Error::Invalid(
            "the robustness suite perturbs frames; this dataset holds precomputed inputs".into(),
        ));
    }
    // Folds whose weights were not kept (e.g. by `mex eval`) are trained again.
    for v in &cfg.variants {
        for k in &folds {
            let dir = out.folds(&v.name);
            if dir.join(format!("{k}.json")).exists() && !dir.join(format!("{k}.safetensors")).exists() {
                let p = dir.join(format!("{k}.json"));
                std::fs::remove_file(&p).map_err(|e| Error::Io { path: p, source: e })?;
            }
        }
    }
    let train_opts = RunOptions { fold: None, merge_only: false, save_weights: true, ..opts.clone() };
    train_folds(cfg, &corpus, &keys, &folds, &out, &train_opts, None)?;
    let nc = corpus.classes.len();
    let truth: Vec<usize> = corpus.samples.iter().map(|s| s.label).collect();
    let mut points = Vec::new();
    for v in &cfg.variants {
        for p in suite {
            let ds = corpus.features(v, &keys, Some(p), &|| {})?;
            let preds = mex_classify::predict_with_fold_weights(&ds, &v.model, &out.folds(&v.name))
                .map_err(|e| Error::stage("classify", v.name.clone(), e))?;
            let fr = mex_classify::FoldResult {
                subject: String::new(),
                fingerprint: String::new(),
                predictions: preds,
                epochs: Vec::new(),
                selected_epoch: 0,
                elapsed_s: 0.0,
                resumed: false,
            };
            let ordered = predictions_in_order(&corpus, std::slice::from_ref(&fr))?;
            let pred: Vec<usize> = ordered.iter().map(|p| p.pred as usize).collect();
            let cm = ConfusionMatrix::from_labels(&truth, &pred, nc)
                .map_err(|e| Error::stage("metrics", "robustness", e))?;
            let rep = cm.report().map_err(|e| Error::stage("metrics", "robustness", e))?;
            points.push(RobustnessPoint {
                variant: v.name.clone(),
                perturbation: *p,
                uf1: rep.uf1,
                uar: rep.uar,
                accuracy: rep.accuracy,
            });
        }
    }
    let report = RobustnessReport { experiment: cfg.name.clone(), points };
    write_robustness(&report, out.root())?;
    Ok(report)
}

/// Writes `robustness.json`, `robustness.md` and one degradation plot per perturbation kind.
pub fn write_robustness(r: &RobustnessReport, dir: &Path) -> Result<()> {
    let mut kinds: Vec<&str> = r.points.iter().map(|p| p.perturbation.kind()).collect();
    kinds.dedup();
    let mut variants: Vec<&str> = r.points.iter().map(|p| p.variant.as_str()).collect();
    variants.dedup();
    let mut md = String::new();
    let _ = writeln!(md, "# Robustness of `{}`\n", r.experiment);
    let _ = writeln!(
        md,
        "Models trained on clean clips (one per fold) and evaluated on their perturbed test clips; pooled UF1 / UAR.\n"
    );
    for kind in &kinds {
        let _ = writeln!(md, "## {kind}\n\n![{kind}](robustness_{kind}.png)\n\n| variant | strength | UF1 | UAR | accuracy |\n|---|---|---|---|---|");
        let mut series = Vec::new();
        for v in &variants {
            let mut pts: Vec<&RobustnessPoint> =
                r.points.iter().filter(|p| p.variant == *v && p.perturbation.kind() == *kind).collect();
            pts.sort_by(|a, b| a.perturbation.strength().total_cmp(&b.perturbation.strength()));
            for p in &pts {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.4} | {:.4} | {:.4} |",
                    v,
                    p.perturbation.strength(),
                    p.uf1,
                    p.uar,
                    p.accuracy
                );
            }
            series.push(plots::Series {
                name: format!("{v} UF1"),
                points: pts.iter().map(|p| (p.perturbation.strength(), p.uf1)).collect(),
            });
        }
        let _ = writeln!(md);
        plots::lines(
            &dir.join(format!("robustness_{kind}")),
            &format!("UF1 vs {kind}"),
            kind,
            "UF1",
            &series,
            &[],
        )?;
    }
    write_json_atomic(&dir.join("robustness.json"), r)?;
    write_atomic(&dir.join("robustness.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> GrayF32 {
        GrayF32::from_fn(32, 32, |x, y| image::Luma([(4 * x + 2 * y) as f32]))
    }

    #[test]
    fn identity_strengths_leave_frames_unchanged() {
        let f = ramp();
        for p in [
            Perturbation::Brightness(1.0),
            Perturbation::Gamma(1.0),
            Perturbation::Noise(0.0),
            Perturbation::Blur(0.0),
            Perturbation::Rotation(0.0),
            Perturbation::Scale(1.0),
            Perturbation::FrameRate(1),
        ] {
            let o = p.apply(&f, 1).unwrap();
            let d = o.as_raw().iter().zip(f.as_raw()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(d < 1e-3, "{p:?} changed the frame by {d}");
        }
    }

    #[test]
    fn absurd_strengths_are_refused() {
        use Perturbation::*;
        for p in
            [Blur(1e9), Scale(1e6), Scale(0.0), Noise(f32::NAN), Gamma(1e30), FrameRate(1_000_000), Jpeg(0)]
        {
            assert!(p.validate().is_err(), "{p:?}");
        }
        assert!(default_suite_is_valid());
    }

    fn default_suite_is_valid() -> bool {
        Perturbation::default_suite().iter().all(|p| p.validate().is_ok())
    }

    #[test]
    fn perturbations_have_their_effect() {
        let f = ramp();
        let mean = |g: &GrayF32| g.as_raw().iter().sum::<f32>() / g.as_raw().len() as f32;
        assert!((mean(&Perturbation::Brightness(0.5).apply(&f, 0).unwrap()) - 0.5 * mean(&f)).abs() < 1e-3);
        // Gamma 2 darkens mid-tones: 255·(x/255)².
        let g = Perturbation::Gamma(2.0).apply(&f, 0).unwrap();
        let x = f.get_pixel(10, 10)[0];
        assert!((g.get_pixel(10, 10)[0] - 255.0 * (x / 255.0).powi(2)).abs() < 1e-3);
        // Noise: sample standard deviation close to sigma, deterministic per key.
        let flat = GrayF32::from_pixel(64, 64, image::Luma([128.0]));
        let n1 = Perturbation::Noise(5.0).apply(&flat, 7).unwrap();
        let n2 = Perturbation::Noise(5.0).apply(&flat, 7).unwrap();
        assert_eq!(n1, n2);
        let sd = (n1.as_raw().iter().map(|v| (v - 128.0).powi(2)).sum::<f32>() / 4096.0).sqrt();
        assert!((sd - 5.0).abs() < 0.3, "{sd}");
        // Blur keeps a linear ramp in the interior (the kernel is symmetric and normalised).
        let b = Perturbation::Blur(1.0).apply(&f, 0).unwrap();
        assert!((b.get_pixel(16, 16)[0] - f.get_pixel(16, 16)[0]).abs() < 1e-3);
        // Rotation by 90° maps the pixel right of the centre to below it.
        let mut dot = GrayF32::new(33, 33);
        dot.put_pixel(24, 16, image::Luma([200.0]));
        let r = about_centre(&dot, 1.0, 90.0).unwrap();
        let (mx, my) =
            r.enumerate_pixels().max_by(|a, b| a.2[0].total_cmp(&b.2[0])).map(|(x, y, _)| (x, y)).unwrap();
        assert!((mx as i32 - 16).abs() <= 1 && (my as i32 - 24).abs() <= 1, "({mx}, {my})");
        // JPEG at low quality changes the frame but keeps its mean.
        let j = Perturbation::Jpeg(10).apply(&f, 0).unwrap();
        assert!((mean(&j) - mean(&f)).abs() < 2.0);
        // Frame rate: apex quantised to the slower camera's frames.
        assert_eq!(Perturbation::FrameRate(4).apex(10, 21), 18);
        assert_eq!(Perturbation::FrameRate(1).apex(10, 21), 21);
        assert!(Perturbation::Jpeg(0).validate().is_err());
        assert!(Perturbation::Scale(0.0).validate().is_err());
    }
}
