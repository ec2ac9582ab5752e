//! Detects the faces of an image, prints them and writes the aligned crop of the largest.
//!
//! `cargo run --release -p mex-align --example align_image -- IMAGE [OUT.png] [DLIB_MODEL]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use mex_align::{AlignConfig, FacePipeline, Mtcnn, ShapePredictor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let input = args.get(1).map(String::as_str).unwrap_or("crates/mex-align/tests/data/astronaut.png");
    let out = args.get(2).map(String::as_str).unwrap_or("aligned.png");
    let mut pipeline = FacePipeline::new(Mtcnn::new()?, AlignConfig::default().build()?);
    if let Some(model) = args.get(3) {
        pipeline.landmark_model = Some(Box::new(ShapePredictor::from_file(model)?));
    }
    let img = mex_align::load_image(input)?;
    let t = Instant::now();
    let faces = pipeline.detect(&img)?;
    println!("{} face(s) in {:.1} ms", faces.len(), t.elapsed().as_secs_f64() * 1e3);
    for (f, l) in &faces {
        println!("  box {:?} score {:.4} landmarks {}", f.bbox, f.score, l.points.len());
    }
    match pipeline.align(&img) {
        Ok(a) => {
            mex_core::gray_f32_to_luma8(&a.crop).save(out)?;
            println!("aligned crop written to {out}");
        }
        Err(mex_align::Error::NoFace { .. }) => println!("no face: nothing written"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
