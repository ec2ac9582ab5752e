//! Direct (no im2col, no gemm) P-Net forward pass on channels-last activations.
//!
//! Each 3x3 convolution accumulates all output channels of one pixel in a fixed-size array
//! (`[f32; CO]`, the channel count padded to a multiple of 8) so that the inner loop over output
//! channels vectorises; bias and PReLU are fused into the store. Rows of a layer run in parallel
//! with rayon. On x86-64 the kernels are compiled a second time with AVX2 + FMA and chosen at run
//! time. The summation order differs from PyTorch's (as it does between any two BLAS), which moves
//! the P-Net outputs by ~1e-6; the reference tests bound the effect on the detections.

use rayon::prelude::*;

/// Weights of one convolution in `[(ky·k + kx)·cin + ci][co]` order, padded to `CO` outputs.
#[derive(Debug, Clone)]
pub(crate) struct DConv<const CO: usize> {
    w: Vec<[f32; CO]>,
    b: [f32; CO],
    /// PReLU slopes (`None`: linear).
    a: Option<[f32; CO]>,
    cin: usize,
    k: usize,
}

impl<const CO: usize> DConv<CO> {
    /// From PyTorch's `(cout, cin, k, k)` weight, bias and optional PReLU slopes.
    pub(crate) fn new(w: &[f32], b: &[f32], a: Option<&[f32]>, cin: usize, k: usize) -> Self {
        let cout = b.len();
        let mut wt = vec![[0.0f32; CO]; k * k * cin];
        for o in 0..cout.min(CO) {
            for ci in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        wt[(ky * k + kx) * cin + ci][o] = w[((o * cin + ci) * k + ky) * k + kx];
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
        Self { w: wt, b: pad(b), a: a.map(pad), cin, k }
    }

    /// One output row `y` of the convolution of `x` (`h × w × cs`, channels-last, `cin <= cs`
    /// channels used) into `out` (`wo × CO`).
    #[inline(always)]
    fn row<const FMA: bool>(&self, x: &[f32], w: usize, cs: usize, y: usize, out: &mut [f32]) {
        let k = self.k;
        let cin = self.cin;
        let wo = out.len() / CO;
        let mut xo = 0;
        // Two output pixels at a time share every weight load.
        while xo + 2 <= wo {
            let mut acc0 = [0.0f32; CO];
            let mut acc1 = [0.0f32; CO];
            for ky in 0..k {
                let base = ((y + ky) * w + xo) * cs;
                let px = &x[base..base + (k + 1) * cs];
                let wk = &self.w[ky * k * cin..(ky + 1) * k * cin];
                for kx in 0..k {
                    let p0 = &px[kx * cs..kx * cs + cin];
                    let p1 = &px[(kx + 1) * cs..(kx + 1) * cs + cin];
                    let wr = &wk[kx * cin..(kx + 1) * cin];
                    for ((v0, v1), wv) in p0.iter().zip(p1).zip(wr) {
                        let (v0, v1) = (*v0, *v1);
                        for ((a0, a1), wo) in acc0.iter_mut().zip(acc1.iter_mut()).zip(wv) {
                            if FMA {
                                *a0 = v0.mul_add(*wo, *a0);
                                *a1 = v1.mul_add(*wo, *a1);
                            } else {
                                *a0 += v0 * *wo;
                                *a1 += v1 * *wo;
                            }
                        }
                    }
                }
            }
            self.store(acc0, &mut out[xo * CO..(xo + 1) * CO]);
            self.store(acc1, &mut out[(xo + 1) * CO..(xo + 2) * CO]);
            xo += 2;
        }
        if xo < wo {
            let mut acc = [0.0f32; CO];
            for ky in 0..k {
                let base = ((y + ky) * w + xo) * cs;
                let px = &x[base..base + k * cs];
                let wk = &self.w[ky * k * cin..(ky + 1) * k * cin];
                for kx in 0..k {
                    let p = &px[kx * cs..kx * cs + cin];
                    let wr = &wk[kx * cin..(kx + 1) * cin];
                    for (v, wv) in p.iter().zip(wr) {
                        let v = *v;
                        for (a, wo) in acc.iter_mut().zip(wv) {
                            *a = if FMA { v.mul_add(*wo, *a) } else { *a + v * *wo };
                        }
                    }
                }
            }
            self.store(acc, &mut out[xo * CO..(xo + 1) * CO]);
        }
    }

    /// Adds the bias, applies PReLU and stores one pixel.
    #[inline(always)]
    fn store(&self, acc: [f32; CO], o: &mut [f32]) {
        match &self.a {
            Some(al) => {
                for ((d, a), (b, s)) in o.iter_mut().zip(acc).zip(self.b.iter().zip(al)) {
                    let t = a + b;
                    *d = if t > 0.0 { t } else { s * t };
                }
            }
            None => {
                for ((d, a), b) in o.iter_mut().zip(acc).zip(&self.b) {
                    *d = a + b;
                }
            }
        }
    }

    /// One output row with the best kernel the CPU supports.
    #[inline]
    fn row_dispatch(&self, x: &[f32], w: usize, cs: usize, y: usize, out: &mut [f32]) {
        match simd_level() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd_level` checked that the CPU supports AVX2 and FMA.
            Simd::Avx2 => unsafe { self.row_avx2(x, w, cs, y, out) },
            _ => self.row::<false>(x, w, cs, y, out),
        }
    }

    /// The layer followed by `MaxPool2d(2, 2, ceil_mode=True)`, fused: each pooled row is made from
    /// two convolution rows held in a small buffer, so the full-resolution map is never stored.
    /// Returns the pooled `(ho, wo)`; `out` is resized to `ho × wo × CO`.
    pub(crate) fn forward_pool2(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        cs: usize,
        out: &mut Vec<f32>,
    ) -> (usize, usize) {
        let (h1, w1) = self.out_dims(h, w);
        let dim = |n: usize| n.saturating_sub(2).div_ceil(2) + 1;
        let (ho, wo) = (dim(h1), dim(w1));
        out.clear();
        out.resize(ho * wo * CO, 0.0);
        out.par_chunks_mut(wo * CO).enumerate().for_each_init(Vec::new, |buf: &mut Vec<f32>, (oy, o)| {
            buf.clear();
            buf.resize(2 * w1 * CO, 0.0);
            let (r0, r1) = buf.split_at_mut(w1 * CO);
            self.row_dispatch(x, w, cs, 2 * oy, r0);
            let two = 2 * oy + 1 < h1;
            if two {
                self.row_dispatch(x, w, cs, 2 * oy + 1, r1);
            }
            for (ox, d) in o.chunks_exact_mut(CO).enumerate() {
                d.fill(f32::NEG_INFINITY);
                let x1 = (2 * ox + 2).min(w1);
                for yy in 0..if two { 2 } else { 1 } {
                    let r = if yy == 0 { &*r0 } else { &*r1 };
                    for xx in 2 * ox..x1 {
                        for (m, v) in d.iter_mut().zip(&r[xx * CO..(xx + 1) * CO]) {
                            *m = m.max(*v);
                        }
                    }
                }
            }
        });
        (ho, wo)
    }

    /// Output size for an `h × w` input.
    pub(crate) fn out_dims(&self, h: usize, w: usize) -> (usize, usize) {
        (h + 1 - self.k, w + 1 - self.k)
    }

    /// The whole layer: `x` is `h × w × cs`; `out` is resized to `ho × wo × CO`.
    pub(crate) fn forward(&self, x: &[f32], h: usize, w: usize, cs: usize, out: &mut Vec<f32>, par: bool) {
        let (ho, wo) = self.out_dims(h, w);
        out.clear();
        out.resize(ho * wo * CO, 0.0);
        let rows = |(y, o): (usize, &mut [f32])| self.row_dispatch(x, w, cs, y, o);
        if par && ho * wo * self.w.len() > 1 << 14 {
            out.par_chunks_mut(wo * CO).enumerate().for_each(rows);
        } else {
            out.chunks_mut(wo * CO).enumerate().for_each(rows);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_avx2(&self, x: &[f32], w: usize, cs: usize, y: usize, out: &mut [f32]) {
        self.row::<true>(x, w, cs, y, out)
    }
}

/// The vector instruction set the kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    /// Portable code (SSE2 on x86-64), separate multiply and add.
    #[allow(dead_code)]
    Base,
    /// AVX2 with fused multiply-add.
    #[allow(dead_code)]
    Avx2,
}

#[cfg(target_arch = "x86_64")]
fn simd_level() -> Simd {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            Simd::Avx2
        } else {
            Simd::Base
        }
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_level() -> Simd {
    Simd::Base
}

/// `MaxPool2d(k, s, ceil_mode=True)` (no padding) on `h × w × c` channels-last data.
pub(crate) fn max_pool_hwc(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    k: usize,
    st: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    let dim = |n: usize| n.saturating_sub(k).div_ceil(st) + 1;
    let (ho, wo) = (dim(h), dim(w));
    out.clear();
    out.resize(ho * wo * c, 0.0);
    for oy in 0..ho {
        let y1 = (oy * st + k).min(h);
        for ox in 0..wo {
            let x1 = (ox * st + k).min(w);
            let d = &mut out[(oy * wo + ox) * c..(oy * wo + ox + 1) * c];
            d.fill(f32::NEG_INFINITY);
            for yy in oy * st..y1 {
                for xx in ox * st..x1 {
                    let s = &x[(yy * w + xx) * c..(yy * w + xx + 1) * c];
                    for (m, v) in d.iter_mut().zip(s) {
                        *m = m.max(*v);
                    }
                }
            }
        }
    }
    (ho, wo)
}

/// Channel-first `3 × h × w` planes to channels-last.
fn to_hwc3(planes: &[f32], plane: usize, out: &mut Vec<f32>) {
    out.clear();
    out.resize(plane * 3, 0.0);
    for (i, px) in out.chunks_exact_mut(3).enumerate() {
        px[0] = planes[i];
        px[1] = planes[plane + i];
        px[2] = planes[2 * plane + i];
    }
}

/// facenet-pytorch's `permute(0, 3, 2, 1)` flattening (`(w·H + h)·C + c`) of one `h × w × cs`
/// map with `c` real channels.
fn flatten_whc(x: &[f32], (h, w, cs): (usize, usize, usize), c: usize, out: &mut [f32]) {
    for yy in 0..h {
        for xx in 0..w {
            let d = (xx * h + yy) * c;
            out[d..d + c].copy_from_slice(&x[(yy * w + xx) * cs..(yy * w + xx) * cs + c]);
        }
    }
}

/// R-Net's convolutional trunk on one `3 × 24 × 24` crop: the 576 features of `dense4`.
#[derive(Debug, Clone)]
pub(crate) struct DirectRTrunk {
    pub conv1: DConv<32>,
    pub conv2: DConv<48>,
    pub conv3: DConv<64>,
}

impl DirectRTrunk {
    /// Features of one crop into `out` (576 values).
    pub(crate) fn run(&self, crop: &[f32], s: &mut PnetScratch, out: &mut [f32]) {
        to_hwc3(crop, 24 * 24, &mut s.a);
        self.conv1.forward(&s.a, 24, 24, 3, &mut s.b, false);
        let (h, w) = self.conv1.out_dims(24, 24);
        let (h, w) = max_pool_hwc(&s.b, (h, w, 32), 3, 2, &mut s.a);
        self.conv2.forward(&s.a, h, w, 32, &mut s.b, false);
        let (h, w) = self.conv2.out_dims(h, w);
        let (h, w) = max_pool_hwc(&s.b, (h, w, 48), 3, 2, &mut s.a);
        self.conv3.forward(&s.a, h, w, 48, &mut s.b, false);
        let (h, w) = self.conv3.out_dims(h, w);
        flatten_whc(&s.b, (h, w, 64), 64, out);
    }
}

/// O-Net's convolutional trunk on one `3 × 48 × 48` crop: the 1152 features of `dense5`.
#[derive(Debug, Clone)]
pub(crate) struct DirectOTrunk {
    pub conv1: DConv<32>,
    pub conv2: DConv<64>,
    pub conv3: DConv<64>,
    pub conv4: DConv<128>,
}

impl DirectOTrunk {
    /// Features of one crop into `out` (1152 values).
    pub(crate) fn run(&self, crop: &[f32], s: &mut PnetScratch, out: &mut [f32]) {
        to_hwc3(crop, 48 * 48, &mut s.a);
        self.conv1.forward(&s.a, 48, 48, 3, &mut s.b, false);
        let (h, w) = self.conv1.out_dims(48, 48);
        let (h, w) = max_pool_hwc(&s.b, (h, w, 32), 3, 2, &mut s.a);
        self.conv2.forward(&s.a, h, w, 32, &mut s.b, false);
        let (h, w) = self.conv2.out_dims(h, w);
        let (h, w) = max_pool_hwc(&s.b, (h, w, 64), 3, 2, &mut s.a);
        self.conv3.forward(&s.a, h, w, 64, &mut s.b, false);
        let (h, w) = self.conv3.out_dims(h, w);
        let (h, w) = max_pool_hwc(&s.b, (h, w, 64), 2, 2, &mut s.a);
        self.conv4.forward(&s.a, h, w, 64, &mut s.b, false);
        let (h, w) = self.conv4.out_dims(h, w);
        flatten_whc(&s.b, (h, w, 128), 128, out);
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
    pub conv1: DConv<16>,
    pub conv2: DConv<16>,
    pub conv3: DConv<32>,
    /// conv4_2 (4 regression) then conv4_1 (2 logits), 1x1.
    pub head: DConv<8>,
}

impl DirectPNet {
    /// Forward pass on 3 channel-first planes (`3 × h × w`): `(regression (4 planes), face
    /// probability plane, map height, map width)`, or `None` when the input is smaller than 12x12.
    pub(crate) fn run(
        &self,
        planes: &[f32],
        h: usize,
        w: usize,
        s: &mut PnetScratch,
    ) -> Option<(Vec<f32>, Vec<f32>, usize, usize)> {
        if h < 12 || w < 12 {
            return None;
        }
        let plane = h * w;
        // Channels-last input, 3 channels.
        to_hwc3(planes, plane, &mut s.a);
        let (h2, w2) = self.conv1.forward_pool2(&s.a, h, w, 3, &mut s.c);
        self.conv2.forward(&s.c, h2, w2, 16, &mut s.b, true);
        let (h3, w3) = self.conv2.out_dims(h2, w2);
        self.conv3.forward(&s.b, h3, w3, 16, &mut s.a, true);
        let (h4, w4) = self.conv3.out_dims(h3, w3);
        self.head.forward(&s.a, h4, w4, 32, &mut s.b, true);
        let m = h4 * w4;
        let mut reg = vec![0.0f32; 4 * m];
        let mut prob = vec![0.0f32; m];
        for (i, px) in s.b.chunks_exact(8).enumerate() {
            for c in 0..4 {
                reg[c * m + i] = px[c];
            }
            prob[i] = super::nets::prob1(px[4], px[5]);
        }
        Some((reg, prob, h4, w4))
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

    #[test]
    fn direct_conv_and_fused_pool_match_textbook_definition() {
        let (cin, cout, k, h, w) = (3, 10, 3, 10, 13);
        let x = values(cin * h * w, 1);
        let wt = values(cout * cin * k * k, 2);
        let b = values(cout, 3);
        let a: Vec<f32> = values(cout, 4).iter().map(|v| v.abs() * 0.5).collect();
        let conv = DConv::<16>::new(&wt, &b, Some(&a), cin, k);
        let mut hwc = Vec::new();
        to_hwc3(&x, h * w, &mut hwc);
        let want = naive(&x, (cin, h, w), &wt, &b, &a, k);
        let (ho, wo) = conv.out_dims(h, w);
        for par in [false, true] {
            let mut got = Vec::new();
            conv.forward(&hwc, h, w, cin, &mut got, par);
            for o in 0..cout {
                for i in 0..ho * wo {
                    assert!((got[i * 16 + o] - want[o * ho * wo + i]).abs() < 1e-5, "channel {o} pixel {i}");
                }
            }
        }
        // Fused pooling = convolution then MaxPool2d(2, 2, ceil_mode=True) (odd sizes: ragged edge).
        let mut full = Vec::new();
        conv.forward(&hwc, h, w, cin, &mut full, false);
        let mut pooled = Vec::new();
        let dims = max_pool_hwc(&full, (ho, wo, 16), 2, 2, &mut pooled);
        let mut fused = Vec::new();
        assert_eq!(conv.forward_pool2(&hwc, h, w, cin, &mut fused), dims);
        assert_eq!(dims, (4, 6));
        assert_eq!(fused, pooled);
        // Pool by hand at the ragged right edge: output (3, 5) covers only conv pixels (6, 10)
        // and (7, 10) (the 8 x 11 map has no column 11).
        for o in 0..cout {
            let m = full[(6 * wo + 10) * 16 + o].max(full[(7 * wo + 10) * 16 + o]);
            assert_eq!(fused[(3 * 6 + 5) * 16 + o], m);
        }
    }
}
