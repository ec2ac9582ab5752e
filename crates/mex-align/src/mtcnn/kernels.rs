//! The hand-written kernels of the MTCNN networks: direct (no im2col, no gemm) convolutions on
//! channels-last activations and max pooling, for P-Net and the convolutional trunks of R-Net
//! and O-Net (assembled in `direct.rs`). The instruction set is chosen at run time through
//! [`mex_core::simd`].
//!
//! A map is stored row by row with a row stride that may exceed its valid width (`Dims`): a
//! convolution keeps the stride of its input, so output pixel `q` (in storage order) reads the
//! input from pixel `q` on, and a whole map is one run of "virtual" pixels, the columns past the
//! valid width being computed and ignored. Pools write compact maps. The kernel computes a tile of
//! `NP` consecutive pixels by 16 output channels with every accumulator in a register, so each
//! weight load serves `NP` pixels; bias and PReLU are fused into the store, P-Net's first max pool
//! into its first layer. On x86-64 the kernel is compiled again for AVX2 + FMA and chosen at run
//! time (`MEX_SIMD` caps it); with AVX-512 an intrinsics kernel takes `NP` pixels by up to four 16-channel blocks
//! (24 accumulators in zmm registers), so each broadcast input value feeds up to four
//! multiply-adds. Every output sums its
//! terms in `(ky, kx, ci)` order whatever the tile shape; the order differs from PyTorch's (as it
//! does between any two BLAS), which moves the outputs by ~1e-6; the reference tests bound the
//! effect on the detections. Activation buffers carry padding at the end so that the last tile
//! may read past the valid data, and are reused between calls.

use mex_core::simd::{self, SimdLevel};
use rayon::prelude::*;

/// Virtual output pixels are computed in multiples of this (a multiple of every tile width).
const TILE: usize = 24;
/// Extra pixels at the end of every activation buffer, so that the last tile of the next layer
/// may read past the valid data.
const PAD_PX: usize = 32;

/// `n` rounded up to a multiple of [`TILE`].
fn round_tile(n: usize) -> usize {
    n.div_ceil(TILE) * TILE
}

/// A map of `h` valid rows and `wv` valid columns stored channels-last with a row stride of
/// `stride >= wv` pixels (the columns from `wv` to `stride` hold values to be ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    /// Valid rows.
    pub h: usize,
    /// Valid columns.
    pub w: usize,
    /// Row stride in pixels.
    pub stride: usize,
}

impl Dims {
    /// A compact map (`stride == w`).
    pub(crate) fn compact(h: usize, w: usize) -> Self {
        Self { h, w, stride: w }
    }

    /// Pixels from the first to the last valid one, in storage order.
    fn span(&self) -> usize {
        if self.h == 0 || self.w == 0 {
            0
        } else {
            (self.h - 1) * self.stride + self.w
        }
    }
}

/// Lanes of one channel block: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// Weights of one `K × K` convolution from `CIN` channels (stored with a pixel stride of `CS`
/// values) to `CO` outputs (the real count padded with zeros; a multiple of 16), in blocks of
/// 16 output channels: `[block][(ky·K + kx)·CIN + ci][lane]`.
#[derive(Debug, Clone)]
pub(crate) struct DConv<const CIN: usize, const CS: usize, const CO: usize, const K: usize> {
    w: Vec<[f32; LANES]>,
    b: [f32; CO],
    /// PReLU slopes (`None`: linear).
    a: Option<[f32; CO]>,
}

impl<const CIN: usize, const CS: usize, const CO: usize, const K: usize> DConv<CIN, CS, CO, K> {
    /// Taps (weight rows) per block.
    const TAPS: usize = K * K * CIN;

    /// From PyTorch's `(cout, CIN, K, K)` weight, bias and optional PReLU slopes.
    pub(crate) fn new(w: &[f32], b: &[f32], a: Option<&[f32]>) -> Self {
        const { assert!(CO.is_multiple_of(LANES), "CO must be a multiple of 16") };
        let cout = b.len();
        let mut wt = vec![[0.0f32; LANES]; CO / LANES * Self::TAPS];
        for o in 0..cout.min(CO) {
            for ci in 0..CIN {
                for ky in 0..K {
                    for kx in 0..K {
                        let t = (ky * K + kx) * CIN + ci;
                        wt[(o / LANES) * Self::TAPS + t][o % LANES] = w[((o * CIN + ci) * K + ky) * K + kx];
                    }
                }
            }
        }
        let pad = |v: &[f32]| {
            let mut o = [0.0f32; CO];
            for (d, s) in o.iter_mut().zip(v) {
                *d = *s;
            }
            o
        };
        Self { w: wt, b: pad(b), a: a.map(pad) }
    }

    /// Output dims for an input map (the row stride is kept).
    pub(crate) fn out_dims(&self, d: Dims) -> Dims {
        Dims { h: d.h + 1 - K, w: d.w + 1 - K, stride: d.stride }
    }

    /// Virtual output pixels `q0 .. q0 + out.len() / CO` (pixel `q` reads the input from pixel
    /// `q`, row stride `stride`) into `out`, `NP` pixels by one 16-channel block at a time with
    /// the accumulators in registers, so that each weight load serves `NP` pixels. Every output
    /// sums its terms in `(ky, kx, ci)` order whatever the tiling. `out.len()` is a multiple of
    /// `NP·CO`; `x` holds every pixel read.
    #[inline(always)]
    fn range<const NP: usize, const FMA: bool>(&self, x: &[f32], stride: usize, q0: usize, out: &mut [f32]) {
        for (t, o) in out.chunks_exact_mut(NP * CO).enumerate() {
            let base = (q0 + t * NP) * CS;
            // A constant trip count (a run-time one stops LLVM from keeping the accumulators in
            // registers).
            for cb in 0..CO / LANES {
                let wblk = &self.w[cb * Self::TAPS..(cb + 1) * Self::TAPS];
                let c0 = cb * LANES;
                let mut acc = [[0.0f32; LANES]; NP];
                // Pixel by pixel with literal indices (never a loop over the accumulators, not
                // even to store them), so that they stay in registers.
                macro_rules! unrolled {
                    ($($p:literal)*) => {{
                        for (tap, wv) in wblk.iter().enumerate() {
                            let px = &x[base + Self::off(tap, stride)..][..(NP - 1) * CS + 1];
                            $(fma_px::<FMA>(&mut acc[$p], px[$p * CS], wv);)*
                        }
                        $(self.store(&acc[$p], c0, &mut o[$p * CO + c0..$p * CO + c0 + LANES]);)*
                    }};
                }
                match NP {
                    1 => unrolled!(0),
                    2 => unrolled!(0 1),
                    3 => unrolled!(0 1 2),
                    6 => unrolled!(0 1 2 3 4 5),
                    12 => unrolled!(0 1 2 3 4 5 6 7 8 9 10 11),
                    24 => unrolled!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23),
                    _ => {
                        for (tap, wv) in wblk.iter().enumerate() {
                            let px = &x[base + Self::off(tap, stride)..][..(NP - 1) * CS + 1];
                            for (p, a) in acc.iter_mut().enumerate() {
                                fma_px::<FMA>(a, px[p * CS], wv);
                            }
                        }
                        for (p, a) in acc.iter().enumerate() {
                            self.store(a, c0, &mut o[p * CO + c0..p * CO + c0 + LANES]);
                        }
                    }
                }
            }
        }
    }

    /// Offset of tap `t` (`(ky·K + kx)·CIN + ci`) from a tile's first input value.
    #[inline(always)]
    fn off(t: usize, stride: usize) -> usize {
        let (kk, ci) = (t / CIN, t % CIN);
        ((kk / K) * stride + kk % K) * CS + ci
    }

    /// Adds the bias, applies PReLU and stores channels `c0 ..` of one pixel.
    #[inline(always)]
    fn store(&self, acc: &[f32; LANES], c0: usize, o: &mut [f32]) {
        let b = &self.b[c0..c0 + LANES];
        match &self.a {
            Some(al) => {
                for ((d, a), (b, s)) in o.iter_mut().zip(acc).zip(b.iter().zip(&al[c0..c0 + LANES])) {
                    let t = a + b;
                    *d = if t > 0.0 { t } else { s * t };
                }
            }
            None => {
                for ((d, a), b) in o.iter_mut().zip(acc).zip(b) {
                    *d = a + b;
                }
            }
        }
    }

    /// [`Self::range`] with the tile width and instruction set that suit the CPU.
    #[inline]
    fn range_dispatch(&self, x: &[f32], stride: usize, q0: usize, out: &mut [f32]) {
        match simd::level() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F/VL, AVX2 and FMA.
            SimdLevel::Avx512 => unsafe { self.range_avx512(x, stride, q0, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd::level()` is `Avx2` only where the CPU supports AVX2 and FMA.
            SimdLevel::Avx2 => unsafe { self.range_avx2(x, stride, q0, out) },
            // 16 registers of 4 lanes: 12 accumulators.
            _ => self.range::<3, false>(x, stride, q0, out),
        }
    }

    /// 16 ymm registers: 12 accumulators (6 pixels of 16 channels).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn range_avx2(&self, x: &[f32], stride: usize, q0: usize, out: &mut [f32]) {
        self.range::<6, true>(x, stride, q0, out)
    }

    /// 32 zmm registers: 24 accumulators, as `NP` pixels by `NB` 16-channel blocks (the most
    /// blocks that divide `CO / 16`, up to 4, so that each broadcast input value feeds `NB`
    /// multiply-adds and each weight load `NP`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn range_avx512(&self, x: &[f32], stride: usize, q0: usize, out: &mut [f32]) {
        match Self::NB {
            4 => self.range_zmm::<6, 4>(x, stride, q0, out),
            3 => self.range_zmm::<8, 3>(x, stride, q0, out),
            2 => self.range_zmm::<12, 2>(x, stride, q0, out),
            _ => self.range_zmm::<24, 1>(x, stride, q0, out),
        }
    }

    /// Channel blocks per pass of the AVX-512 kernel (4, 3, 2 or 1, dividing `CO / 16`).
    // `is_multiple_of` is newer than the workspace's minimum Rust version.
    #[allow(clippy::manual_is_multiple_of)]
    const NB: usize = if (CO / LANES) % 4 == 0 {
        4
    } else if (CO / LANES) % 3 == 0 {
        3
    } else if (CO / LANES) % 2 == 0 {
        2
    } else {
        1
    };

    /// [`Self::range`] written with AVX-512 intrinsics: tiles of `NP` consecutive pixels by `NB`
    /// 16-channel blocks, every accumulator in a zmm register, the taps walked as `ky, kx, ci`
    /// loops (no index arithmetic per tap). Each output is the same chain of fused multiply-adds
    /// as in [`Self::range`] with `FMA` (taps in `(ky, kx, ci)` order from zero), so the results
    /// are bit for bit those of the portable kernel's FMA build. `NB` divides `CO / 16`;
    /// `out.len()` is a multiple of `NP·CO`; `x` holds every value read (checked).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn range_zmm<const NP: usize, const NB: usize>(
        &self,
        x: &[f32],
        stride: usize,
        q0: usize,
        out: &mut [f32],
    ) {
        for (t, o) in out.chunks_exact_mut(NP * CO).enumerate() {
            self.tile_zmm::<NP, NB>(x, stride, q0 + t * NP, o);
        }
    }

    /// One tile of [`Self::range_zmm`]: virtual pixels `q .. q + NP`, of which the first
    /// `o.len() / CO` (at most `NP`) are stored into `o`. Panics if `x` is too short.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline]
    // Indexed loops over the accumulators: fully unrolled, so that each stays in a register.
    #[allow(clippy::needless_range_loop)]
    fn tile_zmm<const NP: usize, const NB: usize>(&self, x: &[f32], stride: usize, q: usize, o: &mut [f32]) {
        use std::arch::x86_64::*;
        // The last value read: pixel `NP - 1`, tap (K-1, K-1, CIN-1).
        let last = (q + NP - 1 + (K - 1) * (stride + 1)) * CS + CIN - 1;
        assert!(
            last < x.len() && o.len() <= NP * CO && (CO / LANES).is_multiple_of(NB),
            "direct conv: input too short"
        );
        let zero = _mm512_setzero_ps();
        let wbase = self.w.as_ptr().cast::<f32>();
        let base = q * CS;
        for g in (0..CO / LANES).step_by(NB) {
            let mut acc = [[zero; NP]; NB];
            let mut tap = 0;
            for ky in 0..K {
                for kx in 0..K {
                    // SAFETY: every read below stays at or before `last` (checked above).
                    let xp = unsafe { x.as_ptr().add(base + (ky * stride + kx) * CS) };
                    for ci in 0..CIN {
                        // SAFETY: block `g + b < CO / 16` and `tap < TAPS`: inside `self.w`.
                        let wv: [__m512; NB] = std::array::from_fn(|b| unsafe {
                            _mm512_loadu_ps(wbase.add(((g + b) * Self::TAPS + tap) * LANES))
                        });
                        for p in 0..NP {
                            // SAFETY: pixel `p` of this tile, tap (ky, kx, ci): at most `last`.
                            let v = _mm512_set1_ps(unsafe { *xp.add(p * CS + ci) });
                            for b in 0..NB {
                                acc[b][p] = _mm512_fmadd_ps(v, wv[b], acc[b][p]);
                            }
                        }
                        tap += 1;
                    }
                }
            }
            for (b, accb) in acc.iter().enumerate() {
                let c0 = (g + b) * LANES;
                // SAFETY: `c0 + 16 <= CO`, the length of `b` and `a`.
                let bias = unsafe { _mm512_loadu_ps(self.b.as_ptr().add(c0)) };
                // SAFETY: as above.
                let slope = self.a.as_ref().map(|a| unsafe { _mm512_loadu_ps(a.as_ptr().add(c0)) });
                for (&a, d) in accb.iter().zip(o.chunks_exact_mut(CO)) {
                    let t = _mm512_add_ps(a, bias);
                    let y = match slope {
                        // PReLU: `t > 0 ? t : slope·t` (NaN stays NaN, as in `store`).
                        Some(s) => {
                            let neg = _mm512_cmp_ps_mask::<_CMP_NGT_UQ>(t, zero);
                            _mm512_mask_mul_ps(t, neg, t, s)
                        }
                        None => t,
                    };
                    let d = &mut d[c0..c0 + LANES];
                    // SAFETY: `d` holds 16 values.
                    unsafe { _mm512_storeu_ps(d.as_mut_ptr(), y) };
                }
            }
        }
    }

    /// The layer on a small map, tiled row by row with `NP`-pixel tiles (so that a 9-pixel or
    /// 3-pixel row computes no virtual pixel): output pixel `q = y·stride + x` of the valid ones
    /// only (the others in `out` are left as they are). Panics if `x` is too short.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn rows_zmm<const NP: usize, const NB: usize>(&self, x: &[f32], od: Dims, out: &mut [f32]) {
        for y in 0..od.h {
            for c0 in (0..od.w).step_by(NP) {
                let q = y * od.stride + c0;
                let valid = (od.w - c0).min(NP);
                self.tile_zmm::<NP, NB>(x, od.stride, q, &mut out[q * CO..(q + valid) * CO]);
            }
        }
    }

    /// [`Self::rows_zmm`] with `np` (3 or 9) pixels per tile, when it computes at least 15 %
    /// fewer pixels than the virtual tiling (`virt` pixels); returns whether it ran.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn rows_avx512(&self, x: &[f32], od: Dims, virt: usize, out: &mut [f32]) -> bool {
        let cost = |np: usize| od.h * od.w.div_ceil(np) * np * 115 / 100;
        match Self::NB {
            1..=3 if cost(9) < virt && cost(9) <= cost(3) => match Self::NB {
                3 => self.rows_zmm::<9, 3>(x, od, out),
                2 => self.rows_zmm::<9, 2>(x, od, out),
                _ => self.rows_zmm::<9, 1>(x, od, out),
            },
            _ if cost(3) < virt => match Self::NB {
                4 => self.rows_zmm::<3, 4>(x, od, out),
                3 => self.rows_zmm::<3, 3>(x, od, out),
                2 => self.rows_zmm::<3, 2>(x, od, out),
                _ => self.rows_zmm::<3, 1>(x, od, out),
            },
            _ => return false,
        }
        true
    }

    /// Input values that computing `n` virtual pixels from `q0` reads (`n` a multiple of TILE).
    fn need(q0: usize, n: usize, stride: usize) -> usize {
        (q0 + n + (K - 1) * (stride + 1)) * CS + CIN
    }

    /// The layer followed by `MaxPool2d(2, 2, ceil_mode=True)`, fused: each pooled row is made from
    /// two convolution rows held in a small buffer, so the full-resolution map is never stored.
    /// Returns the pooled (compact) dims; `out` is resized to hold them plus padding.
    pub(crate) fn forward_pool2(&self, x: &[f32], d: Dims, out: &mut Vec<f32>) -> Dims {
        let d1 = self.out_dims(d);
        let dim = |n: usize| n.saturating_sub(2).div_ceil(2) + 1;
        let (ho, wo) = (dim(d1.h), dim(d1.w));
        let s = d.stride;
        fit(out, (ho * wo + PAD_PX) * CO);
        let mut padded = Vec::new();
        let x = padded_input(x, Self::need(0, round_tile(d1.span()) + TILE, s), &mut padded);
        thread_local! {
            static ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        out[..ho * wo * CO].par_chunks_mut(wo * CO).enumerate().for_each(|(oy, o)| {
            with_scratch(&ROWS, |buf| {
                let two = 2 * oy + 1 < d1.h;
                let n = round_tile(if two { s + d1.w } else { d1.w });
                fit(buf, n * CO);
                self.range_dispatch(x, s, 2 * oy * s, &mut buf[..n * CO]);
                // Whole-pixel arrays, so that each max is a few vector instructions. A window
                // cut by the ragged edge (ceil mode) repeats its last row / column instead, which
                // leaves the max unchanged.
                let w1 = d1.w;
                let r1 = if two { s } else { 0 };
                for (ox, dst) in o.chunks_exact_mut(CO).enumerate() {
                    let (a, b) = (2 * ox, (2 * ox + 1).min(w1 - 1));
                    let px = |p: usize| &buf[p * CO..][..CO];
                    let (p0, p1, p2, p3) = (px(a), px(b), px(r1 + a), px(r1 + b));
                    for (j, m) in dst.iter_mut().enumerate() {
                        *m = p0[j].max(p1[j]).max(p2[j].max(p3[j]));
                    }
                }
            })
        });
        Dims::compact(ho, wo)
    }

    /// The whole layer on `x` (dims `d`); `out` is resized to the output (same row stride) plus
    /// padding. Large maps run in parallel when `par`.
    pub(crate) fn forward(&self, x: &[f32], d: Dims, out: &mut Vec<f32>, par: bool) -> Dims {
        let od = self.out_dims(d);
        let n = round_tile(od.span());
        fit(out, (n + PAD_PX) * CO);
        let mut padded = Vec::new();
        let x = padded_input(x, Self::need(0, n, d.stride), &mut padded);
        let work = &mut out[..n * CO];
        // Small maps (R-Net and O-Net crops) with AVX-512: row tiles where they save work.
        #[cfg(target_arch = "x86_64")]
        if !par && simd::has_avx512() {
            // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F/VL, AVX2 and FMA.
            if unsafe { self.rows_avx512(x, od, n, work) } {
                return od;
            }
        }
        let chunk = 4 * TILE;
        if par && n * self.w.len() > 1 << 14 && n > chunk {
            work.par_chunks_mut(chunk * CO).enumerate().for_each(|(i, o)| {
                self.range_dispatch(x, d.stride, i * chunk, o);
            });
        } else {
            self.range_dispatch(x, d.stride, 0, work);
        }
        od
    }
}

impl DConv<3, 3, 16, 3> {
    /// [`Self::forward_pool2`] (this layer, then `MaxPool2d(2, 2, ceil_mode=True)`) on the
    /// channel-first planes (`3 × h × w`) directly, for layers with `NC <= 16` real output
    /// channels: the same pooled map (channels `NC..16` zero), bit for bit, where the CPU has
    /// AVX-512; `None` elsewhere (or for an input under 3x3), so that the caller falls back to
    /// the channels-last kernel.
    ///
    /// Pixels lie in the vector lanes (16 columns of one row per register) instead of channels,
    /// so only the `NC` real channels are computed, and the two convolution rows of a pooled row
    /// share every weight broadcast: 20 multiply-adds per 12 loads for `NC` = 10, against 16
    /// channels (6 of them padding) per load in the channels-last kernel. Each output is the
    /// same chain of fused multiply-adds, in the same `(ky, kx, ci)` order.
    pub(crate) fn forward_pool2_planar<const NC: usize>(
        &self,
        planes: &[f32],
        (h, w): (usize, usize),
        out: &mut Vec<f32>,
    ) -> Option<Dims> {
        if h < 3 || w < 3 || planes.len() < 3 * h * w || NC > 16 || !simd::has_avx512() {
            return None;
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = out;
            None
        }
        #[cfg(target_arch = "x86_64")]
        {
            let (h1, w1) = (h - 2, w - 2);
            let (ho, wo) = (h1.div_ceil(2), w1.div_ceil(2));
            fit(out, (ho * wo + PAD_PX) * 16);
            // The weights as `[o][tap]` scalars, tap = (ky·3 + kx)·3 + ci.
            let mut wt = [[0.0f32; 27]; NC];
            for (o, row) in wt.iter_mut().enumerate() {
                for (t, v) in row.iter_mut().enumerate() {
                    *v = self.w[t][o];
                }
            }
            out[..ho * wo * 16].par_chunks_mut(wo * 16).enumerate().for_each(|(oy, o)| {
                // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F/VL, AVX2 and FMA.
                unsafe { self.pool_row_zmm::<NC>(&wt, planes, (h, w), oy, o) };
            });
            Some(Dims::compact(ho, wo))
        }
    }

    /// One pooled row `oy` of [`Self::forward_pool2_planar`] into `o` (`wo × 16` values).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn pool_row_zmm<const NC: usize>(
        &self,
        wt: &[[f32; 27]; NC],
        planes: &[f32],
        (h, w): (usize, usize),
        oy: usize,
        o: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let (h1, w1) = (h - 2, w - 2);
        let wo = w1.div_ceil(2);
        assert!(planes.len() >= 3 * h * w && o.len() == wo * 16 && 2 * oy < h1);
        // The two convolution rows (the last one twice at a ragged bottom edge: the max is the same).
        let (y0, y1) = (2 * oy, (2 * oy + 1).min(h1 - 1));
        let zero = _mm512_setzero_ps();
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
        for cx in (0..w1).step_by(16) {
            // `n` convolution columns from `cx`, making `(n + 1) / 2` pooled ones.
            let n = (w1 - cx).min(16);
            let m: __mmask16 = if n == 16 { 0xffff } else { (1u16 << n) - 1 };
            let mut acc0 = [zero; NC];
            let mut acc1 = [zero; NC];
            for ky in 0..3 {
                for kx in 0..3 {
                    for ci in 0..3 {
                        let tap = (ky * 3 + kx) * 3 + ci;
                        let at = |y: usize| ci * h * w + (y + ky) * w + cx + kx;
                        // SAFETY: the masked loads read `n` values of row `y + ky <= h - 1` of
                        // plane `ci`, from column `cx + kx`, ending at `cx + n - 1 + kx <= w - 1`.
                        let (v0, v1) = unsafe {
                            (
                                _mm512_maskz_loadu_ps(m, planes.as_ptr().add(at(y0))),
                                _mm512_maskz_loadu_ps(m, planes.as_ptr().add(at(y1))),
                            )
                        };
                        for c in 0..NC {
                            let wv = _mm512_set1_ps(wt[c][tap]);
                            acc0[c] = _mm512_fmadd_ps(v0, wv, acc0[c]);
                            acc1[c] = _mm512_fmadd_ps(v1, wv, acc1[c]);
                        }
                    }
                }
            }
            // Odd partner of each pooled column; the last column of an odd count is its own partner
            // (ceil mode), which leaves the max unchanged.
            let last = _mm512_set1_epi32(n as i32 - 1);
            let odd =
                _mm512_min_epi32(_mm512_add_epi32(_mm512_add_epi32(lane, lane), _mm512_set1_epi32(1)), last);
            let mut pooled = [[0.0f32; 16]; NC];
            for c in 0..NC {
                let b = _mm512_set1_ps(self.b[c]);
                let prelu = |acc: __m512| {
                    let t = _mm512_add_ps(acc, b);
                    match &self.a {
                        Some(a) => {
                            let neg = _mm512_cmp_ps_mask::<_CMP_NGT_UQ>(t, zero);
                            _mm512_mask_mul_ps(t, neg, t, _mm512_set1_ps(a[c]))
                        }
                        None => t,
                    }
                };
                let v = _mm512_max_ps(prelu(acc0[c]), prelu(acc1[c]));
                let p = _mm512_max_ps(_mm512_permutexvar_ps(even, v), _mm512_permutexvar_ps(odd, v));
                // SAFETY: `pooled[c]` holds 16 values.
                unsafe { _mm512_storeu_ps(pooled[c].as_mut_ptr(), p) };
            }
            for (j, px) in o[cx / 2 * 16..].chunks_exact_mut(16).take(n.div_ceil(2)).enumerate() {
                let mut v = [0.0f32; 16];
                for (vc, pc) in v.iter_mut().zip(&pooled) {
                    *vc = pc[j];
                }
                px.copy_from_slice(&v);
            }
        }
    }
}

/// `a += v · w` lane by lane.
#[inline(always)]
fn fma_px<const FMA: bool>(a: &mut [f32; LANES], v: f32, w: &[f32; LANES]) {
    for (aj, wj) in a.iter_mut().zip(w) {
        *aj = if FMA { v.mul_add(*wj, *aj) } else { *aj + v * *wj };
    }
}

/// Runs `f` with this thread's instance of `key`, kept between calls so that repeated detections
/// reuse their buffers (no allocation, no page faults); a fresh instance when the thread's one is
/// in use (rayon may run another task on a thread that waits inside `f`).
pub(crate) fn with_scratch<T: Default + 'static, R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => f(&mut guard),
        Err(_) => f(&mut T::default()),
    })
}

/// Grows `v` to at least `n` values. What it already holds is kept (not zeroed): every caller
/// writes each value it later reads, and the padding only feeds outputs that are discarded.
pub(crate) fn fit(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// `x` when it holds `need` values, else a zero-padded copy in `buf` (never needed when the
/// activations come from this module, which pads every buffer).
fn padded_input<'a>(x: &'a [f32], need: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
    if x.len() >= need {
        x
    } else {
        buf.clear();
        buf.extend_from_slice(x);
        buf.resize(need, 0.0);
        buf
    }
}

/// `MaxPool2d(k, s, ceil_mode=True)` (no padding) on a channels-last map of `c` channels with
/// dims `d`; the output is compact (plus padding). Returns its dims.
pub(crate) fn max_pool_hwc<const C: usize>(
    x: &[f32],
    d: Dims,
    k: usize,
    st: usize,
    out: &mut Vec<f32>,
) -> Dims {
    match simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F/VL, AVX2 and FMA.
        SimdLevel::Avx512 => unsafe { max_pool_avx512::<C>(x, d, k, st, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx2` only where the CPU supports AVX2 and FMA.
        SimdLevel::Avx2 => unsafe { max_pool_avx2::<C>(x, d, k, st, out) },
        _ => max_pool_impl::<C>(x, d, k, st, out),
    }
}

/// [`max_pool_impl`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn max_pool_avx512<const C: usize>(x: &[f32], d: Dims, k: usize, st: usize, out: &mut Vec<f32>) -> Dims {
    max_pool_impl::<C>(x, d, k, st, out)
}

/// [`max_pool_impl`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn max_pool_avx2<const C: usize>(x: &[f32], d: Dims, k: usize, st: usize, out: &mut Vec<f32>) -> Dims {
    max_pool_impl::<C>(x, d, k, st, out)
}

/// [`max_pool_hwc`] itself. The max is `if v > m { v } else { m }` (one vector instruction; the
/// same as `f32::max` for the values here, which are never NaN).
#[inline(always)]
fn max_pool_impl<const C: usize>(x: &[f32], d: Dims, k: usize, st: usize, out: &mut Vec<f32>) -> Dims {
    let dim = |n: usize| n.saturating_sub(k).div_ceil(st) + 1;
    let (ho, wo) = (dim(d.h), dim(d.w));
    fit(out, (ho * wo + PAD_PX) * C);
    // A fixed channel count, so that each max is a few vector instructions.
    let px = |yy: usize, xx: usize| &x[(yy * d.stride + xx) * C..][..C];
    for (oy, orow) in out[..ho * wo * C].chunks_exact_mut(wo * C).enumerate() {
        let y1 = (oy * st + k).min(d.h);
        for (ox, dst) in orow.chunks_exact_mut(C).enumerate() {
            let x1 = (ox * st + k).min(d.w);
            let mut m = [0.0f32; C];
            m.copy_from_slice(px(oy * st, ox * st));
            for yy in oy * st..y1 {
                for xx in ox * st..x1 {
                    for (mj, &v) in m.iter_mut().zip(px(yy, xx)) {
                        *mj = if v > *mj { v } else { *mj };
                    }
                }
            }
            dst.copy_from_slice(&m);
        }
    }
    Dims::compact(ho, wo)
}

/// Channel-first `3 × h × w` planes to channels-last (plus padding).
pub(super) fn to_hwc3(planes: &[f32], plane: usize, out: &mut Vec<f32>) {
    fit(out, (plane + PAD_PX) * 3);
    for (i, px) in out[..plane * 3].chunks_exact_mut(3).enumerate() {
        px[0] = planes[i];
        px[1] = planes[plane + i];
        px[2] = planes[2 * plane + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Textbook convolution + PReLU on channel-first data (PyTorch's definition).
    fn naive(
        x: &[f32],
        (cin, h, w): (usize, usize, usize),
        wt: &[f32],
        b: &[f32],
        a: &[f32],
        k: usize,
    ) -> Vec<f32> {
        let cout = b.len();
        let (ho, wo) = (h + 1 - k, w + 1 - k);
        let mut out = vec![0.0f32; cout * ho * wo];
        for o in 0..cout {
            for y in 0..ho {
                for xx in 0..wo {
                    let mut acc = 0.0f64;
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                acc += f64::from(wt[((o * cin + ci) * k + ky) * k + kx])
                                    * f64::from(x[(ci * h + y + ky) * w + xx + kx]);
                            }
                        }
                    }
                    let t = acc as f32 + b[o];
                    out[(o * ho + y) * wo + xx] = if t > 0.0 { t } else { a[o] * t };
                }
            }
        }
        out
    }

    /// Channel-first `cin × h × w` to channels-last with `cs` values per pixel (the extra ones
    /// set to a large value that must be ignored), plus padding.
    fn to_hwc(x: &[f32], (cin, h, w): (usize, usize, usize), cs: usize) -> Vec<f32> {
        let mut out = vec![1e6f32; (h * w + PAD_PX) * cs];
        for c in 0..cin {
            for i in 0..h * w {
                out[i * cs + c] = x[c * h * w + i];
            }
        }
        out
    }

    /// One layer against the textbook definition, on a compact map and on a map with a row
    /// stride wider than its valid width.
    /// Asserts that the valid pixels of channels-last `got` equal `reference` bit for bit (`co`
    /// channels a pixel, rows of `stride` pixels, `(cout, ho, wo)` valid).
    fn assert_same_bits(
        got: &[f32],
        reference: &[f32],
        co: usize,
        stride: usize,
        (cout, ho, wo): (usize, usize, usize),
        what: &str,
    ) {
        for y in 0..ho {
            for xx in 0..wo {
                let i = (y * stride + xx) * co;
                for o in 0..cout {
                    assert_eq!(
                        got[i + o].to_bits(),
                        reference[i + o].to_bits(),
                        "{what}, channel {o} ({y}, {xx})"
                    );
                }
            }
        }
    }

    /// Asserts that channels-last `got` (`co` channels a pixel, rows of `stride` pixels) holds the
    /// textbook convolution `want` (`(cout, ho, wo)`, channel-first) to 1e-4 relative.
    fn assert_matches_textbook(
        got: &[f32],
        co: usize,
        stride: usize,
        want: &[f32],
        (cout, ho, wo): (usize, usize, usize),
        what: &str,
    ) {
        for o in 0..cout {
            for y in 0..ho {
                for xx in 0..wo {
                    let g = got[(y * stride + xx) * co + o];
                    let t = want[(o * ho + y) * wo + xx];
                    assert!(
                        (g - t).abs() < 1e-4 * (1.0 + t.abs()),
                        "{what}, channel {o} ({y}, {xx}): {g} vs {t}"
                    );
                }
            }
        }
    }

    fn check_layer<const CIN: usize, const CS: usize, const CO: usize, const K: usize>(
        cout: usize,
        (h, w): (usize, usize),
        seed: u64,
    ) {
        let x = values(CIN * h * w, seed);
        let wt = values(cout * CIN * K * K, seed + 1);
        let b = values(cout, seed + 2);
        let a: Vec<f32> = values(cout, seed + 3).iter().map(|v| v.abs() * 0.5).collect();
        let conv = DConv::<CIN, CS, CO, K>::new(&wt, &b, Some(&a));
        let want = naive(&x, (CIN, h, w), &wt, &b, &a, K);
        let (ho, wo) = (h + 1 - K, w + 1 - K);
        // Compact input.
        let hwc = to_hwc(&x, (CIN, h, w), CS);
        // The same map stored with 3 extra (ignored) columns per row.
        let s = w + 3;
        let mut wide = vec![-1e6f32; (h * s + PAD_PX) * CS];
        for y in 0..h {
            wide[y * s * CS..(y * s + w) * CS].copy_from_slice(&hwc[y * w * CS..(y + 1) * w * CS]);
        }
        // Every tile shape of every instruction set, whatever this CPU runs.
        type Kernel<const CIN: usize, const CS: usize, const CO: usize, const K: usize> =
            fn(&DConv<CIN, CS, CO, K>, &[f32], usize, usize, &mut [f32]);
        let kernels: [Kernel<CIN, CS, CO, K>; 8] = [
            |c, x, s, q, o| c.range::<1, false>(x, s, q, o),
            |c, x, s, q, o| c.range::<2, false>(x, s, q, o),
            |c, x, s, q, o| c.range::<3, false>(x, s, q, o),
            |c, x, s, q, o| c.range::<6, true>(x, s, q, o),
            |c, x, s, q, o| c.range::<8, true>(x, s, q, o),
            |c, x, s, q, o| c.range::<12, true>(x, s, q, o),
            |c, x, s, q, o| c.range::<24, true>(x, s, q, o),
            |c, x, s, q, o| c.range_dispatch(x, s, q, o),
        ];
        for (input, d) in [(&hwc, Dims::compact(h, w)), (&wide, Dims { h, w, stride: s })] {
            for (ki, kernel) in kernels.iter().enumerate() {
                let od = conv.out_dims(d);
                let n = round_tile(od.span());
                let mut got = vec![f32::NAN; n * CO];
                kernel(&conv, input, d.stride, 0, &mut got);
                assert_matches_textbook(&got, CO, od.stride, &want, (cout, ho, wo), &format!("kernel {ki}"));
            }
            // The AVX-512 kernels, every tile shape that applies to this layer, where the CPU has
            // them: bit for bit the portable FMA kernel (checked against the textbook above).
            #[cfg(target_arch = "x86_64")]
            if simd::has_avx512() {
                let od = conv.out_dims(d);
                let n = round_tile(od.span());
                let mut reference = vec![f32::NAN; n * CO];
                conv.range::<6, true>(input, d.stride, 0, &mut reference);
                // The kernels with every block count (the CPU supports AVX-512F/VL, AVX2 and FMA).
                let shapes: [(usize, Kernel<CIN, CS, CO, K>); 4] = [
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (1, |c, x, s, q, o| unsafe { c.range_zmm::<24, 1>(x, s, q, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (2, |c, x, s, q, o| unsafe { c.range_zmm::<12, 2>(x, s, q, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (3, |c, x, s, q, o| unsafe { c.range_zmm::<8, 3>(x, s, q, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (4, |c, x, s, q, o| unsafe { c.range_zmm::<6, 4>(x, s, q, o) }),
                ];
                let mut tested = 0;
                for (nb, kernel) in shapes {
                    if !(CO / LANES).is_multiple_of(nb) {
                        continue;
                    }
                    tested += 1;
                    let mut got = vec![f32::NAN; n * CO];
                    kernel(&conv, input, d.stride, 0, &mut got);
                    assert_same_bits(
                        &got,
                        &reference,
                        CO,
                        od.stride,
                        (cout, ho, wo),
                        &format!("zmm kernel, {nb} blocks"),
                    );
                }
                assert!(tested >= 1 && (CO / LANES).is_multiple_of(DConv::<CIN, CS, CO, K>::NB));
                // Row tiles (3 and 9 pixels), every block count that applies: the valid pixels
                // bit for bit.
                type Rows<const CIN: usize, const CS: usize, const CO: usize, const K: usize> =
                    fn(&DConv<CIN, CS, CO, K>, &[f32], Dims, &mut [f32]);
                // The row kernels with every tile width and block count.
                let rows: [(usize, Rows<CIN, CS, CO, K>); 7] = [
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (1, |c, x, od, o| unsafe { c.rows_zmm::<3, 1>(x, od, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (2, |c, x, od, o| unsafe { c.rows_zmm::<3, 2>(x, od, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (3, |c, x, od, o| unsafe { c.rows_zmm::<3, 3>(x, od, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (4, |c, x, od, o| unsafe { c.rows_zmm::<3, 4>(x, od, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (1, |c, x, od, o| unsafe { c.rows_zmm::<9, 1>(x, od, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (2, |c, x, od, o| unsafe { c.rows_zmm::<9, 2>(x, od, o) }),
                    // SAFETY: AVX-512F/VL, AVX2 and FMA checked above.
                    (3, |c, x, od, o| unsafe { c.rows_zmm::<9, 3>(x, od, o) }),
                ];
                for (ri, (nb, kernel)) in rows.into_iter().enumerate() {
                    if !(CO / LANES).is_multiple_of(nb) {
                        continue;
                    }
                    let mut got = vec![f32::NAN; n * CO];
                    kernel(&conv, input, od, &mut got);
                    assert_same_bits(
                        &got,
                        &reference,
                        CO,
                        od.stride,
                        (cout, ho, wo),
                        &format!("row kernel {ri}"),
                    );
                }
            }
            for par in [false, true] {
                let mut got = Vec::new();
                let od = conv.forward(input, d, &mut got, par);
                assert_eq!((od.h, od.w, od.stride), (ho, wo, d.stride));
                assert_matches_textbook(
                    &got,
                    CO,
                    od.stride,
                    &want,
                    (cout, ho, wo),
                    &format!("parallel {par}"),
                );
            }
        }
    }

    #[test]
    fn direct_conv_matches_textbook_definition_for_every_tile_shape() {
        check_layer::<3, 3, 16, 3>(10, (10, 13), 1);
        check_layer::<10, 16, 16, 3>(16, (9, 30), 5);
        check_layer::<16, 16, 32, 3>(32, (7, 8), 9);
        check_layer::<32, 32, 16, 1>(6, (5, 11), 13);
        check_layer::<28, 32, 48, 3>(48, (11, 11), 17);
        check_layer::<48, 48, 64, 2>(64, (4, 4), 21);
        check_layer::<64, 64, 128, 2>(128, (4, 4), 25);
        check_layer::<64, 64, 64, 3>(64, (10, 10), 29);
        // O-Net's second layer on its map size (the others above have theirs).
        check_layer::<32, 32, 64, 3>(64, (23, 23), 41);
    }

    #[test]
    fn planar_first_layer_is_bitwise_the_channels_last_one() {
        // Even and odd convolution sizes (ragged pool edges), one and several 16-column chunks.
        for (i, (h, w)) in
            [(12, 12), (13, 17), (20, 35), (15, 34), (3, 3), (4, 19), (9, 50)].into_iter().enumerate()
        {
            let seed = 100 + 10 * i as u64;
            let x = values(3 * h * w, seed);
            let wt = values(10 * 27, seed + 1);
            let b = values(10, seed + 2);
            let a: Vec<f32> = values(10, seed + 3).iter().map(|v| v.abs() * 0.5).collect();
            let conv = DConv::<3, 3, 16, 3>::new(&wt, &b, Some(&a));
            let mut hwc = Vec::new();
            to_hwc3(&x, h * w, &mut hwc);
            let mut want = Vec::new();
            let dw = conv.forward_pool2(&hwc, Dims::compact(h, w), &mut want);
            let mut got = Vec::new();
            match conv.forward_pool2_planar::<10>(&x, (h, w), &mut got) {
                None => assert!(!simd::has_avx512()),
                Some(dg) => {
                    assert_eq!(dg, dw);
                    for p in 0..dg.h * dg.w {
                        for c in 0..16 {
                            let g = got[p * 16 + c];
                            let t = if c < 10 { want[p * 16 + c] } else { 0.0 };
                            assert_eq!(g.to_bits(), t.to_bits(), "{h}x{w}: pixel {p} channel {c}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fused_pool_matches_conv_then_pool() {
        let (cin, cout, k, h, w) = (3, 10, 3, 10, 13);
        let x = values(cin * h * w, 1);
        let wt = values(cout * cin * k * k, 2);
        let b = values(cout, 3);
        let a: Vec<f32> = values(cout, 4).iter().map(|v| v.abs() * 0.5).collect();
        let conv = DConv::<3, 3, 16, 3>::new(&wt, &b, Some(&a));
        let mut hwc = Vec::new();
        to_hwc3(&x, h * w, &mut hwc);
        // Fused pooling = convolution then MaxPool2d(2, 2, ceil_mode=True) (odd sizes: ragged edge).
        let mut full = Vec::new();
        let d1 = conv.forward(&hwc, Dims::compact(h, w), &mut full, false);
        // The full map keeps the input's row stride.
        let st = d1.stride;
        let mut pooled = Vec::new();
        let dims = max_pool_hwc::<16>(&full, d1, 2, 2, &mut pooled);
        let mut fused = Vec::new();
        assert_eq!(conv.forward_pool2(&hwc, Dims::compact(h, w), &mut fused), dims);
        assert_eq!(dims, Dims::compact(4, 6));
        assert_eq!(fused[..4 * 6 * 16], pooled[..4 * 6 * 16]);
        // Pool by hand at the ragged right edge: output (3, 5) covers only conv pixels (6, 10)
        // and (7, 10) (the 8 x 11 map has no column 11).
        for o in 0..cout {
            let m = full[(6 * st + 10) * 16 + o].max(full[(7 * st + 10) * 16 + o]);
            assert_eq!(fused[(3 * 6 + 5) * 16 + o], m);
        }
        // A 3x3 stride-2 pool by hand on a strided map.
        let d = Dims { h: 5, w: 5, stride: 7 };
        let src: Vec<f32> = (0..(5 * 7 + PAD_PX)).map(|i| ((i * 37) % 11) as f32).collect();
        let mut p = Vec::new();
        assert_eq!(max_pool_hwc::<1>(&src, d, 3, 2, &mut p), Dims::compact(2, 2));
        for (oy, ox) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let mut m = f32::NEG_INFINITY;
            for y in 2 * oy..(2 * oy + 3).min(5) {
                for xx in 2 * ox..(2 * ox + 3).min(5) {
                    m = m.max(src[y * 7 + xx]);
                }
            }
            assert_eq!(p[oy * 2 + ox], m);
        }
    }
}
