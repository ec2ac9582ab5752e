//! Training: Adam / AdamW, cross-entropy with optional class weights, mini-batches, epochs and
//! seeds, with model selection that can only see training data.

use crate::data::Dataset;
use crate::models::{argmax, Model};
use crate::ops::cross_entropy;
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Optimiser family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba) with *coupled* L2 weight decay, as `torch.optim.Adam(weight_decay=..)`:
    /// the decay term `wd * theta` is added to the gradient before the moment updates.
    Adam,
    /// AdamW (Loshchilov & Hutter) with *decoupled* weight decay, as `torch.optim.AdamW` and
    /// `candle_nn::AdamW`: `theta *= 1 - lr * wd` before the Adam step.
    AdamW,
}

/// Order of the training samples within an epoch (without shuffling this fixes the batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleOrder {
    /// The dataset's order (for the released STSTNet inputs: by subject, then label).
    #[default]
    Dataset,
    /// Grouped by label (stable: dataset order within a label), as the STSTNet reference code
    /// reads each fold's training set from `u_train/<label>/` folders into a `DataLoader`
    /// without shuffling, so its batches are grouped by class.
    ByLabel,
}

impl SampleOrder {
    fn is_dataset(&self) -> bool {
        *self == Self::Dataset
    }

    /// `idx` reordered (`labels` are the labels of the whole dataset).
    pub fn apply(&self, idx: &[usize], labels: &[u32]) -> Vec<usize> {
        let mut out = idx.to_vec();
        if *self == Self::ByLabel {
            out.sort_by_key(|&i| labels.get(i).copied().unwrap_or(u32::MAX));
        }
        out
    }
}

/// How the weights used for the test predictions are chosen. Both options use the training
/// subjects only: the LOSO trainer never hands the test fold to the training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// The weights after the last epoch (the STSTNet reference code).
    LastEpoch,
    /// Hold out `subjects` training subjects (chosen with the seed) as an inner validation
    /// set, train on the others, and keep the epoch with the best validation UF1.
    InnerValidation {
        /// Number of training subjects held out for validation.
        subjects: usize,
    },
}

/// Training configuration. `Default` is the STSTNet reference recipe (`main.py`): Adam, lr 5e-5,
/// no weight decay, batch 256, 800 epochs, unweighted cross-entropy, samples in dataset order
/// (the reference `DataLoader` does not shuffle), last epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay (coupled L2 for Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Adam beta1.
    pub beta1: f64,
    /// Adam beta2.
    pub beta2: f64,
    /// Adam epsilon.
    pub eps: f64,
    /// Mini-batch size (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Number of epochs.
    pub epochs: usize,
    /// Seed of the weight initialisation, the dropout masks and the shuffling.
    pub seed: u64,
    /// Reshuffle the samples every epoch.
    pub shuffle: bool,
    /// Order of the training samples when `shuffle` is off (and the starting order otherwise).
    /// Left out of serialised configurations when it is the default, so fold files written
    /// before the option existed keep their fingerprint.
    #[serde(skip_serializing_if = "SampleOrder::is_dataset")]
    pub sample_order: SampleOrder,
    /// Per-class weights of the cross-entropy (PyTorch `CrossEntropyLoss(weight=..)`).
    pub class_weights: Option<Vec<f32>>,
    /// Model selection.
    pub selection: Selection,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            lr: 5e-5,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            batch_size: 256,
            epochs: 800,
            seed: 0,
            shuffle: false,
            sample_order: SampleOrder::Dataset,
            class_weights: None,
            selection: Selection::LastEpoch,
        }
    }
}

impl TrainConfig {
    /// The STSTNet reference recipe (same as `default()`).
    pub fn ststnet_reference() -> Self {
        Self::default()
    }

    /// MEB's STSTNet recipe (the MEB toolkit's STSTNet configuration): Adam lr 5e-5, weight decay 1e-3, 500 epochs.
    pub fn ststnet_meb() -> Self {
        Self { weight_decay: 1e-3, epochs: 500, shuffle: true, ..Self::default() }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason| Err(Error::InvalidParam { name, value, reason });
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", self.lr.to_string(), "must be positive and finite");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", self.weight_decay.to_string(), "must be >= 0");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1/beta2", format!("{}/{}", self.beta1, self.beta2), "must be in [0, 1)");
        }
        if !(self.eps > 0.0) {
            return bad("eps", self.eps.to_string(), "must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "must be positive");
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "must be positive");
        }
        if let Some(w) = &self.class_weights {
            if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || w.iter().all(|v| *v == 0.0) {
                return bad("class_weights", format!("{w:?}"), "must be finite, >= 0, not all zero");
            }
        }
        if let Selection::InnerValidation { subjects: 0 } = self.selection {
            return bad("selection.subjects", "0".into(), "must hold out at least one subject");
        }
        Ok(())
    }
}

/// A variable with its first and second moments and a host buffer of its values.
type AdamState = (Var, Vec<f32>, Vec<f32>, Vec<f32>);

/// Best inner-validation UF1, its epoch and the weights of that epoch.
type Snapshot = (f32, usize, Vec<(String, Tensor)>);

/// Adam / AdamW over a model's trainable variables, computed in place on the host (the models
/// are small: a few thousand parameters), bit-for-bit the update of `torch.optim.Adam(W)`.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    wd: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i32,
    vars: Vec<AdamState>,
}

impl Optimizer {
    /// An optimiser for `vars` with the settings of `cfg`.
    pub fn new(vars: Vec<Var>, cfg: &TrainConfig) -> Result<Self> {
        cfg.validate()?;
        let vars = vars
            .into_iter()
            .map(|v| {
                let n = v.elem_count();
                (v, vec![0f32; n], vec![0f32; n], vec![0f32; n])
            })
            .collect();
        Ok(Self {
            kind: cfg.optimizer,
            lr: cfg.lr,
            wd: cfg.weight_decay,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            step: 0,
            vars,
        })
    }

    /// One update from the gradients in `grads` (variables without a gradient are left alone).
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step);
        let bc2 = 1.0 - self.beta2.powi(self.step);
        let step_size = (self.lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps, wd) = (self.beta1 as f32, self.beta2 as f32, self.eps as f32, self.wd as f32);
        let decay = (1.0 - self.lr * self.wd) as f32;
        for (var, m, v, theta) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let cur = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            theta.copy_from_slice(&cur);
            for (((th, &gi), mi), vi) in theta.iter_mut().zip(&g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let gi = match self.kind {
                    OptimizerKind::Adam => gi + wd * *th,
                    OptimizerKind::AdamW => {
                        *th *= decay;
                        gi
                    }
                };
                *mi = b1 * *mi + (1.0 - b1) * gi;
                *vi = b2 * *vi + (1.0 - b2) * gi * gi;
                *th -= step_size * *mi / (vi.sqrt() / bc2_sqrt + eps);
            }
            let t = Tensor::from_slice(theta.as_slice(), var.shape(), var.device())?;
            var.set(&t)?;
        }
        Ok(())
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f32,
    /// Training accuracy (training-mode predictions).
    pub train_accuracy: f32,
    /// Validation UF1 on the inner validation subjects, when that selection is used.
    pub val_uf1: Option<f32>,
}

/// Summary of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Per-epoch statistics.
    pub epochs: Vec<EpochStats>,
    /// The epoch whose weights the model holds at the end (0-based).
    pub selected_epoch: usize,
}

fn labels_tensor(labels: &[u32], device: &candle_core::Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(labels, labels.len(), device)?)
}

/// Sets the C allocator of the whole process up for training (glibc on Linux; elsewhere it does
/// nothing and returns `false`): freed memory is kept for reuse instead of being handed back to
/// the kernel (`M_TRIM_THRESHOLD` 512 MiB), and blocks up to 32 MiB come from the heap instead
/// of fresh mappings (`M_MMAP_THRESHOLD`).
///
/// A training step allocates and frees tensors of a few MB (layer outputs, gradients). With
/// glibc's defaults, a thread other than the main one (a rayon worker, where [`fit`] and
/// [`crate::run_loso`] train) returns them to the kernel at every step and faults them back in
/// at the next one: page faults, page zeroing and TLB flushes took about a quarter of a
/// one-thread STSTNet epoch (52.8 ms -> 37.4 ms per epoch of a 435-sample fold with these
/// settings, `examples/ststnet_profile fit`). The settings are process-wide and cost memory
/// that stays mapped, so the library does not apply them by itself: a binary calls this once
/// at start-up (the `mex` CLI and the examples do). Returns whether the settings were applied.
pub fn tune_allocator_for_training() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes glibc's allocator parameters; 32 MiB is within the
        // mmap threshold's allowed range (at most half of a heap's 64 MiB).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Trains `model` on every sample of `train` (the caller decides what that set is; the LOSO
/// trainer gives it the training subjects only). Returns per-epoch statistics.
///
/// ```
/// use candle_core::Device;
/// use mex_classify::{fit, Dataset, Model, ModelConfig, SampleInfo, StstnetConfig, TrainConfig};
/// # fn main() -> mex_classify::Result<()> {
/// let mut ds = Dataset::new((3, 28, 28));
/// for i in 0..6u32 {
///     let info = SampleInfo { subject: format!("s{}", i % 2), id: format!("clip{i}"), label: i % 3 };
///     ds.push(info, &vec![(i as f32) * 10.0; 3 * 28 * 28])?;
/// }
/// let mut model = Model::new(&ModelConfig::Ststnet(StstnetConfig::default()), 0, &Device::Cpu)?;
/// let cfg = TrainConfig { epochs: 2, batch_size: 4, ..TrainConfig::default() };
/// let report = fit(&mut model, &ds, &cfg)?;
/// assert_eq!(report.epochs.len(), 2);
/// assert!(report.epochs.iter().all(|e| e.train_loss.is_finite()));
/// # Ok(()) }
/// ```
pub fn fit(model: &mut Model, train: &Dataset, cfg: &TrainConfig) -> Result<TrainReport> {
    fit_with(model, train, cfg, |_| {})
}

/// [`fit`] with a callback after every epoch.
///
/// Called from outside a rayon pool, the training runs on a worker of the current pool (the
/// caller waits): the many small parallel operations of each step then start on the worker
/// itself, instead of each waking a worker and putting the caller to sleep (about 7 % of a
/// one-thread step, with page-table flushes from freeing memory across threads). Inside a
/// pool (the LOSO trainer) it runs where it is called.
pub fn fit_with(
    model: &mut Model,
    train: &Dataset,
    cfg: &TrainConfig,
    on_epoch: impl FnMut(&EpochStats) + Send,
) -> Result<TrainReport> {
    if rayon::current_thread_index().is_some() {
        return fit_here(model, train, cfg, on_epoch);
    }
    rayon::join(|| fit_here(model, train, cfg, on_epoch), || ()).0
}

/// [`fit_with`] on the calling thread.
fn fit_here(
    model: &mut Model,
    train: &Dataset,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<TrainReport> {
    cfg.validate()?;
    if train.is_empty() {
        return Err(Error::Dataset("empty training set".into()));
    }
    let k = model.config().num_classes() as u32;
    if let Some(s) = train.samples().iter().find(|s| s.label >= k) {
        return Err(Error::Dataset(format!(
            "sample {}/{} has label {} >= {k} classes",
            s.subject, s.id, s.label
        )));
    }
    let (c, h, w) = model.config().input_shape();
    if train.shape() != (c, h, w) {
        return Err(Error::InputShape {
            what: "training set".into(),
            expected: vec![c, h, w],
            found: vec![train.shape().0, train.shape().1, train.shape().2],
        });
    }
    if let Some(wts) = &cfg.class_weights {
        if wts.len() != k as usize {
            return Err(Error::InvalidParam {
                name: "class_weights",
                value: format!("{wts:?}"),
                reason: "needs one weight per class",
            });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x005e_ed0f_d1a0);

    // Inner validation split: training subjects only.
    let (fit_idx, val_idx) = match cfg.selection {
        Selection::LastEpoch => ((0..train.len()).collect::<Vec<_>>(), Vec::new()),
        Selection::InnerValidation { subjects } => {
            let mut subs = train.subjects();
            if subjects >= subs.len() {
                return Err(Error::InvalidParam {
                    name: "selection.subjects",
                    value: subjects.to_string(),
                    reason: "must be fewer than the training subjects",
                });
            }
            subs.shuffle(&mut rng);
            let val: Vec<String> = subs[..subjects].to_vec();
            let (mut f, mut v) = (Vec::new(), Vec::new());
            for (i, s) in train.samples().iter().enumerate() {
                if val.contains(&s.subject) {
                    v.push(i)
                } else {
                    f.push(i)
                }
            }
            (f, v)
        }
    };
    let device = model.device().clone();
    let weights = match &cfg.class_weights {
        Some(wts) => Some(Tensor::from_slice(wts.as_slice(), wts.len(), &device)?),
        None => None,
    };
    let labels = train.labels();
    let val_x = if val_idx.is_empty() { None } else { Some(train.batch(&val_idx, &device)?) };
    let val_y: Vec<u32> = val_idx.iter().map(|&i| labels[i]).collect();

    let vars: Vec<Var> = model.trainable_vars()?.into_iter().map(|(_, v)| v).collect();
    let mut opt = Optimizer::new(vars, cfg)?;
    let mut order = cfg.sample_order.apply(&fit_idx, &labels);
    // Without shuffling the batches never change: build them once.
    let fixed: Option<Vec<(Tensor, Tensor, Vec<u32>)>> = if cfg.shuffle {
        None
    } else {
        let mut v = Vec::new();
        for chunk in order.chunks(cfg.batch_size) {
            let y: Vec<u32> = chunk.iter().map(|&i| labels[i]).collect();
            v.push((train.batch(chunk, &device)?, labels_tensor(&y, &device)?, y));
        }
        Some(v)
    };
    let mut stats = Vec::with_capacity(cfg.epochs);
    let mut best: Option<Snapshot> = None;
    for epoch in 0..cfg.epochs {
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        let mut step = |x: &Tensor, yt: &Tensor, y: &[u32], rng: &mut ChaCha8Rng| -> Result<()> {
            let logits = model.forward_train(x, rng)?;
            let loss = cross_entropy(&logits, yt, weights.as_ref())?;
            let grads = loss.backward()?;
            opt.step(&grads)?;
            let l = loss.to_scalar::<f32>()?;
            if !l.is_finite() {
                return Err(Error::NonFiniteLoss { epoch, loss: l });
            }
            loss_sum += l as f64 * y.len() as f64;
            let rows = logits.to_vec2::<f32>()?;
            correct += rows.iter().zip(y).filter(|(r, &t)| argmax(r) as u32 == t).count();
            Ok(())
        };
        match &fixed {
            Some(batches) => {
                for (x, yt, y) in batches {
                    step(x, yt, y, &mut rng)?;
                }
            }
            None => {
                order.shuffle(&mut rng);
                for chunk in order.chunks(cfg.batch_size) {
                    let y: Vec<u32> = chunk.iter().map(|&i| labels[i]).collect();
                    let x = train.batch(chunk, &device)?;
                    let yt = labels_tensor(&y, &device)?;
                    step(&x, &yt, &y, &mut rng)?;
                }
            }
        }
        let n = fit_idx.len();
        let val_uf1 = match &val_x {
            Some(vx) => {
                let pred = model.predict(vx)?;
                let f = uf1(&val_y, &pred, k as usize);
                if best.as_ref().is_none_or(|(b, _, _)| f > *b) {
                    best = Some((f, epoch, model.named_tensors()?));
                }
                Some(f)
            }
            None => None,
        };
        let s = EpochStats {
            epoch,
            train_loss: (loss_sum / n as f64) as f32,
            train_accuracy: correct as f32 / n as f32,
            val_uf1,
        };
        on_epoch(&s);
        stats.push(s);
    }
    let selected_epoch = match best {
        Some((_, e, tensors)) => {
            model.set_tensors(&tensors)?;
            e
        }
        None => cfg.epochs - 1,
    };
    Ok(TrainReport { epochs: stats, selected_epoch })
}

/// Unweighted F1 over `k` classes from pooled predictions (MEGC2019 definition: one global
/// confusion matrix; a class with no true and no predicted sample scores 0).
pub(crate) fn uf1(gt: &[u32], pred: &[u32], k: usize) -> f32 {
    let mut sum = 0.0;
    for c in 0..k as u32 {
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        for (&g, &p) in gt.iter().zip(pred) {
            match (g == c, p == c) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
        let d = 2 * tp + fp + fn_;
        if d > 0 {
            sum += 2.0 * tp as f32 / d as f32;
        }
    }
    sum / k as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_label_order_is_a_stable_grouping_and_the_default_stays_out_of_json() {
        let labels = [2u32, 0, 1, 0, 2, 1, 0];
        let idx = [6, 0, 1, 2, 3, 4];
        assert_eq!(SampleOrder::Dataset.apply(&idx, &labels), vec![6, 0, 1, 2, 3, 4]);
        // labels of 6, 0, 1, 2, 3, 4 are 0, 2, 0, 1, 0, 2 -> zeros (6, 1, 3), ones (2), twos (0, 4)
        assert_eq!(SampleOrder::ByLabel.apply(&idx, &labels), vec![6, 1, 3, 2, 0, 4]);
        let json = serde_json::to_string(&TrainConfig::default()).unwrap();
        assert!(!json.contains("sample_order"), "{json}");
        let by = TrainConfig { sample_order: SampleOrder::ByLabel, ..TrainConfig::default() };
        let json = serde_json::to_string(&by).unwrap();
        assert!(json.contains("\"sample_order\":\"by_label\""), "{json}");
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, by);
    }
}
