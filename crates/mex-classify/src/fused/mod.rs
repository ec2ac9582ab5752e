//! A fused CPU kernel for the shallow convolution blocks of STSTNet-like networks:
//! `Conv2d(k×k, stride 1, zero padding) -> ReLU -> BatchNorm2d -> MaxPool2d(kernel, stride,
//! -inf padding)`, forward and backward, as one candle custom op.
//!
//! The layers of these networks are tiny (3 input channels, 3 to 8 filters per stream, 28×28
//! inputs), so candle's generic ops spend their time allocating and walking intermediate tensors
//! rather than computing. This op keeps the intermediate maps in a reusable cache, computes the
//! convolution with register-resident accumulators over a padded copy of the input, and in the
//! backward pass only produces what training needs: the gradients of the weights, bias, BatchNorm
//! scale and shift (the input, being data, gets no gradient).
//!
//! Several parallel streams that read the same input (STSTNet's three) are one block with their
//! filters concatenated along the output channels: BatchNorm statistics are per channel, so this
//! is exact.
//!
//! Parameters travel as one packed 1-D tensor so that candle's autograd sees a single
//! differentiable argument: `[weight (O·C·k·k), bias (O), gamma (O), beta (O)]` in training mode,
//! followed by `[running_mean (O), running_var (O)]` in eval mode. [`pack_params`] builds it
//! from the separate tensors with `Tensor::cat`, whose backward splits the gradient again.
//!
//! Determinism: samples are processed in fixed blocks whose partial sums are added in block
//! order, so results do not depend on the number of threads. The kernels use fused multiply-add
//! where the CPU has it (AVX2+FMA, detected at run time by [`mex_core::simd`]; `MEX_SIMD`
//! caps the instruction set), so two machines with different instruction sets may differ in
//! the last bits.
//!
//! Layout: this file holds the candle custom op (argument checks, caches, batching over
//! threads); `kernels.rs` the per-sample compute kernels; `tests.rs` the checks.
//!
//! Checked against candle's own `conv2d`, `relu` and BatchNorm (from candle primitives, and
//! `candle_nn::BatchNorm` in eval mode) followed by [`crate::ops::max_pool2d_padded`] on random
//! inputs (forward values, batch statistics and every parameter gradient): see the
//! tests of this module.

use crate::ops::contiguous_f32;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

mod kernels;
#[cfg(test)]
mod tests;

use kernels::*;

/// Samples per parallel work unit (fixed, so that sums are independent of the thread count).
const BLOCK: usize = 8;
/// Width of the register-resident accumulators of the convolution.
const CH: usize = 32;
/// Output channels computed together by the convolution (their accumulators share each input
/// load: 3 x 32 floats = 12 AVX2 registers).
const CONV_OB: usize = 3;
/// Accumulator width of the AVX-512 convolution (four 16-float registers per channel, four
/// channels at a time: 16 of the 32 registers).
const CH512: usize = 64;
/// Block of the weight-gradient dot products (the `dz` scratch is padded to a multiple of it).
const DOT: usize = 64;

/// Geometry of a fused block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockGeom {
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels (all streams together).
    pub cout: usize,
    /// Square convolution kernel size.
    pub k: usize,
    /// Zero padding of the convolution.
    pub pad: usize,
    /// Max-pool kernel.
    pub pool_k: usize,
    /// Max-pool stride.
    pub pool_s: usize,
    /// Max-pool (implicit `-inf`) padding.
    pub pool_p: usize,
    /// BatchNorm epsilon.
    pub eps: f32,
}

impl BlockGeom {
    /// Checks that the sizes fit together.
    pub fn validate(&self) -> candle_core::Result<()> {
        if self.cin == 0 || self.cout == 0 || self.k == 0 || self.pool_k == 0 || self.pool_s == 0 {
            candle_core::bail!("fused block: zero-sized geometry {self:?}")
        }
        if self.h + 2 * self.pad < self.k || self.w + 2 * self.pad < self.k {
            candle_core::bail!("fused block: kernel {} larger than the padded input", self.k)
        }
        if 2 * self.pool_p > self.pool_k
            || self.ho() + 2 * self.pool_p < self.pool_k
            || self.wo() + 2 * self.pool_p < self.pool_k
        {
            candle_core::bail!("fused block: pooling does not fit the {}x{} map", self.ho(), self.wo())
        }
        if !(self.eps > 0.0) {
            candle_core::bail!("fused block: eps must be positive")
        }
        Ok(())
    }

    /// Convolution output height.
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }

    /// Convolution output width.
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }

    /// Pooled height.
    pub fn ph(&self) -> usize {
        (self.ho() + 2 * self.pool_p - self.pool_k) / self.pool_s + 1
    }

    /// Pooled width.
    pub fn pw(&self) -> usize {
        (self.wo() + 2 * self.pool_p - self.pool_k) / self.pool_s + 1
    }

    /// Row stride of the padded input and of the convolution maps.
    fn stride(&self) -> usize {
        self.wo() + self.k - 1
    }

    /// Length of one padded input plane (with slack for the last accumulator block, and 16
    /// more floats for the fifth vector of the AVX-512 convolution's row segments).
    fn plane_in(&self) -> usize {
        (self.ho() + self.k - 1) * self.stride() + CH512.max(CH).max(DOT) + 16 + self.k
    }

    /// Length of one convolution map (rows of `stride()`, the last `k - 1` columns unused).
    fn plane_out(&self) -> usize {
        self.ho() * self.stride()
    }

    /// Length of the weight tensor.
    fn nw(&self) -> usize {
        self.cout * self.cin * self.k * self.k
    }

    /// Length of the packed training parameters.
    pub fn packed_len(&self, eval: bool) -> usize {
        self.nw() + self.cout * if eval { 5 } else { 3 }
    }
}

/// Concatenates the parameters of one or more streams into the packed layout (see the module
/// docs). Each entry is `(weight (O_i, C, k, k), bias, gamma, beta)`; `running` adds the running
/// means and variances for eval mode.
pub fn pack_params(
    streams: &[(&Tensor, &Tensor, &Tensor, &Tensor)],
    running: Option<&[(&Tensor, &Tensor)]>,
) -> candle_core::Result<Tensor> {
    let mut parts: Vec<Tensor> = Vec::with_capacity(streams.len() * 6);
    for (w, ..) in streams {
        parts.push(w.flatten_all()?);
    }
    for (_, b, ..) in streams {
        parts.push(b.flatten_all()?);
    }
    for (_, _, g, _) in streams {
        parts.push(g.flatten_all()?);
    }
    for (.., b) in streams {
        parts.push(b.flatten_all()?);
    }
    if let Some(r) = running {
        for (m, _) in r {
            parts.push(m.flatten_all()?);
        }
        for (_, v) in r {
            parts.push(v.flatten_all()?);
        }
    }
    Tensor::cat(&parts, 0)
}

/// Batch statistics of one training forward pass (biased variance, as used to normalise).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchStats {
    /// Per-channel mean over batch and positions.
    pub mean: Vec<f32>,
    /// Per-channel biased variance.
    pub var: Vec<f32>,
    /// Number of values per channel (batch × height × width).
    pub count: usize,
}

/// Buffers kept between the forward and the backward pass of a training step, reused from step
/// to step.
#[derive(Debug, Default)]
pub struct FusedCache {
    generation: u64,
    batch: usize,
    geom: Option<BlockGeom>,
    /// Padded inputs, `batch × cin × plane_in`.
    xp: Vec<f32>,
    /// Post-ReLU convolution maps, `batch × cout × plane_out`.
    act: Vec<f32>,
    /// Per pooled output, the index of its maximum within the map.
    arg: Vec<u32>,
    /// The map value at each pooled output's arg-max, `batch × cout × ph × pw`.
    pooled: Vec<f32>,
    /// Batch statistics of the last forward pass.
    stats: BatchStats,
    invstd: Vec<f32>,
    /// Backward scratch: one `dz` map per block of samples.
    dz: Vec<f32>,
}

impl FusedCache {
    /// Batch statistics of the last training forward pass.
    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }
}

/// A cache shared between a model and the ops it creates.
pub type SharedCache = Arc<Mutex<FusedCache>>;

#[derive(Debug, Clone, Copy)]
enum Mode {
    Train { generation: u64 },
    Eval,
}

struct FusedOp {
    geom: BlockGeom,
    mode: Mode,
    cache: Option<SharedCache>,
}

/// Training-mode forward of the fused block: `x` `(N, C, H, W)`, `packed` the training layout of
/// [`pack_params`]. Returns the pooled maps `(N, O, PH, PW)` (differentiable with respect to
/// `packed`) and the batch statistics, which the caller uses to update its running statistics.
/// `cache` holds the buffers between the forward and the backward pass; a backward pass of an
/// older forward pass through the same cache is an error.
pub fn forward_train(
    x: &Tensor,
    packed: &Tensor,
    geom: BlockGeom,
    cache: &SharedCache,
) -> candle_core::Result<(Tensor, BatchStats)> {
    geom.validate()?;
    let generation = {
        let mut c = lock(cache)?;
        c.generation = c.generation.wrapping_add(1);
        c.generation
    };
    let op = FusedOp { geom, mode: Mode::Train { generation }, cache: Some(cache.clone()) };
    let y = x.contiguous()?.apply_op2(&packed.contiguous()?, op)?;
    let c = lock(cache)?;
    Ok((y, c.stats.clone()))
}

/// Eval-mode forward of the fused block (BatchNorm with running statistics): `packed` is the
/// eval layout of [`pack_params`]. Not differentiable.
pub fn forward_eval(x: &Tensor, packed: &Tensor, geom: BlockGeom) -> candle_core::Result<Tensor> {
    geom.validate()?;
    let op = FusedOp { geom, mode: Mode::Eval, cache: None };
    x.contiguous()?.apply_op2_no_bwd(&packed.contiguous()?, &op)
}

fn lock(cache: &SharedCache) -> candle_core::Result<std::sync::MutexGuard<'_, FusedCache>> {
    cache.lock().map_err(|_| candle_core::Error::Msg("fused cache poisoned".into()))
}

impl FusedOp {
    fn check(&self, l1: &Layout, l2: &Layout, eval: bool) -> candle_core::Result<usize> {
        let g = &self.geom;
        let (n, c, h, w) = l1.shape().dims4()?;
        if (c, h, w) != (g.cin, g.h, g.w) {
            candle_core::bail!("fused block: input {:?} does not match {:?}", l1.shape(), (g.cin, g.h, g.w))
        }
        if l2.shape().elem_count() != g.packed_len(eval) {
            candle_core::bail!(
                "fused block: {} packed parameters, expected {}",
                l2.shape().elem_count(),
                g.packed_len(eval)
            )
        }
        Ok(n)
    }

    fn eval_fwd(&self, x: &[f32], p: &[f32], n: usize) -> candle_core::Result<Vec<f32>> {
        let g = self.geom;
        let (nw, o) = (g.nw(), g.cout);
        let (wt, rest) = p.split_at(nw);
        let (bias, gamma, beta, rm, rv) =
            (&rest[..o], &rest[o..2 * o], &rest[2 * o..3 * o], &rest[3 * o..4 * o], &rest[4 * o..5 * o]);
        let scale: Vec<f32> = gamma.iter().zip(rv).map(|(g_, v)| g_ / (v + g.eps).sqrt()).collect();
        let shift: Vec<f32> = beta.iter().zip(rm).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        let (insz, outsz) = (g.cin * g.h * g.w, o * g.ph() * g.pw());
        let params = FwdParams { wt, bias, scale: &scale, shift: &shift };
        let mut out = vec![0f32; n * outsz];
        let finite = x.par_chunks(insz).zip(out.par_chunks_mut(outsz)).map_init(
            || (vec![0f32; g.cin * g.plane_in()], vec![0f32; o * g.plane_out()], PoolScratch::default()),
            |(xp, act, scratch), (xs, os)| {
                let io = SampleIo { x: xs, xp, act, out: os, arg: None, sums: None };
                forward_sample(&g, &params, io, scratch)
            },
        );
        if !finite.all(|f| f) {
            candle_core::bail!("{NON_FINITE}")
        }
        Ok(out)
    }

    fn train_fwd(&self, x: &[f32], p: &[f32], n: usize, generation: u64) -> candle_core::Result<Vec<f32>> {
        let g = self.geom;
        let Some(cache) = &self.cache else { candle_core::bail!("fused block: training without a cache") };
        let mut guard = lock(cache)?;
        let c = &mut *guard;
        let (nw, o) = (g.nw(), g.cout);
        let (wt, rest) = p.split_at(nw);
        let (bias, gamma, beta) = (&rest[..o], &rest[o..2 * o], &rest[2 * o..3 * o]);
        let (pin, pout, npool) = (g.cin * g.plane_in(), o * g.plane_out(), o * g.ph() * g.pw());
        c.generation = generation;
        c.batch = n;
        c.geom = Some(g);
        // The caches only grow (batches of 256 and of the fold's remainder alternate): every
        // value of the first `n` samples is written below, and the zeros a buffer got when it
        // grew (unused map columns, slack) are never overwritten.
        grow(&mut c.xp, n * pin, 0.0);
        grow(&mut c.act, n * pout, 0.0);
        grow(&mut c.arg, n * npool, 0);
        let insz = g.cin * g.h * g.w;
        // The sign of BatchNorm's scale is the sign of gamma (1/std > 0), so the pooling
        // direction is known before the batch statistics: pool the raw maps (negated where
        // gamma < 0) while they are still in cache, and apply the affine map to the pooled
        // values once the statistics are known.
        let dirs: Vec<f32> = gamma.iter().map(|&v| if v < 0.0 { -1.0 } else { 1.0 }).collect();
        let zeros = vec![0f32; o];
        let params = FwdParams { wt, bias, scale: &dirs, shift: &zeros };
        let mut out = vec![0f32; n * npool];
        // Convolution, moments and raw pooling, in parallel over fixed blocks of samples.
        let moments: Vec<Vec<f64>> = x
            .par_chunks(insz * BLOCK)
            .zip(c.xp[..n * pin].par_chunks_mut(pin * BLOCK))
            .zip(c.act[..n * pout].par_chunks_mut(pout * BLOCK))
            .zip(out.par_chunks_mut(npool * BLOCK).zip(c.arg[..n * npool].par_chunks_mut(npool * BLOCK)))
            .map(|(((xb, xpb), ab), (ob, argb))| {
                let mut sums = vec![0f64; 2 * o];
                let mut scratch = PoolScratch::default();
                let mut finite = true;
                let samples = xb.chunks(insz).zip(xpb.chunks_mut(pin)).zip(ab.chunks_mut(pout));
                for (((xs, xp), act), (os, arg)) in
                    samples.zip(ob.chunks_mut(npool).zip(argb.chunks_mut(npool)))
                {
                    let io = SampleIo { x: xs, xp, act, out: os, arg: Some(arg), sums: Some(&mut sums) };
                    finite &= forward_sample(&g, &params, io, &mut scratch);
                }
                finite.then_some(sums)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| candle_core::Error::Msg(NON_FINITE.into()))?;
        let count = n * g.ho() * g.wo();
        let mut mean = vec![0f32; o];
        let mut var = vec![0f32; o];
        for ch in 0..o {
            let s1: f64 = moments.iter().map(|m| m[2 * ch]).sum();
            let s2: f64 = moments.iter().map(|m| m[2 * ch + 1]).sum();
            let mu = s1 / count as f64;
            mean[ch] = mu as f32;
            var[ch] = (s2 / count as f64 - mu * mu).max(0.0) as f32;
        }
        c.invstd = var.iter().map(|v| 1.0 / (v + g.eps).sqrt()).collect();
        let scale: Vec<f32> = gamma.iter().zip(&c.invstd).map(|(g_, s)| g_ * s).collect();
        let shift: Vec<f32> = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        // out holds dir * raw maximum; dir * dir = 1 exactly.
        let per = g.ph() * g.pw();
        // The raw maxima are kept for the backward pass (`dir * v` is exactly the map's value at
        // the arg-max), so that it need not gather them from the maps.
        grow(&mut c.pooled, n * npool, 0.0);
        out.par_chunks_mut(npool).zip(c.pooled[..n * npool].par_chunks_mut(npool)).for_each(|(os, raw)| {
            for (ch, (vals, raw)) in os.chunks_exact_mut(per).zip(raw.chunks_exact_mut(per)).enumerate() {
                let (a, b) = (scale[ch] * dirs[ch], shift[ch]);
                for (v, r) in vals.iter_mut().zip(raw) {
                    *r = *v * dirs[ch];
                    *v = fma::<false>(*v, a, b);
                }
            }
        });
        c.stats = BatchStats { mean, var, count };
        Ok(out)
    }

    fn train_bwd(&self, packed: &Tensor, grad: &Tensor, generation: u64) -> candle_core::Result<Tensor> {
        let g = self.geom;
        let Some(cache) = &self.cache else { candle_core::bail!("fused block: training without a cache") };
        let mut guard = lock(cache)?;
        let c = &mut *guard;
        if c.generation != generation || c.geom != Some(g) {
            candle_core::bail!(
                "fused block: backward of an older forward pass (the cache now holds a newer one); \
                 call backward before the next training forward"
            )
        }
        let n = c.batch;
        let (nw, o) = (g.nw(), g.cout);
        let p = packed.flatten_all()?.to_vec1::<f32>()?;
        let gout = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let npool = o * g.ph() * g.pw();
        if gout.len() != n * npool {
            candle_core::bail!("fused block: gradient has {} values, expected {}", gout.len(), n * npool)
        }
        let gamma = &p[nw + o..nw + 2 * o];
        // dbeta and dgamma from the pooled positions (the scattered gradient is zero elsewhere):
        // per sample and channel in f32, then in f64 per block of samples, then over the blocks
        // in order (fixed blocks: the same sums for any thread count).
        let (pout, per) = (g.plane_out(), g.ph() * g.pw());
        let (pooled, stats, invstd) = (&c.pooled, &c.stats, &c.invstd);
        let block_sums: Vec<Vec<f64>> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|blk| {
                let mut acc = vec![0f64; 2 * o];
                for b in blk * BLOCK..((blk + 1) * BLOCK).min(n) {
                    for ch in 0..o {
                        let j0 = b * npool + ch * per;
                        let (m, is) = (stats.mean[ch], invstd[ch]);
                        let (mut sb, mut sg) = (0f32, 0f32);
                        for (&a, &gv) in pooled[j0..j0 + per].iter().zip(&gout[j0..j0 + per]) {
                            sb += gv;
                            sg += gv * (a - m) * is;
                        }
                        acc[2 * ch] += sb as f64;
                        acc[2 * ch + 1] += sg as f64;
                    }
                }
                acc
            })
            .collect();
        let (mut dbeta, mut dgamma) = (vec![0f64; o], vec![0f64; o]);
        for part in &block_sums {
            for ch in 0..o {
                dbeta[ch] += part[2 * ch];
                dgamma[ch] += part[2 * ch + 1];
            }
        }
        let cnt = c.stats.count as f64;
        let bn: Vec<BnBack> = (0..o)
            .map(|ch| BnBack {
                mean: c.stats.mean[ch],
                invstd: c.invstd[ch],
                k: gamma[ch] * c.invstd[ch],
                c1: (dbeta[ch] / cnt) as f32,
                c2: (dgamma[ch] / cnt) as f32,
            })
            .collect();
        let pin = g.cin * g.plane_in();
        let nblocks = n.div_ceil(BLOCK);
        // `DZ_MAPS` dz maps per block, each padded with zeros to a multiple of the dot-product
        // block (the padded input planes have the slack to be read that far).
        let dzlen = DZ_MAPS * dz_len(&g);
        // Grown with zeros and never cleared: the backward writes every value of each map and
        // never the padding after it.
        grow(&mut c.dz, nblocks * dzlen, 0.0);
        let (xp, act, arg) = (&c.xp, &c.act, &c.arg);
        let partials: Vec<Vec<f32>> = c.dz[..nblocks * dzlen]
            .par_chunks_mut(dzlen)
            .enumerate()
            .map(|(blk, dz)| {
                let mut acc = vec![0f32; nw + o];
                let (dw, db) = acc.split_at_mut(nw);
                for b in blk * BLOCK..((blk + 1) * BLOCK).min(n) {
                    let io = BackIo {
                        xp: &xp[b * pin..(b + 1) * pin],
                        act: &act[b * o * pout..(b + 1) * o * pout],
                        arg: &arg[b * npool..(b + 1) * npool],
                        gout: &gout[b * npool..(b + 1) * npool],
                        dz: &mut *dz,
                        dw: &mut *dw,
                        db: &mut *db,
                    };
                    backward_dispatch(&g, &bn, io);
                }
                acc
            })
            .collect();
        let mut out = vec![0f32; g.packed_len(false)];
        for part in &partials {
            for (a, b) in out.iter_mut().zip(part) {
                *a += b;
            }
        }
        for ch in 0..o {
            out[nw + o + ch] = dgamma[ch] as f32;
            out[nw + 2 * o + ch] = dbeta[ch] as f32;
        }
        Tensor::from_vec(out, packed.shape(), packed.device())
    }
}

impl CustomOp2 for FusedOp {
    fn name(&self) -> &'static str {
        "conv_relu_bn_pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let eval = matches!(self.mode, Mode::Eval);
        let n = self.check(l1, l2, eval)?;
        let x = contiguous_f32(s1, l1, self.name())?;
        let p = contiguous_f32(s2, l2, self.name())?;
        // The pooling does not propagate NaN as PyTorch does: non-finite input is refused
        // (checked while each sample is copied into its padded buffer).
        let out = match self.mode {
            Mode::Eval => self.eval_fwd(x, p, n)?,
            Mode::Train { generation } => self.train_fwd(x, p, n, generation)?,
        };
        let g = self.geom;
        Ok((CpuStorage::F32(out), Shape::from((n, g.cout, g.ph(), g.pw()))))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        packed: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        match self.mode {
            Mode::Train { generation } => Ok((None, Some(self.train_bwd(packed, grad, generation)?))),
            Mode::Eval => candle_core::bail!("fused block: eval mode has no backward pass"),
        }
    }
}
