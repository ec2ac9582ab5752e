//! P-Net, R-Net and O-Net of MTCNN, loaded from safetensors with facenet-pytorch 2.6.0's tensor
//! names through a candle `VarBuilder`.
//!
//! The forward passes use candle's matrix product (gemm) for every layer: convolutions are
//! lowered to `weight (Cout, Cin·k·k) × im2col (Cin·k·k, N·H·W)` on activations kept in
//! `C × N × H × W` order, so the product's output is already the next layer's input; bias and
//! PReLU are fused in one pass and max pooling (`ceil_mode=True`) is a direct loop. This is several
//! times faster on CPU than generic convolution kernels for these small-channel layers.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{Error, Result};

static PNET_BYTES: &[u8] = include_bytes!("../../models/mtcnn/pnet.safetensors");
static RNET_BYTES: &[u8] = include_bytes!("../../models/mtcnn/rnet.safetensors");
static ONET_BYTES: &[u8] = include_bytes!("../../models/mtcnn/onet.safetensors");

/// Activations in `C × N × H × W` order.
#[derive(Debug, Clone)]
pub(crate) struct Act {
    pub data: Vec<f32>,
    pub c: usize,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

impl Act {
    /// From `N × C × H × W` data (the layout of a PyTorch batch).
    pub(crate) fn from_nchw(data: &[f32], n: usize, c: usize, h: usize, w: usize) -> Self {
        let plane = h * w;
        let mut out = vec![0.0f32; data.len()];
        for ni in 0..n {
            for ci in 0..c {
                out[(ci * n + ni) * plane..(ci * n + ni + 1) * plane]
                    .copy_from_slice(&data[(ni * c + ci) * plane..(ni * c + ci + 1) * plane]);
            }
        }
        Self { data: out, c, n, h, w }
    }

    /// Back to `N × C × H × W`.
    fn to_nchw(&self) -> Vec<f32> {
        let plane = self.h * self.w;
        let mut out = vec![0.0f32; self.data.len()];
        for ni in 0..self.n {
            for ci in 0..self.c {
                out[(ni * self.c + ci) * plane..(ni * self.c + ci + 1) * plane]
                    .copy_from_slice(&self.data[(ci * self.n + ni) * plane..(ci * self.n + ni + 1) * plane]);
            }
        }
        out
    }
}

fn matmul(a: &Tensor, b: Vec<f32>, rows: usize, cols: usize) -> Result<Vec<f32>> {
    let b = Tensor::from_vec(b, (rows, cols), &Device::Cpu)?;
    Ok(a.matmul(&b)?.flatten_all()?.to_vec1::<f32>()?)
}

/// A convolution (stride 1, no padding) followed by PReLU (when `alpha` is set).
#[derive(Debug, Clone)]
struct Conv {
    /// `(Cout, Cin·k·k)`.
    w: Tensor,
    b: Vec<f32>,
    alpha: Option<Vec<f32>>,
    cin: usize,
    cout: usize,
    k: usize,
}

impl Conv {
    fn load(
        vb: &VarBuilder<'_>,
        name: &str,
        prelu: Option<&str>,
        cin: usize,
        cout: usize,
        k: usize,
    ) -> Result<Self> {
        let w = vb.get((cout, cin, k, k), &format!("{name}.weight"))?.reshape((cout, cin * k * k))?;
        let b = vb.get(cout, &format!("{name}.bias"))?.to_vec1::<f32>()?;
        let alpha = prelu.map(|p| vb.get(cout, &format!("{p}.weight"))?.to_vec1::<f32>()).transpose()?;
        Ok(Self { w, b, alpha, cin, cout, k })
    }

    fn forward(&self, x: &Act) -> Result<Act> {
        if x.c != self.cin || x.h < self.k || x.w < self.k {
            return Err(Error::param(
                "conv input",
                format!("{}x{}x{}", x.c, x.h, x.w),
                "does not fit the layer",
            ));
        }
        let k = self.k;
        let (ho, wo) = (x.h - k + 1, x.w - k + 1);
        let npix = x.n * ho * wo;
        let cols = if k == 1 {
            x.data.clone()
        } else {
            let mut cols = vec![0.0f32; self.cin * k * k * npix];
            for c in 0..self.cin {
                for ky in 0..k {
                    for kx in 0..k {
                        let r = (c * k + ky) * k + kx;
                        let dst = &mut cols[r * npix..(r + 1) * npix];
                        for n in 0..x.n {
                            let src = &x.data[(c * x.n + n) * x.h * x.w..(c * x.n + n + 1) * x.h * x.w];
                            for y in 0..ho {
                                let s = (y + ky) * x.w + kx;
                                dst[(n * ho + y) * wo..(n * ho + y + 1) * wo]
                                    .copy_from_slice(&src[s..s + wo]);
                            }
                        }
                    }
                }
            }
            cols
        };
        let mut data = matmul(&self.w, cols, self.cin * k * k, npix)?;
        for (c, row) in data.chunks_exact_mut(npix).enumerate() {
            let b = self.b[c];
            match &self.alpha {
                Some(a) => {
                    let a = a[c];
                    for v in row.iter_mut() {
                        let t = *v + b;
                        *v = if t > 0.0 { t } else { a * t };
                    }
                }
                None => row.iter_mut().for_each(|v| *v += b),
            }
        }
        Ok(Act { data, c: self.cout, n: x.n, h: ho, w: wo })
    }
}

/// PyTorch's `MaxPool2d(k, s, ceil_mode=True)` (no padding).
fn max_pool_ceil(x: &Act, k: usize, s: usize) -> Act {
    let out = |n: usize| n.saturating_sub(k).div_ceil(s) + 1;
    let (ho, wo) = (out(x.h), out(x.w));
    let mut data = vec![0.0f32; x.c * x.n * ho * wo];
    for (p, dst) in data.chunks_exact_mut(ho * wo).enumerate() {
        let src = &x.data[p * x.h * x.w..(p + 1) * x.h * x.w];
        for oy in 0..ho {
            let y0 = oy * s;
            let y1 = (y0 + k).min(x.h);
            for ox in 0..wo {
                let x0 = ox * s;
                let x1 = (x0 + k).min(x.w);
                let mut m = f32::NEG_INFINITY;
                for yy in y0..y1 {
                    for v in &src[yy * x.w + x0..yy * x.w + x1] {
                        m = m.max(*v);
                    }
                }
                dst[oy * wo + ox] = m;
            }
        }
    }
    Act { data, c: x.c, n: x.n, h: ho, w: wo }
}

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

/// facenet-pytorch's `x.permute(0, 3, 2, 1).contiguous().view(N, -1)` from `C × N × H × W`.
fn flatten_nwhc(x: &Act) -> Vec<f32> {
    let f = x.c * x.h * x.w;
    let mut out = vec![0.0f32; x.n * f];
    for n in 0..x.n {
        let row = &mut out[n * f..(n + 1) * f];
        for c in 0..x.c {
            let plane = &x.data[(c * x.n + n) * x.h * x.w..(c * x.n + n + 1) * x.h * x.w];
            for h in 0..x.h {
                for w in 0..x.w {
                    row[(w * x.h + h) * x.c + c] = plane[h * x.w + w];
                }
            }
        }
    }
    out
}

/// Two-class softmax's second probability, `exp(b) / (exp(a) + exp(b))`.
#[inline]
fn prob1(a: f32, b: f32) -> f32 {
    let m = a.max(b);
    let (ea, eb) = ((a - m).exp(), (b - m).exp());
    eb / (ea + eb)
}

fn tensor(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// MTCNN's proposal network (fully convolutional, 12x12 receptive field, stride 2).
#[derive(Debug, Clone)]
pub struct PNet {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
    /// conv4_2 (4 regression maps) and conv4_1 (2 class maps) as one 1x1 product.
    head: Conv,
}

impl PNet {
    /// Builds the network from a var builder whose names follow facenet-pytorch
    /// (`conv1.weight`, `prelu1.weight`, ..., `conv4_1.*`, `conv4_2.*`).
    pub fn new(vb: VarBuilder<'_>) -> Result<Self> {
        let w41 = vb.get((2, 32, 1, 1), "conv4_1.weight")?;
        let w42 = vb.get((4, 32, 1, 1), "conv4_2.weight")?;
        let mut b = vb.get(4, "conv4_2.bias")?.to_vec1::<f32>()?;
        b.extend(vb.get(2, "conv4_1.bias")?.to_vec1::<f32>()?);
        let head = Conv {
            w: Tensor::cat(&[w42, w41], 0)?.reshape((6, 32))?,
            b,
            alpha: None,
            cin: 32,
            cout: 6,
            k: 1,
        };
        Ok(Self {
            conv1: Conv::load(&vb, "conv1", Some("prelu1"), 3, 10, 3)?,
            conv2: Conv::load(&vb, "conv2", Some("prelu2"), 10, 16, 3)?,
            conv3: Conv::load(&vb, "conv3", Some("prelu3"), 16, 32, 3)?,
            head,
        })
    }

    /// Loads the vendored facenet-pytorch weights.
    pub fn load_vendored(device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_slice_safetensors(PNET_BYTES, DType::F32, device)?)
    }

    /// Forward pass on `C × N × H × W` activations: `(regression (4 maps), face probability map,
    /// map height, map width)`, maps in `C × N × h × w` order.
    pub(crate) fn run(&self, x: &Act) -> Result<(Vec<f32>, Vec<f32>, usize, usize)> {
        let x = self.conv1.forward(x)?;
        let x = max_pool_ceil(&x, 2, 2);
        let x = self.conv2.forward(&x)?;
        let x = self.conv3.forward(&x)?;
        let y = self.head.forward(&x)?;
        let m = y.n * y.h * y.w;
        let (reg, cls) = y.data.split_at(4 * m);
        let prob = (0..m).map(|i| prob1(cls[i], cls[m + i])).collect();
        Ok((reg.to_vec(), prob, y.h, y.w))
    }

    /// Forward pass on an `(N, 3, H, W)` normalised batch, as facenet-pytorch's `PNet.forward`:
    /// `(regression (N,4,h,w), probabilities (N,2,h,w))`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, c, h, w) = x.dims4()?;
        let act = Act::from_nchw(&x.flatten_all()?.to_vec1::<f32>()?, n, c, h, w);
        let (reg, prob, oh, ow) = self.run(&act)?;
        let reg = Act { data: reg, c: 4, n, h: oh, w: ow }.to_nchw();
        let p2: Vec<f32> = prob.iter().map(|p| 1.0 - p).chain(prob.iter().copied()).collect();
        let probs = Act { data: p2, c: 2, n, h: oh, w: ow }.to_nchw();
        Ok((tensor(reg, &[n, 4, oh, ow])?, tensor(probs, &[n, 2, oh, ow])?))
    }
}

/// MTCNN's refinement network (24x24 input).
#[derive(Debug, Clone)]
pub struct RNet {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
    dense4: Dense,
    /// dense5_2 (4 regression values) and dense5_1 (2 logits).
    head: Dense,
}

impl RNet {
    /// Builds the network from a var builder whose names follow facenet-pytorch.
    pub fn new(vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            conv1: Conv::load(&vb, "conv1", Some("prelu1"), 3, 28, 3)?,
            conv2: Conv::load(&vb, "conv2", Some("prelu2"), 28, 48, 3)?,
            conv3: Conv::load(&vb, "conv3", Some("prelu3"), 48, 64, 2)?,
            dense4: Dense::load(&vb, &["dense4"], Some("prelu4"), 576, &[128])?,
            head: Dense::load(&vb, &["dense5_2", "dense5_1"], None, 128, &[4, 2])?,
        })
    }

    /// Loads the vendored facenet-pytorch weights.
    pub fn load_vendored(device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_slice_safetensors(RNET_BYTES, DType::F32, device)?)
    }

    /// Per crop: `[r1, r2, r3, r4, face probability]`.
    pub(crate) fn run(&self, x: &Act) -> Result<Vec<[f32; 5]>> {
        let x = self.conv1.forward(x)?;
        let x = max_pool_ceil(&x, 3, 2);
        let x = self.conv2.forward(&x)?;
        let x = max_pool_ceil(&x, 3, 2);
        let x = self.conv3.forward(&x)?;
        let n = x.n;
        let f = self.dense4.forward(flatten_nwhc(&x), n)?;
        let y = self.head.forward(f, n)?;
        Ok(y.chunks_exact(6).map(|r| [r[0], r[1], r[2], r[3], prob1(r[4], r[5])]).collect())
    }

    /// Forward pass on `(N, 3, 24, 24)`: `(regression (N,4), probabilities (N,2))`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, c, h, w) = x.dims4()?;
        let out = self.run(&Act::from_nchw(&x.flatten_all()?.to_vec1::<f32>()?, n, c, h, w))?;
        let reg = out.iter().flat_map(|r| [r[0], r[1], r[2], r[3]]).collect();
        let prob = out.iter().flat_map(|r| [1.0 - r[4], r[4]]).collect();
        Ok((tensor(reg, &[n, 4])?, tensor(prob, &[n, 2])?))
    }
}

/// MTCNN's output network (48x48 input; box regression and five landmarks).
#[derive(Debug, Clone)]
pub struct ONet {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
    conv4: Conv,
    dense5: Dense,
    /// dense6_2 (4 regression), dense6_3 (10 landmarks), dense6_1 (2 logits).
    head: Dense,
}

impl ONet {
    /// Builds the network from a var builder whose names follow facenet-pytorch.
    pub fn new(vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            conv1: Conv::load(&vb, "conv1", Some("prelu1"), 3, 32, 3)?,
            conv2: Conv::load(&vb, "conv2", Some("prelu2"), 32, 64, 3)?,
            conv3: Conv::load(&vb, "conv3", Some("prelu3"), 64, 64, 3)?,
            conv4: Conv::load(&vb, "conv4", Some("prelu4"), 64, 128, 2)?,
            dense5: Dense::load(&vb, &["dense5"], Some("prelu5"), 1152, &[256])?,
            head: Dense::load(&vb, &["dense6_2", "dense6_3", "dense6_1"], None, 256, &[4, 10, 2])?,
        })
    }

    /// Loads the vendored facenet-pytorch weights.
    pub fn load_vendored(device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_slice_safetensors(ONET_BYTES, DType::F32, device)?)
    }

    /// Per crop: `[r1..r4, l1..l10, face probability]`.
    pub(crate) fn run(&self, x: &Act) -> Result<Vec<[f32; 15]>> {
        let x = self.conv1.forward(x)?;
        let x = max_pool_ceil(&x, 3, 2);
        let x = self.conv2.forward(&x)?;
        let x = max_pool_ceil(&x, 3, 2);
        let x = self.conv3.forward(&x)?;
        let x = max_pool_ceil(&x, 2, 2);
        let x = self.conv4.forward(&x)?;
        let n = x.n;
        let f = self.dense5.forward(flatten_nwhc(&x), n)?;
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
        let (n, c, h, w) = x.dims4()?;
        let out = self.run(&Act::from_nchw(&x.flatten_all()?.to_vec1::<f32>()?, n, c, h, w))?;
        let reg = out.iter().flat_map(|r| r[..4].to_vec()).collect();
        let lm = out.iter().flat_map(|r| r[4..14].to_vec()).collect();
        let prob = out.iter().flat_map(|r| [1.0 - r[14], r[14]]).collect();
        Ok((tensor(reg, &[n, 4])?, tensor(lm, &[n, 10])?, tensor(prob, &[n, 2])?))
    }
}
