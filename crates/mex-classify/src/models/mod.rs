//! Models: configurations, parameter specifications with PyTorch names, and the [`Model`]
//! wrapper that owns the parameters, runs train/eval forward passes and reads/writes
//! safetensors checkpoints.

mod offapexnet;
mod shallow;
mod ststnet;

pub use offapexnet::{OffApexNetConfig, OffApexNetVariant};
pub use shallow::{ConvBlock, ShallowCnnConfig};
pub use ststnet::StstnetConfig;

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// How a parameter is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in `[-bound, bound]` (PyTorch's default for `Conv2d` and `Linear`: the bound is
    /// `1 / sqrt(fan_in)` for weights and biases).
    Uniform(f32),
    /// A constant (BatchNorm weight 1, bias 0, running mean 0, running variance 1).
    Const(f32),
}

/// One named tensor of a model, with its PyTorch state-dict name.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// PyTorch state-dict name, e.g. `conv1.weight`, `bn1.running_mean`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Initialisation.
    pub init: Init,
    /// Whether the optimiser updates it (false for BatchNorm running statistics).
    pub trainable: bool,
}

impl ParamSpec {
    fn new(name: impl Into<String>, shape: &[usize], init: Init, trainable: bool) -> Self {
        Self { name: name.into(), shape: shape.to_vec(), init, trainable }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Specs of a PyTorch `Conv2d(cin, cout, k)` called `name`.
pub(crate) fn conv_specs(name: &str, cin: usize, cout: usize, k: usize) -> Vec<ParamSpec> {
    let bound = 1.0 / ((cin * k * k) as f32).sqrt();
    vec![
        ParamSpec::new(format!("{name}.weight"), &[cout, cin, k, k], Init::Uniform(bound), true),
        ParamSpec::new(format!("{name}.bias"), &[cout], Init::Uniform(bound), true),
    ]
}

/// Specs of a PyTorch `Linear(cin, cout)` called `name`.
pub(crate) fn linear_specs(name: &str, cin: usize, cout: usize) -> Vec<ParamSpec> {
    let bound = 1.0 / (cin as f32).sqrt();
    vec![
        ParamSpec::new(format!("{name}.weight"), &[cout, cin], Init::Uniform(bound), true),
        ParamSpec::new(format!("{name}.bias"), &[cout], Init::Uniform(bound), true),
    ]
}

/// Specs of a PyTorch `BatchNorm2d(c)` called `name` (without `num_batches_tracked`, which
/// [`Model`] handles).
pub(crate) fn bn_specs(name: &str, c: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(format!("{name}.weight"), &[c], Init::Const(1.0), true),
        ParamSpec::new(format!("{name}.bias"), &[c], Init::Const(0.0), true),
        ParamSpec::new(format!("{name}.running_mean"), &[c], Init::Const(0.0), false),
        ParamSpec::new(format!("{name}.running_var"), &[c], Init::Const(1.0), false),
    ]
}

/// PyTorch BatchNorm defaults: eps 1e-5, momentum 0.1.
pub(crate) fn bn_config() -> candle_nn::BatchNormConfig {
    candle_nn::BatchNormConfig { eps: 1e-5, remove_mean: true, affine: true, momentum: 0.1 }
}

/// A `Conv2d` layer (stride 1, zero padding, bias) on [`crate::ops::conv2d_direct`], reading the
/// PyTorch tensors `<name>.weight` `(O, C, K, K)` and `<name>.bias` `(O,)`.
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
}

impl Conv {
    pub(crate) fn new(
        cin: usize,
        cout: usize,
        k: usize,
        padding: usize,
        vb: VarBuilder<'_>,
    ) -> candle_core::Result<Self> {
        let weight = vb.get((cout, cin, k, k), "weight")?;
        let bias = vb.get(cout, "bias")?.reshape((1, cout, 1, 1))?;
        Ok(Self { weight, bias, padding })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        crate::ops::conv2d_direct(x, &self.weight, self.padding)?.broadcast_add(&self.bias)
    }
}

/// A network built from a [`VarBuilder`] over a [`VarMap`] that already holds every tensor.
pub trait Net: Send + Sync + std::fmt::Debug {
    /// Forward pass: `rng` is `Some` in training mode (dropout active, BatchNorm uses batch
    /// statistics and updates its running statistics) and `None` in eval mode.
    fn forward(&self, x: &Tensor, rng: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor>;

    /// Eval-mode forward pass with candle's standard ops only, where the network has fused CPU
    /// kernels (the path used on other devices); `None` when it has no separate path.
    fn forward_eval_portable(&self, _x: &Tensor) -> Option<candle_core::Result<Tensor>> {
        None
    }
}

/// Every model of the crate, serde-tagged so a TOML/JSON experiment file names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ModelConfig {
    /// STSTNet (Liong et al. 2019).
    Ststnet(StstnetConfig),
    /// OFF-ApexNet (Gan, Liong et al. 2019).
    OffApexNet(OffApexNetConfig),
    /// A configurable shallow CNN for variant studies.
    ShallowCnn(ShallowCnnConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::Ststnet(StstnetConfig::default())
    }
}

impl ModelConfig {
    /// Short name for reports and bench ids.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ststnet(_) => "ststnet",
            Self::OffApexNet(c) => match c.variant {
                OffApexNetVariant::TwoStream => "off_apexnet",
                OffApexNetVariant::Merged => "off_apexnet_merged",
            },
            Self::ShallowCnn(_) => "shallow_cnn",
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Ststnet(c) => c.validate(),
            Self::OffApexNet(c) => c.validate(),
            Self::ShallowCnn(c) => c.validate(),
        }
    }

    /// Expected input shape `(channels, height, width)`.
    pub fn input_shape(&self) -> (usize, usize, usize) {
        match self {
            Self::Ststnet(c) => (3, c.input_size, c.input_size),
            Self::OffApexNet(c) => c.input_shape(),
            Self::ShallowCnn(c) => (c.in_channels, c.input_size, c.input_size),
        }
    }

    /// Number of output classes.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::Ststnet(c) => c.num_classes,
            Self::OffApexNet(c) => c.num_classes,
            Self::ShallowCnn(c) => c.num_classes,
        }
    }

    /// Every tensor of the model with its PyTorch name.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        match self {
            Self::Ststnet(c) => c.param_specs(),
            Self::OffApexNet(c) => c.param_specs(),
            Self::ShallowCnn(c) => c.param_specs(),
        }
    }

    /// Number of trainable scalars.
    pub fn num_trainable(&self) -> usize {
        self.param_specs().iter().filter(|s| s.trainable).map(ParamSpec::numel).sum()
    }

    /// Number of BatchNorm layers (each has a `num_batches_tracked` entry in checkpoints).
    fn bn_names(&self) -> Vec<String> {
        self.param_specs()
            .iter()
            .filter_map(|s| s.name.strip_suffix(".running_mean").map(str::to_string))
            .collect()
    }

    fn build_net(&self, vb: VarBuilder<'_>) -> candle_core::Result<Box<dyn Net>> {
        Ok(match self {
            Self::Ststnet(c) => Box::new(c.build_net(vb)?),
            Self::OffApexNet(c) => Box::new(c.build_net(vb)?),
            Self::ShallowCnn(c) => Box::new(c.build_net(vb)?),
        })
    }
}

/// A model: configuration, parameters (a candle [`VarMap`] keyed by PyTorch names) and network.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use mex_classify::{Model, ModelConfig, StstnetConfig};
/// # fn main() -> mex_classify::Result<()> {
/// let cfg = ModelConfig::Ststnet(StstnetConfig::default());
/// let model = Model::new(&cfg, 7, &Device::Cpu)?; // seeded PyTorch-default initialisation
/// let x = Tensor::zeros((2, 3, 28, 28), candle_core::DType::F32, &Device::Cpu)?; // (N, C, H, W)
/// let classes = model.predict(&x)?;
/// assert_eq!(classes.len(), 2);
/// assert!(classes.iter().all(|&c| c < 3));
/// # Ok(()) }
/// ```
///
/// [`Model::load`] reads PyTorch-named safetensors checkpoints (the released STSTNet weights load
/// unchanged) and [`Model::save`] writes them.
pub struct Model {
    config: ModelConfig,
    specs: Vec<ParamSpec>,
    varmap: VarMap,
    net: Box<dyn Net>,
    device: Device,
    num_batches_tracked: i64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("tensors", &self.specs.len())
            .field("num_batches_tracked", &self.num_batches_tracked)
            .finish()
    }
}

impl Model {
    /// A freshly initialised model (PyTorch default initialisation, drawn from `seed`).
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let specs = config.param_specs();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().map_err(|_| Error::Dataset("poisoned var map".into()))?;
            for s in &specs {
                let n = s.numel();
                let values: Vec<f32> = match s.init {
                    Init::Const(v) => vec![v; n],
                    Init::Uniform(b) => (0..n).map(|_| rng.random_range(-b..=b)).collect(),
                };
                let var = Var::from_vec(values, s.shape.as_slice(), device)?;
                data.insert(s.name.clone(), var);
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = config.build_net(vb)?;
        Ok(Self {
            config: config.clone(),
            specs,
            varmap,
            net,
            device: device.clone(),
            num_batches_tracked: 0,
        })
    }

    /// A model whose tensors are read from a safetensors checkpoint with PyTorch names (e.g. the
    /// released STSTNet weights). A missing tensor or a tensor of the wrong shape is an error
    /// naming it; extra tensors are ignored.
    pub fn load(config: &ModelConfig, path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let mut m = Self::new(config, 0, device)?;
        m.load_weights(path)?;
        Ok(m)
    }

    /// Replaces the tensors by those of a safetensors checkpoint (see [`Model::load`]).
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = candle_core::safetensors::load_buffer(&bytes, &self.device)
            .map_err(|e| Error::Checkpoint { path: path.into(), reason: e.to_string() })?;
        // Check everything before changing anything.
        let mut values = Vec::with_capacity(self.specs.len());
        for s in &self.specs {
            let t = st
                .get(&s.name)
                .ok_or_else(|| Error::MissingTensor { path: path.into(), name: s.name.clone() })?;
            if t.dims() != s.shape.as_slice() {
                return Err(Error::TensorShape {
                    path: path.into(),
                    name: s.name.clone(),
                    expected: s.shape.clone(),
                    found: t.dims().to_vec(),
                });
            }
            values.push(t.to_dtype(DType::F32)?);
        }
        let mut tracked = 0;
        if let Some(bn) = self.config.bn_names().first() {
            if let Some(t) = st.get(&format!("{bn}.num_batches_tracked")) {
                tracked =
                    t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?.first().copied().unwrap_or(0);
            }
        }
        let data = self.varmap.data().lock().map_err(|_| Error::Dataset("poisoned var map".into()))?;
        for (s, t) in self.specs.iter().zip(values) {
            if let Some(var) = data.get(&s.name) {
                var.set(&t)?;
            }
        }
        self.num_batches_tracked = tracked;
        Ok(())
    }

    /// Writes every tensor to a safetensors file with PyTorch names (including each BatchNorm's
    /// `num_batches_tracked` as an i64 scalar), loadable by `torch` with `load_state_dict`. The
    /// file is written to a temporary file in the same folder and renamed into place, so a failed
    /// save leaves no file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut map: HashMap<String, Tensor> = self.named_tensors()?.into_iter().collect();
        for bn in self.config.bn_names() {
            let t = Tensor::new(self.num_batches_tracked, &Device::Cpu)?;
            map.insert(format!("{bn}.num_batches_tracked"), t);
        }
        mex_core::write_atomic_with(path, |tmp| {
            candle_core::safetensors::save(&map, tmp).map_err(|e| match e {
                candle_core::Error::Io(io) => Error::io(path, io),
                other => Error::Checkpoint { path: path.into(), reason: other.to_string() },
            })
        })
        .map_err(|e| e.into_error(Error::io))
    }

    /// Sets tensors by PyTorch name (e.g. a snapshot from [`Model::named_tensors`]); a name the
    /// model does not have or a wrong shape is an error naming the tensor.
    pub fn set_tensors(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let data = self.varmap.data().lock().map_err(|_| Error::Dataset("poisoned var map".into()))?;
        for (name, t) in tensors {
            let var = data
                .get(name)
                .ok_or_else(|| Error::MissingTensor { path: "<model>".into(), name: name.clone() })?;
            if var.dims() != t.dims() {
                return Err(Error::TensorShape {
                    path: "<memory>".into(),
                    name: name.clone(),
                    expected: var.dims().to_vec(),
                    found: t.dims().to_vec(),
                });
            }
            var.set(t)?;
        }
        Ok(())
    }

    /// Every tensor (detached copies) with its PyTorch name, in spec order.
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let data = self.varmap.data().lock().map_err(|_| Error::Dataset("poisoned var map".into()))?;
        let mut out = Vec::with_capacity(self.specs.len());
        for s in &self.specs {
            if let Some(v) = data.get(&s.name) {
                out.push((s.name.clone(), v.as_tensor().detach().copy()?));
            }
        }
        Ok(out)
    }

    /// The trainable variables (what an optimiser updates), in spec order.
    pub fn trainable_vars(&self) -> Result<Vec<(String, Var)>> {
        let data = self.varmap.data().lock().map_err(|_| Error::Dataset("poisoned var map".into()))?;
        Ok(self
            .specs
            .iter()
            .filter(|s| s.trainable)
            .filter_map(|s| data.get(&s.name).map(|v| (s.name.clone(), v.clone())))
            .collect())
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of BatchNorm updates so far (PyTorch's `num_batches_tracked`).
    pub fn num_batches_tracked(&self) -> i64 {
        self.num_batches_tracked
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let (c, h, w) = self.config.input_shape();
        let d = x.dims();
        if d.len() != 4 || d[1..] != [c, h, w] {
            return Err(Error::InputShape {
                what: format!("{} input", self.config.name()),
                expected: vec![d.first().copied().unwrap_or(0), c, h, w],
                found: d.to_vec(),
            });
        }
        Ok(())
    }

    /// Eval-mode logits `(N, classes)` of an `(N, C, H, W)` batch (no dropout, BatchNorm running
    /// statistics).
    pub fn forward_eval(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        Ok(self.net.forward(x, None)?)
    }

    /// Eval-mode logits computed with candle's standard operations only, for models whose CPU
    /// forward pass uses fused kernels (STSTNet): the path such a model takes on devices other
    /// than the CPU. `None` for models without fused kernels. Useful to check the kernels.
    pub fn forward_eval_portable(&self, x: &Tensor) -> Result<Option<Tensor>> {
        self.check_input(x)?;
        Ok(self.net.forward_eval_portable(x).transpose()?)
    }

    /// Training-mode logits: dropout masks drawn from `rng`, BatchNorm on batch statistics with
    /// its running statistics updated (momentum 0.1, unbiased variance, as PyTorch).
    pub fn forward_train(&mut self, x: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        self.check_input(x)?;
        let y = self.net.forward(x, Some(rng))?;
        self.num_batches_tracked += 1;
        Ok(y)
    }

    /// Eval-mode class probabilities (softmax of the logits).
    pub fn predict_proba(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::softmax(&self.forward_eval(x)?, 1)?)
    }

    /// Eval-mode predicted labels (argmax of the logits; the first maximum on ties).
    pub fn predict(&self, x: &Tensor) -> Result<Vec<u32>> {
        let logits = self.forward_eval(x)?.to_vec2::<f32>()?;
        Ok(logits.iter().map(|r| argmax(r) as u32).collect())
    }
}

/// Index of the first maximum.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
