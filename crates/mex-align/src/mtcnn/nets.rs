//! P-Net, R-Net and O-Net of MTCNN, loaded from safetensors with facenet-pytorch 2.6.0's tensor
//! names through a candle `VarBuilder`.
//!
//! The convolutional layers run as direct convolutions on channels-last activations (`kernels.rs`,
//! assembled in `direct.rs`:
//! register-tiled, bias, PReLU and P-Net's first max pool fused, AVX2/FMA or AVX-512 chosen at run
//! time, P-Net's maps and R-Net/O-Net crops in parallel; with AVX-512 P-Net's first layer reads the
//! channel-first planes directly); the fully connected layers use candle's matrix product. Only the
//! convolutions' summation order differs from PyTorch, which the reference tests bound.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use rayon::prelude::*;

use super::direct::{DirectOTrunk, DirectPNet, DirectRTrunk, PnetScratch};
use super::kernels::DConv;
use crate::{Error, Result};

static PNET_BYTES: &[u8] = include_bytes!("../../models/mtcnn/pnet.safetensors");
static RNET_BYTES: &[u8] = include_bytes!("../../models/mtcnn/rnet.safetensors");
static ONET_BYTES: &[u8] = include_bytes!("../../models/mtcnn/onet.safetensors");

/// A fully connected layer (optionally with PReLU) on `(N, F)` rows.
#[derive(Debug, Clone)]
struct Dense {
    /// `(F, out)` (the transposed PyTorch weight).
    wt: Tensor,
    b: Vec<f32>,
    alpha: Option<Vec<f32>>,
    fin: usize,
    fout: usize,
}

impl Dense {
    fn load(
        vb: &VarBuilder<'_>,
        names: &[&str],
        prelu: Option<&str>,
        fin: usize,
        fouts: &[usize],
    ) -> Result<Self> {
        // Several heads may be concatenated into one product.
        let mut ws = Vec::new();
        let mut b = Vec::new();
        for (name, &fout) in names.iter().zip(fouts) {
            ws.push(vb.get((fout, fin), &format!("{name}.weight"))?);
            b.extend(vb.get(fout, &format!("{name}.bias"))?.to_vec1::<f32>()?);
        }
        let wt = Tensor::cat(&ws, 0)?.t()?.contiguous()?;
        let fout = fouts.iter().sum();
        let alpha = prelu.map(|p| vb.get(fout, &format!("{p}.weight"))?.to_vec1::<f32>()).transpose()?;
        Ok(Self { wt, b, alpha, fin, fout })
    }

    fn forward(&self, x: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let x = Tensor::from_vec(x, (n, self.fin), &Device::Cpu)?;
        let mut y = x.matmul(&self.wt)?.flatten_all()?.to_vec1::<f32>()?;
        for row in y.chunks_exact_mut(self.fout) {
            for (j, v) in row.iter_mut().enumerate() {
                let t = *v + self.b[j];
                *v = match &self.alpha {
                    Some(a) if t <= 0.0 => a[j] * t,
                    _ => t,
                };
            }
        }
        Ok(y)
    }
}

/// Two-class softmax's second probability, `exp(b) / (exp(a) + exp(b))`.
#[inline]
pub(crate) fn prob1(a: f32, b: f32) -> f32 {
    let m = a.max(b);
    let (ea, eb) = ((a - m).exp(), (b - m).exp());
    eb / (ea + eb)
}

fn tensor(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// MTCNN's proposal network (fully convolutional, 12x12 receptive field, stride 2), run with
/// direct convolutions (see `kernels.rs`).
#[derive(Debug, Clone)]
pub struct PNet {
    net: DirectPNet,
}

fn raw(vb: &VarBuilder<'_>, shape: &[usize], name: &str) -> Result<Vec<f32>> {
    Ok(vb.get(shape, name)?.flatten_all()?.to_vec1::<f32>()?)
}

fn dconv<const CIN: usize, const CS: usize, const CO: usize, const K: usize>(
    vb: &VarBuilder<'_>,
    name: &str,
    prelu: &str,
    cout: usize,
) -> Result<DConv<CIN, CS, CO, K>> {
    let w = raw(vb, &[cout, CIN, K, K], &format!("{name}.weight"))?;
    let b = raw(vb, &[cout], &format!("{name}.bias"))?;
    let a = raw(vb, &[cout], &format!("{prelu}.weight"))?;
    Ok(DConv::new(&w, &b, Some(&a)))
}

impl PNet {
    /// Builds the network from a var builder whose names follow facenet-pytorch
    /// (`conv1.weight`, `prelu1.weight`, ..., `conv4_1.*`, `conv4_2.*`).
    pub fn new(vb: VarBuilder<'_>) -> Result<Self> {
        let mut w = raw(&vb, &[4, 32, 1, 1], "conv4_2.weight")?;
        w.extend(raw(&vb, &[2, 32, 1, 1], "conv4_1.weight")?);
        let mut b = raw(&vb, &[4], "conv4_2.bias")?;
        b.extend(raw(&vb, &[2], "conv4_1.bias")?);
        Ok(Self {
            net: DirectPNet {
                conv1: dconv(&vb, "conv1", "prelu1", 10)?,
                conv2: dconv(&vb, "conv2", "prelu2", 16)?,
                conv3: dconv(&vb, "conv3", "prelu3", 32)?,
                head: DConv::new(&w, &b, None),
            },
        })
    }

    /// Loads the vendored facenet-pytorch weights.
    pub fn load_vendored(device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_slice_safetensors(PNET_BYTES, DType::F32, device)?)
    }

    /// Forward pass on one image's 3 channel-first planes (`3 × h × w`, normalised):
    /// `(regression (4 planes), face probability plane, map height, map width)`. With
    /// `floor = Some(t)`, probabilities certainly below `t` may be returned as 0 (the others are
    /// exact; see `DirectPNet::run`).
    pub(crate) fn run_planes(
        &self,
        planes: &[f32],
        h: usize,
        w: usize,
        scratch: &mut PnetScratch,
        floor: Option<f32>,
    ) -> Result<(Vec<f32>, Vec<f32>, usize, usize)> {
        if planes.len() != 3 * h * w {
            return Err(Error::param("pnet input", format!("{} values", planes.len()), "is not 3 x h x w"));
        }
        self.net
            .run(planes, h, w, scratch, floor)
            .ok_or_else(|| Error::param("pnet input", format!("3x{h}x{w}"), "is smaller than 12x12"))
    }

    /// Forward pass on an `(N, 3, H, W)` normalised batch, as facenet-pytorch's `PNet.forward`:
    /// `(regression (N,4,h,w), probabilities (N,2,h,w))`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, c, h, w) = x.dims4()?;
        if c != 3 {
            return Err(Error::param("pnet input channels", c, "must be 3"));
        }
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        let mut scratch = PnetScratch::default();
        let (mut regs, mut probs) = (Vec::new(), Vec::new());
        let (mut oh, mut ow) = (0, 0);
        for img in data.chunks_exact(3 * h * w) {
            let (reg, prob, hh, ww) = self.run_planes(img, h, w, &mut scratch, None)?;
            (oh, ow) = (hh, ww);
            regs.extend(reg);
            probs.extend(prob.iter().map(|p| 1.0 - p));
            probs.extend(prob);
        }
        Ok((tensor(regs, &[n, 4, oh, ow])?, tensor(probs, &[n, 2, oh, ow])?))
    }
}

/// Runs a convolutional trunk on every crop of an `N × 3 × size × size` batch in parallel.
fn trunk_features(
    data: &[f32],
    size: usize,
    nfeat: usize,
    f: impl Fn(&[f32], &mut PnetScratch, &mut [f32]) + Sync,
) -> Result<(Vec<f32>, usize)> {
    let per = 3 * size * size;
    if !data.len().is_multiple_of(per) {
        return Err(Error::param(
            "crop batch",
            format!("{} values", data.len()),
            "is not N x 3 x size x size",
        ));
    }
    let n = data.len() / per;
    let mut feats = vec![0.0f32; n * nfeat];
    thread_local! {
        /// Per-thread activations of one crop, kept between calls.
        static TRUNK_SCRATCH: std::cell::RefCell<PnetScratch> = std::cell::RefCell::new(PnetScratch::default());
    }
    feats.par_chunks_mut(nfeat).zip(data.par_chunks(per)).for_each(|(o, c)| {
        super::kernels::with_scratch(&TRUNK_SCRATCH, |s| f(c, s, o));
    });
    Ok((feats, n))
}

/// MTCNN's refinement network (24x24 input).
#[derive(Debug, Clone)]
pub struct RNet {
    trunk: DirectRTrunk,
    dense4: Dense,
    /// dense5_2 (4 regression values) and dense5_1 (2 logits).
    head: Dense,
}

impl RNet {
    /// Builds the network from a var builder whose names follow facenet-pytorch.
    pub fn new(vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            trunk: DirectRTrunk {
                conv1: dconv(&vb, "conv1", "prelu1", 28)?,
                conv2: dconv(&vb, "conv2", "prelu2", 48)?,
                conv3: dconv(&vb, "conv3", "prelu3", 64)?,
            },
            dense4: Dense::load(&vb, &["dense4"], Some("prelu4"), 576, &[128])?,
            head: Dense::load(&vb, &["dense5_2", "dense5_1"], None, 128, &[4, 2])?,
        })
    }

    /// Loads the vendored facenet-pytorch weights.
    pub fn load_vendored(device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_slice_safetensors(RNET_BYTES, DType::F32, device)?)
    }

    /// Per crop of an `N × 3 × 24 × 24` batch: `[r1, r2, r3, r4, face probability]`.
    pub(crate) fn run(&self, data: &[f32]) -> Result<Vec<[f32; 5]>> {
        let (f, n) = trunk_features(data, 24, 576, |c, s, o| self.trunk.run(c, s, o))?;
        let f = self.dense4.forward(f, n)?;
        let y = self.head.forward(f, n)?;
        Ok(y.chunks_exact(6).map(|r| [r[0], r[1], r[2], r[3], prob1(r[4], r[5])]).collect())
    }

    /// Forward pass on `(N, 3, 24, 24)`: `(regression (N,4), probabilities (N,2))`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, _, _, _) = x.dims4()?;
        let out = self.run(&x.flatten_all()?.to_vec1::<f32>()?)?;
        let reg = out.iter().flat_map(|r| [r[0], r[1], r[2], r[3]]).collect();
        let prob = out.iter().flat_map(|r| [1.0 - r[4], r[4]]).collect();
        Ok((tensor(reg, &[n, 4])?, tensor(prob, &[n, 2])?))
    }
}

/// MTCNN's output network (48x48 input; box regression and five landmarks).
#[derive(Debug, Clone)]
pub struct ONet {
    trunk: DirectOTrunk,
    dense5: Dense,
    /// dense6_2 (4 regression), dense6_3 (10 landmarks), dense6_1 (2 logits).
    head: Dense,
}

impl ONet {
    /// Builds the network from a var builder whose names follow facenet-pytorch.
    pub fn new(vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            trunk: DirectOTrunk {
                conv1: dconv(&vb, "conv1", "prelu1", 32)?,
                conv2: dconv(&vb, "conv2", "prelu2", 64)?,
                conv3: dconv(&vb, "conv3", "prelu3", 64)?,
                conv4: dconv(&vb, "conv4", "prelu4", 128)?,
            },
            dense5: Dense::load(&vb, &["dense5"], Some("prelu5"), 1152, &[256])?,
            head: Dense::load(&vb, &["dense6_2", "dense6_3", "dense6_1"], None, 256, &[4, 10, 2])?,
        })
    }

    /// Loads the vendored facenet-pytorch weights.
    pub fn load_vendored(device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_slice_safetensors(ONET_BYTES, DType::F32, device)?)
    }

    /// Per crop of an `N × 3 × 48 × 48` batch: `[r1..r4, l1..l10, face probability]`.
    pub(crate) fn run(&self, data: &[f32]) -> Result<Vec<[f32; 15]>> {
        let (f, n) = trunk_features(data, 48, 1152, |c, s, o| self.trunk.run(c, s, o))?;
        let f = self.dense5.forward(f, n)?;
        let y = self.head.forward(f, n)?;
        Ok(y.chunks_exact(16)
            .map(|r| {
                let mut o = [0.0f32; 15];
                o[..14].copy_from_slice(&r[..14]);
                o[14] = prob1(r[14], r[15]);
                o
            })
            .collect())
    }

    /// Forward pass on `(N, 3, 48, 48)`: `(regression (N,4), landmarks (N,10), probabilities (N,2))`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (n, _, _, _) = x.dims4()?;
        let out = self.run(&x.flatten_all()?.to_vec1::<f32>()?)?;
        let reg = out.iter().flat_map(|r| r[..4].to_vec()).collect();
        let lm = out.iter().flat_map(|r| r[4..14].to_vec()).collect();
        let prob = out.iter().flat_map(|r| [1.0 - r[14], r[14]]).collect();
        Ok((tensor(reg, &[n, 4])?, tensor(lm, &[n, 10])?, tensor(prob, &[n, 2])?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_floor_only_drops_probabilities_far_below_it() {
        let pnet = PNet::load_vendored(&Device::Cpu).unwrap();
        // The test frame (a face on gray) at a few pyramid scales, as `detect` resamples it.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/frame640x480.png");
        let img = image::open(path).unwrap().to_rgb8();
        let (iw, ih) = (img.width() as usize, img.height() as usize);
        let mut ii = [Vec::new(), Vec::new(), Vec::new()];
        super::super::ops::integral_images(img.as_raw(), iw, ih, &mut ii);
        let mut tmp = super::super::ops::ResizeScratch::default();
        let mut s = PnetScratch::default();
        let (mut exact, mut floored) = (Vec::new(), Vec::new());
        for (w, h) in [(39, 29), (77, 58), (129, 97)] {
            let mut planes = vec![0.0f32; 3 * w * h];
            for (c, d) in ii.iter().zip(planes.chunks_exact_mut(w * h)) {
                super::super::ops::area_resize_norm(c, iw + 1, (0, 0, iw, ih), d, (w, h), &mut tmp);
            }
            let (reg, e, oh, ow) = pnet.run_planes(&planes, h, w, &mut s, None).unwrap();
            // A floor of 0 or 1: every probability computed.
            for floor in [Some(0.0), Some(1.0)] {
                assert_eq!(pnet.run_planes(&planes, h, w, &mut s, floor).unwrap().1, e);
            }
            let (reg2, f, oh2, ow2) = pnet.run_planes(&planes, h, w, &mut s, Some(0.6)).unwrap();
            assert_eq!((reg2, oh2, ow2), (reg, oh, ow));
            exact.extend(e);
            floored.extend(f);
        }
        let (mut dropped, mut kept) = (0, 0);
        for (&f, &e) in floored.iter().zip(&exact) {
            if f.to_bits() == e.to_bits() {
                kept += 1;
            } else {
                // Dropped only far below the floor (σ(logit(0.6) − 1) = 0.355).
                assert!(f == 0.0 && e < 0.36, "{f} vs {e}");
                dropped += 1;
            }
        }
        assert!(dropped > 0 && kept > 0, "{dropped} dropped, {kept} kept");
    }
}
