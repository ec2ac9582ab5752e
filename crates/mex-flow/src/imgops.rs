//! Small image kernels shared by the estimators: resizing, blurring, gradients, sampling, box
//! filtering (median filtering is in `median.rs`). Planes are row-major `f32` slices of `w * h`
//! values. Hot loops are compiled per instruction set and chosen through [`mex_core::simd`].

use mex_core::simd;
use rayon::prelude::*;

/// Rows per parallel task for an image of height `h` (`h` itself when running on one thread,
/// so that the caller can skip rayon entirely).
pub(crate) fn band_rows(h: usize, w: usize) -> usize {
    let t = rayon::current_num_threads();
    if t <= 1 || h * w < 4096 {
        return h.max(1);
    }
    h.div_ceil(t * 2).max(4)
}

/// Runs `f(y0, band)` over bands of `rows` rows of `data` (width `w`), in parallel when there
/// is more than one band.
pub(crate) fn for_bands<F>(data: &mut [f32], w: usize, rows: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    let chunk = (rows * w).max(1);
    if data.len() <= chunk {
        f(0, data);
    } else {
        data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i * rows, c));
    }
}

/// Scratch of [`resize_bilinear`]: the column table and two horizontally interpolated rows.
#[derive(Default)]
struct ResizeScratch {
    table: Vec<(usize, usize, f32)>,
    rows: Vec<f32>,
}

thread_local! {
    static RESIZE_SCRATCH: std::cell::RefCell<ResizeScratch> = std::cell::RefCell::new(ResizeScratch::default());
}

/// `out[x] = r[ix] + tx * (r[ix1] - r[ix])` over the column table.
#[inline]
fn lerp_row(r: &[f32], table: &[(usize, usize, f32)], out: &mut [f32]) {
    for (o, &(ix, ix1, tx)) in out.iter_mut().zip(table) {
        *o = r[ix] + tx * (r[ix1] - r[ix]);
    }
}

/// Bilinear resize with OpenCV's `INTER_LINEAR` pixel-centre convention
/// (`src = (dst + 0.5) * sw / dw - 0.5`, clamped to the image).
///
/// Two passes per band: each source row a band needs is interpolated horizontally once (kept
/// in a two-row cache), then every output row is a vectorised blend of two cached rows. The
/// values equal the one-pass form `a + ty * (b - a)` exactly.
pub(crate) fn resize_bilinear(src: &[f32], sw: usize, sh: usize, dst: &mut [f32], dw: usize, dh: usize) {
    let sx = sw as f32 / dw as f32;
    let sy = sh as f32 / dh as f32;
    // a resize is memory-bound and cheap: below 256x256 outputs a fork / join costs more
    // than the second thread saves
    let rows = if dw * dh < 1 << 16 { dh.max(1) } else { band_rows(dh, dw) };
    for_bands(dst, dw, rows, |y0, band| {
        RESIZE_SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let ResizeScratch { table, rows: cache } = &mut *guard;
            table.clear();
            table.extend((0..dw).map(|x| {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f32);
                let ix = (fx as usize).min(sw - 1);
                (ix, (ix + 1).min(sw - 1), fx - ix as f32)
            }));
            cache.resize(2 * dw, 0.0);
            let (c0, c1) = cache.split_at_mut(dw);
            // source rows held by the two cache slots
            let mut held = [usize::MAX; 2];
            let mut slots = [c0, c1];
            for (ry, row) in band.chunks_mut(dw).enumerate() {
                let y = y0 + ry;
                let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f32);
                let iy = (fy as usize).min(sh - 1);
                let iy1 = (iy + 1).min(sh - 1);
                let ty = fy - iy as f32;
                // slot 0 holds row iy, slot 1 row iy1 (rows only move down, so a held iy1
                // becomes the next iy)
                if held[0] != iy {
                    if held[1] == iy {
                        slots.swap(0, 1);
                        held.swap(0, 1);
                    } else {
                        lerp_row(&src[iy * sw..iy * sw + sw], table, slots[0]);
                        held[0] = iy;
                    }
                }
                if held[1] != iy1 {
                    lerp_row(&src[iy1 * sw..iy1 * sw + sw], table, slots[1]);
                    held[1] = iy1;
                }
                let (a, b) = (&*slots[0], &*slots[1]);
                for ((out, &a), &b) in row.iter_mut().zip(a.iter()).zip(b.iter()) {
                    *out = a + ty * (b - a);
                }
            }
        });
    });
}

/// Area (box) downscale by an integer factor 2 with edge replication for odd sizes
/// (OpenCV's `INTER_AREA` for an exact factor of 2).
#[inline]
pub(crate) fn downscale2_area(src: &[f32], sw: usize, sh: usize, dst: &mut [f32], dw: usize, dh: usize) {
    // rows and columns whose 2x2 block lies inside the image: a clamp-free loop that vectorises
    let (fw, fh) = ((sw / 2).min(dw), (sh / 2).min(dh));
    for y in 0..fh {
        let a = &src[2 * y * sw..2 * y * sw + 2 * fw];
        let b = &src[(2 * y + 1) * sw..(2 * y + 1) * sw + 2 * fw];
        let out = &mut dst[y * dw..y * dw + fw];
        for (x, o) in out.iter_mut().enumerate() {
            *o = 0.25 * (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]);
        }
    }
    if fw == dw && fh == dh {
        return;
    }
    // the replicated last column / row of odd sizes
    for y in 0..dh {
        let y0 = (2 * y).min(sh - 1);
        let y1 = (2 * y + 1).min(sh - 1);
        let xs = if y < fh { fw } else { 0 };
        for x in xs..dw {
            let x0 = (2 * x).min(sw - 1);
            let x1 = (2 * x + 1).min(sw - 1);
            dst[y * dw + x] =
                0.25 * (src[y0 * sw + x0] + src[y0 * sw + x1] + src[y1 * sw + x0] + src[y1 * sw + x1]);
        }
    }
}

/// A normalised 1-D Gaussian kernel of odd size `ksize` (OpenCV's `getGaussianKernel`; with
/// `sigma <= 0` and `ksize == 3` the fixed `[1/4, 1/2, 1/4]`).
pub(crate) fn gaussian_kernel(sigma: f64, ksize: usize) -> Vec<f32> {
    let ksize = ksize.max(1) | 1;
    if sigma <= 0.0 && ksize == 3 {
        return vec![0.25, 0.5, 0.25];
    }
    let sigma = if sigma > 0.0 { sigma } else { 0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8 };
    let r = (ksize / 2) as i64;
    let mut k: Vec<f64> = (-r..=r).map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k.into_iter().map(|v| v as f32).collect()
}

#[inline]
fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let mut i = i;
    loop {
        if i < 0 {
            i = -i;
        } else if i >= n {
            i = 2 * n - 2 - i;
        } else {
            return i as usize;
        }
    }
}

/// Separable convolution with a symmetric kernel, `BORDER_REFLECT_101`. `tmp` and `dst` hold
/// `w * h` values; `src` and `dst` may not alias.
pub(crate) fn blur_separable(src: &[f32], w: usize, h: usize, k: &[f32], tmp: &mut [f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx512() {
        // SAFETY: the CPU supports AVX-512F (checked at run time).
        unsafe { blur_separable_avx512(src, w, h, k, tmp, dst) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        unsafe { blur_separable_avx2(src, w, h, k, tmp, dst) };
        return;
    }
    blur_separable_impl(src, w, h, k, tmp, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn blur_separable_avx512(src: &[f32], w: usize, h: usize, k: &[f32], tmp: &mut [f32], dst: &mut [f32]) {
    blur_separable_impl(src, w, h, k, tmp, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn blur_separable_avx2(src: &[f32], w: usize, h: usize, k: &[f32], tmp: &mut [f32], dst: &mut [f32]) {
    blur_separable_impl(src, w, h, k, tmp, dst)
}

/// The blur: each output is `sum_j k[j] * in[x + j - r]` added in tap order from zero, in both
/// passes. In the horizontal pass the columns whose taps stay inside the row are computed a tap
/// at a time over the whole span (so that it vectorises), the others with reflected indices;
/// every output gets the same sum in the same order either way.
#[inline(always)]
fn blur_separable_impl(src: &[f32], w: usize, h: usize, k: &[f32], tmp: &mut [f32], dst: &mut [f32]) {
    let r = k.len() / 2;
    let border = |row: &[f32], x: usize| {
        let mut s = 0.0f32;
        for (j, &kv) in k.iter().enumerate() {
            s += kv * row[reflect101(x as isize + j as isize - r as isize, w)];
        }
        s
    };
    // horizontal
    for y in 0..h {
        let row = &src[y * w..y * w + w];
        let out = &mut tmp[y * w..y * w + w];
        if w > 2 * r {
            let n = w - 2 * r;
            let mid = &mut out[r..r + n];
            mid.fill(0.0);
            for (j, &kv) in k.iter().enumerate() {
                for (o, &v) in mid.iter_mut().zip(&row[j..j + n]) {
                    *o += kv * v;
                }
            }
            for x in (0..r).chain(r + n..w) {
                out[x] = border(row, x);
            }
        } else {
            for (x, o) in out.iter_mut().enumerate() {
                *o = border(row, x);
            }
        }
    }
    // vertical
    for y in 0..h {
        let out = &mut dst[y * w..y * w + w];
        out.iter_mut().for_each(|v| *v = 0.0);
        for (j, &kv) in k.iter().enumerate() {
            let yy = reflect101(y as isize + j as isize - r as isize, h);
            let row = &tmp[yy * w..yy * w + w];
            for x in 0..w {
                out[x] += kv * row[x];
            }
        }
    }
}

/// Centred differences `(f(x+1) - f(x-1)) / 2`, one-sided half differences at the borders
/// (as IPOL's and OpenCV's TV-L1).
pub(crate) fn centered_gradient(src: &[f32], w: usize, h: usize, gx: &mut [f32], gy: &mut [f32]) {
    for y in 0..h {
        let ym = y.saturating_sub(1);
        let yp = (y + 1).min(h - 1);
        for x in 0..w {
            let xm = x.saturating_sub(1);
            let xp = (x + 1).min(w - 1);
            gx[y * w + x] = 0.5 * (src[y * w + xp] - src[y * w + xm]);
            gy[y * w + x] = 0.5 * (src[yp * w + x] - src[ym * w + x]);
        }
    }
}

/// Keys cubic convolution weights for the four taps around a fractional offset `t` in [0, 1),
/// with `a = -0.75` (OpenCV's `INTER_CUBIC`).
#[inline]
pub(crate) fn cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let w0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let w2 = ((A + 2.0) * (1.0 - t) - (A + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// Bilinear sample at `(x, y)` with clamped (replicated) borders.
#[inline]
pub(crate) fn sample_bilinear(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let ix = (x as usize).min(w - 1);
    let iy = (y as usize).min(h - 1);
    let ix1 = (ix + 1).min(w - 1);
    let iy1 = (iy + 1).min(h - 1);
    let tx = x - ix as f32;
    let ty = y - iy as f32;
    let a = src[iy * w + ix] + tx * (src[iy * w + ix1] - src[iy * w + ix]);
    let b = src[iy1 * w + ix] + tx * (src[iy1 * w + ix1] - src[iy1 * w + ix]);
    a + ty * (b - a)
}

/// Precomputed bicubic taps for one sampling position (clamped indices and weights), so that
/// several planes can be sampled at the same position cheaply.
#[derive(Clone, Copy)]
pub(crate) struct CubicTaps {
    xs: [usize; 4],
    ys: [usize; 4],
    wx: [f32; 4],
    wy: [f32; 4],
}

impl CubicTaps {
    #[inline]
    pub(crate) fn new(w: usize, h: usize, x: f32, y: f32) -> Self {
        // keep the position finite and within a band around the image
        let x = if x.is_finite() { x.clamp(-2.0, w as f32 + 1.0) } else { 0.0 };
        let y = if y.is_finite() { y.clamp(-2.0, h as f32 + 1.0) } else { 0.0 };
        let fx = x.floor();
        let fy = y.floor();
        let ix = fx as isize;
        let iy = fy as isize;
        let cl = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
        Self {
            xs: [cl(ix - 1, w), cl(ix, w), cl(ix + 1, w), cl(ix + 2, w)],
            ys: [cl(iy - 1, h), cl(iy, h), cl(iy + 1, h), cl(iy + 2, h)],
            wx: cubic_weights(x - fx),
            wy: cubic_weights(y - fy),
        }
    }

    #[inline]
    pub(crate) fn sample(&self, src: &[f32], w: usize) -> f32 {
        let mut s = 0.0;
        for j in 0..4 {
            let r = self.ys[j] * w;
            let row = self.wx[0] * src[r + self.xs[0]]
                + self.wx[1] * src[r + self.xs[1]]
                + self.wx[2] * src[r + self.xs[2]]
                + self.wx[3] * src[r + self.xs[3]];
            s += self.wy[j] * row;
        }
        s
    }
}

impl CubicTaps {
    /// [`CubicTaps::sample`] of four planes at once, stored interleaved (`src[i][p]` is pixel
    /// `i` of plane `p`): one load per tap, and the four planes' sums in the lanes of one
    /// vector, each summed in the same order as `sample` (so bitwise equal to it).
    #[inline]
    pub(crate) fn sample4(&self, src: &[[f32; 4]], w: usize) -> [f32; 4] {
        let mut s = [0.0f32; 4];
        for j in 0..4 {
            let r = self.ys[j] * w;
            let [a, b, c, d] = [0, 1, 2, 3].map(|k| src[r + self.xs[k]]);
            for l in 0..4 {
                let row = self.wx[0] * a[l] + self.wx[1] * b[l] + self.wx[2] * c[l] + self.wx[3] * d[l];
                s[l] += self.wy[j] * row;
            }
        }
        s
    }
}

/// Bicubic sample at `(x, y)` with clamped (replicated) borders.
#[inline]
pub(crate) fn sample_bicubic(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    CubicTaps::new(w, h, x, y).sample(src, w)
}

/// Box filter (mean over a `k x k` window, replicated borders) using running sums in `f64`
/// (as OpenCV's Farnebäck). `src` and `dst` hold `w * h * C` values of `C` interleaved channels,
/// `tmp` at least one row (`w * C`); `acc_buf` is scratch (no allocation once it has the capacity).
pub(crate) fn box_filter<const C: usize>(
    src: &[f32],
    w: usize,
    h: usize,
    k: usize,
    tmp: &mut [f32],
    dst: &mut [f32],
    acc_buf: &mut Vec<f64>,
) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        unsafe { box_filter_avx2::<C>(src, w, h, k, tmp, dst, acc_buf) };
        return;
    }
    box_filter_impl::<C>(src, w, h, k, tmp, dst, acc_buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn box_filter_avx2<const C: usize>(
    src: &[f32],
    w: usize,
    h: usize,
    k: usize,
    tmp: &mut [f32],
    dst: &mut [f32],
    acc_buf: &mut Vec<f64>,
) {
    box_filter_impl::<C>(src, w, h, k, tmp, dst, acc_buf)
}

#[inline(always)]
fn box_filter_impl<const C: usize>(
    src: &[f32],
    w: usize,
    h: usize,
    k: usize,
    tmp: &mut [f32],
    dst: &mut [f32],
    acc_buf: &mut Vec<f64>,
) {
    let r = k / 2;
    let scale = 1.0 / (k * k) as f64;
    let wc = w * C;
    acc_buf.clear();
    acc_buf.resize(wc, 0.0);
    let acc = &mut acc_buf[..];
    // vertical running sums
    for dy in -(r as isize)..=r as isize {
        let yy = dy.clamp(0, h as isize - 1) as usize;
        for (a, s) in acc.iter_mut().zip(&src[yy * wc..(yy + 1) * wc]) {
            *a += f64::from(*s);
        }
    }
    // Each row's vertical sums go to one row of `tmp` and are filtered horizontally at once,
    // while they are in the L1 cache.
    let trow = &mut tmp[..wc];
    for y in 0..h {
        for (t, a) in trow.iter_mut().zip(acc.iter()) {
            *t = *a as f32;
        }
        let out_row = y.saturating_sub(r);
        let in_row = (y + r + 1).min(h - 1);
        let (ri, ro) = (&src[in_row * wc..(in_row + 1) * wc], &src[out_row * wc..(out_row + 1) * wc]);
        for ((a, i), o) in acc.iter_mut().zip(ri).zip(ro) {
            *a += f64::from(*i) - f64::from(*o);
        }
        let out = &mut dst[y * wc..(y + 1) * wc];
        box_row::<C>(trow, w, r, scale, out);
    }
}

/// The horizontal running sums of one row of `C` interleaved channels (the sums stay in
/// registers).
#[inline(always)]
fn box_row<const C: usize>(row: &[f32], w: usize, r: usize, scale: f64, out: &mut [f32]) {
    let mut s = [0.0f64; C];
    for (ch, a) in s.iter_mut().enumerate() {
        // window of x = 0 covers -r..=r (clamped)
        *a = f64::from(row[ch]) * (r + 1) as f64;
        for x in 1..=r {
            *a += f64::from(row[x.min(w - 1) * C + ch]);
        }
    }
    for x in 0..w {
        let xi = (x + r + 1).min(w - 1) * C;
        let xo = x.saturating_sub(r) * C;
        let o = &mut out[x * C..x * C + C];
        let (ri, ro) = (&row[xi..xi + C], &row[xo..xo + C]);
        for ch in 0..C {
            o[ch] = (s[ch] * scale) as f32;
            s[ch] += f64::from(ri[ch]) - f64::from(ro[ch]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass bilinear resize (two horizontal lerps per output pixel).
    fn resize_one_pass(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
        let (sx, sy) = (sw as f32 / dw as f32, sh as f32 / dh as f32);
        let mut out = vec![0.0; dw * dh];
        for y in 0..dh {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f32);
            let iy = (fy as usize).min(sh - 1);
            let (iy1, ty) = ((iy + 1).min(sh - 1), fy - iy as f32);
            for x in 0..dw {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f32);
                let ix = (fx as usize).min(sw - 1);
                let (ix1, tx) = ((ix + 1).min(sw - 1), fx - ix as f32);
                let (r0, r1) = (&src[iy * sw..], &src[iy1 * sw..]);
                let a = r0[ix] + tx * (r0[ix1] - r0[ix]);
                let b = r1[ix] + tx * (r1[ix1] - r1[ix]);
                out[y * dw + x] = a + ty * (b - a);
            }
        }
        out
    }

    #[test]
    fn resize_bilinear_equals_the_one_pass_form_bitwise() {
        let (sw, sh) = (23, 17);
        let src: Vec<f32> = (0..sw * sh).map(|i| ((i * 37) % 101) as f32 * 0.37 - 9.0).collect();
        // up, down, mixed and identity sizes; 4096+ outputs also take the banded path
        for (dw, dh) in [(92, 68), (11, 8), (40, 9), (23, 17), (5, 130), (128, 64)] {
            let mut got = vec![f32::NAN; dw * dh];
            resize_bilinear(&src, sw, sh, &mut got, dw, dh);
            let want = resize_one_pass(&src, sw, sh, dw, dh);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{dw}x{dh}");
        }
    }

    #[test]
    fn downscale2_area_matches_the_clamped_definition() {
        for (sw, sh) in [(8usize, 6usize), (9, 7), (1, 5), (6, 1), (33, 32)] {
            let src: Vec<f32> = (0..sw * sh).map(|i| ((i * 13) % 29) as f32 - 3.5).collect();
            let (dw, dh) = (sw.div_ceil(2), sh.div_ceil(2));
            let mut got = vec![f32::NAN; dw * dh];
            downscale2_area(&src, sw, sh, &mut got, dw, dh);
            for y in 0..dh {
                for x in 0..dw {
                    let at = |yy: usize, xx: usize| src[yy.min(sh - 1) * sw + xx.min(sw - 1)];
                    let want = 0.25
                        * (at(2 * y, 2 * x)
                            + at(2 * y, 2 * x + 1)
                            + at(2 * y + 1, 2 * x)
                            + at(2 * y + 1, 2 * x + 1));
                    assert_eq!(got[y * dw + x].to_bits(), want.to_bits(), "{sw}x{sh} at {x},{y}");
                }
            }
        }
    }

    /// Four interleaved planes sampled at once equal four single-plane samples, bit for bit,
    /// inside and outside the image.
    #[test]
    fn sample4_matches_sample() {
        let (w, h) = (9, 7);
        let planes: Vec<Vec<f32>> = (0..4)
            .map(|p| (0..w * h).map(|i| ((i * 31 + p * 17) % 23) as f32 * 0.7 - 5.0).collect())
            .collect();
        let inter: Vec<[f32; 4]> = (0..w * h).map(|i| [0, 1, 2, 3].map(|p| planes[p][i])).collect();
        for (x, y) in [(3.3f32, 2.6f32), (-1.7, 0.2), (8.9, 6.5), (0.0, 0.0), (12.0, -3.0), (4.5, 3.25)] {
            let taps = CubicTaps::new(w, h, x, y);
            let got = taps.sample4(&inter, w);
            for p in 0..4 {
                assert_eq!(got[p].to_bits(), taps.sample(&planes[p], w).to_bits(), "({x}, {y}) plane {p}");
            }
        }
    }

    #[test]
    fn cubic_weights_interpolate_polynomials() {
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        for t in [0.0f32, 0.25, 0.5, 0.9] {
            let wts = cubic_weights(t);
            assert!((wts.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            // symmetric: w(t)[k] = w(1 - t)[3 - k]
            let m = cubic_weights(1.0 - t);
            for k in 0..4 {
                assert!((wts[k] - m[3 - k]).abs() < 1e-5);
            }
        }
    }

    /// The blur against a direct sum with reflected indices in tap order: bitwise equal, for
    /// rows wider and narrower than the kernel.
    #[test]
    fn blur_separable_equals_the_direct_sum_bitwise() {
        let k = gaussian_kernel(1.7, 9);
        for (w, h) in [(37usize, 11usize), (9, 5), (8, 3), (3, 4), (1, 6), (64, 2)] {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 251) as f32 * 0.37 - 20.0).collect();
            let (mut tmp, mut dst) = (vec![f32::NAN; w * h], vec![f32::NAN; w * h]);
            blur_separable(&src, w, h, &k, &mut tmp, &mut dst);
            let r = (k.len() / 2) as isize;
            let mut th = vec![0f32; w * h];
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0f32;
                    for (j, &kv) in k.iter().enumerate() {
                        s += kv * src[y * w + reflect101(x as isize + j as isize - r, w)];
                    }
                    th[y * w + x] = s;
                }
            }
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0f32;
                    for (j, &kv) in k.iter().enumerate() {
                        s += kv * th[reflect101(y as isize + j as isize - r, h) * w + x];
                    }
                    assert_eq!(s.to_bits(), dst[y * w + x].to_bits(), "{w}x{h} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn box_filter_of_constant_is_constant() {
        let src = vec![3.0f32; 10 * 6 * 2];
        let mut tmp = vec![0.0; src.len()];
        let mut dst = vec![0.0; src.len()];
        box_filter::<2>(&src, 10, 6, 5, &mut tmp, &mut dst, &mut Vec::new());
        assert!(dst.iter().all(|v| (v - 3.0).abs() < 1e-5));
    }

    #[test]
    fn box_filter_matches_direct() {
        let (w, h, k) = (9usize, 8usize, 5usize);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 31) % 17) as f32).collect();
        let mut tmp = vec![0.0; w * h];
        let mut dst = vec![0.0; w * h];
        box_filter::<1>(&src, w, h, k, &mut tmp, &mut dst, &mut Vec::new());
        let r = (k / 2) as isize;
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut s = 0.0;
                for dy in -r..=r {
                    for dx in -r..=r {
                        let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                        let xx = (x + dx).clamp(0, w as isize - 1) as usize;
                        s += src[yy * w + xx];
                    }
                }
                assert!((dst[y as usize * w + x as usize] - s / 25.0).abs() < 1e-4);
            }
        }
    }
}
