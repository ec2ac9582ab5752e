//! Running an experiment: features per variant, folds in parallel (resumable), merge, report.

use super::config::ExperimentConfig;
use super::corpus::{Corpus, FramePerturbation};
use super::report::{build_report, write_report, Report};
use crate::io::{read_json, write_json_atomic};
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mex_classify::{FoldResult, LosoConfig, Prediction};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// How to run an experiment.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only fold `k` (0-based, in sorted fold-key order) of every variant, then stop: the
    /// unit of work of a cluster job. `None` runs every fold not yet on disk.
    pub fold: Option<usize>,
    /// Train nothing: merge the fold results already on disk into the report (fails, naming the
    /// missing fold, when one is absent).
    pub merge_only: bool,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Folds trained at once (0 = one per core).
    pub parallel_folds: usize,
    /// Keep each fold's weights (`<variant>/<fold>.safetensors`), needed by the robustness suite.
    pub save_weights: bool,
}

/// What a run produced.
#[derive(Debug)]
pub enum RunOutcome {
    /// One fold was run (`--fold K`); the report needs a merge.
    Fold {
        /// The fold's key.
        key: String,
        /// Its index.
        index: usize,
    },
    /// Every fold is done and the report is written.
    Report(Box<Report>),
    /// A spotting experiment's report is written.
    Spotting(Box<super::spotting::SpotReport>),
}

/// The folder layout of an experiment's output.
#[derive(Debug, Clone)]
pub struct OutDir {
    root: PathBuf,
}

impl OutDir {
    /// Wraps an output folder.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a variant's fold results live.
    pub fn folds(&self, variant: &str) -> PathBuf {
        self.root.join("folds").join(variant)
    }

    /// The resolved configuration of the run that owns this folder.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
}

/// Records the configuration in the output folder, or checks that the folder's recorded
/// configuration is the same (so that resuming never mixes two experiments).
pub fn claim_out_dir(cfg: &ExperimentConfig, out: &OutDir) -> Result<()> {
    let path = out.config();
    if path.exists() {
        let old: ExperimentConfig = read_json(&path)?;
        if &old != cfg {
            return Err(Error::Invalid(format!(
                "{} holds the results of a different configuration (experiment `{}`); use another --out",
                out.root().display(),
                old.name
            )));
        }
        return Ok(());
    }
    write_json_atomic(&path, cfg)
}

fn bar(len: usize, msg: String, show: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len as u64),
        if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    if let Ok(style) = ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg);
    pb
}

/// Loads the experiment's samples and their fold keys.
pub fn prepare(cfg: &ExperimentConfig) -> Result<(Corpus, Vec<String>, Vec<String>)> {
    let corpus = Corpus::load(&cfg.dataset, cfg.seed)?;
    let keys = corpus.fold_keys(&cfg.protocol, cfg.seed)?;
    let folds: Vec<String> = keys.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    if folds.len() < 2 {
        return Err(Error::Invalid(format!("the protocol gives {} fold(s); need at least 2", folds.len())));
    }
    Ok((corpus, keys, folds))
}

/// Trains and evaluates the folds of every variant that are not yet on disk (all, or only
/// `only_fold`), writing each finished fold atomically under `out/folds/<variant>/`.
pub fn train_folds(
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    keys: &[String],
    folds: &[String],
    out: &OutDir,
    opts: &RunOptions,
    perturb: Option<&dyn FramePerturbation>,
) -> Result<()> {
    let subjects = opts.fold.map(|k| vec![folds[k].clone()]);
    for v in &cfg.variants {
        let dir = out.folds(&v.name);
        let todo: Vec<&String> = match &subjects {
            Some(s) => s.iter().collect(),
            None => folds.iter().collect(),
        };
        if todo.iter().all(|k| dir.join(format!("{k}.json")).exists()) {
            continue;
        }
        let fpb = bar(corpus.len(), format!("{}: features", v.name), opts.progress);
        let ds = corpus.features(v, keys, perturb, &|| fpb.inc(1))?;
        fpb.finish();
        let lcfg = LosoConfig {
            model: v.model.clone(),
            train: mex_classify::TrainConfig { seed: cfg.seed, ..v.train.clone() },
            out_dir: Some(dir),
            save_weights: opts.save_weights,
            parallel_folds: opts.parallel_folds,
            subjects: subjects.clone(),
        };
        let pb = bar(todo.len(), format!("{}: folds", v.name), opts.progress);
        mex_classify::run_loso(&ds, &lcfg, |_| pb.inc(1))
            .map_err(|e| Error::stage("classify", v.name.clone(), e))?;
        pb.finish();
    }
    Ok(())
}

/// Reads every fold result of `variant`; errors naming the first missing fold.
pub fn load_folds(out: &OutDir, variant: &str, folds: &[String]) -> Result<Vec<FoldResult>> {
    folds
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let p = out.folds(variant).join(format!("{key}.json"));
            if !p.exists() {
                return Err(Error::Invalid(format!(
                    "fold {k} (`{key}`) of variant `{variant}` has no result in {}: run it with --fold {k}",
                    out.root().display()
                )));
            }
            read_json(&p)
        })
        .collect()
}

/// Per-sample predictions of a variant in corpus order (`None` where a sample has none).
pub fn predictions_in_order(corpus: &Corpus, folds: &[FoldResult]) -> Result<Vec<Prediction>> {
    let index: HashMap<&str, usize> =
        corpus.samples.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut out: Vec<Option<Prediction>> = vec![None; corpus.len()];
    for p in folds.iter().flat_map(|f| &f.predictions) {
        let i = *index
            .get(p.id.as_str())
            .ok_or_else(|| Error::Invalid(format!("fold result names unknown sample `{}`", p.id)))?;
        out[i] = Some(p.clone());
    }
    out.into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.ok_or_else(|| Error::Invalid(format!("sample `{}` has no prediction", corpus.samples[i].id)))
        })
        .collect()
}

/// Runs an experiment into `out`: trains what is missing (or one fold), merges and reports.
/// Interrupting a run loses at most the folds in progress: finished folds are on disk and a
/// rerun with the same configuration skips them.
pub fn run_experiment(cfg: &ExperimentConfig, out: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let out = OutDir::new(out);
    claim_out_dir(cfg, &out)?;
    if let super::spotting::TaskSpec::Spotting(task) = &cfg.task {
        let r = super::spotting::run_spotting(cfg, task, out.root(), opts.progress)?;
        return Ok(RunOutcome::Spotting(Box::new(r)));
    }
    let (corpus, keys, folds) = prepare(cfg)?;
    if let Some(k) = opts.fold {
        if k >= folds.len() {
            return Err(Error::Invalid(format!(
                "--fold {k}: the experiment has folds 0..{}",
                folds.len() - 1
            )));
        }
    }
    if !opts.merge_only {
        train_folds(cfg, &corpus, &keys, &folds, &out, opts, None)?;
    }
    if let Some(k) = opts.fold {
        return Ok(RunOutcome::Fold { key: folds[k].clone(), index: k });
    }
    let mut per_variant = Vec::with_capacity(cfg.variants.len());
    for v in &cfg.variants {
        let fr = load_folds(&out, &v.name, &folds)?;
        let preds = predictions_in_order(&corpus, &fr)?;
        let secs: f64 = fr.iter().map(|f| f.elapsed_s).sum();
        per_variant.push((v.name.clone(), preds, secs));
    }
    let report = build_report(cfg, &corpus, folds.len(), &per_variant)?;
    write_report(&report, out.root())?;
    Ok(RunOutcome::Report(Box::new(report)))
}
