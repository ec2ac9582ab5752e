//! `mex flow FRAME0 FRAME1`: dense optical flow between two frames.

use anyhow::{Context, Result};
use mex_flow::FlowConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `mex flow`.
#[derive(Debug, clap::Args)]
pub struct FlowArgs {
    /// First frame (any format the `image` crate reads; colour is converted to gray).
    pub frame0: PathBuf,
    /// Second frame, of the same size.
    pub frame1: PathBuf,
    /// Estimator: tvl1, farneback or dis.
    #[arg(long, default_value = "tvl1")]
    pub method: String,
    /// Preset (dis: ultrafast, fast, medium; default fast).
    #[arg(long)]
    pub preset: Option<String>,
    /// Write the flow as a Middlebury `.flo` file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the Middlebury colour-wheel visualisation as PNG.
    #[arg(long)]
    pub viz: Option<PathBuf>,
    /// Write the optical strain (STSTNet definition) as a gray PNG, min-max scaled.
    #[arg(long)]
    pub strain: Option<PathBuf>,
    /// Print `{method, width, height, elapsed_ms, mean_magnitude}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reads an image file as a gray `f32` frame (0..255).
pub(crate) fn read_gray(path: &Path) -> Result<mex_flow::GrayF32> {
    Ok(mex_data::frames::read_gray(path)?)
}

/// Runs `mex flow`.
pub fn run(args: FlowArgs) -> Result<()> {
    let cfg = FlowConfig::from_name(&args.method, args.preset.as_deref())
        .with_context(|| format!("invalid --method {:?} / --preset {:?}", args.method, args.preset))?;
    let f0 = read_gray(&args.frame0)?;
    let f1 = read_gray(&args.frame1)?;
    if f0.dimensions() != f1.dimensions() {
        anyhow::bail!(
            "frames differ in size: {} is {}x{}, {} is {}x{}",
            args.frame0.display(),
            f0.width(),
            f0.height(),
            args.frame1.display(),
            f1.width(),
            f1.height()
        );
    }
    let est = cfg.build().context("cannot build the estimator")?;
    let t0 = Instant::now();
    let flow = est.estimate(&f0, &f1).context("flow estimation failed")?;
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    // All requested files or none.
    let mut outputs = super::Outputs::default();
    if let Some(p) = &args.out {
        let tmp = outputs.tmp(p)?;
        mex_flow::io::write_flo_file(&tmp, &flow).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.viz {
        let tmp = outputs.tmp(p)?;
        mex_flow::viz::save_flow_png(&tmp, &flow, None)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.strain {
        let tmp = outputs.tmp(p)?;
        let s = mex_flow::strain::optical_strain(&flow, &mex_flow::strain::StrainConfig::ststnet());
        let (w, h) = flow.size();
        mex_flow::viz::save_plane_png(&tmp, &s, w, h)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    outputs.commit()?;
    let mean = flow.mean_magnitude();
    if args.json {
        let v = serde_json::json!({
            "method": est.name(),
            "width": flow.width(),
            "height": flow.height(),
            "elapsed_ms": elapsed_ms,
            "mean_magnitude": mean,
        });
        println!("{v}");
    } else {
        println!(
            "{} {}x{}: mean magnitude {mean:.4} px, {elapsed_ms:.2} ms",
            cfg.name(),
            flow.width(),
            flow.height()
        );
    }
    Ok(())
}
