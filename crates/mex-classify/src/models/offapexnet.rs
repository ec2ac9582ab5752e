//! OFF-ApexNet (Gan, Liong, Yau, Huang, Tan 2019, "OFF-ApexNet on micro-expression recognition
//! system", Signal Processing: Image Communication 74).
//!
//! Published design: two streams, one for the horizontal flow `u` and one for the vertical flow
//! `v`, each `Conv 3x3 6 (same) -> ReLU -> MaxPool 2 -> Conv 3x3 16 (same) -> ReLU -> MaxPool 2`
//! (7x7x16 = 784 features), concatenated (1568) and followed by two fully connected layers of
//! 1024 units and the softmax layer (2.66 M parameters, as counted by Off-TANet). The merged
//! variant is MEB's re-implementation: one stream over the 2-channel `(u, v)` input and one hidden
//! layer of 1024 units.

use super::{conv_specs, linear_specs, Conv, Net, ParamSpec};
use crate::ops::{dropout, max_pool2d_padded};
use crate::{Error, Result};
use candle_core::{Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Stream layout of OFF-ApexNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffApexNetVariant {
    /// Separate `u` and `v` streams (published design). Tensor names `u_conv1`, `u_conv2`,
    /// `v_conv1`, `v_conv2`, `fc1`, `fc2`, `fc3`.
    TwoStream,
    /// One stream over the two channels (MEB). Tensor names `conv1`, `conv2`, `fc1`, `fc2`.
    Merged,
}

/// OFF-ApexNet configuration; `Default` is the published two-stream design on 28x28 inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OffApexNetConfig {
    /// Stream layout.
    pub variant: OffApexNetVariant,
    /// Channels of the input tensor (2 for `(u, v)`; 3 for STSTNet's `(u, v, strain)` images).
    pub in_channels: usize,
    /// Index of the `u` channel in the input.
    pub u_channel: usize,
    /// Index of the `v` channel in the input.
    pub v_channel: usize,
    /// Input height and width (28; must be divisible by 4).
    pub input_size: usize,
    /// Filters of the two convolutions of a stream (6, 16).
    pub filters: [usize; 2],
    /// Hidden fully connected units (1024).
    pub hidden: usize,
    /// Dropout before each fully connected layer (0.5).
    pub dropout: f32,
    /// Number of classes (3).
    pub num_classes: usize,
}

impl Default for OffApexNetConfig {
    fn default() -> Self {
        Self {
            variant: OffApexNetVariant::TwoStream,
            in_channels: 2,
            u_channel: 0,
            v_channel: 1,
            input_size: 28,
            filters: [6, 16],
            hidden: 1024,
            dropout: 0.5,
            num_classes: 3,
        }
    }
}

impl OffApexNetConfig {
    /// The published two-stream design (same as `default()`).
    pub fn published() -> Self {
        Self::default()
    }

    /// MEB's merged two-channel variant.
    pub fn merged() -> Self {
        Self { variant: OffApexNetVariant::Merged, ..Self::default() }
    }

    /// Expected input shape `(C, H, W)`.
    pub fn input_shape(&self) -> (usize, usize, usize) {
        (self.in_channels, self.input_size, self.input_size)
    }

    fn stream_features(&self) -> usize {
        let s = self.input_size / 4;
        self.filters[1] * s * s
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason| Err(Error::InvalidParam { name, value, reason });
        if self.input_size < 4 || !self.input_size.is_multiple_of(4) {
            return bad("input_size", self.input_size.to_string(), "must be a positive multiple of 4");
        }
        if self.in_channels < 2 {
            return bad("in_channels", self.in_channels.to_string(), "needs at least the u and v channels");
        }
        if self.u_channel >= self.in_channels || self.v_channel >= self.in_channels {
            return bad(
                "u_channel/v_channel",
                format!("{}/{}", self.u_channel, self.v_channel),
                "out of range",
            );
        }
        if self.filters.contains(&0) || self.hidden == 0 {
            return bad("filters/hidden", format!("{:?}/{}", self.filters, self.hidden), "must be positive");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", self.dropout.to_string(), "must be in [0, 1)");
        }
        if self.num_classes < 2 {
            return bad("num_classes", self.num_classes.to_string(), "must be at least 2");
        }
        Ok(())
    }

    /// Tensors with their PyTorch names.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let [f1, f2] = self.filters;
        let mut v = Vec::new();
        match self.variant {
            OffApexNetVariant::TwoStream => {
                for s in ["u", "v"] {
                    v.extend(conv_specs(&format!("{s}_conv1"), 1, f1, 3));
                    v.extend(conv_specs(&format!("{s}_conv2"), f1, f2, 3));
                }
                v.extend(linear_specs("fc1", 2 * self.stream_features(), self.hidden));
                v.extend(linear_specs("fc2", self.hidden, self.hidden));
                v.extend(linear_specs("fc3", self.hidden, self.num_classes));
            }
            OffApexNetVariant::Merged => {
                v.extend(conv_specs("conv1", 2, f1, 3));
                v.extend(conv_specs("conv2", f1, f2, 3));
                v.extend(linear_specs("fc1", self.stream_features(), self.hidden));
                v.extend(linear_specs("fc2", self.hidden, self.num_classes));
            }
        }
        v
    }

    pub(crate) fn build_net(&self, vb: VarBuilder<'_>) -> candle_core::Result<OffApexNet> {
        let [f1, f2] = self.filters;
        let (streams, fcs) = match self.variant {
            OffApexNetVariant::TwoStream => {
                let mut streams = Vec::new();
                for s in ["u", "v"] {
                    let c1 = Conv::new(1, f1, 3, 1, vb.pp(format!("{s}_conv1")))?;
                    let c2 = Conv::new(f1, f2, 3, 1, vb.pp(format!("{s}_conv2")))?;
                    streams.push((c1, c2));
                }
                let fcs = vec![
                    candle_nn::linear(2 * self.stream_features(), self.hidden, vb.pp("fc1"))?,
                    candle_nn::linear(self.hidden, self.hidden, vb.pp("fc2"))?,
                    candle_nn::linear(self.hidden, self.num_classes, vb.pp("fc3"))?,
                ];
                (streams, fcs)
            }
            OffApexNetVariant::Merged => {
                let c1 = Conv::new(2, f1, 3, 1, vb.pp("conv1"))?;
                let c2 = Conv::new(f1, f2, 3, 1, vb.pp("conv2"))?;
                let fcs = vec![
                    candle_nn::linear(self.stream_features(), self.hidden, vb.pp("fc1"))?,
                    candle_nn::linear(self.hidden, self.num_classes, vb.pp("fc2"))?,
                ];
                (vec![(c1, c2)], fcs)
            }
        };
        Ok(OffApexNet {
            streams,
            fcs,
            dropout: self.dropout,
            u: self.u_channel,
            v: self.v_channel,
            two_stream: self.variant == OffApexNetVariant::TwoStream,
        })
    }
}

/// The OFF-ApexNet network (built through [`super::Model`]).
#[derive(Debug)]
pub struct OffApexNet {
    streams: Vec<(Conv, Conv)>,
    fcs: Vec<Linear>,
    dropout: f32,
    u: usize,
    v: usize,
    two_stream: bool,
}

fn stream(x: &Tensor, c1: &Conv, c2: &Conv) -> candle_core::Result<Tensor> {
    let y = max_pool2d_padded(&c1.forward(x)?.relu()?, 2, 2, 0)?;
    max_pool2d_padded(&c2.forward(&y)?.relu()?, 2, 2, 0)?.flatten_from(1)
}

impl Net for OffApexNet {
    fn forward(&self, x: &Tensor, mut rng: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let u = x.narrow(1, self.u, 1)?;
        let v = x.narrow(1, self.v, 1)?;
        let mut y = if self.two_stream {
            let mut feats = Vec::with_capacity(2);
            for (inp, (c1, c2)) in [u, v].iter().zip(&self.streams) {
                feats.push(stream(inp, c1, c2)?);
            }
            Tensor::cat(&feats, 1)?
        } else {
            let (c1, c2) = &self.streams[0];
            stream(&Tensor::cat(&[u, v], 1)?, c1, c2)?
        };
        let last = self.fcs.len() - 1;
        for (i, fc) in self.fcs.iter().enumerate() {
            if let Some(r) = rng.as_deref_mut() {
                y = dropout(&y, self.dropout, r)?;
            }
            y = fc.forward(&y)?;
            if i < last {
                y = y.relu()?;
            }
        }
        Ok(y)
    }
}
