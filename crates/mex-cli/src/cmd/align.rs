//! `mex align`: detect faces (MTCNN), optionally fit dlib 68-point landmarks, write the aligned crop.

use std::path::PathBuf;

use anyhow::Context as _;
use mex_align::{AlignConfig, FacePipeline, Mtcnn, ShapePredictor};

/// Arguments of `mex align`.
#[derive(Debug, clap::Args)]
pub struct AlignArgs {
    /// Input image (PNG, JPEG, BMP, TIFF).
    pub image: PathBuf,
    /// Write the aligned crop of the first (largest) face to this file (colour PNG). Nothing is
    /// written when no face is found.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Side of the square aligned crop in pixels.
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Print `{"faces": [{"bbox": [x0, y0, x1, y1], "score": s, "landmarks": [[x, y], ...]}]}` in
    /// input-image pixels instead of a text summary.
    #[arg(long)]
    pub json: bool,
    /// dlib shape predictor model (e.g. /usr/share/dlib/shape_predictor_68_face_landmarks.dat):
    /// report and align with its 68 landmarks instead of MTCNN's five.
    #[arg(long)]
    pub dlib_model: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct JsonFace {
    bbox: [f32; 4],
    score: f32,
    landmarks: Vec<[f32; 2]>,
}

#[derive(serde::Serialize)]
struct JsonOut {
    faces: Vec<JsonFace>,
}

/// Runs `mex align`.
pub fn run(args: AlignArgs) -> anyhow::Result<()> {
    let aligner = AlignConfig { size: args.size, ..AlignConfig::default() }.build().context("--size")?;
    let mut pipeline = FacePipeline::new(Mtcnn::new().context("loading MTCNN")?, aligner);
    if let Some(model) = &args.dlib_model {
        let sp = ShapePredictor::from_file(model)
            .with_context(|| format!("cannot load dlib model {}", model.display()))?;
        pipeline.landmark_model = Some(Box::new(sp));
    }
    let img = mex_align::load_image(&args.image)
        .with_context(|| format!("cannot read image {}", args.image.display()))?;
    let faces =
        pipeline.detect(&img).with_context(|| format!("detecting faces in {}", args.image.display()))?;
    if args.json {
        let out = JsonOut {
            faces: faces
                .iter()
                .map(|(f, l)| JsonFace {
                    bbox: [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1],
                    score: f.score,
                    landmarks: l.points.iter().map(|p| [p.x, p.y]).collect(),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("{}: {} face(s)", args.image.display(), faces.len());
        for (i, (f, l)) in faces.iter().enumerate() {
            println!(
                "  face {i}: box [{:.1}, {:.1}, {:.1}, {:.1}] score {:.4}, {} landmarks",
                f.bbox.x0,
                f.bbox.y0,
                f.bbox.x1,
                f.bbox.y1,
                f.score,
                l.points.len()
            );
        }
    }
    if let Some(out) = &args.out {
        match faces.first() {
            Some((_, landmarks)) => {
                let t = pipeline.aligner.transform(landmarks).context("estimating the alignment")?;
                let crop = pipeline.aligner.warp_rgb(&img.to_rgb8(), &t)?;
                let mut outputs = super::Outputs::default();
                let tmp = outputs.tmp(out)?;
                crop.save(&tmp).with_context(|| format!("cannot write {}", out.display()))?;
                outputs.commit()?;
                if !args.json {
                    println!("aligned {0}x{0} crop written to {1}", args.size, out.display());
                }
            }
            None => {
                eprintln!("mex: no face found in {}: {} not written", args.image.display(), out.display())
            }
        }
    }
    Ok(())
}
