//! The compute kernels of the fused block (see the parent module): padding, convolution,
//! BatchNorm moments, pooling and the backward pass, each written once as portable
//! `#[inline(always)]` code and compiled per instruction set by safe `#[target_feature]`
//! functions (AVX2 + FMA, AVX-512), chosen at run time through [`mex_core::simd`]. Hand-written
//! AVX-512 intrinsics are used where the compiler does not vectorise well (convolution of four
//! channels, three-wide pooling, the weight-gradient dot products).

use super::*;
use mex_core::simd::{self, SimdLevel};

#[inline(always)]
pub(super) fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The error for an input holding NaN or infinity.
pub(super) const NON_FINITE: &str = "fused block: the input holds non-finite values (NaN or infinity)";

/// Whether every value is finite (no early exit, so that it vectorises).
pub(super) fn all_finite(x: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    x.chunks(4096).all(|c| c.iter().fold(0u32, |a, v| a | u32::from(v.to_bits() & EXP == EXP)) == 0)
}

/// Lengthens `v` to at least `len` values (new ones `fill`); never shortens it.
pub(super) fn grow<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    if v.len() < len {
        v.resize(len, fill);
    }
}

/// Zeroes a slice of a few values (a row's padding or unused columns) with inline stores:
/// `fill` of a length unknown at compile time becomes a `memset` call, which cost more than 5 %
/// of a training step when called for every row of every map.
#[inline(always)]
pub(super) fn zero_few(tail: &mut [f32]) {
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
pub(super) fn pad_sample(g: &BlockGeom, x: &[f32], xp: &mut [f32]) -> bool {
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
pub(super) fn conv_channels<const F: bool, const CH: usize, const OB: usize>(
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
pub(super) fn conv_sample<const F: bool, const CH: usize, const OB: usize>(
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
pub(super) fn zero_unused_columns(g: &BlockGeom, act: &mut [f32]) {
    let (s, pout) = (g.stride(), g.plane_out());
    for map in act[..g.cout * pout].chunks_exact_mut(pout) {
        for row in map.chunks_exact_mut(s) {
            zero_few(&mut row[g.wo()..]);
        }
    }
}

/// Per-channel sum and sum of squares of one sample's maps (the unused columns are zero).
#[inline(always)]
pub(super) fn sample_moments(g: &BlockGeom, act: &[f32], sums: &mut [f64]) {
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
pub(super) struct PoolScratch {
    pub(super) ywin: Vec<(usize, usize)>,
    pub(super) xwin: Vec<(usize, usize)>,
    pub(super) band: Vec<f32>,
    pub(super) rows: Vec<u32>,
}

impl PoolScratch {
    /// Sizes the buffers and computes the clipped window bounds for `g`.
    pub(super) fn prepare(&mut self, g: &BlockGeom) {
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
pub(super) fn pool_sample<const NEG: bool>(
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
pub(super) fn pool3_sample<const NEG: bool>(
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
pub(super) fn pool_channels(
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
pub(super) fn dot<const F: bool>(a: &[f32], b: &[f32]) -> f32 {
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
pub(super) fn sum16(a: &[f32]) -> f32 {
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
pub(super) struct BackIo<'a> {
    pub(super) xp: &'a [f32],
    pub(super) act: &'a [f32],
    pub(super) arg: &'a [u32],
    pub(super) gout: &'a [f32],
    pub(super) dz: &'a mut [f32],
    pub(super) dw: &'a mut [f32],
    pub(super) db: &'a mut [f32],
}

/// Constants of the BatchNorm backward pass for one channel.
#[derive(Clone, Copy)]
pub(super) struct BnBack {
    pub(super) mean: f32,
    pub(super) invstd: f32,
    /// `gamma * invstd`.
    pub(super) k: f32,
    /// `dbeta / N`.
    pub(super) c1: f32,
    /// `dgamma / N`.
    pub(super) c2: f32,
}

/// The gradient of one sample with respect to the weights (`dw`, accumulated) and the bias
/// (`db`, accumulated), from the pooled-output gradient `gout`.
#[inline(always)]
pub(super) fn backward_sample<const F: bool>(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
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
pub(super) fn dot9<const F: bool>(dz: &[f32], plane: &[f32], s: usize) -> [f32; 9] {
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

/// The per-sample buffers of a forward pass.
pub(super) struct SampleIo<'a> {
    /// The sample `(C, H, W)`.
    pub(super) x: &'a [f32],
    /// Its padded copy.
    pub(super) xp: &'a mut [f32],
    /// The post-ReLU maps.
    pub(super) act: &'a mut [f32],
    /// Pooled output `(O, PH, PW)`.
    pub(super) out: &'a mut [f32],
    /// Arg-max per pooled output (training).
    pub(super) arg: Option<&'a mut [u32]>,
    /// Per-channel sums and sums of squares (training).
    pub(super) sums: Option<&'a mut [f64]>,
}

/// The parameters a forward pass needs: weights, bias, and the per-channel affine map applied
/// to the pooled values (its sign chooses max or min pooling).
pub(super) struct FwdParams<'a> {
    pub(super) wt: &'a [f32],
    pub(super) bias: &'a [f32],
    pub(super) scale: &'a [f32],
    pub(super) shift: &'a [f32],
}

/// Pad, convolve, (accumulate moments) and pool one sample; returns whether its input was
/// finite (the outputs of a non-finite sample are garbage: the caller refuses the batch).
#[inline(always)]
pub(super) fn forward_sample_impl(
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
pub(super) fn pool_fwd(
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
pub(super) fn forward_sample_avx2(
    g: &BlockGeom,
    p: &FwdParams<'_>,
    io: SampleIo<'_>,
    sc: &mut PoolScratch,
) -> bool {
    forward_sample_impl(g, p, io, sc, conv_sample::<true, CH, CONV_OB>, sample_moments, pool_fwd)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn forward_sample_avx512(
    g: &BlockGeom,
    p: &FwdParams<'_>,
    io: SampleIo<'_>,
    sc: &mut PoolScratch,
) -> bool {
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
pub(super) fn moments_avx512(g: &BlockGeom, act: &[f32], sums: &mut [f64]) {
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
pub(super) fn pool3_avx512_fits(g: &BlockGeom) -> bool {
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
pub(super) fn pool3_avx512<const NEG: bool>(
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
pub(super) const MAX_TAPS: usize = 64;

/// [`conv_channels`] for four output channels with explicit AVX-512 intrinsics: 16 vector
/// accumulators (4 channels x 64 floats) stay in registers while the taps stream by.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn conv4_avx512(g: &BlockGeom, xp: &[f32], wt: &[f32], bias: &[f32], o0: usize, act: &mut [f32]) {
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

pub(super) fn forward_sample(
    g: &BlockGeom,
    p: &FwdParams<'_>,
    io: SampleIo<'_>,
    sc: &mut PoolScratch,
) -> bool {
    match simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx2` only where the CPU supports AVX2 and FMA.
        SimdLevel::Avx2 => unsafe { forward_sample_avx2(g, p, io, sc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F, AVX2 and FMA.
        SimdLevel::Avx512 => unsafe { forward_sample_avx512(g, p, io, sc) },
        _ => forward_sample_impl(g, p, io, sc, conv_sample::<false, CH, CONV_OB>, sample_moments, pool_fwd),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn backward_sample_avx2(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
    backward_sample::<true>(g, bn, io)
}

/// Length of one `dz` map in the backward scratch: the map padded with zeros to a multiple of
/// the dot-product block (the padded input planes have the slack to be read that far).
pub(super) fn dz_len(g: &BlockGeom) -> usize {
    g.plane_out().div_ceil(DOT) * DOT
}

/// Output channels whose `dz` maps [`backward_sample_avx512`] forms together (the backward
/// scratch holds this many maps per block of samples).
pub(super) const DZ_MAPS: usize = 3;

/// [`backward_sample`] with explicit AVX-512 kernels for 3x3 convolutions: the `dz` maps of
/// three output channels are formed at once (vectorised, masked at each row's unused
/// columns), and their weight gradients share every load of the shifted input
/// ([`dot27_avx512`]: 27 accumulators, one load of the input per three multiply-adds instead
/// of one per multiply-add, which made [`dot9`] load-bound). Per lane these are the same
/// operations in the same order as [`backward_sample`], and the horizontal sums are the same
/// sequential sums, so the results are bitwise equal (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn backward_sample_avx512(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
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
pub(super) fn dz_map_avx512(g: &BlockGeom, b: BnBack, map: &[f32], dz: &mut [f32]) {
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
pub(super) fn dot27_avx512(dz: &[f32], dzl: usize, plane: &[f32], s: usize) -> Option<[[f32; 9]; DZ_MAPS]> {
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

pub(super) fn backward_dispatch(g: &BlockGeom, bn: &[BnBack], io: BackIo<'_>) {
    match simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx2` only where the CPU supports AVX2 and FMA.
        SimdLevel::Avx2 => unsafe { backward_sample_avx2(g, bn, io) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F, AVX2 and FMA.
        SimdLevel::Avx512 => unsafe { backward_sample_avx512(g, bn, io) },
        _ => backward_sample::<false>(g, bn, io),
    }
}
