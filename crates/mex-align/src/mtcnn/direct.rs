//! The MTCNN networks' forward passes on the hand-written kernels of `kernels.rs`: P-Net on a
//! whole pyramid level, and the convolutional trunks of R-Net and O-Net on one crop each. The
//! dense layers of R-Net and O-Net are in `nets.rs`.

use super::kernels::{max_pool_hwc, to_hwc3, DConv, Dims};

/// facenet-pytorch's `permute(0, 3, 2, 1)` flattening (`(w·H + h)·C + c`) of one map with dims `d`
/// and `cs` values per pixel, of which the first `c` are real channels.
fn flatten_whc(x: &[f32], d: Dims, cs: usize, c: usize, out: &mut [f32]) {
    for yy in 0..d.h {
        for xx in 0..d.w {
            let o = (xx * d.h + yy) * c;
            let i = (yy * d.stride + xx) * cs;
            out[o..o + c].copy_from_slice(&x[i..i + c]);
        }
    }
}

/// R-Net's convolutional trunk on one `3 × 24 × 24` crop: the 576 features of `dense4`.
#[derive(Debug, Clone)]
pub(crate) struct DirectRTrunk {
    pub conv1: DConv<3, 3, 32, 3>,
    pub conv2: DConv<28, 32, 48, 3>,
    pub conv3: DConv<48, 48, 64, 2>,
}

impl DirectRTrunk {
    /// Features of one crop into `out` (576 values).
    pub(crate) fn run(&self, crop: &[f32], s: &mut PnetScratch, out: &mut [f32]) {
        to_hwc3(crop, 24 * 24, &mut s.a);
        let d = self.conv1.forward(&s.a, Dims::compact(24, 24), &mut s.b, false);
        let d = max_pool_hwc::<32>(&s.b, d, 3, 2, &mut s.a);
        let d = self.conv2.forward(&s.a, d, &mut s.b, false);
        let d = max_pool_hwc::<48>(&s.b, d, 3, 2, &mut s.a);
        let d = self.conv3.forward(&s.a, d, &mut s.b, false);
        flatten_whc(&s.b, d, 64, 64, out);
    }
}

/// O-Net's convolutional trunk on one `3 × 48 × 48` crop: the 1152 features of `dense5`.
#[derive(Debug, Clone)]
pub(crate) struct DirectOTrunk {
    pub conv1: DConv<3, 3, 32, 3>,
    pub conv2: DConv<32, 32, 64, 3>,
    pub conv3: DConv<64, 64, 64, 3>,
    pub conv4: DConv<64, 64, 128, 2>,
}

impl DirectOTrunk {
    /// Features of one crop into `out` (1152 values).
    pub(crate) fn run(&self, crop: &[f32], s: &mut PnetScratch, out: &mut [f32]) {
        to_hwc3(crop, 48 * 48, &mut s.a);
        let d = self.conv1.forward(&s.a, Dims::compact(48, 48), &mut s.b, false);
        let d = max_pool_hwc::<32>(&s.b, d, 3, 2, &mut s.a);
        let d = self.conv2.forward(&s.a, d, &mut s.b, false);
        let d = max_pool_hwc::<64>(&s.b, d, 3, 2, &mut s.a);
        let d = self.conv3.forward(&s.a, d, &mut s.b, false);
        let d = max_pool_hwc::<64>(&s.b, d, 2, 2, &mut s.a);
        let d = self.conv4.forward(&s.a, d, &mut s.b, false);
        flatten_whc(&s.b, d, 128, 128, out);
    }
}

/// Reusable buffers of one network pass.
#[derive(Debug, Default)]
pub(crate) struct PnetScratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

/// P-Net with direct convolutions.
#[derive(Debug, Clone)]
pub(crate) struct DirectPNet {
    pub conv1: DConv<3, 3, 16, 3>,
    pub conv2: DConv<10, 16, 16, 3>,
    pub conv3: DConv<16, 16, 32, 3>,
    /// conv4_2 (4 regression) then conv4_1 (2 logits), 1x1.
    pub head: DConv<32, 32, 16, 1>,
}

impl DirectPNet {
    /// Forward pass on 3 channel-first planes (`3 × h × w`): `(regression (4 planes), face
    /// probability plane, map height, map width)`, or `None` when the input is smaller than 12x12.
    ///
    /// With `floor = Some(t)` (`0 < t < 1`), the softmax (two `exp`) is skipped where the logits
    /// show the probability to be far below `t` (logit difference more than 1 below
    /// `ln(t / (1 - t))`, i.e. a probability below σ(logit(t) − 1), e.g. 0.355 for t = 0.6, a
    /// margin far above the softmax's rounding) and 0 is stored there instead; every probability
    /// that could reach `t` is computed exactly as before.
    pub(crate) fn run(
        &self,
        planes: &[f32],
        h: usize,
        w: usize,
        s: &mut PnetScratch,
        floor: Option<f32>,
    ) -> Option<(Vec<f32>, Vec<f32>, usize, usize)> {
        if h < 12 || w < 12 {
            return None;
        }
        // With AVX-512, the first layer and pool straight from the planes; otherwise from a
        // channels-last copy.
        let d = match self.conv1.forward_pool2_planar::<10>(planes, (h, w), &mut s.c) {
            Some(d) => d,
            None => {
                to_hwc3(planes, h * w, &mut s.a);
                self.conv1.forward_pool2(&s.a, Dims::compact(h, w), &mut s.c)
            }
        };
        let d = self.conv2.forward(&s.c, d, &mut s.b, true);
        let d = self.conv3.forward(&s.b, d, &mut s.a, true);
        let d = self.head.forward(&s.a, d, &mut s.b, true);
        let m = d.h * d.w;
        // Logit-difference cutoff under which the probability is certainly below the floor.
        let cutoff = match floor {
            Some(t) if t > 0.0 && t < 1.0 => ((f64::from(t) / (1.0 - f64::from(t))).ln() - 1.0) as f32,
            _ => f32::NEG_INFINITY,
        };
        let mut reg = vec![0.0f32; 4 * m];
        let mut prob = vec![0.0f32; m];
        for yy in 0..d.h {
            for xx in 0..d.w {
                let i = yy * d.w + xx;
                let px = &s.b[(yy * d.stride + xx) * 16..][..16];
                for c in 0..4 {
                    reg[c * m + i] = px[c];
                }
                prob[i] = if px[5] - px[4] < cutoff { 0.0 } else { super::nets::prob1(px[4], px[5]) };
            }
        }
        Some((reg, prob, d.h, d.w))
    }
}
