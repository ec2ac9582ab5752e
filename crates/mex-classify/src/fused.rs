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
//! where the CPU has it (AVX2+FMA, detected at run time), so two machines with different
//! instruction sets may differ in the last bits.
//!
//! Checked against candle's own `conv2d`, `relu` and BatchNorm (from candle primitives, and
//! `candle_nn::BatchNorm` in eval mode) followed by [`crate::ops::max_pool2d_padded`] on random
//! inputs (forward values, batch statistics and every parameter gradient): see the
//! tests of this module.

use crate::ops::contiguous_f32;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

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

#[inline(always)]
fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The error for an input holding NaN or infinity.
const NON_FINITE: &str = "fused block: the input holds non-finite values (NaN or infinity)";

/// Whether every value is finite (no early exit, so that it vectorises).
fn all_finite(x: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    x.chunks(4096).all(|c| c.iter().fold(0u32, |a, v| a | u32::from(v.to_bits() & EXP == EXP)) == 0)
}

/// Lengthens `v` to at least `len` values (new ones `fill`); never shortens it.
fn grow<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    if v.len() < len {
        v.resize(len, fill);
    }
}

/// Zeroes a slice of a few values (a row's padding or unused columns) with inline stores:
/// `fill` of a length unknown at compile time becomes a `memset` call, which cost more than 5 %
/// of a training step when called for every row of every map.
#[inline(always)]
fn zero_few(tail: &mut [f32]) {
    match tail.len() {
        0 => {}
        1 => tail[0] = 0.0,
        2 => tail.copy_from_slice(&[0.0; 2]),
        3 => tail.copy_from_slice(&[0.0; 3]),
        4 => tail.copy_from_slice(&[0.0; 4]),
        _ => tail.fill(0.0),
    }
}

/// Copies one sample `(C, H, W)` into zero-padded planes of `plane_in` values (only the
/// padding is zeroed, not the whole buffer); returns whether every value was finite (checked
/// once over the whole sample, not row by row).
fn pad_sample(g: &BlockGeom, x: &[f32], xp: &mut [f32]) -> bool {
    let (s, pin, p) = (g.stride(), g.plane_in(), g.pad);
    let x = &x[..g.cin * g.h * g.w];
    for c in 0..g.cin {
        let src = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        let dst = &mut xp[c * pin..(c + 1) * pin];
        let (top, rest) = dst.split_at_mut(p * s);
        top.fill(0.0);
        let (body, bottom) = rest.split_at_mut(g.h * s);
        bottom.fill(0.0);
        for (row, out) in src.chunks_exact(g.w).zip(body.chunks_exact_mut(s)) {
            let (left, rest) = out.split_at_mut(p);
            zero_few(left);
            let (mid, right) = rest.split_at_mut(g.w);
            mid.copy_from_slice(row);
            zero_few(right);
        }
    }
    all_finite(x)
}

/// ReLU(conv + bias) of `OB` consecutive output channels starting at `o0`: each input vector
/// is loaded once for the `OB` channels, whose accumulators stay in registers.
#[inline(always)]
fn conv_channels<const F: bool, const CH: usize, const OB: usize>(
    g: &BlockGeom,
    xp: &[f32],
    wt: &[f32],
    bias: &[f32],
    o0: usize,
    act: &mut [f32],
) {
    let (s, pin, pout, k) = (g.stride(), g.plane_in(), g.plane_out(), g.k);
    let kk = k * k;
    let wlen = g.cin * kk;
    let nchunks = pout.div_ceil(CH);
    for ci in 0..nchunks {
        let base = ci * CH;
        let mut acc = [[0f32; CH]; OB];
        for (ob, a) in acc.iter_mut().enumerate() {
            *a = [bias[o0 + ob]; CH];
        }
        for c in 0..g.cin {
            let plane = &xp[c * pin..(c + 1) * pin];
            for ky in 0..k {
                for kx in 0..k {
                    let t = c * kk + ky * k + kx;
                    let mut wv = [0f32; OB];
                    for (ob, w) in wv.iter_mut().enumerate() {
                        *w = wt[(o0 + ob) * wlen + t];
                    }
                    let off = base + ky * s + kx;
                    let Some(src) = plane.get(off..off + CH).and_then(|s| <&[f32; CH]>::try_from(s).ok())
                    else {
                        return;
                    };
                    for i in 0..CH {
                        let v = src[i];
                        for ob in 0..OB {
                            acc[ob][i] = fma::<F>(wv[ob], v, acc[ob][i]);
                        }
                    }
                }
            }
        }
        for (ob, a) in acc.iter().enumerate() {
            let map = &mut act[(o0 + ob) * pout..(o0 + ob + 1) * pout];
            let end = (base + CH).min(pout);
            for (d, &v) in map[base..end].iter_mut().zip(a) {
                *d = if v > 0.0 { v } else { 0.0 };
            }
        }
    }
}

/// ReLU(conv + bias) of one padded sample into `act` (`cout × plane_out`).
#[inline(always)]
fn conv_sample<const F: bool, const CH: usize, const OB: usize>(
    g: &BlockGeom,
    xp: &[f32],
    wt: &[f32],
    bias: &[f32],
    act: &mut [f32],
) {
    let mut o0 = 0;
    while o0 + OB <= g.cout {
        conv_channels::<F, CH, OB>(g, xp, wt, bias, o0, act);
        o0 += OB;
    }
    while o0 < g.cout {
        conv_channels::<F, CH, 1>(g, xp, wt, bias, o0, act);
        o0 += 1;
    }
    zero_unused_columns(g, act);
}

/// Zeroes the last `k - 1` columns of each map row, which wrapped around the padded input, so
/// that sums over whole maps only see the valid positions.
#[inline(always)]
fn zero_unused_columns(g: &BlockGeom, act: &mut [f32]) {
    let (s, pout) = (g.stride(), g.plane_out());
    for map in act[..g.cout * pout].chunks_exact_mut(pout) {
        for row in map.chunks_exact_mut(s) {
            zero_few(&mut row[g.wo()..]);
        }
    }
}

/// Per-channel sum and sum of squares of one sample's maps (the unused columns are zero).
#[inline(always)]
fn sample_moments(g: &BlockGeom, act: &[f32], sums: &mut [f64]) {
    let pout = g.plane_out();
    for o in 0..g.cout {
        let map = &act[o * pout..(o + 1) * pout];
        let (mut s1, mut s2) = ([0f32; 16], [0f32; 16]);
        let chunks = map.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..16 {
                s1[i] += c[i];
                s2[i] += c[i] * c[i];
            }
        }
        let tail1: f32 = rest.iter().sum();
        let tail2: f32 = rest.iter().map(|v| v * v).sum();
        sums[2 * o] += (s1.iter().sum::<f32>() + tail1) as f64;
        sums[2 * o + 1] += (s2.iter().sum::<f32>() + tail2) as f64;
    }
}

/// The clipped window bounds of [`pool_sample`] for one geometry, and the row buffer of
/// [`pool3_sample`].
#[derive(Debug, Default, Clone)]
struct PoolScratch {
    ywin: Vec<(usize, usize)>,
    xwin: Vec<(usize, usize)>,
    band: Vec<f32>,
    rows: Vec<u32>,
}

impl PoolScratch {
    /// Sizes the buffers and computes the clipped window bounds for `g`.
    fn prepare(&mut self, g: &BlockGeom) {
        let clip = |p: usize, n: usize| {
            let a = (p * g.pool_s) as isize - g.pool_p as isize;
            (a.max(0) as usize, ((a + g.pool_k as isize).max(0) as usize).min(n))
        };
        self.ywin.clear();
        self.ywin.extend((0..g.ph()).map(|p| clip(p, g.ho())));
        self.xwin.clear();
        self.xwin.extend((0..g.pw()).map(|p| clip(p, g.wo())));
        self.band.resize(g.wo() + 2, 0.0);
        self.rows.resize(g.wo() + 2, 0);
    }
}

/// Max-pools the normalised maps (`v * a + b`) of one channel and, when `arg` is given,
/// records each window's arg-max (the first maximum in row-major order, as PyTorch).
/// BatchNorm's affine map is monotonic per channel, so the maximum of the normalised window is
/// the normalised maximum (`a >= 0`, `NEG` false) or minimum (`a < 0`, `NEG` true) of the raw
/// window: the pooling runs on the raw maps, with an unrolled path for full 3x3 windows.
/// Non-finite values would not propagate as in PyTorch: the op refuses non-finite inputs.
#[inline(always)]
fn pool_sample<const NEG: bool>(
    g: &BlockGeom,
    map: &[f32],
    (a, b): (f32, f32),
    out: &mut [f32],
    mut arg: Option<&mut [u32]>,
    sc: &PoolScratch,
) {
    let (s, pw) = (g.stride(), g.pw());
    let pick = |m: f32, v: f32| if NEG { m.min(v) } else { m.max(v) };
    for (py, &(ys, ye)) in sc.ywin.iter().enumerate() {
        for (px, &(xs, xe)) in sc.xwin.iter().enumerate() {
            let best = if ye - ys == 3 && xe - xs == 3 {
                let r = |y: usize| -> [f32; 3] {
                    let o = y * s + xs;
                    match map.get(o..o + 3) {
                        Some(&[p, q, t]) => [p, q, t],
                        _ => [f32::NAN; 3],
                    }
                };
                let (r0, r1, r2) = (r(ys), r(ys + 1), r(ys + 2));
                let m0 = pick(pick(r0[0], r0[1]), r0[2]);
                let m1 = pick(pick(r1[0], r1[1]), r1[2]);
                let m2 = pick(pick(r2[0], r2[1]), r2[2]);
                pick(pick(m0, m1), m2)
            } else {
                let mut m = map[ys * s + xs];
                for y in ys..ye {
                    for &v in &map[y * s + xs..y * s + xe] {
                        m = pick(m, v);
                    }
                }
                m
            };
            let j = py * pw + px;
            out[j] = fma::<false>(best, a, b);
            if let Some(arg) = arg.as_deref_mut() {
                let mut at = ys * s + xs;
                'scan: for y in ys..ye {
                    for x in xs..xe {
                        if map[y * s + x] == best {
                            at = y * s + x;
                            break 'scan;
                        }
                    }
                }
                arg[j] = at as u32;
            }
        }
    }
}

/// [`pool_sample`] for STSTNet's pooling (kernel 3, stride 3, padding 1), vectorised: the
/// window rows of each band are reduced column-wise into a buffer with a `-inf` (`+inf` for
/// `NEG`) border, then each window is the reduction of three neighbouring columns centred on
/// column `3 px`. Same values as [`pool_sample`]; the arg-max is the first row of the first
/// column holding the maximum, which differs from PyTorch's row-major first only between
/// exactly equal values in different rows and columns (in practice the ReLU zeros, whose
/// gradient is zero either way).
#[inline(always)]
fn pool3_sample<const NEG: bool>(
    g: &BlockGeom,
    map: &[f32],
    (a, b): (f32, f32),
    out: &mut [f32],
    mut arg: Option<&mut [u32]>,
    sc: &mut PoolScratch,
) {
    let (s, wo, pw) = (g.stride(), g.wo(), g.pw());
    let better = |v: f32, m: f32| if NEG { v < m } else { v > m };
    let pick = |m: f32, v: f32| if better(v, m) { v } else { m };
    let edge = if NEG { f32::INFINITY } else { f32::NEG_INFINITY };
    let track = arg.is_some();
    let (band, rows) = (&mut sc.band[..wo + 2], &mut sc.rows[..wo + 2]);
    band[0] = edge;
    band[wo + 1] = edge;
    for (py, &(ys, ye)) in sc.ywin.iter().enumerate() {
        let (inner, irows) = (&mut band[1..wo + 1], &mut rows[1..wo + 1]);
        let r0 = &map[ys * s..ys * s + wo];
        let r1 = &map[(ys + 1).min(ye - 1) * s..][..wo];
        let r2 = &map[(ys + 2).min(ye - 1) * s..][..wo];
        // Column-wise best of the band's rows (the first row wins ties); with `track`, the
        // winning row too.
        match (ye - ys, track) {
            (3, false) => {
                for (((d, &p), &q), &t) in inner.iter_mut().zip(r0).zip(r1).zip(r2) {
                    *d = pick(pick(p, q), t);
                }
            }
            (2, false) => {
                for ((d, &p), &q) in inner.iter_mut().zip(r0).zip(r1) {
                    *d = pick(p, q);
                }
            }
            (_, false) => inner.copy_from_slice(r0),
            (n, true) => {
                for ((((d, r), &p), &q), &t) in inner.iter_mut().zip(irows.iter_mut()).zip(r0).zip(r1).zip(r2)
                {
                    let (m01, i01) = if n > 1 && better(q, p) { (q, 1) } else { (p, 0) };
                    (*d, *r) = if n > 2 && better(t, m01) { (t, 2) } else { (m01, i01) };
                }
            }
        }
        for px in 0..pw {
            // Window columns 3px-1 ..= 3px+1 are band[3px ..= 3px+2]; the first column wins
            // ties.
            let c = 3 * px;
            let [v0, v1, v2] = match band.get(c..c + 3) {
                Some(&[p, q, t]) => [p, q, t],
                _ => [edge; 3],
            };
            // Branch-free (selects), as the comparisons are unpredictable.
            let t1 = better(v1, v0);
            let (m01, i01) = (if t1 { v1 } else { v0 }, if t1 { c + 1 } else { c });
            let t2 = better(v2, m01);
            let (best, bc) = (if t2 { v2 } else { m01 }, if t2 { c + 2 } else { i01 });
            let j = py * pw + px;
            out[j] = fma::<false>(best, a, b);
            if let Some(arg) = arg.as_deref_mut() {
                // band index bc is map column bc - 1 (never an edge: real values beat them).
                let r = rows.get(bc).copied().unwrap_or(0) as usize;
                arg[j] = ((ys + r) * s + bc.saturating_sub(1)) as u32;
            }
        }
    }
}

/// [`pool_sample`] over every channel of one sample.
#[inline(always)]
fn pool_channels(
    g: &BlockGeom,
    act: &[f32],
    scale: &[f32],
    shift: &[f32],
    out: &mut [f32],
    mut arg: Option<&mut [u32]>,
    sc: &mut PoolScratch,
) {
    let (pout, per) = (g.plane_out(), g.ph() * g.pw());
    if sc.ywin.len() != g.ph() || sc.xwin.len() != g.pw() || sc.band.len() != g.wo() + 2 {
        sc.prepare(g);
    }
    let centred3 = (g.pool_k, g.pool_s, g.pool_p) == (3, 3, 1);
    for o in 0..g.cout {
        let map = &act[o * pout..(o + 1) * pout];
        let dst = &mut out[o * per..(o + 1) * per];
        let ar = arg.as_deref_mut().map(|a| &mut a[o * per..(o + 1) * per]);
        if centred3 {
            if scale[o] < 0.0 {
                pool3_sample::<true>(g, map, (scale[o], shift[o]), dst, ar, sc);
            } else {
                pool3_sample::<false>(g, map, (scale[o], shift[o]), dst, ar, sc);
            }
        } else if scale[o] < 0.0 {
            pool_sample::<true>(g, map, (scale[o], shift[o]), dst, ar, sc);
        } else {
            pool_sample::<false>(g, map, (scale[o], shift[o]), dst, ar, sc);
        }
    }
}

/// Dot product of two slices whose length is a multiple of 64 (eight independent vector
/// accumulators, so the fused multiply-adds do not wait on each other).
#[inline(always)]
fn dot<const F: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; DOT];
    for (x, y) in a.chunks_exact(DOT).zip(b.chunks_exact(DOT)) {
        for i in 0..DOT {
            acc[i] = fma::<F>(x[i], y[i], acc[i]);
        }
    }
    acc.iter().sum()
}

/// Sum with independent accumulators.
#[inline(always)]
fn sum16(a: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = a.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The per-sample buffers of a backward pass: the cached padded input, post-ReLU maps and
/// arg-maxes, the pooled-output gradient, the `dz` scratch map and the accumulated weight and
/// bias gradients.
struct BackIo<'a> {
    xp: &'a [f32],
    act: &'a [f32],
    arg: &'a [u32],
    gout: &'a [f32],
    dz: &'a mut [f32],
    dw: &'a mut [f32],
    db: &'a mut [f32],
}

/// Constants of the BatchNorm backward pass for one channel.
#[derive(Clone, Copy)]
struct BnBack {
    mean: f32,
    invstd: f32,
    /// `gamma * invstd`.
    k: f32,
    /// `dbeta / N`.
    c1: f32,
    /// `dgamma / N`.
    c2: f32,
}

/// The gradient of one sample with respect to the weights (`dw`, accumulated) and the bias
/// (`db`, accumulated), from the pooled-output gradient `gout`.
#[inline(always)]
fn backward_sample<const F: bool>(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
    let BackIo { xp, act, arg, gout, dz, dw, db } = io;
    // One map of the scratch (which has room for `DZ_MAPS`).
    let one = dz_len(g).min(dz.len());
    let dz = &mut dz[..one];
    let (s, pin, pout, wo, k) = (g.stride(), g.plane_in(), g.plane_out(), g.wo(), g.k);
    let (kk, npool) = (k * k, g.ph() * g.pw());
    for o in 0..g.cout {
        let map = &act[o * pout..(o + 1) * pout];
        let b = bn[o];
        // dL/dz = [a > 0] (k (g_pool - c1 - xhat c2)): the dense part first, zero where the
        // ReLU was off and in the unused columns...
        for (drow, arow) in dz.chunks_exact_mut(s).zip(map.chunks_exact(s)) {
            for (d, &a) in drow[..wo].iter_mut().zip(&arow[..wo]) {
                let xhat = (a - b.mean) * b.invstd;
                let v = -b.k * fma::<F>(xhat, b.c2, b.c1);
                *d = if a > 0.0 { v } else { 0.0 };
            }
            zero_few(&mut drow[wo..]);
        }
        // ... then the pooled gradient at each window's maximum.
        for (&i, &gv) in arg[o * npool..(o + 1) * npool].iter().zip(&gout[o * npool..(o + 1) * npool]) {
            let i = i as usize;
            if map[i] > 0.0 {
                dz[i] += b.k * gv;
            }
        }
        let bsum = sum16(dz);
        db[o] += bsum;
        for c in 0..g.cin {
            let plane = &xp[c * pin..(c + 1) * pin];
            let dwc = &mut dw[(o * g.cin + c) * kk..(o * g.cin + c + 1) * kk];
            if k == 3 {
                // The nine taps together: each dz vector is loaded once for nine accumulators.
                let t = dot9::<F>(dz, plane, s);
                for (d, v) in dwc.iter_mut().zip(t) {
                    *d += v;
                }
            } else {
                for ky in 0..k {
                    for kx in 0..k {
                        let off = ky * s + kx;
                        dwc[ky * k + kx] += dot::<F>(dz, &plane[off..off + dz.len()]);
                    }
                }
            }
        }
    }
}

/// The nine 3x3-tap correlations of `dz` with `plane` shifted by `ky * s + kx`, in 16-float
/// chunks with one accumulator per tap (`dz.len()` is a multiple of 16 and `plane` has
/// `2 s + 2` floats of slack after it).
#[inline(always)]
fn dot9<const F: bool>(dz: &[f32], plane: &[f32], s: usize) -> [f32; 9] {
    const L: usize = 16;
    let offs = [0, 1, 2, s, s + 1, s + 2, 2 * s, 2 * s + 1, 2 * s + 2];
    let mut acc = [[0f32; L]; 9];
    let n = dz.len() / L * L;
    // Every read below is within `n + 2 s + 2` floats (one check instead of one per tap).
    let in_bounds = n + 2 * s + 2 <= plane.len();
    for (ci, d) in dz[..n].chunks_exact(L).enumerate() {
        let base = ci * L;
        for (a, &off) in acc.iter_mut().zip(&offs) {
            let src = if in_bounds {
                // SAFETY: base + off + L <= (n - L) + (2 s + 2) + L <= plane.len().
                unsafe { plane.get_unchecked(base + off..base + off + L) }
            } else {
                let Some(src) = plane.get(base + off..base + off + L) else { continue };
                src
            };
            for i in 0..L {
                a[i] = fma::<F>(d[i], src[i], a[i]);
            }
        }
    }
    acc.map(|a| a.iter().sum())
}

/// Instruction-set dispatch for the two compute kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    Base,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn simd_level() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<Simd> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            if std::env::var_os("MEX_NO_AVX512").is_none()
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("fma")
            {
                Simd::Avx512
            } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                Simd::Avx2
            } else {
                Simd::Base
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    Simd::Base
}

/// The per-sample buffers of a forward pass.
struct SampleIo<'a> {
    /// The sample `(C, H, W)`.
    x: &'a [f32],
    /// Its padded copy.
    xp: &'a mut [f32],
    /// The post-ReLU maps.
    act: &'a mut [f32],
    /// Pooled output `(O, PH, PW)`.
    out: &'a mut [f32],
    /// Arg-max per pooled output (training).
    arg: Option<&'a mut [u32]>,
    /// Per-channel sums and sums of squares (training).
    sums: Option<&'a mut [f64]>,
}

/// The parameters a forward pass needs: weights, bias, and the per-channel affine map applied
/// to the pooled values (its sign chooses max or min pooling).
struct FwdParams<'a> {
    wt: &'a [f32],
    bias: &'a [f32],
    scale: &'a [f32],
    shift: &'a [f32],
}

/// Pad, convolve, (accumulate moments) and pool one sample; returns whether its input was
/// finite (the outputs of a non-finite sample are garbage: the caller refuses the batch).
#[inline(always)]
fn forward_sample_impl(
    g: &BlockGeom,
    p: &FwdParams<'_>,
    io: SampleIo<'_>,
    sc: &mut PoolScratch,
    conv: impl Fn(&BlockGeom, &[f32], &[f32], &[f32], &mut [f32]),
    moments: impl Fn(&BlockGeom, &[f32], &mut [f64]),
    pool: impl Fn(&BlockGeom, &[f32], &FwdParams<'_>, &mut [f32], Option<&mut [u32]>, &mut PoolScratch),
) -> bool {
    let finite = pad_sample(g, io.x, io.xp);
    conv(g, io.xp, p.wt, p.bias, io.act);
    if let Some(sums) = io.sums {
        moments(g, io.act, sums);
    }
    pool(g, io.act, p, io.out, io.arg, sc);
    finite
}

/// [`pool_channels`] with the parameters of a forward pass.
#[inline(always)]
fn pool_fwd(
    g: &BlockGeom,
    act: &[f32],
    p: &FwdParams<'_>,
    out: &mut [f32],
    arg: Option<&mut [u32]>,
    sc: &mut PoolScratch,
) {
    pool_channels(g, act, p.scale, p.shift, out, arg, sc);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_sample_avx2(g: &BlockGeom, p: &FwdParams<'_>, io: SampleIo<'_>, sc: &mut PoolScratch) -> bool {
    forward_sample_impl(g, p, io, sc, conv_sample::<true, CH, CONV_OB>, sample_moments, pool_fwd)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn forward_sample_avx512(g: &BlockGeom, p: &FwdParams<'_>, io: SampleIo<'_>, sc: &mut PoolScratch) -> bool {
    let conv = |g: &BlockGeom, xp: &[f32], wt: &[f32], bias: &[f32], act: &mut [f32]| {
        let mut o0 = 0;
        while o0 + 4 <= g.cout {
            conv4_avx512(g, xp, wt, bias, o0, act);
            o0 += 4;
        }
        while o0 < g.cout {
            conv_channels::<true, CH512, 1>(g, xp, wt, bias, o0, act);
            o0 += 1;
        }
        zero_unused_columns(g, act);
    };
    let moments = |g: &BlockGeom, act: &[f32], sums: &mut [f64]| moments_avx512(g, act, sums);
    if !pool3_avx512_fits(g) {
        return forward_sample_impl(g, p, io, sc, conv, moments, pool_fwd);
    }
    // The pooling (with its arg-max in training) in vector registers.
    let pool = |g: &BlockGeom,
                act: &[f32],
                p: &FwdParams<'_>,
                out: &mut [f32],
                mut arg: Option<&mut [u32]>,
                sc: &mut PoolScratch| {
        if sc.ywin.len() != g.ph() {
            sc.prepare(g);
        }
        let (pout, per) = (g.plane_out(), g.ph() * g.pw());
        for o in 0..g.cout {
            let map = &act[o * pout..(o + 1) * pout];
            let dst = &mut out[o * per..(o + 1) * per];
            let ar = arg.as_deref_mut().and_then(|a| a.get_mut(o * per..(o + 1) * per));
            let ab = (p.scale[o], p.shift[o]);
            // (The closure has this function's CPU features, those of `pool3_avx512`.)
            if ab.0 < 0.0 {
                pool3_avx512::<true>(g, map, ab, dst, ar, &sc.ywin);
            } else {
                pool3_avx512::<false>(g, map, ab, dst, ar, &sc.ywin);
            }
        }
    };
    forward_sample_impl(g, p, io, sc, conv, moments, pool)
}

/// [`sample_moments`] in AVX-512 registers: the same lane-wise adds and products in the same
/// order, and the same sequential sums of the lanes, so the sums are bitwise equal (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn moments_avx512(g: &BlockGeom, act: &[f32], sums: &mut [f64]) {
    use std::arch::x86_64::*;
    let pout = g.plane_out();
    let lanes = |v: __m512| {
        let mut l = [0f32; 16];
        // SAFETY: 16 floats written to a 16-float array.
        unsafe { _mm512_storeu_ps(l.as_mut_ptr(), v) };
        l.iter().sum::<f32>()
    };
    let finish = |o: usize, map: &[f32], s1: __m512, s2: __m512, sums: &mut [f64]| {
        let rest = &map[map.len() / 16 * 16..];
        let tail1: f32 = rest.iter().sum();
        let tail2: f32 = rest.iter().map(|v| v * v).sum();
        if let Some(s) = sums.get_mut(2 * o..2 * o + 2) {
            s[0] += (lanes(s1) + tail1) as f64;
            s[1] += (lanes(s2) + tail2) as f64;
        }
    };
    let n_maps = g.cout.min(act.len() / pout.max(1));
    let map_of = |o: usize| &act[o * pout..(o + 1) * pout];
    // Two maps at a time: four independent chains of adds instead of two (each map's own
    // chain is unchanged), so the loop is no longer bound by the latency of one add.
    let mut o = 0;
    while o + 1 < n_maps {
        let (ma, mb) = (map_of(o), map_of(o + 1));
        let (mut a1, mut a2, mut b1, mut b2) =
            (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
        for (ca, cb) in ma.chunks_exact(16).zip(mb.chunks_exact(16)) {
            // SAFETY: `ca` and `cb` hold 16 floats each.
            let (va, vb) = unsafe { (_mm512_loadu_ps(ca.as_ptr()), _mm512_loadu_ps(cb.as_ptr())) };
            a1 = _mm512_add_ps(a1, va);
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(va, va));
            b1 = _mm512_add_ps(b1, vb);
            b2 = _mm512_add_ps(b2, _mm512_mul_ps(vb, vb));
        }
        finish(o, ma, a1, a2, sums);
        finish(o + 1, mb, b1, b2, sums);
        o += 2;
    }
    if o < n_maps {
        let map = map_of(o);
        let (mut s1, mut s2) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for c in map.chunks_exact(16) {
            // SAFETY: `c` holds 16 floats.
            let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
            s1 = _mm512_add_ps(s1, v);
            s2 = _mm512_add_ps(s2, _mm512_mul_ps(v, v));
        }
        finish(o, map, s1, s2, sums);
    }
}

/// Whether [`pool3_avx512`] handles `g`: pooling 3/3/1 over maps 17 to 32 columns wide (two
/// vectors a row) into at most 16 pooled columns.
fn pool3_avx512_fits(g: &BlockGeom) -> bool {
    (g.pool_k, g.pool_s, g.pool_p) == (3, 3, 1) && (17..=32).contains(&g.wo()) && g.pw() <= 16
}

/// [`pool3_sample`] in AVX-512 registers: each pooled row is the element-wise best of its
/// window's (up to three) map rows, loaded as two masked vectors (columns past the map read as
/// the losing infinity), then the best of columns `3 px - 1`, `3 px`, `3 px + 1` gathered by
/// lane permutes (for `px = 0` the left column is the padding, so column 0 stands in for it),
/// then `v * a + b`. With `arg`, the winning row and column are carried along with the same
/// strict comparisons in the same order (first row, then first column, wins ties), so values
/// and arg-max are those of [`pool3_sample`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn pool3_avx512<const NEG: bool>(
    g: &BlockGeom,
    map: &[f32],
    (a, b): (f32, f32),
    out: &mut [f32],
    mut arg: Option<&mut [u32]>,
    ywin: &[(usize, usize)],
) {
    use std::arch::x86_64::*;
    let (s, wo, pw) = (g.stride(), g.wo(), g.pw());
    let edge = _mm512_set1_ps(if NEG { f32::INFINITY } else { f32::NEG_INFINITY });
    let best = |x: __m512, y: __m512| if NEG { _mm512_min_ps(x, y) } else { _mm512_max_ps(x, y) };
    // Lanes where `y` is strictly better than `x`.
    let beats = |y: __m512, x: __m512| {
        if NEG {
            _mm512_cmp_ps_mask::<_CMP_LT_OQ>(y, x)
        } else {
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, x)
        }
    };
    let (mlo, mhi): (__mmask16, __mmask16) = (0xffff, ((1u32 << (wo - 16)) - 1) as __mmask16);
    let lanes = |f: fn(i32) -> i32| {
        let mut v = [0i32; 16];
        for (px, l) in v.iter_mut().enumerate() {
            *l = f(px as i32).clamp(0, 31);
        }
        // SAFETY: 16 i32 lanes read from a 16-element array.
        unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
    };
    let (il, im, ir) = (lanes(|p| (3 * p - 1).max(0)), lanes(|p| 3 * p), lanes(|p| 3 * p + 1));
    let (va, vb) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
    let store: __mmask16 = ((1u32 << pw) - 1) as __mmask16;
    for (py, &(ys, ye)) in ywin.iter().enumerate() {
        let row = |y: usize| -> (__m512, __m512) {
            let y = y.min(ye - 1);
            let Some(r) = map.get(y * s..y * s + wo) else { return (edge, edge) };
            // SAFETY: the masks select the row's `wo` floats (16 + wo - 16); masked-out lanes
            // are not read and take the losing infinity.
            unsafe {
                (
                    _mm512_mask_loadu_ps(edge, mlo, r.as_ptr()),
                    _mm512_mask_loadu_ps(edge, mhi, r.as_ptr().add(16)),
                )
            }
        };
        let (a0, a1) = row(ys);
        let (b0, b1) = row(ys + 1);
        let (c0, c1) = row(ys + 2);
        let Some(dst) = out.get_mut(py * pw..(py + 1) * pw) else { return };
        let Some(arg) = arg.as_deref_mut() else {
            let (lo, hi) = (best(best(a0, b0), c0), best(best(a1, b1), c1));
            let l = _mm512_permutex2var_ps(lo, il, hi);
            let m = _mm512_permutex2var_ps(lo, im, hi);
            let r = _mm512_permutex2var_ps(lo, ir, hi);
            let v = _mm512_add_ps(_mm512_mul_ps(best(best(l, m), r), va), vb);
            // SAFETY: `dst` holds `pw` floats and the mask stores exactly `pw` lanes.
            unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), store, v) };
            continue;
        };
        // Column-wise best of the rows and its row (0, 1, 2), the first row winning ties.
        let (one, two) = (_mm512_set1_epi32(1), _mm512_set1_epi32(2));
        let column = |a: __m512, b: __m512, c: __m512| {
            let k = beats(b, a);
            let (v, r) = (_mm512_mask_blend_ps(k, a, b), _mm512_maskz_mov_epi32(k, one));
            let k = beats(c, v);
            (_mm512_mask_blend_ps(k, v, c), _mm512_mask_blend_epi32(k, r, two))
        };
        let ((lo, rlo), (hi, rhi)) = (column(a0, b0, c0), column(a1, b1, c1));
        // Then across the window's columns, left to right, the first column winning ties.
        let pick = |idx: __m512i| {
            (_mm512_permutex2var_ps(lo, idx, hi), _mm512_permutex2var_epi32(rlo, idx, rhi), idx)
        };
        let (mut v, mut rv, mut cv) = pick(il);
        for idx in [im, ir] {
            let (w, rw, cw) = pick(idx);
            let k = beats(w, v);
            (v, rv, cv) = (
                _mm512_mask_blend_ps(k, v, w),
                _mm512_mask_blend_epi32(k, rv, rw),
                _mm512_mask_blend_epi32(k, cv, cw),
            );
        }
        let v = _mm512_add_ps(_mm512_mul_ps(v, va), vb);
        // arg = (ys + row) * s + column, in the map's padded-row layout.
        let at = _mm512_add_epi32(
            _mm512_mullo_epi32(
                _mm512_add_epi32(_mm512_set1_epi32(ys as i32), rv),
                _mm512_set1_epi32(s as i32),
            ),
            cv,
        );
        let Some(adst) = arg.get_mut(py * pw..(py + 1) * pw) else { return };
        // SAFETY: `dst` and `adst` hold `pw` values each and the mask stores exactly `pw` lanes.
        unsafe {
            _mm512_mask_storeu_ps(dst.as_mut_ptr(), store, v);
            _mm512_mask_storeu_epi32(adst.as_mut_ptr().cast(), store, at);
        }
    }
}

/// Most taps (`cin * k * k`) of the explicit AVX-512 convolution; larger kernels take the
/// generic path.
const MAX_TAPS: usize = 64;

/// [`conv_channels`] for four output channels with explicit AVX-512 intrinsics: 16 vector
/// accumulators (4 channels x 64 floats) stay in registers while the taps stream by.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn conv4_avx512(g: &BlockGeom, xp: &[f32], wt: &[f32], bias: &[f32], o0: usize, act: &mut [f32]) {
    use std::arch::x86_64::*;
    let (s, pin, pout, k) = (g.stride(), g.plane_in(), g.plane_out(), g.k);
    let wlen = g.cin * k * k;
    if wlen > MAX_TAPS {
        for o in o0..o0 + 4 {
            conv_channels::<true, CH512, 1>(g, xp, wt, bias, o, act);
        }
        return;
    }
    // Per tap: its offset in the padded input and the four channels' weights, so that the
    // inner loop is one flat run over the taps.
    let (mut offs, mut w4) = ([0usize; MAX_TAPS], [[0f32; 4]; MAX_TAPS]);
    for c in 0..g.cin {
        for ky in 0..k {
            for kx in 0..k {
                let t = (c * k + ky) * k + kx;
                offs[t] = c * pin + ky * s + kx;
                for (ob, w) in w4[t].iter_mut().enumerate() {
                    *w = wt[(o0 + ob) * wlen + t];
                }
            }
        }
    }
    let (offs, w4) = (&offs[..wlen], &w4[..wlen]);
    let last = offs.last().copied().unwrap_or(0);
    let zero = _mm512_setzero_ps();
    // 3x3 kernels: each row segment is loaded once as five vectors, and its shifts by one and
    // two columns come from lane shifts (`valignd`) instead of unaligned loads that split cache
    // lines. The taps reach each accumulator in the same order, so the sums are the same.
    let tiles = pout.div_ceil(64) * 64;
    let rows3 = k == 3 && tiles >= 64 && (g.cin - 1) * pin + 2 * s + tiles - 64 + 80 <= xp.len();
    for base in (0..pout).step_by(64) {
        if base + last + 64 > xp.len() {
            return;
        }
        let mut acc = [[zero; 4]; 4];
        for (ob, a) in acc.iter_mut().enumerate() {
            *a = [_mm512_set1_ps(bias[o0 + ob]); 4];
        }
        if rows3 {
            for (r, w3) in w4.chunks_exact(3).enumerate() {
                let (c, ky) = (r / 3, r % 3);
                // SAFETY: `rows3` checked that five vectors from the start of the last row of
                // the last channel, at the last tile, end within `xp`.
                let l = unsafe {
                    let src = xp.as_ptr().add(base + c * pin + ky * s);
                    [
                        _mm512_loadu_ps(src),
                        _mm512_loadu_ps(src.add(16)),
                        _mm512_loadu_ps(src.add(32)),
                        _mm512_loadu_ps(src.add(48)),
                        _mm512_loadu_ps(src.add(64)),
                    ]
                };
                let sh1 = |hi: __m512, lo: __m512| {
                    _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(
                        _mm512_castps_si512(hi),
                        _mm512_castps_si512(lo),
                    ))
                };
                let sh2 = |hi: __m512, lo: __m512| {
                    _mm512_castsi512_ps(_mm512_alignr_epi32::<2>(
                        _mm512_castps_si512(hi),
                        _mm512_castps_si512(lo),
                    ))
                };
                let v = [
                    [l[0], l[1], l[2], l[3]],
                    [sh1(l[1], l[0]), sh1(l[2], l[1]), sh1(l[3], l[2]), sh1(l[4], l[3])],
                    [sh2(l[1], l[0]), sh2(l[2], l[1]), sh2(l[3], l[2]), sh2(l[4], l[3])],
                ];
                for (vk, w) in v.iter().zip(w3) {
                    for (a, &wv) in acc.iter_mut().zip(w) {
                        let wv = _mm512_set1_ps(wv);
                        for (ai, &vi) in a.iter_mut().zip(vk) {
                            *ai = _mm512_fmadd_ps(wv, vi, *ai);
                        }
                    }
                }
            }
        } else {
            for (&off, w) in offs.iter().zip(w4) {
                // SAFETY: `base + off + 64 <= base + last + 64 <= xp.len()` (checked above for the
                // largest offset), read as four unaligned 16-float vectors.
                let v = unsafe {
                    let src = xp.as_ptr().add(base + off);
                    [
                        _mm512_loadu_ps(src),
                        _mm512_loadu_ps(src.add(16)),
                        _mm512_loadu_ps(src.add(32)),
                        _mm512_loadu_ps(src.add(48)),
                    ]
                };
                for (a, &wv) in acc.iter_mut().zip(w) {
                    let wv = _mm512_set1_ps(wv);
                    for (ai, vi) in a.iter_mut().zip(v) {
                        *ai = _mm512_fmadd_ps(wv, vi, *ai);
                    }
                }
            }
        }
        let end = (base + 64).min(pout);
        for (ob, a) in acc.iter().enumerate() {
            let map = &mut act[(o0 + ob) * pout..(o0 + ob + 1) * pout];
            let dst = &mut map[base..end];
            for (i, ai) in a.iter().enumerate() {
                let n = dst.len().saturating_sub(16 * i).min(16);
                if n == 0 {
                    break;
                }
                let mask = ((1u32 << n) - 1) as __mmask16;
                // SAFETY: the mask writes the `n` floats left in `dst` from offset 16 i.
                unsafe {
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(16 * i), mask, _mm512_max_ps(*ai, zero))
                };
            }
        }
    }
}

fn forward_sample(g: &BlockGeom, p: &FwdParams<'_>, io: SampleIo<'_>, sc: &mut PoolScratch) -> bool {
    match simd_level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd_level` checked that the CPU supports AVX2 and FMA.
        Simd::Avx2 => unsafe { forward_sample_avx2(g, p, io, sc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd_level` checked that the CPU supports AVX-512F and FMA.
        Simd::Avx512 => unsafe { forward_sample_avx512(g, p, io, sc) },
        Simd::Base => {
            forward_sample_impl(g, p, io, sc, conv_sample::<false, CH, CONV_OB>, sample_moments, pool_fwd)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_sample_avx2(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
    backward_sample::<true>(g, bn, io)
}

/// Length of one `dz` map in the backward scratch: the map padded with zeros to a multiple of
/// the dot-product block (the padded input planes have the slack to be read that far).
fn dz_len(g: &BlockGeom) -> usize {
    g.plane_out().div_ceil(DOT) * DOT
}

/// Output channels whose `dz` maps [`backward_sample_avx512`] forms together (the backward
/// scratch holds this many maps per block of samples).
const DZ_MAPS: usize = 3;

/// [`backward_sample`] with explicit AVX-512 kernels for 3x3 convolutions: the `dz` maps of
/// three output channels are formed at once (vectorised, masked at each row's unused
/// columns), and their weight gradients share every load of the shifted input
/// ([`dot27_avx512`]: 27 accumulators, one load of the input per three multiply-adds instead
/// of one per multiply-add, which made [`dot9`] load-bound). Per lane these are the same
/// operations in the same order as [`backward_sample`], and the horizontal sums are the same
/// sequential sums, so the results are bitwise equal (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn backward_sample_avx512(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
    let (s, pin, pout, dzl) = (g.stride(), g.plane_in(), g.plane_out(), dz_len(g));
    let npool = g.ph() * g.pw();
    let fits = g.k == 3
        && io.dz.len() >= DZ_MAPS * dzl
        && dzl + 2 * s + 2 <= pin
        && io.xp.len() >= g.cin * pin
        && io.act.len() >= g.cout * pout
        && io.arg.len() >= g.cout * npool
        && io.gout.len() >= g.cout * npool
        && io.dw.len() >= g.cout * g.cin * 9
        && io.db.len() >= g.cout
        && bn.len() >= g.cout;
    if !fits {
        return backward_sample::<true>(g, bn, io);
    }
    let BackIo { xp, act, arg, gout, dz, dw, db } = io;
    let mut o0 = 0;
    while o0 < g.cout {
        let nb = (g.cout - o0).min(DZ_MAPS);
        for j in 0..nb {
            let o = o0 + j;
            let (map, b) = (&act[o * pout..(o + 1) * pout], bn[o]);
            let d = &mut dz[j * dzl..(j + 1) * dzl];
            dz_map_avx512(g, b, map, d);
            // The pooled gradient at each window's maximum.
            for (&i, &gv) in arg[o * npool..(o + 1) * npool].iter().zip(&gout[o * npool..(o + 1) * npool]) {
                let i = i as usize;
                if map.get(i).is_some_and(|&a| a > 0.0) {
                    d[i] += b.k * gv;
                }
            }
            db[o] += sum16(d);
        }
        for c in 0..g.cin {
            let plane = &xp[c * pin..(c + 1) * pin];
            let mut add = |o: usize, t: [f32; 9]| {
                for (d, v) in dw[(o * g.cin + c) * 9..(o * g.cin + c + 1) * 9].iter_mut().zip(t) {
                    *d += v;
                }
            };
            let three = if nb == DZ_MAPS { dot27_avx512(&dz[..DZ_MAPS * dzl], dzl, plane, s) } else { None };
            if let Some(t) = three {
                for (j, t) in t.into_iter().enumerate() {
                    add(o0 + j, t);
                }
            } else {
                for j in 0..nb {
                    add(o0 + j, dot9::<true>(&dz[j * dzl..(j + 1) * dzl], plane, s));
                }
            }
        }
        o0 += nb;
    }
}

/// `dz = [a > 0] (-k (xhat c2 + c1))` over one map (rows of `stride` floats, the last `k - 1`
/// columns set to zero) in AVX-512 registers; the same operations as [`backward_sample`]'s
/// dense part.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn dz_map_avx512(g: &BlockGeom, b: BnBack, map: &[f32], dz: &mut [f32]) {
    use std::arch::x86_64::*;
    let (s, wo) = (g.stride(), g.wo());
    let (mean, invstd) = (_mm512_set1_ps(b.mean), _mm512_set1_ps(b.invstd));
    let (negk, c1, c2) = (_mm512_set1_ps(-b.k), _mm512_set1_ps(b.c1), _mm512_set1_ps(b.c2));
    let zero = _mm512_setzero_ps();
    let lanes = |n: usize| -> __mmask16 { ((1u32 << n) - 1) as __mmask16 };
    for (drow, arow) in dz.chunks_exact_mut(s).zip(map.chunks_exact(s)) {
        for x0 in (0..s).step_by(16) {
            let nst = (s - x0).min(16);
            let nval = wo.saturating_sub(x0).min(nst);
            // SAFETY: the masks read `nval <= wo - x0` floats of `arow` and write `nst <= s - x0`
            // floats of `drow`, both from offset `x0`.
            unsafe {
                let a = _mm512_maskz_loadu_ps(lanes(nval), arow.as_ptr().add(x0));
                let xhat = _mm512_mul_ps(_mm512_sub_ps(a, mean), invstd);
                let v = _mm512_mul_ps(negk, _mm512_fmadd_ps(xhat, c2, c1));
                let on = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, zero) & lanes(nval);
                _mm512_mask_storeu_ps(drow.as_mut_ptr().add(x0), lanes(nst), _mm512_maskz_mov_ps(on, v));
            }
        }
    }
}

/// [`dot9`] for three `dz` maps at once (`dz` holds them `dzl` floats apart; `dzl` is a
/// multiple of 16 and `dzl + 2 s + 2 <= plane.len()`, else `None`): each shifted input vector
/// is loaded once for three accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn dot27_avx512(dz: &[f32], dzl: usize, plane: &[f32], s: usize) -> Option<[[f32; 9]; DZ_MAPS]> {
    use std::arch::x86_64::*;
    let offs = [0, 1, 2, s, s + 1, s + 2, 2 * s, 2 * s + 1, 2 * s + 2];
    let mut acc = [[_mm512_setzero_ps(); 9]; DZ_MAPS];
    if dz.len() < DZ_MAPS * dzl || dzl + 2 * s + 2 > plane.len() || !dzl.is_multiple_of(16) {
        // Not these sizes: the caller falls back to one map at a time.
        return None;
    }
    for base in (0..dzl).step_by(16) {
        // SAFETY: `base + 16 <= dzl`, so the three maps' reads end within `3 dzl <= dz.len()`;
        // the input reads end at `base + 2 s + 2 + 16 <= dzl + 2 s + 2 <= plane.len()`.
        unsafe {
            let d = [
                _mm512_loadu_ps(dz.as_ptr().add(base)),
                _mm512_loadu_ps(dz.as_ptr().add(dzl + base)),
                _mm512_loadu_ps(dz.as_ptr().add(2 * dzl + base)),
            ];
            for (t, &off) in offs.iter().enumerate() {
                let x = _mm512_loadu_ps(plane.as_ptr().add(base + off));
                for (a, &dj) in acc.iter_mut().zip(&d) {
                    a[t] = _mm512_fmadd_ps(dj, x, a[t]);
                }
            }
        }
    }
    // The same sequential lane sums as `dot9`.
    Some(acc.map(|a| {
        a.map(|v| {
            let mut l = [0f32; 16];
            // SAFETY: 16 floats written to a 16-float array.
            unsafe { _mm512_storeu_ps(l.as_mut_ptr(), v) };
            l.iter().sum()
        })
    }))
}

fn backward_dispatch(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
    match simd_level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd_level` checked that the CPU supports AVX2 and FMA.
        Simd::Avx2 => unsafe { backward_sample_avx2(g, bn, io) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd_level` checked that the CPU supports AVX-512F and FMA.
        Simd::Avx512 => unsafe { backward_sample_avx512(g, bn, io) },
        Simd::Base => backward_sample::<false>(g, bn, io),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::max_pool2d_padded;
    use candle_core::{Device, Var};
    use candle_nn::ModuleT;
    use rand::{Rng, SeedableRng};

    struct Ref {
        w: Var,
        b: Var,
        gamma: Var,
        beta: Var,
    }

    fn setup(g: &BlockGeom, seed: u64) -> (Tensor, Ref) {
        use rand::{Rng, SeedableRng};
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let dev = Device::Cpu;
        let mut v =
            |n: usize, lo: f32, hi: f32| -> Vec<f32> { (0..n).map(|_| r.random_range(lo..hi)).collect() };
        let x = Tensor::from_vec(v(4 * g.cin * g.h * g.w, 0.0, 255.0), (4, g.cin, g.h, g.w), &dev).unwrap();
        let x =
            Tensor::cat(&[&x, &x.affine(0.5, -60.0).unwrap(), &x.affine(-1.0, 255.0).unwrap()], 0).unwrap();
        let w = Var::from_vec(v(g.nw(), -0.2, 0.2), (g.cout, g.cin, g.k, g.k), &dev).unwrap();
        let b = Var::from_vec(v(g.cout, -1.0, 1.0), g.cout, &dev).unwrap();
        let gamma = Var::from_vec(v(g.cout, -1.5, 1.5), g.cout, &dev).unwrap();
        let beta = Var::from_vec(v(g.cout, -1.0, 1.0), g.cout, &dev).unwrap();
        (x, Ref { w, b, gamma, beta })
    }

    /// Whether this CPU runs the AVX-512 kernels (AVX-512F and FMA); says that the test is
    /// skipped when it does not.
    #[cfg(target_arch = "x86_64")]
    fn has_avx512() -> bool {
        let ok = std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma");
        if !ok {
            eprintln!("skipped: no AVX-512 on this CPU");
        }
        ok
    }

    fn geom() -> BlockGeom {
        BlockGeom { cin: 3, h: 28, w: 28, cout: 16, k: 3, pad: 2, pool_k: 3, pool_s: 3, pool_p: 1, eps: 1e-5 }
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
    }

    #[test]
    fn train_forward_and_gradients_match_candle_ops() {
        for (pad, seed) in [(2, 1), (1, 2), (0, 3)] {
            let g = BlockGeom { pad, ..geom() };
            let (x, r) = setup(&g, seed);
            // Reference: candle's conv2d, relu and batch statistics, then the padded max-pool op.
            let z = x.conv2d(r.w.as_tensor(), pad, 1, 1, 1).unwrap();
            let z = z
                .broadcast_add(&r.b.as_tensor().reshape((1, g.cout, 1, 1)).unwrap())
                .unwrap()
                .relu()
                .unwrap();
            let mean = z.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
            let d = z.broadcast_sub(&mean).unwrap();
            let var =
                d.sqr().unwrap().mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
            let xhat = d.broadcast_div(&(var.clone() + 1e-5).unwrap().sqrt().unwrap()).unwrap();
            let y = xhat
                .broadcast_mul(&r.gamma.as_tensor().reshape((1, g.cout, 1, 1)).unwrap())
                .unwrap()
                .broadcast_add(&r.beta.as_tensor().reshape((1, g.cout, 1, 1)).unwrap())
                .unwrap();
            let want = max_pool2d_padded(&y, 3, 3, 1).unwrap();
            // A loss with a different weight on every output, so every gradient path matters.
            let lw = Tensor::arange(0f32, want.elem_count() as f32, &Device::Cpu)
                .unwrap()
                .affine(0.37, 0.0)
                .unwrap()
                .sin()
                .unwrap()
                .reshape(want.shape())
                .unwrap();
            let want_grads = (want.clone() * &lw).unwrap().sum_all().unwrap().backward().unwrap();

            let cache = SharedCache::default();
            let packed = pack_params(
                &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
                None,
            )
            .unwrap();
            let (got, stats) = forward_train(&x, &packed, g, &cache).unwrap();
            assert_eq!(got.dims(), want.dims());
            assert!(max_rel(&got, &want) < 1e-5, "pad {pad}: forward {}", max_rel(&got, &want));
            let want_mean = mean.flatten_all().unwrap();
            let want_var = var.flatten_all().unwrap();
            assert!(max_rel(&Tensor::new(stats.mean.as_slice(), &Device::Cpu).unwrap(), &want_mean) < 1e-5);
            assert!(max_rel(&Tensor::new(stats.var.as_slice(), &Device::Cpu).unwrap(), &want_var) < 1e-4);
            let grads = (got * &lw).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("weight", &r.w), ("bias", &r.b), ("gamma", &r.gamma), ("beta", &r.beta)] {
                let a = grads.get(v.as_tensor()).unwrap();
                let b = want_grads.get(v.as_tensor()).unwrap();
                let e = max_rel(a, b);
                assert!(e < 2e-4, "pad {pad}: d{name} differs by {e} (relative to its largest value)");
            }
        }
    }

    #[test]
    fn eval_forward_matches_candle_batch_norm() {
        for pad in [2, 1, 0] {
            eval_forward_matches_candle_batch_norm_at(BlockGeom { pad, ..geom() });
        }
    }

    /// The vectorised inference pooling against the scalar one, both directions, on maps of
    /// every width it accepts (random values with many ties at zero, as after a ReLU).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn pool3_avx512_matches_pool3_sample() {
        if !has_avx512() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for w in 15..=30 {
            let g = BlockGeom { w, h: w + 1, ..geom() };
            if !pool3_avx512_fits(&g) {
                continue;
            }
            let mut sc = PoolScratch::default();
            sc.prepare(&g);
            let map: Vec<f32> =
                (0..g.plane_out()).map(|_| (rng.random::<f32>() * 4.0 - 1.0).max(0.0)).collect();
            let n = g.ph() * g.pw();
            for ab in [(0.7f32, -0.2f32), (-1.3, 0.4), (1.0, 0.0), (-1.0, 0.0)] {
                for track in [false, true] {
                    let (mut want, mut got) = (vec![0f32; n], vec![1f32; n]);
                    let (mut warg, mut garg) = (vec![0u32; n], vec![7u32; n]);
                    let (wa, ga) =
                        if track { (Some(&mut warg[..]), Some(&mut garg[..])) } else { (None, None) };
                    if ab.0 < 0.0 {
                        pool3_sample::<true>(&g, &map, ab, &mut want, wa, &mut sc);
                        // SAFETY: AVX-512F checked above.
                        unsafe { pool3_avx512::<true>(&g, &map, ab, &mut got, ga, &sc.ywin) };
                    } else {
                        pool3_sample::<false>(&g, &map, ab, &mut want, wa, &mut sc);
                        // SAFETY: AVX-512F checked above.
                        unsafe { pool3_avx512::<false>(&g, &map, ab, &mut got, ga, &sc.ywin) };
                    }
                    assert_eq!(got, want, "w {w}, scale {}", ab.0);
                    if track {
                        assert_eq!(garg, warg, "arg-max, w {w}, scale {}", ab.0);
                    }
                }
            }
        }
    }

    /// The AVX-512 backward pass (three `dz` maps at once, 27-accumulator weight gradients)
    /// against the generic one it replaces: bitwise equal weight and bias gradients, for conv
    /// paddings 2, 1 and 0 (map widths 30, 28, 26: row strides 32, 30, 28) and for channel
    /// counts that leave one or two channels after the groups of three.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn backward_avx512_matches_the_generic_backward_bitwise() {
        if !has_avx512() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for (pad, cout) in [(2, 16), (1, 16), (0, 16), (2, 4), (2, 5), (1, 3)] {
            let g = BlockGeom { pad, cout, ..geom() };
            let (pin, pout, npool) = (g.cin * g.plane_in(), g.cout * g.plane_out(), g.cout * g.ph() * g.pw());
            let x: Vec<f32> = (0..g.cin * g.h * g.w).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
            let wt: Vec<f32> = (0..g.nw()).map(|_| rng.random::<f32>() - 0.5).collect();
            let bias: Vec<f32> = (0..cout).map(|_| rng.random::<f32>() * 0.2 - 0.1).collect();
            let ones = vec![1f32; cout];
            let zeros = vec![0f32; cout];
            let params = FwdParams { wt: &wt, bias: &bias, scale: &ones, shift: &zeros };
            let (mut xp, mut act) = (vec![0f32; pin], vec![0f32; pout]);
            let (mut out, mut arg) = (vec![0f32; npool], vec![0u32; npool]);
            let mut sums = vec![0f64; 2 * cout];
            let io = SampleIo {
                x: &x,
                xp: &mut xp,
                act: &mut act,
                out: &mut out,
                arg: Some(&mut arg),
                sums: Some(&mut sums),
            };
            assert!(forward_sample(&g, &params, io, &mut PoolScratch::default()));
            let gout: Vec<f32> = (0..npool).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
            let bn: Vec<BnBack> = (0..cout)
                .map(|_| BnBack {
                    mean: rng.random::<f32>() * 0.3,
                    invstd: 1.0 + rng.random::<f32>(),
                    k: rng.random::<f32>() * 2.0 - 1.0,
                    c1: rng.random::<f32>() * 0.01,
                    c2: rng.random::<f32>() * 0.01,
                })
                .collect();
            let run = |avx512: bool| {
                let mut dz = vec![0f32; DZ_MAPS * dz_len(&g)];
                // Accumulated onto non-zero gradients, as for the second sample of a block.
                let mut dw: Vec<f32> = (0..g.nw()).map(|i| i as f32 * 1e-3).collect();
                let mut db: Vec<f32> = (0..cout).map(|i| i as f32 * 0.1).collect();
                let io = BackIo {
                    xp: &xp,
                    act: &act,
                    arg: &arg,
                    gout: &gout,
                    dz: &mut dz,
                    dw: &mut dw,
                    db: &mut db,
                };
                // SAFETY: AVX-512F and FMA checked above.
                unsafe {
                    if avx512 {
                        backward_sample_avx512(&g, &bn, io)
                    } else {
                        backward_sample_avx2(&g, &bn, io)
                    }
                }
                (dw, db)
            };
            let (want_w, want_b) = run(false);
            let (got_w, got_b) = run(true);
            assert_eq!(got_b, want_b, "bias gradient, pad {pad}, cout {cout}");
            assert_eq!(got_w, want_w, "weight gradient, pad {pad}, cout {cout}");
            assert!(want_w.iter().enumerate().any(|(i, &v)| v != i as f32 * 1e-3), "gradient not computed");
        }
    }

    /// The AVX-512 moments against the generic ones: bitwise equal sums (maps of stride 32, 30
    /// and 28, so with and without a scalar tail; odd and even channel counts, since maps are
    /// summed two at a time).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn moments_avx512_match_sample_moments_bitwise() {
        if !has_avx512() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for (pad, cout) in [(2, 16), (1, 5), (0, 3), (2, 1), (2, 8)] {
            let g = BlockGeom { pad, cout, ..geom() };
            let act: Vec<f32> =
                (0..g.cout * g.plane_out()).map(|_| (rng.random::<f32>() * 3.0 - 1.0).max(0.0)).collect();
            let (mut want, mut got) = (vec![0.5f64; 2 * g.cout], vec![0.5f64; 2 * g.cout]);
            sample_moments(&g, &act, &mut want);
            // SAFETY: AVX-512F checked above.
            unsafe { moments_avx512(&g, &act, &mut got) };
            assert_eq!(got, want, "pad {pad}, {cout} channels");
        }
    }

    /// The AVX-512 convolution (row segments and lane shifts for 3x3 kernels) against the
    /// generic per-channel convolution: bitwise equal maps for paddings 2, 1 and 0 (row strides
    /// 32, 30, 28, so the row segments are misaligned in different ways).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn conv4_avx512_matches_conv_channels_bitwise() {
        if !has_avx512() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        for pad in [2, 1, 0] {
            let g = BlockGeom { pad, ..geom() };
            let x: Vec<f32> = (0..g.cin * g.h * g.w).map(|_| rng.random::<f32>() * 255.0).collect();
            let mut xp = vec![0f32; g.cin * g.plane_in()];
            assert!(pad_sample(&g, &x, &mut xp));
            let wt: Vec<f32> = (0..g.nw()).map(|_| rng.random::<f32>() - 0.5).collect();
            let bias: Vec<f32> = (0..g.cout).map(|_| rng.random::<f32>() - 0.5).collect();
            let (mut want, mut got) =
                (vec![0f32; g.cout * g.plane_out()], vec![1f32; g.cout * g.plane_out()]);
            for o in 0..g.cout {
                conv_channels::<true, CH512, 1>(&g, &xp, &wt, &bias, o, &mut want);
            }
            // SAFETY: AVX-512F and FMA checked above.
            unsafe {
                for o0 in (0..g.cout).step_by(4) {
                    conv4_avx512(&g, &xp, &wt, &bias, o0, &mut got);
                }
            }
            zero_unused_columns(&g, &mut want);
            zero_unused_columns(&g, &mut got);
            assert_eq!(got, want, "pad {pad}");
            assert!(want.iter().any(|&v| v > 0.0));
        }
    }

    #[test]
    fn all_finite_finds_one_bad_value_anywhere() {
        let mut x = vec![1.5f32; 10_000];
        assert!(all_finite(&x));
        for (i, bad) in [(0, f32::NAN), (4095, f32::INFINITY), (4096, f32::NEG_INFINITY), (9_999, f32::NAN)] {
            x[i] = bad;
            assert!(!all_finite(&x), "{bad} at {i}");
            x[i] = f32::MAX;
        }
        assert!(all_finite(&x));
    }

    #[test]
    fn pad_sample_overwrites_a_dirty_buffer() {
        for pad in [0, 1, 2] {
            let g = BlockGeom { pad, h: 5, w: 4, ..geom() };
            let x: Vec<f32> = (0..g.cin * 20).map(|i| i as f32 + 1.0).collect();
            let mut xp = vec![f32::NAN; g.cin * g.plane_in()];
            pad_sample(&g, &x, &mut xp);
            let s = g.stride();
            for c in 0..g.cin {
                for (i, &v) in xp[c * g.plane_in()..(c + 1) * g.plane_in()].iter().enumerate() {
                    let (y, xx) = ((i / s) as isize - pad as isize, (i % s) as isize - pad as isize);
                    let inside = (0..5).contains(&y) && (0..4).contains(&xx) && i < (5 + 2 * pad) * s;
                    let want = if inside { x[c * 20 + y as usize * 4 + xx as usize] } else { 0.0 };
                    assert_eq!(v, want, "pad {pad} channel {c} at {i}");
                }
            }
        }
    }

    fn eval_forward_matches_candle_batch_norm_at(g: BlockGeom) {
        let (x, r) = setup(&g, 7);
        let dev = Device::Cpu;
        let rm = Tensor::new(
            &[0.5f32, 3.0, 10.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.5, 2.5, 3.5],
            &dev,
        )
        .unwrap();
        let rv = (rm.clone() * 2.0).unwrap().affine(1.0, 0.3).unwrap();
        let bn = candle_nn::BatchNorm::new(
            g.cout,
            rm.clone(),
            rv.clone(),
            r.gamma.as_tensor().clone(),
            r.beta.as_tensor().clone(),
            1e-5,
        )
        .unwrap();
        let z = x.conv2d(r.w.as_tensor(), g.pad, 1, 1, 1).unwrap();
        let z =
            z.broadcast_add(&r.b.as_tensor().reshape((1, g.cout, 1, 1)).unwrap()).unwrap().relu().unwrap();
        let want = max_pool2d_padded(&bn.forward_t(&z, false).unwrap(), 3, 3, 1).unwrap();
        let packed = pack_params(
            &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
            Some(&[(&rm, &rv)]),
        )
        .unwrap();
        let got = forward_eval(&x, &packed, g).unwrap();
        assert!(max_rel(&got, &want) < 1e-5, "{}", max_rel(&got, &want));
    }

    #[test]
    fn stale_backward_is_an_error_and_bad_shapes_are_refused() {
        let g = geom();
        let (x, r) = setup(&g, 9);
        let cache = SharedCache::default();
        let packed =
            pack_params(&[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())], None)
                .unwrap();
        let (y1, _) = forward_train(&x, &packed, g, &cache).unwrap();
        let (_y2, _) = forward_train(&x, &packed, g, &cache).unwrap();
        let err = y1.sum_all().unwrap().backward().unwrap_err().to_string();
        assert!(err.contains("older forward"), "{err}");
        let nan = x.affine(0.0, f32::NAN as f64).unwrap();
        let err = forward_eval(
            &nan,
            &pack_params(
                &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
                Some(&[(r.b.as_tensor(), r.gamma.as_tensor())]),
            )
            .unwrap(),
            g,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("non-finite"), "{err}");
        // One infinity in the last sample's last value, training path.
        let mut v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        if let Some(last) = v.last_mut() {
            *last = f32::INFINITY;
        }
        let inf = Tensor::from_vec(v, x.shape(), x.device()).unwrap();
        let err = forward_train(&inf, &packed, g, &cache).unwrap_err().to_string();
        assert!(err.contains("non-finite"), "{err}");
        let bad = BlockGeom { h: 20, ..g };
        assert!(forward_eval(&x, &packed, bad).is_err());
        assert!(forward_eval(&x, &packed, g).is_err(), "training layout is too short for eval");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let g = geom();
        let (x, r) = setup(&g, 11);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let cache = SharedCache::default();
                let packed = pack_params(
                    &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
                    None,
                )
                .unwrap();
                let (y, _) = forward_train(&x, &packed, g, &cache).unwrap();
                let gr = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let gw = gr.get(r.w.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), gw)
            })
        };
        assert_eq!(run(1), run(3));
    }
}
