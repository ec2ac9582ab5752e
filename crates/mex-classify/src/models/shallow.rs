//! A configurable shallow CNN for variant studies: a stack of convolution blocks followed by
//! fully connected layers.

use super::{bn_config, bn_specs, conv_specs, linear_specs, Conv, Net, ParamSpec};
use crate::ops::{dropout, max_pool2d_padded};
use crate::{Error, Result};
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{BatchNorm, Linear, VarBuilder};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One block: `Conv(k, padding) -> ReLU -> [BatchNorm] -> MaxPool(pool, pool) -> [BatchNorm] ->
/// Dropout`; BatchNorm sits before or after the pooling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvBlock {
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Zero padding of the convolution.
    pub padding: usize,
    /// Max-pool kernel and stride (1 = no pooling).
    pub pool: usize,
    /// Whether the block has a BatchNorm layer.
    pub batch_norm: bool,
    /// BatchNorm before the pooling (true, STSTNet style) or after it (false, SSSNet style).
    pub bn_before_pool: bool,
    /// Dropout probability at the end of the block.
    pub dropout: f32,
}

impl ConvBlock {
    /// A block with BatchNorm before pooling and no dropout.
    pub fn new(out_channels: usize, kernel: usize, padding: usize, pool: usize) -> Self {
        Self { out_channels, kernel, padding, pool, batch_norm: true, bn_before_pool: true, dropout: 0.0 }
    }
}

/// Shallow CNN configuration. Tensor names: `conv{i}`, `bn{i}` (1-based per block), `fc{j}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShallowCnnConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width.
    pub input_size: usize,
    /// Convolution blocks.
    pub blocks: Vec<ConvBlock>,
    /// Hidden fully connected layers (each followed by ReLU).
    pub hidden: Vec<usize>,
    /// Dropout before each fully connected layer.
    pub fc_dropout: f32,
    /// Number of classes.
    pub num_classes: usize,
}

impl Default for ShallowCnnConfig {
    /// Two blocks (16 and 32 filters, 3x3, pool 2) on 28x28x3 inputs, linear head.
    fn default() -> Self {
        Self {
            in_channels: 3,
            input_size: 28,
            blocks: vec![ConvBlock::new(16, 3, 1, 2), ConvBlock::new(32, 3, 1, 2)],
            hidden: vec![],
            fc_dropout: 0.5,
            num_classes: 3,
        }
    }
}

impl ShallowCnnConfig {
    /// MEB's SSSNet (Varanka et al. 2021) on 64x64x3 inputs: Conv 5x5 32 -> MaxPool 3 -> BN ->
    /// Dropout 0.5 -> Conv 3x3 64 -> MaxPool 2 -> BN -> Dropout 0.5 -> FC 5184 -> 256 -> 3.
    pub fn sssnet() -> Self {
        let b = |c, k, p| ConvBlock {
            out_channels: c,
            kernel: k,
            padding: 0,
            pool: p,
            batch_norm: true,
            bn_before_pool: false,
            dropout: 0.5,
        };
        Self {
            in_channels: 3,
            input_size: 64,
            blocks: vec![b(32, 5, 3), b(64, 3, 2)],
            hidden: vec![256],
            fc_dropout: 0.0,
            num_classes: 3,
        }
    }

    /// Sizes after each block, `None` when a block does not fit.
    fn sizes(&self) -> Option<Vec<usize>> {
        let mut s = self.input_size;
        let mut v = Vec::new();
        for b in &self.blocks {
            let conv = (s + 2 * b.padding).checked_sub(b.kernel)? + 1;
            s = conv / b.pool;
            if s == 0 {
                return None;
            }
            v.push(s);
        }
        Some(v)
    }

    fn features(&self) -> usize {
        let s = self.sizes().and_then(|v| v.last().copied()).unwrap_or(self.input_size);
        let c = self.blocks.last().map_or(self.in_channels, |b| b.out_channels);
        c * s * s
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason| Err(Error::InvalidParam { name, value, reason });
        if self.in_channels == 0 || self.input_size == 0 {
            return bad(
                "in_channels/input_size",
                format!("{}/{}", self.in_channels, self.input_size),
                "must be positive",
            );
        }
        for b in &self.blocks {
            if b.out_channels == 0 || b.kernel == 0 || b.pool == 0 {
                return bad("blocks", format!("{b:?}"), "channels, kernel and pool must be positive");
            }
            if !(0.0..1.0).contains(&b.dropout) {
                return bad("blocks.dropout", b.dropout.to_string(), "must be in [0, 1)");
            }
        }
        if self.sizes().is_none() {
            return bad("input_size", self.input_size.to_string(), "too small for the blocks");
        }
        if self.hidden.contains(&0) {
            return bad("hidden", format!("{:?}", self.hidden), "must be positive");
        }
        if !(0.0..1.0).contains(&self.fc_dropout) {
            return bad("fc_dropout", self.fc_dropout.to_string(), "must be in [0, 1)");
        }
        if self.num_classes < 2 {
            return bad("num_classes", self.num_classes.to_string(), "must be at least 2");
        }
        Ok(())
    }

    /// Tensors with their PyTorch names.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut v = Vec::new();
        let mut cin = self.in_channels;
        for (i, b) in self.blocks.iter().enumerate() {
            v.extend(conv_specs(&format!("conv{}", i + 1), cin, b.out_channels, b.kernel));
            if b.batch_norm {
                v.extend(bn_specs(&format!("bn{}", i + 1), b.out_channels));
            }
            cin = b.out_channels;
        }
        let mut fin = self.features();
        for (j, &h) in self.hidden.iter().chain(std::iter::once(&self.num_classes)).enumerate() {
            v.extend(linear_specs(&format!("fc{}", j + 1), fin, h));
            fin = h;
        }
        v
    }

    pub(crate) fn build_net(&self, vb: VarBuilder<'_>) -> candle_core::Result<ShallowCnn> {
        let mut blocks = Vec::new();
        let mut cin = self.in_channels;
        for (i, b) in self.blocks.iter().enumerate() {
            let conv = Conv::new(cin, b.out_channels, b.kernel, b.padding, vb.pp(format!("conv{}", i + 1)))?;
            let bn = if b.batch_norm {
                Some(candle_nn::batch_norm(b.out_channels, bn_config(), vb.pp(format!("bn{}", i + 1)))?)
            } else {
                None
            };
            blocks.push((conv, bn, b.clone()));
            cin = b.out_channels;
        }
        let mut fcs = Vec::new();
        let mut fin = self.features();
        for (j, &h) in self.hidden.iter().chain(std::iter::once(&self.num_classes)).enumerate() {
            fcs.push(candle_nn::linear(fin, h, vb.pp(format!("fc{}", j + 1)))?);
            fin = h;
        }
        Ok(ShallowCnn { blocks, fcs, fc_dropout: self.fc_dropout })
    }
}

/// The shallow CNN network (built through [`super::Model`]).
#[derive(Debug)]
pub struct ShallowCnn {
    blocks: Vec<(Conv, Option<BatchNorm>, ConvBlock)>,
    fcs: Vec<Linear>,
    fc_dropout: f32,
}

impl Net for ShallowCnn {
    fn forward(&self, x: &Tensor, mut rng: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let train = rng.is_some();
        let mut y = x.clone();
        for (conv, bn, b) in &self.blocks {
            y = conv.forward(&y)?.relu()?;
            if let (Some(bn), true) = (bn, b.bn_before_pool) {
                y = bn.forward_t(&y, train)?;
            }
            if b.pool > 1 {
                y = max_pool2d_padded(&y, b.pool, b.pool, 0)?;
            }
            if let (Some(bn), false) = (bn, b.bn_before_pool) {
                y = bn.forward_t(&y, train)?;
            }
            if let Some(r) = rng.as_deref_mut() {
                y = dropout(&y, b.dropout, r)?;
            }
        }
        let mut y = y.flatten_from(1)?;
        let last = self.fcs.len() - 1;
        for (i, fc) in self.fcs.iter().enumerate() {
            if let Some(r) = rng.as_deref_mut() {
                y = dropout(&y, self.fc_dropout, r)?;
            }
            y = fc.forward(&y)?;
            if i < last {
                y = y.relu()?;
            }
        }
        Ok(y)
    }
}
