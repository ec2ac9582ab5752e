//! Tensor operations that candle lacks or gets wrong for these models.
//!
//! * [`max_pool2d_padded`]: max pooling with implicit `-inf` padding, exactly PyTorch's
//!   `MaxPool2d(kernel, stride, padding)`, as a candle custom op with a correct backward pass
//!   (the gradient goes to the first maximum of each window, as in PyTorch). candle's own
//!   `max_pool2d` has no padding and its backward scales the gradient by the fraction of maxima
//!   in the window (1/9 for a 3x3 window with one maximum).
//! * [`dropout`]: inverted dropout whose mask comes from a seeded RNG, so training is
//!   reproducible on CPU (candle's CPU RNG cannot be seeded).
//! * [`dropout_avg_pool2`]: dropout then 2x2 average pooling as one op (STSTNet's head), with the
//!   same mask draws, values and gradients as the two ops.
//! * [`cross_entropy`]: PyTorch's `CrossEntropyLoss` with optional class weights.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Max pooling over the last two dimensions of an `(N, C, H, W)` f32 tensor with a square
/// `kernel`, `stride` and implicit `-inf` `padding` (PyTorch `MaxPool2d` semantics, floor mode).
pub fn max_pool2d_padded(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    if kernel == 0 || stride == 0 || 2 * padding > kernel {
        candle_core::bail!(
            "max_pool2d_padded: invalid kernel {kernel}, stride {stride}, padding {padding} \
             (need kernel > 0, stride > 0, padding <= kernel / 2)"
        )
    }
    let (_, _, h, w) = x.dims4()?;
    if h + 2 * padding < kernel || w + 2 * padding < kernel {
        candle_core::bail!("max_pool2d_padded: kernel {kernel} larger than padded input {h}x{w}")
    }
    x.contiguous()?.apply_op1(MaxPool { kernel, stride, padding })
}

#[derive(Debug, Clone, Copy)]
struct MaxPool {
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl MaxPool {
    fn out_size(&self, n: usize) -> usize {
        (n + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Index (within the plane) of the first maximum of output cell `(oy, ox)`.
    #[inline]
    fn argmax(&self, plane: &[f32], w: usize, h: usize, oy: usize, ox: usize) -> usize {
        let y0 = (oy * self.stride) as isize - self.padding as isize;
        let x0 = (ox * self.stride) as isize - self.padding as isize;
        let ys = y0.max(0) as usize;
        let ye = ((y0 + self.kernel as isize) as usize).min(h);
        let xs = x0.max(0) as usize;
        let xe = ((x0 + self.kernel as isize) as usize).min(w);
        let mut best = ys * w + xs;
        let mut best_v = f32::NEG_INFINITY;
        for y in ys..ye {
            let row = &plane[y * w..y * w + w];
            for (x, &v) in row.iter().enumerate().take(xe).skip(xs) {
                if v > best_v || v.is_nan() {
                    best_v = v;
                    best = y * w + x;
                    if v.is_nan() {
                        return best;
                    }
                }
            }
        }
        best
    }
}

pub(crate) fn contiguous_f32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("{what}: only f32 tensors are supported"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

/// Planes above this many elements in total are pooled in parallel.
const PAR_THRESHOLD: usize = 1 << 16;

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool2d_padded"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let (n, c, h, w) = l.shape().dims4()?;
        let (oh, ow) = (self.out_size(h), self.out_size(w));
        let mut out = vec![0f32; n * c * oh * ow];
        let f = |(plane, o): (&[f32], &mut [f32])| {
            for oy in 0..oh {
                for ox in 0..ow {
                    o[oy * ow + ox] = plane[self.argmax(plane, w, h, oy, ox)];
                }
            }
        };
        if x.len() > PAR_THRESHOLD {
            x.par_chunks(h * w).zip(out.par_chunks_mut(oh * ow)).for_each(f);
        } else {
            x.chunks(h * w).zip(out.chunks_mut(oh * ow)).for_each(f);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&g, &MaxPoolBwd(*self))?))
    }
}

/// Backward of [`MaxPool`]: `(input, grad_output) -> grad_input`.
struct MaxPoolBwd(MaxPool);

impl CustomOp2 for MaxPoolBwd {
    fn name(&self) -> &'static str {
        "max_pool2d_padded_bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let p = self.0;
        let x = contiguous_f32(s1, l1, self.name())?;
        let g = contiguous_f32(s2, l2, self.name())?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (oh, ow) = (p.out_size(h), p.out_size(w));
        if l2.shape().dims() != [n, c, oh, ow] {
            candle_core::bail!("{}: gradient shape {:?} != {:?}", self.name(), l2.shape(), (n, c, oh, ow))
        }
        let mut out = vec![0f32; n * c * h * w];
        let f = |((plane, gp), o): ((&[f32], &[f32]), &mut [f32])| {
            for oy in 0..oh {
                for ox in 0..ow {
                    o[p.argmax(plane, w, h, oy, ox)] += gp[oy * ow + ox];
                }
            }
        };
        if x.len() > PAR_THRESHOLD {
            x.par_chunks(h * w).zip(g.par_chunks(oh * ow)).zip(out.par_chunks_mut(h * w)).for_each(f);
        } else {
            x.chunks(h * w).zip(g.chunks(oh * ow)).zip(out.chunks_mut(h * w)).for_each(f);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// 2-D convolution, stride 1, square zero `padding`, of an `(N, C, H, W)` f32 tensor with an
/// `(O, C, K, K)` kernel (no bias), as a candle custom op with its backward pass. A direct
/// kernel (vectorised along image rows, parallel over the batch) for the small channel counts
/// of these models, where candle's im2col path is slow.
pub fn conv2d_direct(x: &Tensor, w: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    let (_, c, h, wd) = x.dims4()?;
    let (_, c2, k, k2) = w.dims4()?;
    if c != c2 || k != k2 || k == 0 {
        candle_core::bail!("conv2d_direct: input {:?} and kernel {:?} do not fit", x.dims(), w.dims())
    }
    if h + 2 * padding < k || wd + 2 * padding < k {
        candle_core::bail!("conv2d_direct: kernel {k} larger than padded input {h}x{wd}")
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, Conv { padding })
}

#[derive(Debug, Clone, Copy)]
struct Conv {
    padding: usize,
}

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy)]
struct ConvGeom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    p: usize,
    oh: usize,
    ow: usize,
}

impl ConvGeom {
    fn new(x: &Layout, w: &Layout, p: usize) -> candle_core::Result<Self> {
        let (n, c, h, wd) = x.shape().dims4()?;
        let (o, _, k, _) = w.shape().dims4()?;
        Ok(Self { n, c, h, w: wd, o, k, p, oh: h + 2 * p + 1 - k, ow: wd + 2 * p + 1 - k })
    }

    /// Valid output range `[lo, hi)` along one axis of length `len` (input) for kernel tap `t`:
    /// output `i` reads input `i + t - p`.
    #[inline]
    fn range(&self, t: usize, len: usize, out_len: usize) -> (usize, usize) {
        let lo = self.p.saturating_sub(t);
        let hi = (len + self.p).saturating_sub(t).min(out_len);
        (lo, hi.max(lo))
    }
}

/// `out[o] += sum_c sum_taps w[o,c,ky,kx] * x[c, oy+ky-p, ox+kx-p]` for one sample.
fn conv_fwd_sample(g: &ConvGeom, x: &[f32], wt: &[f32], out: &mut [f32]) {
    let (kk, plane, oplane) = (g.k * g.k, g.h * g.w, g.oh * g.ow);
    for o in 0..g.o {
        let op = &mut out[o * oplane..(o + 1) * oplane];
        for c in 0..g.c {
            let xp = &x[c * plane..(c + 1) * plane];
            for ky in 0..g.k {
                let (y0, y1) = g.range(ky, g.h, g.oh);
                for kx in 0..g.k {
                    let wv = wt[(o * g.c + c) * kk + ky * g.k + kx];
                    let (x0, x1) = g.range(kx, g.w, g.ow);
                    for oy in y0..y1 {
                        let iy = oy + ky - g.p;
                        let orow = &mut op[oy * g.ow + x0..oy * g.ow + x1];
                        let irow = &xp[iy * g.w + x0 + kx - g.p..iy * g.w + x1 + kx - g.p];
                        for (a, b) in orow.iter_mut().zip(irow) {
                            *a += wv * b;
                        }
                    }
                }
            }
        }
    }
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "conv2d_direct"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let wt = contiguous_f32(s2, l2, self.name())?;
        let g = ConvGeom::new(l1, l2, self.padding)?;
        let (is, os) = (g.c * g.h * g.w, g.o * g.oh * g.ow);
        let mut out = vec![0f32; g.n * os];
        x.par_chunks(is)
            .zip(out.par_chunks_mut(os))
            .with_min_len(8)
            .for_each(|(xs, o)| conv_fwd_sample(&g, xs, wt, o));
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.o, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gx = grad.apply_op2_no_bwd(w, &ConvBwdInput { padding: self.padding, x_shape: x.dims4()? })?;
        let gw = x.apply_op2_no_bwd(&grad, &ConvBwdWeight { padding: self.padding, k: w.dim(2)? })?;
        Ok((Some(gx), Some(gw)))
    }
}

/// `(grad_out, w) -> grad_x`.
struct ConvBwdInput {
    padding: usize,
    x_shape: (usize, usize, usize, usize),
}

impl CustomOp2 for ConvBwdInput {
    fn name(&self) -> &'static str {
        "conv2d_direct_bwd_input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let gr = contiguous_f32(s1, l1, self.name())?;
        let wt = contiguous_f32(s2, l2, self.name())?;
        let (n, c, h, w) = self.x_shape;
        let (o, _, k, _) = l2.shape().dims4()?;
        let p = self.padding;
        let g = ConvGeom { n, c, h, w, o, k, p, oh: h + 2 * p + 1 - k, ow: w + 2 * p + 1 - k };
        let (is, os, plane, oplane, kk) = (c * h * w, o * g.oh * g.ow, h * w, g.oh * g.ow, k * k);
        let mut out = vec![0f32; n * is];
        out.par_chunks_mut(is).zip(gr.par_chunks(os)).with_min_len(8).for_each(|(gx, gs)| {
            for oc in 0..o {
                let gp = &gs[oc * oplane..(oc + 1) * oplane];
                for ci in 0..c {
                    let xp = &mut gx[ci * plane..(ci + 1) * plane];
                    for ky in 0..k {
                        let (y0, y1) = g.range(ky, h, g.oh);
                        for kx in 0..k {
                            let wv = wt[(oc * c + ci) * kk + ky * k + kx];
                            let (x0, x1) = g.range(kx, w, g.ow);
                            for oy in y0..y1 {
                                let iy = oy + ky - p;
                                let grow = &gp[oy * g.ow + x0..oy * g.ow + x1];
                                let xrow = &mut xp[iy * w + x0 + kx - p..iy * w + x1 + kx - p];
                                for (a, b) in xrow.iter_mut().zip(grow) {
                                    *a += wv * b;
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from(self.x_shape)))
    }
}

/// `(x, grad_out) -> grad_w`.
struct ConvBwdWeight {
    padding: usize,
    k: usize,
}

impl CustomOp2 for ConvBwdWeight {
    fn name(&self) -> &'static str {
        "conv2d_direct_bwd_weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let gr = contiguous_f32(s2, l2, self.name())?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (_, o, oh, ow) = l2.shape().dims4()?;
        let (k, p) = (self.k, self.padding);
        let g = ConvGeom { n, c, h, w, o, k, p, oh, ow };
        let (is, os, plane, oplane, kk) = (c * h * w, o * oh * ow, h * w, oh * ow, k * k);
        let wlen = o * c * kk;
        // A fixed chunk size keeps the summation order, hence the result, independent of the
        // number of threads.
        let chunk = 16;
        let partials: Vec<Vec<f32>> = x
            .par_chunks(is * chunk)
            .zip(gr.par_chunks(os * chunk))
            .map(|(xs, gs)| {
                let mut acc = vec![0f32; wlen];
                for (xn, gn) in xs.chunks(is).zip(gs.chunks(os)) {
                    for oc in 0..o {
                        let gp = &gn[oc * oplane..(oc + 1) * oplane];
                        for ci in 0..c {
                            let xp = &xn[ci * plane..(ci + 1) * plane];
                            for ky in 0..k {
                                let (y0, y1) = g.range(ky, h, oh);
                                for kx in 0..k {
                                    let (x0, x1) = g.range(kx, w, ow);
                                    let mut s = 0f32;
                                    for oy in y0..y1 {
                                        let iy = oy + ky - p;
                                        let grow = &gp[oy * ow + x0..oy * ow + x1];
                                        let xrow = &xp[iy * w + x0 + kx - p..iy * w + x1 + kx - p];
                                        s += grow.iter().zip(xrow).map(|(a, b)| a * b).sum::<f32>();
                                    }
                                    acc[(oc * c + ci) * kk + ky * k + kx] += s;
                                }
                            }
                        }
                    }
                }
                acc
            })
            .collect();
        let mut out = vec![0f32; wlen];
        for part in partials {
            for (a, b) in out.iter_mut().zip(part) {
                *a += b;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((o, c, k, k))))
    }
}

/// Inverted dropout with drop probability `p`: in training mode every element is zeroed with
/// probability `p` and the others are scaled by `1 / (1 - p)`; the mask comes from `rng`.
pub fn dropout(x: &Tensor, p: f32, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        candle_core::bail!("dropout probability must be in [0, 1), got {p}")
    }
    if p == 0.0 {
        return Ok(x.clone());
    }
    let mask = dropout_mask(x.elem_count(), p, rng);
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}

/// `n` inverted-dropout multipliers (`0` with probability `p`, else `1 / (1 - p)`): one
/// `rng.random::<f32>() < p` per element, in order. The generator's words are drawn in bulk into
/// the mask's own buffer and compared as `random::<f32>` does (the top 24 bits times 2^-24), so
/// that it vectorises.
fn dropout_mask(n: usize, p: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let scale = 1.0 / (1.0 - p);
    let mut mask = vec![0f32; n];
    rng.fill(bytemuck::cast_slice_mut::<f32, u32>(&mut mask));
    for m in &mut mask {
        let u = m.to_bits();
        *m = if ((u >> 8) as f32) * (1.0 / (1u32 << 24) as f32) < p { 0.0 } else { scale };
    }
    mask
}

/// Dropout followed by 2x2 average pooling (stride 2, floor mode) of an `(N, C, H, W)` f32
/// tensor, as one op: the same values and gradients as `dropout(x, p, rng)?.avg_pool2d(2)`
/// (the same mask draws, the same sums in the same order, the same backward products), without
/// the mask tensor and the intermediate maps and their backward passes. STSTNet's head.
/// With `p = 0` it is candle's `avg_pool2d` (whose backward differs from this op's on odd map
/// sizes, see the test).
pub fn dropout_avg_pool2(x: &Tensor, p: f32, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        candle_core::bail!("dropout probability must be in [0, 1), got {p}")
    }
    if p == 0.0 {
        return x.avg_pool2d(2);
    }
    let (_, _, h, w) = x.dims4()?;
    if h < 2 || w < 2 {
        candle_core::bail!("dropout_avg_pool2: input {h}x{w} is smaller than the 2x2 window")
    }
    // The same draws and comparisons as [`dropout`].
    let mask = dropout_mask(x.elem_count(), p, rng);
    x.contiguous()?.apply_op1(DropPool { mask: std::sync::Arc::new(mask) })
}

/// [`dropout_avg_pool2`]'s op: the mask is kept for the backward pass.
struct DropPool {
    mask: std::sync::Arc<Vec<f32>>,
}

impl DropPool {
    /// The plane loop of both passes: `f(plane index, output plane)` for the first `n_planes`
    /// planes of `per` values in `out`, in parallel for large outputs.
    fn planes<F: Fn(usize, &mut [f32]) + Sync + Send>(n_planes: usize, per: usize, out: &mut [f32], f: F) {
        if out.len() > PAR_THRESHOLD / 4 {
            out.par_chunks_mut(per).enumerate().take(n_planes).for_each(|(i, o)| f(i, o));
        } else {
            out.chunks_mut(per).enumerate().take(n_planes).for_each(|(i, o)| f(i, o));
        }
    }
}

impl CustomOp1 for DropPool {
    fn name(&self) -> &'static str {
        "dropout_avg_pool2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let (n, c, h, w) = l.shape().dims4()?;
        if self.mask.len() != x.len() {
            candle_core::bail!("dropout_avg_pool2: mask of {} values for {} inputs", self.mask.len(), x.len())
        }
        let (oh, ow) = (h / 2, w / 2);
        let mut out = vec![0f32; n * c * oh * ow];
        let mask = &self.mask;
        Self::planes(n * c, oh * ow, &mut out, |i, o| {
            let (xs, ms) = (&x[i * h * w..(i + 1) * h * w], &mask[i * h * w..(i + 1) * h * w]);
            for oy in 0..oh {
                for ox in 0..ow {
                    // candle's avg_pool2d: the window's sum in row order, divided by its size.
                    let mut sum = 0f32;
                    for m in 0..2 {
                        for k in 0..2 {
                            let j = (2 * oy + m) * w + 2 * ox + k;
                            sum += xs[j] * ms[j];
                        }
                    }
                    o[oy * ow + ox] = sum / 4.0;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let g = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let (oh, ow) = (h / 2, w / 2);
        if g.len() != n * c * oh * ow || self.mask.len() != n * c * h * w {
            candle_core::bail!("dropout_avg_pool2: gradient of {} values for {:?}", g.len(), arg.shape())
        }
        let mut dx = vec![0f32; n * c * h * w];
        let mask = &self.mask;
        // candle's backward: the gradient upsampled and times 1/4, then times the mask; zero
        // in the rows and columns that floor mode drops.
        Self::planes(n * c, h * w, &mut dx, |i, d| {
            let (gs, ms) = (&g[i * oh * ow..(i + 1) * oh * ow], &mask[i * h * w..(i + 1) * h * w]);
            for y in 0..2 * oh {
                for x in 0..2 * ow {
                    let j = y * w + x;
                    d[j] = (gs[(y / 2) * ow + x / 2] * 0.25) * ms[j];
                }
            }
        });
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Mean cross-entropy of `logits` `(N, K)` against `targets` `(N,)` u32, PyTorch
/// `CrossEntropyLoss` semantics: with class `weights` `(K,)` the loss is
/// `sum_i w[y_i] * nll_i / sum_i w[y_i]`.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    match weights {
        None => picked.mean_all()?.neg(),
        Some(w) => {
            let wi = w.gather(targets, 0)?;
            (picked.mul(&wi)?.sum_all()? / wi.sum_all()?)?.neg()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    fn reference_pool(x: &[f32], h: usize, w: usize, k: usize, s: usize, p: usize) -> Vec<f32> {
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let mut out = vec![f32::NEG_INFINITY; oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                for dy in 0..k {
                    for dx in 0..k {
                        let y = (oy * s + dy) as isize - p as isize;
                        let xx = (ox * s + dx) as isize - p as isize;
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                            let v = x[y as usize * w + xx as usize];
                            if v > out[oy * ow + ox] {
                                out[oy * ow + ox] = v;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn pool_matches_brute_force_with_negative_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for &(h, k, s, p) in &[(30usize, 3usize, 3usize, 1usize), (28, 3, 3, 1), (7, 3, 2, 1), (8, 2, 2, 0)] {
            let data: Vec<f32> = (0..2 * 3 * h * h).map(|_| rng.random::<f32>() - 2.0).collect();
            let x = Tensor::from_vec(data.clone(), (2, 3, h, h), &Device::Cpu).unwrap();
            let y = max_pool2d_padded(&x, k, s, p).unwrap();
            let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut want = Vec::new();
            for plane in data.chunks(h * h) {
                want.extend(reference_pool(plane, h, h, k, s, p));
            }
            assert_eq!(got, want, "h {h} k {k} s {s} p {p}");
        }
    }

    #[test]
    fn pool_gradient_goes_to_the_max_with_unit_weight() {
        // 1x1x3x3 input, kernel 3 stride 3 padding 1 -> 1x1 output covering x[0..2, 0..2].
        let x =
            Var::from_vec(vec![1f32, 5., 2., 3., 4., 9., 0., 0., 0.], (1, 1, 3, 3), &Device::Cpu).unwrap();
        let y = max_pool2d_padded(x.as_tensor(), 3, 3, 1).unwrap();
        assert_eq!(y.dims(), &[1, 1, 1, 1]);
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![5.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(gx, vec![0., 1., 0., 0., 0., 0., 0., 0., 0.]);
    }

    #[test]
    fn direct_conv_and_its_gradients_match_candle() {
        let dev = Device::Cpu;
        for &(n, c, o, h, k, p) in
            &[(3usize, 3usize, 5usize, 9usize, 3usize, 2usize), (2, 2, 4, 8, 3, 1), (2, 3, 2, 7, 5, 0)]
        {
            let x = Var::rand(-1f32, 1f32, (n, c, h, h), &dev).unwrap();
            let w = Var::rand(-1f32, 1f32, (o, c, k, k), &dev).unwrap();
            let ours = conv2d_direct(x.as_tensor(), w.as_tensor(), p).unwrap();
            let theirs = x.as_tensor().conv2d(w.as_tensor(), p, 1, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let d = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "forward diff {d}");
            // weight the outputs so that every gradient entry differs
            let r = Tensor::rand(-1f32, 1f32, ours.dims(), &dev).unwrap();
            let g1 = ours.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = theirs.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &w] {
                let a = g1.get(v.as_tensor()).unwrap();
                let b = g2.get(v.as_tensor()).unwrap();
                let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(d < 1e-4, "gradient diff {d}");
            }
        }
    }

    #[test]
    fn invalid_pool_params_are_errors() {
        let x = Tensor::zeros((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(max_pool2d_padded(&x, 3, 3, 2).is_err());
        assert!(max_pool2d_padded(&x, 0, 1, 0).is_err());
    }

    #[test]
    fn weighted_cross_entropy_matches_hand_computation() {
        let logits = Tensor::new(&[[1.0f32, 2.0, 0.5], [0.1, 0.2, 3.0]], &Device::Cpu).unwrap();
        let t = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let w = Tensor::new(&[2.0f32, 1.0, 1.0], &Device::Cpu).unwrap();
        let nll = |row: [f32; 3], y: usize| {
            let lse = row.iter().map(|v| v.exp()).sum::<f32>().ln();
            lse - row[y]
        };
        let a = nll([1.0, 2.0, 0.5], 1);
        let b = nll([0.1, 0.2, 3.0], 0);
        let plain = cross_entropy(&logits, &t, None).unwrap().to_scalar::<f32>().unwrap();
        assert!((plain - (a + b) / 2.0).abs() < 1e-6);
        let weighted = cross_entropy(&logits, &t, Some(&w)).unwrap().to_scalar::<f32>().unwrap();
        assert!((weighted - (a + 2.0 * b) / 3.0).abs() < 1e-6);
    }

    /// The fused head against candle's dropout then avg_pool2d: equal values and input
    /// gradients (even and odd map sizes), and the same generator state afterwards.
    #[test]
    fn dropout_avg_pool2_equals_dropout_then_avg_pool() {
        let mut data = ChaCha8Rng::seed_from_u64(3);
        for (h, w) in [(10, 10), (9, 9), (4, 6)] {
            let vals: Vec<f32> = (0..2 * 16 * h * w).map(|_| data.random::<f32>() * 2.0 - 1.0).collect();
            let x = Var::from_vec(vals, (2, 16, h, w), &Device::Cpu).unwrap();
            let up: Vec<f32> = (0..2 * 16 * (h / 2) * (w / 2)).map(|_| data.random::<f32>()).collect();
            let up = Tensor::from_vec(up, (2, 16, h / 2, w / 2), &Device::Cpu).unwrap();
            let run = |fused: bool| {
                let mut rng = ChaCha8Rng::seed_from_u64(17);
                let y = if fused {
                    dropout_avg_pool2(x.as_tensor(), 0.5, &mut rng).unwrap()
                } else {
                    dropout(x.as_tensor(), 0.5, &mut rng).unwrap().avg_pool2d(2).unwrap()
                };
                let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
                let dx = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), dx, rng.random::<u64>())
            };
            let (want, got) = (run(false), run(true));
            assert_eq!(got.0, want.0, "values {h}x{w}");
            assert_eq!(got.2, want.2, "generator state {h}x{w}");
            if h % 2 == 0 && w % 2 == 0 {
                assert_eq!(got.1, want.1, "gradients {h}x{w}");
            } else {
                // Odd sizes: floor mode drops the last row and column, whose gradient is zero
                // (PyTorch). candle's avg_pool2d backward upsamples the gradient over the whole
                // map instead, so it is no reference here.
                for (j, &d) in got.1.iter().enumerate() {
                    let (y, x) = ((j / w) % h, j % w);
                    if y >= 2 * (h / 2) || x >= 2 * (w / 2) {
                        assert_eq!(d, 0.0, "dropped position {y},{x}");
                    }
                }
            }
            assert!(got.1.contains(&0.0) && got.1.iter().any(|&v| v != 0.0));
        }
    }

    #[test]
    fn dropout_draws_as_one_uniform_per_element() {
        // Truth: one `rng.random::<f32>()` per element, in order, dropped below p.
        let x = Tensor::ones((3, 333), candle_core::DType::F32, &Device::Cpu).unwrap();
        for p in [0.5f32, 0.1, 0.9] {
            let got = dropout(&x, p, &mut ChaCha8Rng::seed_from_u64(11)).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let scale = 1.0 / (1.0 - p);
            let want: Vec<f32> =
                (0..999).map(|_| if rng.random::<f32>() < p { 0.0 } else { scale }).collect();
            assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want, "p {p}");
        }
    }

    #[test]
    fn dropout_is_seeded_and_scaled() {
        let x = Tensor::ones((4, 100), candle_core::DType::F32, &Device::Cpu).unwrap();
        let a = dropout(&x, 0.5, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
        let b = dropout(&x, 0.5, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
        let av = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(av, b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert!(av.iter().all(|&v| v == 0.0 || v == 2.0));
        let kept = av.iter().filter(|&&v| v == 2.0).count();
        assert!((150..250).contains(&kept), "kept {kept}");
    }
}
