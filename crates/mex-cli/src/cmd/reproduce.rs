//! `mex reproduce`: reproduce published results on real data.
//!
//! `mex reproduce ststnet --data DIR` runs the released per-fold STSTNet weights
//! (`DIR/weights/<subject>.safetensors`) on the released MEGC2019 composite inputs
//! (`DIR/inputs/<subject>/u_test/<label>/*.png`) and prints the pooled UF1/UAR with the
//! per-dataset breakdown; `--train` trains every LOSO fold from scratch instead (reference
//! recipe: Adam, lr 5e-5, batch 256, `--epochs` epochs, last epoch).

use anyhow::{bail, Context};
use mex_classify::data::{composite_dataset_of, load_ststnet_inputs};
use mex_classify::{
    predict_with_fold_weights_on, run_loso, LosoConfig, ModelConfig, Prediction, SampleOrder, StstnetConfig,
    TrainConfig,
};
use mex_metrics::ConfusionMatrix;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// What to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// STSTNet on the MEGC2019 composite set (published UF1 0.7209, UAR 0.725).
    Ststnet,
}

/// Arguments of `mex reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The published result to reproduce.
    #[arg(value_enum)]
    pub target: Target,
    /// Folder with `inputs/<subject>/u_test/<label>/*.png` (and `weights/` by default).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder of per-fold weights `<subject>.safetensors` (default: DATA/weights).
    #[arg(long, conflicts_with = "train")]
    pub weights: Option<PathBuf>,
    /// Train every LOSO fold from scratch instead of loading the released weights.
    #[arg(long)]
    pub train: bool,
    /// Training epochs per fold (with --train).
    #[arg(long, default_value_t = 800, requires = "train", value_parser = super::parse_epochs)]
    pub epochs: usize,
    /// Seed of initialisation and dropout (with --train).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Order of the training samples (with --train): `dataset` (by subject, then label) or
    /// `label` (grouped by class, as the reference code's unshuffled `u_train/<label>/` loader).
    #[arg(long, default_value = "dataset", requires = "train")]
    pub order: String,
    /// Folder where finished folds are written, so an interrupted --train run resumes.
    #[arg(long, requires = "train")]
    pub folds_dir: Option<PathBuf>,
    /// Folds trained in parallel (0 = one per core).
    #[arg(long, default_value_t = 0, value_parser = super::parse_jobs)]
    pub parallel: usize,
    /// Device for inference with released weights: `cpu`, or `cuda` (CUDA device 0; needs a
    /// build with `--features cuda`). Training always runs on the CPU.
    #[arg(long, default_value = "cpu", conflicts_with = "train")]
    pub device: String,
    /// Write per-sample predictions as CSV `subject,file,label,pred`.
    #[arg(long)]
    pub predictions_out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Scores {
    n: usize,
    uf1: f64,
    uar: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    uf1: f64,
    uar: f64,
    accuracy: f64,
    n: usize,
    per_dataset: BTreeMap<String, Scores>,
    elapsed_s: f64,
}

fn scores(gt: &[usize], pred: &[usize]) -> anyhow::Result<(f64, f64, f64)> {
    let cm = ConfusionMatrix::from_labels(gt, pred, 3).context("confusion matrix")?;
    Ok((cm.uf1()?, cm.uar()?, cm.accuracy()?))
}

fn report(preds: &[Prediction], elapsed_s: f64) -> anyhow::Result<Report> {
    let gt: Vec<usize> = preds.iter().map(|p| p.label as usize).collect();
    let pr: Vec<usize> = preds.iter().map(|p| p.pred as usize).collect();
    let (uf1, uar, accuracy) = scores(&gt, &pr)?;
    let mut per_dataset = BTreeMap::new();
    for name in ["casme2", "smic", "samm"] {
        let idx: Vec<usize> =
            (0..preds.len()).filter(|&i| composite_dataset_of(&preds[i].subject) == name).collect();
        if idx.is_empty() {
            continue;
        }
        let g: Vec<usize> = idx.iter().map(|&i| gt[i]).collect();
        let p: Vec<usize> = idx.iter().map(|&i| pr[i]).collect();
        let (u, a, _) = scores(&g, &p)?;
        per_dataset.insert(name.to_string(), Scores { n: idx.len(), uf1: u, uar: a });
    }
    Ok(Report { uf1, uar, accuracy, n: preds.len(), per_dataset, elapsed_s })
}

/// Runs `mex reproduce`.
pub fn run(args: ReproduceArgs) -> anyhow::Result<()> {
    let Target::Ststnet = args.target;
    let t0 = Instant::now();
    if !args.data.is_dir() {
        bail!("data folder {} does not exist", args.data.display());
    }
    let ds = load_ststnet_inputs(&args.data)
        .with_context(|| format!("reading STSTNet inputs under {}", args.data.display()))?;
    let preds = if args.train {
        let cfg = LosoConfig {
            model: ModelConfig::Ststnet(StstnetConfig::default()),
            train: TrainConfig {
                epochs: args.epochs,
                seed: args.seed,
                sample_order: match args.order.as_str() {
                    "dataset" => SampleOrder::Dataset,
                    "label" => SampleOrder::ByLabel,
                    other => bail!("unknown --order {other:?}: expected dataset or label"),
                },
                ..TrainConfig::ststnet_reference()
            },
            out_dir: args.folds_dir.clone(),
            save_weights: args.folds_dir.is_some(),
            parallel_folds: args.parallel,
            subjects: None,
        };
        let quiet = args.json;
        let res = run_loso(&ds, &cfg, |f| {
            if !quiet {
                let last = f.epochs.last().map_or(f32::NAN, |e| e.train_loss);
                eprintln!(
                    "fold {:>5}: {} samples, final train loss {last:.4}, {:.1} s{}",
                    f.subject,
                    f.predictions.len(),
                    f.elapsed_s,
                    if f.resumed { " (resumed)" } else { "" }
                );
            }
        })
        .context("LOSO training")?;
        res.predictions().into_iter().cloned().collect()
    } else {
        let weights = args.weights.clone().unwrap_or_else(|| args.data.join("weights"));
        if !weights.is_dir() {
            bail!("weights folder {} does not exist", weights.display());
        }
        let device = match args.device.as_str() {
            "cpu" => candle_core::Device::Cpu,
            "cuda" => candle_core::Device::new_cuda(0)
                .context("opening CUDA device 0 (is mex built with `--features cuda`?)")?,
            other => bail!("unknown device {other:?}: expected cpu or cuda"),
        };
        let cfg = ModelConfig::Ststnet(StstnetConfig::default());
        predict_with_fold_weights_on(&ds, &cfg, &weights, &device)
            .with_context(|| format!("running the per-fold weights of {}", weights.display()))?
    };
    if let Some(p) = &args.predictions_out {
        let mut outputs = super::Outputs::default();
        let tmp = outputs.tmp(p)?;
        let mut w = csv::Writer::from_path(&tmp).with_context(|| format!("creating {}", p.display()))?;
        w.write_record(["subject", "file", "label", "pred"])?;
        for q in &preds {
            w.write_record([q.subject.as_str(), q.id.as_str(), &q.label.to_string(), &q.pred.to_string()])?;
        }
        w.flush().with_context(|| format!("writing {}", p.display()))?;
        drop(w);
        outputs.commit()?;
    }
    let r = report(&preds, t0.elapsed().as_secs_f64())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let mode = if args.train { "trained from scratch (LOSO)" } else { "released weights" };
        println!("STSTNet, MEGC2019 composite, {mode}: {} samples", r.n);
        println!("  composite  UF1 {:.4}  UAR {:.4}  accuracy {:.4}", r.uf1, r.uar, r.accuracy);
        for (k, s) in &r.per_dataset {
            println!("  {k:<9}  UF1 {:.4}  UAR {:.4}  (n = {})", s.uf1, s.uar, s.n);
        }
        println!("  published (STSTNet PyTorch re-run): UF1 0.7209  UAR 0.725");
        println!("  elapsed {:.2} s", r.elapsed_s);
    }
    Ok(())
}
