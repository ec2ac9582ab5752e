//! STSTNet (Liong, See, Wong, Phan 2019, "Shallow triple stream three-dimensional CNN (STSTNet)
//! for micro-expression recognition"), exactly as the reference PyTorch code
//! (christy1206/STSTNet `main.py`).

use super::{bn_config, bn_specs, conv_specs, linear_specs, Conv, Net, ParamSpec};
use crate::ops::{dropout, max_pool2d_padded};
use crate::{Error, Result};
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{BatchNorm, Linear, VarBuilder};
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

    pub(crate) fn build_net(&self, vb: VarBuilder<'_>) -> candle_core::Result<Ststnet> {
        let mut streams = Vec::with_capacity(3);
        for (i, &c) in self.stream_channels.iter().enumerate() {
            let conv = Conv::new(3, c, 3, self.conv_padding, vb.pp(format!("conv{}", i + 1)))?;
            let bn = candle_nn::batch_norm(c, bn_config(), vb.pp(format!("bn{}", i + 1)))?;
            streams.push((conv, bn));
        }
        let fc = candle_nn::linear(self.fc_inputs(), self.num_classes, vb.pp("fc"))?;
        Ok(Ststnet { streams, fc, dropout: self.dropout })
    }
}

/// The STSTNet network (built through [`super::Model`]).
#[derive(Debug)]
pub struct Ststnet {
    streams: Vec<(Conv, BatchNorm)>,
    fc: Linear,
    dropout: f32,
}

impl Net for Ststnet {
    fn forward(&self, x: &Tensor, mut rng: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let train = rng.is_some();
        let mut outs = Vec::with_capacity(self.streams.len());
        for (conv, bn) in &self.streams {
            let y = conv.forward(x)?.relu()?;
            let y = bn.forward_t(&y, train)?;
            let y = max_pool2d_padded(&y, 3, 3, 1)?;
            let y = match rng.as_deref_mut() {
                Some(r) => dropout(&y, self.dropout, r)?,
                None => y,
            };
            outs.push(y);
        }
        let y = Tensor::cat(&outs, 1)?.avg_pool2d(2)?.flatten_from(1)?;
        self.fc.forward(&y)
    }
}
