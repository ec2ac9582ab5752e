//! STSTNet (Liong, See, Wong, Phan 2019, "Shallow triple stream three-dimensional CNN (STSTNet)
//! for micro-expression recognition"), exactly as the reference PyTorch code
//! (christy1206/STSTNet `main.py`).

use super::{bn_config, bn_specs, conv_specs, linear_specs, Net, ParamSpec};
use crate::fused::{self, pack_params, BatchStats, BlockGeom, SharedCache};
use crate::ops::dropout_avg_pool2;
use crate::{Error, Result};
use candle_core::{Module, Tensor, Var};
use candle_nn::{Linear, VarBuilder};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// STSTNet configuration. `Default` is the reference PyTorch code: 28x28x3 input, streams of
/// 3, 5 and 8 filters (3x3, padding 2), ReLU then BatchNorm, max-pool 3/3 padding 1, dropout
/// 0.5, concatenation, average pool 2, linear 400 -> 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StstnetConfig {
    /// Input height and width (28).
    pub input_size: usize,
    /// Filters of the three streams (3, 5, 8).
    pub stream_channels: [usize; 3],
    /// Convolution padding: 2 in the PyTorch code (default), 1 in the paper's Table I.
    pub conv_padding: usize,
    /// Dropout probability after each stream's pooling (0.5).
    pub dropout: f32,
    /// Number of classes (3).
    pub num_classes: usize,
}

impl Default for StstnetConfig {
    fn default() -> Self {
        Self { input_size: 28, stream_channels: [3, 5, 8], conv_padding: 2, dropout: 0.5, num_classes: 3 }
    }
}

impl StstnetConfig {
    /// The reference PyTorch code (`main.py`): convolution padding 2. Same as `default()`.
    pub fn pytorch() -> Self {
        Self::default()
    }

    /// The paper's Table I: convolution padding 1 (28x28 maps before pooling).
    pub fn paper() -> Self {
        Self { conv_padding: 1, ..Self::default() }
    }

    /// Side of the maps after the max pooling.
    fn pooled_size(&self) -> usize {
        let conv = self.input_size + 2 * self.conv_padding - 2;
        (conv + 2 - 3) / 3 + 1
    }

    /// Length of the flattened feature vector fed to `fc` (400 by default).
    pub fn fc_inputs(&self) -> usize {
        let p = self.pooled_size() / 2;
        self.stream_channels.iter().sum::<usize>() * p * p
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason| Err(Error::InvalidParam { name, value, reason });
        if self.input_size < 4 {
            return bad("input_size", self.input_size.to_string(), "must be at least 4");
        }
        if self.stream_channels.contains(&0) {
            return bad("stream_channels", format!("{:?}", self.stream_channels), "must be positive");
        }
        if self.conv_padding > 2 {
            return bad("conv_padding", self.conv_padding.to_string(), "must be 0, 1 or 2");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", self.dropout.to_string(), "must be in [0, 1)");
        }
        if self.num_classes < 2 {
            return bad("num_classes", self.num_classes.to_string(), "must be at least 2");
        }
        if self.pooled_size() < 2 {
            return bad("input_size", self.input_size.to_string(), "too small for the pooling");
        }
        Ok(())
    }

    /// Tensors with their PyTorch names: `conv1..3`, `bn1..3`, `fc`.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut v = Vec::new();
        for (i, &c) in self.stream_channels.iter().enumerate() {
            v.extend(conv_specs(&format!("conv{}", i + 1), 3, c, 3));
        }
        for (i, &c) in self.stream_channels.iter().enumerate() {
            v.extend(bn_specs(&format!("bn{}", i + 1), c));
        }
        v.extend(linear_specs("fc", self.fc_inputs(), self.num_classes));
        v
    }

    /// Geometry of the three streams as one fused block (see [`crate::fused`]).
    fn block_geom(&self) -> BlockGeom {
        BlockGeom {
            cin: 3,
            h: self.input_size,
            w: self.input_size,
            cout: self.stream_channels.iter().sum(),
            k: 3,
            pad: self.conv_padding,
            pool_k: 3,
            pool_s: 3,
            pool_p: 1,
            eps: bn_config().eps as f32,
        }
    }

    pub(crate) fn build_net(&self, vb: VarBuilder<'_>) -> candle_core::Result<Ststnet> {
        let mut streams = Vec::with_capacity(3);
        for (i, &c) in self.stream_channels.iter().enumerate() {
            let conv = vb.pp(format!("conv{}", i + 1));
            let bn = vb.pp(format!("bn{}", i + 1));
            streams.push(Stream {
                weight: conv.get((c, 3, 3, 3), "weight")?,
                bias: conv.get(c, "bias")?,
                gamma: bn.get(c, "weight")?,
                beta: bn.get(c, "bias")?,
                running_mean: Var::from_tensor(&bn.get(c, "running_mean")?)?,
                running_var: Var::from_tensor(&bn.get(c, "running_var")?)?,
            });
        }
        let fc = candle_nn::linear(self.fc_inputs(), self.num_classes, vb.pp("fc"))?;
        Ok(Ststnet {
            streams,
            fc,
            dropout: self.dropout,
            geom: self.block_geom(),
            momentum: bn_config().momentum as f32,
            cache: SharedCache::default(),
        })
    }
}

/// The tensors of one stream (the `Var`s of the model's `VarMap`, shared).
#[derive(Debug)]
struct Stream {
    weight: Tensor,
    bias: Tensor,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
}

/// The STSTNet network (built through [`super::Model`]). The three streams run as one fused
/// convolution + ReLU + BatchNorm + max-pool block ([`crate::fused`]).
#[derive(Debug)]
pub struct Ststnet {
    streams: Vec<Stream>,
    fc: Linear,
    dropout: f32,
    geom: BlockGeom,
    momentum: f32,
    cache: SharedCache,
}

impl Ststnet {
    /// PyTorch's running-statistics update: `r = (1 - m) r + m s`, with the unbiased batch
    /// variance.
    fn update_running(&self, stats: &BatchStats) -> candle_core::Result<()> {
        let m = self.momentum;
        let unbias = stats.count as f32 / (stats.count.max(2) - 1) as f32;
        let mut at = 0;
        for s in &self.streams {
            let c = s.running_mean.elem_count();
            let rm = s.running_mean.as_tensor().to_vec1::<f32>()?;
            let rv = s.running_var.as_tensor().to_vec1::<f32>()?;
            let rm: Vec<f32> =
                rm.iter().zip(&stats.mean[at..at + c]).map(|(r, b)| (1.0 - m) * r + m * b).collect();
            let rv: Vec<f32> =
                rv.iter().zip(&stats.var[at..at + c]).map(|(r, b)| (1.0 - m) * r + m * b * unbias).collect();
            let dev = s.running_mean.device();
            s.running_mean.set(&Tensor::from_vec(rm, c, dev)?)?;
            s.running_var.set(&Tensor::from_vec(rv, c, dev)?)?;
            at += c;
        }
        Ok(())
    }
}

impl Ststnet {
    /// Eval-mode forward pass with candle's own ops only (`conv2d`, `relu`, broadcast affine,
    /// `-inf` padding and `max_pool2d`), for devices other than the CPU, where the fused kernels
    /// do not run. Same values as the fused path (tested on the CPU).
    pub(crate) fn forward_eval_generic(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let cat =
            |f: &dyn Fn(&Stream) -> Tensor| Tensor::cat(&self.streams.iter().map(f).collect::<Vec<_>>(), 0);
        let w = cat(&|s| s.weight.clone())?;
        let b = cat(&|s| s.bias.clone())?;
        let gamma = cat(&|s| s.gamma.clone())?;
        let beta = cat(&|s| s.beta.clone())?;
        let rm = cat(&|s| s.running_mean.as_tensor().clone())?;
        let rv = cat(&|s| s.running_var.as_tensor().clone())?;
        let o = w.dim(0)?;
        let scale = (gamma / (rv + self.geom.eps as f64)?.sqrt()?)?;
        let shift = (beta - (rm * &scale)?)?;
        let c4 = |t: &Tensor| t.reshape((1, o, 1, 1));
        let z = x.conv2d(&w, self.geom.pad, 1, 1, 1)?.broadcast_add(&c4(&b)?)?.relu()?;
        let y = z.broadcast_mul(&c4(&scale)?)?.broadcast_add(&c4(&shift)?)?;
        // MaxPool2d(3, 3, padding 1): pad with -inf, then pool without padding.
        let (n, _, h, wd) = y.dims4()?;
        let ninf = |hh: usize, ww: usize| Tensor::full(f32::NEG_INFINITY, (n, o, hh, ww), y.device());
        let y = Tensor::cat(&[&ninf(1, wd)?, &y, &ninf(1, wd)?], 2)?;
        let y = Tensor::cat(&[&ninf(h + 2, 1)?, &y, &ninf(h + 2, 1)?], 3)?;
        let y = y.max_pool2d_with_stride(3, 3)?;
        self.fc.forward(&y.avg_pool2d(2)?.flatten_from(1)?)
    }
}

impl Net for Ststnet {
    fn forward_eval_portable(&self, x: &Tensor) -> Option<candle_core::Result<Tensor>> {
        Some(self.forward_eval_generic(x))
    }

    fn forward(&self, x: &Tensor, rng: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        if !x.device().is_cpu() {
            return match rng {
                None => self.forward_eval_generic(x),
                Some(_) => candle_core::bail!(
                    "training STSTNet on {:?} is not supported: its fused training kernels run on \
                     the CPU only (inference works on any device)",
                    x.device()
                ),
            };
        }
        let params: Vec<_> = self.streams.iter().map(|s| (&s.weight, &s.bias, &s.gamma, &s.beta)).collect();
        let y = match rng {
            Some(rng) => {
                let packed = pack_params(&params, None)?;
                let (y, stats) = fused::forward_train(x, &packed, self.geom, &self.cache)?;
                self.update_running(&stats)?;
                // Dropout is element-wise, so one mask over the concatenated streams is the
                // same as one per stream; it and the average pooling are one op.
                let y = dropout_avg_pool2(&y, self.dropout, rng)?;
                return self.fc.forward(&y.flatten_from(1)?);
            }
            None => {
                let running: Vec<_> = self
                    .streams
                    .iter()
                    .map(|s| (s.running_mean.as_tensor(), s.running_var.as_tensor()))
                    .collect();
                let packed = pack_params(&params, Some(&running))?;
                fused::forward_eval(x, &packed, self.geom)?
            }
        };
        self.fc.forward(&y.avg_pool2d(2)?.flatten_from(1)?)
    }
}
