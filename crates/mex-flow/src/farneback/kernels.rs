//! Farnebäck's kernels: the polynomial expansion of a band of rows ([`poly_band`]) and the
//! per-pixel matrices of the update step ([`update_band`]), compiled once per instruction set and
//! chosen at run time through [`mex_core::simd`] (`MEX_SIMD` caps the level).
//!
//! The portable code is `#[inline(always)]`; thin safe `#[target_feature]` functions compile it
//! for AVX2 and AVX-512 (wider vectors, the same arithmetic). The AVX-512 matrix update is
//! written with intrinsics: masked gathers of the bilinear samples, scatters of the five
//! interleaved outputs. Every level computes the same expressions in the same order (multiplies
//! and adds, no fused multiply-adds), so all give the same bits (tested below, and end to end by
//! `tests/farneback_bits.rs`).

#[cfg(target_arch = "x86_64")]
use mex_core::simd;

/// The kernels and normalisation of the polynomial expansion (see `poly_kernels`).
pub(super) struct PolyKernel<'a> {
    /// `g` over `-n..=n`.
    pub(super) g: &'a [f32],
    /// `x g` over `-n..=n`.
    pub(super) xg: &'a [f32],
    /// `x² g` over `-n..=n`.
    pub(super) xxg: &'a [f32],
    /// `(G⁻¹₁₁, G⁻¹₀₃, G⁻¹₃₃, G⁻¹₅₅)`.
    pub(super) ig: [f64; 4],
    /// Half-width of the neighbourhood.
    pub(super) n: usize,
}

/// The polynomial expansion of the rows `y0..` of `band` (5 interleaved coefficients per pixel,
/// `[r_y, r_x, r_yy, r_xx, r_xy]`) of the `w x h` image `src`, at the best level
/// [`mex_core::simd::level`] allows.
pub(super) fn poly_band(src: &[f32], w: usize, h: usize, k: &PolyKernel<'_>, y0: usize, band: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx512() {
        // SAFETY: `simd::has_avx512()` holds only where the CPU supports AVX-512F.
        unsafe { poly_rows_avx512(src, w, h, k, y0, band) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: `simd::has_avx2()` holds only where the CPU supports AVX2.
        unsafe { poly_rows_avx2(src, w, h, k, y0, band) };
        return;
    }
    poly_rows(src, w, h, k, y0, band)
}

/// [`poly_rows`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn poly_rows_avx512(src: &[f32], w: usize, h: usize, k: &PolyKernel<'_>, y0: usize, band: &mut [f32]) {
    poly_rows(src, w, h, k, y0, band)
}

/// [`poly_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn poly_rows_avx2(src: &[f32], w: usize, h: usize, k: &PolyKernel<'_>, y0: usize, band: &mut [f32]) {
    poly_rows(src, w, h, k, y0, band)
}

/// The expansion of the rows `y0..` of `band` (5 interleaved coefficients per pixel), as
/// OpenCV's `FarnebackPolyExp`: vertical sums in `f32` into three planes of the row (replicated
/// `n` columns beyond each end), then horizontal sums in `f64`. Both passes run a tap at a time
/// over the whole row, so that they vectorise; every value is the same sum in the same order as
/// a per-pixel loop over the taps.
#[inline(always)]
fn poly_rows(src: &[f32], w: usize, h: usize, k: &PolyKernel<'_>, y0: usize, band: &mut [f32]) {
    let PolyKernel { g, xg, xxg, ig, n } = *k;
    let [ig11, ig03, ig33, ig55] = ig;
    let c = n; // centre index in the kernels
    let wp = w + 2 * n;
    // three planes of the vertically summed row, then six f64 accumulators per pixel
    let mut rows = vec![0.0f32; 3 * wp];
    let mut acc = vec![0.0f64; 6 * w];
    for (ry, out) in band.chunks_mut(5 * w).enumerate() {
        let y = y0 + ry;
        {
            let (r0, rest) = rows.split_at_mut(wp);
            let (r1, r2) = rest.split_at_mut(wp);
            let (m0, m1, m2) = (&mut r0[n..n + w], &mut r1[n..n + w], &mut r2[n..n + w]);
            for (t, &v) in m0.iter_mut().zip(&src[y * w..(y + 1) * w]) {
                *t = v * g[c];
            }
            m1.fill(0.0);
            m2.fill(0.0);
            for kk in 1..=n {
                let ya = y.saturating_sub(kk);
                let yb = (y + kk).min(h - 1);
                let (g0, g1, g2) = (g[c + kk], xg[c + kk], xxg[c + kk]);
                let (sa, sb) = (&src[ya * w..(ya + 1) * w], &src[yb * w..(yb + 1) * w]);
                for x in 0..w {
                    let (s0, s1) = (sa[x], sb[x]);
                    let p = s0 + s1;
                    m0[x] += g0 * p;
                    m1[x] += g1 * (s1 - s0);
                    m2[x] += g2 * p;
                }
            }
            for r in [&mut *r0, &mut *r1, &mut *r2] {
                let (first, last) = (r[n], r[n + w - 1]);
                r[..n].fill(first);
                r[n + w..].fill(last);
            }
        }
        let (r0, rest) = rows.split_at(wp);
        let (r1, r2) = rest.split_at(wp);
        let (b1, rest) = acc.split_at_mut(w);
        let (b2, rest) = rest.split_at_mut(w);
        let (b3, rest) = rest.split_at_mut(w);
        let (b4, rest) = rest.split_at_mut(w);
        let (b5, b6) = rest.split_at_mut(w);
        let g0 = f64::from(g[c]);
        for x in 0..w {
            b1[x] = f64::from(r0[x + n]) * g0;
            b2[x] = 0.0;
            b3[x] = f64::from(r1[x + n]) * g0;
            b4[x] = 0.0;
            b5[x] = f64::from(r2[x + n]) * g0;
            b6[x] = 0.0;
        }
        for kk in 1..=n {
            let gk = f64::from(g[c + kk]);
            let xgk = f64::from(xg[c + kk]);
            let xxgk = f64::from(xxg[c + kk]);
            // columns x + kk and x - kk of the padded planes
            let (r0r, r0l) = (&r0[n + kk..n + kk + w], &r0[n - kk..n - kk + w]);
            let (r1r, r1l) = (&r1[n + kk..n + kk + w], &r1[n - kk..n - kk + w]);
            let (r2r, r2l) = (&r2[n + kk..n + kk + w], &r2[n - kk..n - kk + w]);
            for x in 0..w {
                let tg = f64::from(r0r[x]) + f64::from(r0l[x]);
                b1[x] += tg * gk;
                b4[x] += tg * xxgk;
                b2[x] += (f64::from(r0r[x]) - f64::from(r0l[x])) * xgk;
                b3[x] += (f64::from(r1r[x]) + f64::from(r1l[x])) * gk;
                b6[x] += (f64::from(r1r[x]) - f64::from(r1l[x])) * xgk;
                b5[x] += (f64::from(r2r[x]) + f64::from(r2l[x])) * gk;
            }
        }
        for (x, o) in out.chunks_exact_mut(5).enumerate() {
            o[0] = (b3[x] * ig11) as f32;
            o[1] = (b2[x] * ig11) as f32;
            o[2] = (b1[x] * ig03 + b5[x] * ig33) as f32;
            o[3] = (b1[x] * ig03 + b4[x] * ig33) as f32;
            o[4] = (b6[x] * ig55) as f32;
        }
    }
}

/// OpenCV's attenuation of the matrices within 5 pixels of the border.
const BORDER: [f32; 5] = [0.14, 0.14, 0.4472, 0.4472, 0.4472];

/// Per pixel of the rows `y0..` of `band`, `[G11, G12, G22, h1, h2]` (y-first order, as OpenCV)
/// from the expansions `r0`, `r1` of both `w x h` frames with the second sampled at
/// `x + flow(x)` (`flow` interleaved `u, v`), at the best level
/// [`mex_core::simd::level`] allows.
pub(super) fn update_band(
    r0: &[f32],
    r1: &[f32],
    flow: &[f32],
    w: usize,
    h: usize,
    y0: usize,
    band: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx512() {
        // SAFETY: `simd::has_avx512()` holds only where the CPU supports AVX-512F and AVX2.
        unsafe { update_rows_avx512(r0, r1, flow, w, h, y0, band) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: `simd::has_avx2()` holds only where the CPU supports AVX2.
        unsafe { update_rows_avx2(r0, r1, flow, w, h, y0, band) };
        return;
    }
    update_rows(r0, r1, flow, w, h, y0, band)
}

/// [`update_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_rows_avx2(r0: &[f32], r1: &[f32], flow: &[f32], w: usize, h: usize, y0: usize, band: &mut [f32]) {
    update_rows(r0, r1, flow, w, h, y0, band)
}

/// `floor` as an integer (no overflow for any finite `f32` whose floor fits an `i64`).
#[inline(always)]
fn floor_i(v: f32) -> i64 {
    let i = v as i64;
    if (i as f32) > v {
        i - 1
    } else {
        i
    }
}

/// The portable matrix update: [`update_pixel`] for every pixel of the band.
#[inline(always)]
fn update_rows(r0: &[f32], r1: &[f32], flow: &[f32], w: usize, h: usize, y0: usize, band: &mut [f32]) {
    for (ry, mrow) in band.chunks_mut(5 * w).enumerate() {
        for x in 0..w {
            update_pixel(r0, r1, flow, w, h, x, y0 + ry, &mut mrow[5 * x..5 * x + 5]);
        }
    }
}

/// One pixel of [`update_rows`]; the AVX-512 kernel computes the same expressions in the same
/// order (multiplies and adds, no fused multiply-adds), so both give identical bits.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update_pixel(r0: &[f32], r1: &[f32], flow: &[f32], w: usize, h: usize, x: usize, y: usize, o: &mut [f32]) {
    let i = y * w + x;
    let dx = flow[2 * i];
    let dy = flow[2 * i + 1];
    let fx = x as f32 + dx;
    let fy = y as f32 + dy;
    let x1i = floor_i(fx);
    let y1i = floor_i(fy);
    let r0p = &r0[5 * i..5 * i + 5];
    let (mut r2, mut r3, mut r4, mut r5, mut r6);
    if x1i >= 0 && y1i >= 0 && (x1i as usize) < w - 1 && (y1i as usize) < h - 1 {
        let (x1, y1) = (x1i as usize, y1i as usize);
        let (tx, ty) = (fx - x1i as f32, fy - y1i as f32);
        let a00 = (1.0 - tx) * (1.0 - ty);
        let a01 = tx * (1.0 - ty);
        let a10 = (1.0 - tx) * ty;
        let a11 = tx * ty;
        let p = 5 * (y1 * w + x1);
        let q = p + 5 * w;
        let s = |c: usize| a00 * r1[p + c] + a01 * r1[p + 5 + c] + a10 * r1[q + c] + a11 * r1[q + 5 + c];
        r2 = s(0);
        r3 = s(1);
        r4 = (r0p[2] + s(2)) * 0.5;
        r5 = (r0p[3] + s(3)) * 0.5;
        r6 = (r0p[4] + s(4)) * 0.25;
    } else {
        r2 = 0.0;
        r3 = 0.0;
        r4 = r0p[2];
        r5 = r0p[3];
        r6 = r0p[4] * 0.5;
    }
    r2 = (r0p[0] - r2) * 0.5;
    r3 = (r0p[1] - r3) * 0.5;
    r2 += r4 * dy + r6 * dx;
    r3 += r6 * dy + r5 * dx;
    if x < 5 || y < 5 || x + 5 >= w || y + 5 >= h {
        let mut sc = 1.0;
        if x < 5 {
            sc *= BORDER[x];
        }
        if x + 5 >= w {
            sc *= BORDER[w - x - 1];
        }
        if y < 5 {
            sc *= BORDER[y];
        }
        if y + 5 >= h {
            sc *= BORDER[h - y - 1];
        }
        r2 *= sc;
        r3 *= sc;
        r4 *= sc;
        r5 *= sc;
        r6 *= sc;
    }
    o[0] = r4 * r4 + r6 * r6;
    o[1] = (r4 + r5) * r6;
    o[2] = r5 * r5 + r6 * r6;
    o[3] = r4 * r2 + r6 * r3;
    o[4] = r6 * r2 + r5 * r3;
}

/// Whether every index of the AVX-512 gathers of a `w x h` image fits an `i32`:
/// `5 (w h + w + 1) < i32::MAX`.
#[cfg(target_arch = "x86_64")]
fn gather_indices_fit(w: usize, h: usize) -> bool {
    h.checked_add(1)
        .and_then(|h1| w.checked_mul(h1))
        .and_then(|n| n.checked_add(1))
        .and_then(|n| n.checked_mul(5))
        .is_some_and(|n| n < i32::MAX as usize)
}

/// [`update_rows`] with 16 interior pixels per step: the bilinear samples of the second
/// expansion are masked gathers (lanes whose sample falls outside are not read), the five
/// interleaved outputs are scattered. Border rows and the first and last five columns, which
/// carry OpenCV's attenuation, go through [`update_pixel`]. The same expressions in the same
/// order (multiplies and adds, no fused multiply-adds), so the bits are [`update_pixel`]'s.
///
/// The vector step reads and writes without bounds checks, so it first checks what it relies
/// on: the buffers hold the image (`r0`, `r1`: `5 w h` values, `flow`: `2 w h`), the band lies
/// inside it, and every gather index fits an `i32` (see [`gather_indices_fit`]). Otherwise, and
/// for images too small for a vector step, the band goes through [`update_rows`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
fn update_rows_avx512(r0: &[f32], r1: &[f32], flow: &[f32], w: usize, h: usize, y0: usize, band: &mut [f32]) {
    use std::arch::x86_64::*;
    if w < 21
        || h < 11
        || !gather_indices_fit(w, h)
        || r0.len() < 5 * w * h
        || r1.len() < 5 * w * h
        || flow.len() < 2 * w * h
        || band.len() > 5 * w * h.saturating_sub(y0)
    {
        return update_rows(r0, r1, flow, w, h, y0, band);
    }
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // `5 l` for lane `l`: the offsets of one coefficient of 16 consecutive pixels, at most 75.
    let lane5 = _mm512_mullo_epi32(lane, _mm512_set1_epi32(5));
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let one = _mm512_set1_ps(1.0);
    let half = _mm512_set1_ps(0.5);
    let quarter = _mm512_set1_ps(0.25);
    let zero = _mm512_setzero_ps();
    let five = _mm512_set1_epi32(5);
    // `w` and `h` fit an `i32` (checked above).
    let wi = _mm512_set1_epi32(w as i32);
    let (wlim, hlim) = (_mm512_set1_epi32(w as i32 - 1), _mm512_set1_epi32(h as i32 - 1));
    // Offsets in `r1` of the four pixels of a bilinear square from its first.
    let square = [0, 5, 5 * w, 5 * w + 5];
    // Every row `y` of the band is below `h` (checked above).
    for (ry, mrow) in band.chunks_mut(5 * w).enumerate() {
        let y = y0 + ry;
        let mut x = 0;
        if y >= 5 && y + 5 < h && mrow.len() == 5 * w {
            while x < 5 {
                update_pixel(r0, r1, flow, w, h, x, y, &mut mrow[5 * x..5 * x + 5]);
                x += 1;
            }
            let yv = _mm512_set1_ps(y as f32);
            // Pixels `x..x + 16` of row `y` lie inside the image: `x + 16 <= w - 5`, `y < h`.
            while x + 16 + 5 <= w {
                let i = y * w + x;
                let fp = flow.as_ptr().wrapping_add(2 * i);
                // SAFETY: reads `flow[2 i..2 i + 16]`; `2 i + 32 <= 2 w h <= flow.len()`.
                let f0 = unsafe { _mm512_loadu_ps(fp) };
                // SAFETY: reads `flow[2 i + 16..2 i + 32]`, in bounds as above.
                let f1 = unsafe { _mm512_loadu_ps(fp.wrapping_add(16)) };
                let dx = _mm512_permutex2var_ps(f0, even, f1);
                let dy = _mm512_permutex2var_ps(f0, odd, f1);
                let xi = _mm512_add_epi32(_mm512_set1_epi32(x as i32), lane);
                let fx = _mm512_add_ps(_mm512_cvtepi32_ps(xi), dx);
                let fy = _mm512_add_ps(yv, dy);
                let x1 = floor_v(fx);
                let y1 = floor_v(fy);
                // The lanes whose bilinear square lies inside: `0 <= x1 <= w - 2`, `0 <= y1 <= h - 2`.
                let inside = _mm512_cmpge_epi32_mask(x1, _mm512_setzero_si512())
                    & _mm512_cmpge_epi32_mask(y1, _mm512_setzero_si512())
                    & _mm512_cmplt_epi32_mask(x1, wlim)
                    & _mm512_cmplt_epi32_mask(y1, hlim);
                let tx = _mm512_sub_ps(fx, _mm512_cvtepi32_ps(x1));
                let ty = _mm512_sub_ps(fy, _mm512_cvtepi32_ps(y1));
                let (ux, uy) = (_mm512_sub_ps(one, tx), _mm512_sub_ps(one, ty));
                let a00 = _mm512_mul_ps(ux, uy);
                let a01 = _mm512_mul_ps(tx, uy);
                let a10 = _mm512_mul_ps(ux, ty);
                let a11 = _mm512_mul_ps(tx, ty);
                // Coefficient `c < 5` of the first expansion at the 16 pixels.
                let q: [__m512; 5] = std::array::from_fn(|c| {
                    let base = r0.as_ptr().wrapping_add(5 * i + c);
                    // SAFETY: reads `r0[5 i + c + 5 l]` for the lanes `l < 16`, at most
                    // `r0[5 (i + 15) + 4] < r0[5 (i + 16)]`, and `5 (i + 16) <= 5 w h <= r0.len()`.
                    unsafe { _mm512_i32gather_ps::<4>(lane5, base) }
                });
                // Offset in `r1` of the square's first pixel; in the lanes of `inside`
                // `0 <= p <= 5 ((h - 2) w + w - 2) = 5 (w h - w - 2)`, which fits an `i32`. The
                // other lanes may wrap; they are never read.
                let p = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_mullo_epi32(y1, wi), x1), five);
                // The bilinear sample of coefficient `c < 5` of the second expansion.
                let s: [__m512; 5] = std::array::from_fn(|c| {
                    let g = |k: usize| {
                        let base = r1.as_ptr().wrapping_add(square[k] + c);
                        // SAFETY: reads `r1[square[k] + c + p]` in the lanes of `inside` only:
                        // `square[k] <= 5 w + 5`, `c < 5` and `p <= 5 (w h - w - 2)`, so at most
                        // `r1[5 w h - 1]`, and `r1.len() >= 5 w h` (checked on entry).
                        unsafe { _mm512_mask_i32gather_ps::<4>(zero, inside, p, base) }
                    };
                    let t = _mm512_add_ps(_mm512_mul_ps(a00, g(0)), _mm512_mul_ps(a01, g(1)));
                    let t = _mm512_add_ps(t, _mm512_mul_ps(a10, g(2)));
                    _mm512_add_ps(t, _mm512_mul_ps(a11, g(3)))
                });
                let [q0, q1, q2, q3, q4] = q;
                let [s0, s1, s2, s3, s4] = s;
                let r2 = _mm512_maskz_mov_ps(inside, s0);
                let r3 = _mm512_maskz_mov_ps(inside, s1);
                let r4 = _mm512_mask_blend_ps(inside, q2, _mm512_mul_ps(_mm512_add_ps(q2, s2), half));
                let r5 = _mm512_mask_blend_ps(inside, q3, _mm512_mul_ps(_mm512_add_ps(q3, s3), half));
                let r6 = _mm512_mask_blend_ps(
                    inside,
                    _mm512_mul_ps(q4, half),
                    _mm512_mul_ps(_mm512_add_ps(q4, s4), quarter),
                );
                let r2 = _mm512_mul_ps(_mm512_sub_ps(q0, r2), half);
                let r3 = _mm512_mul_ps(_mm512_sub_ps(q1, r3), half);
                let r2 = _mm512_add_ps(r2, _mm512_add_ps(_mm512_mul_ps(r4, dy), _mm512_mul_ps(r6, dx)));
                let r3 = _mm512_add_ps(r3, _mm512_add_ps(_mm512_mul_ps(r6, dy), _mm512_mul_ps(r5, dx)));
                let o0 = _mm512_add_ps(_mm512_mul_ps(r4, r4), _mm512_mul_ps(r6, r6));
                let o1 = _mm512_mul_ps(_mm512_add_ps(r4, r5), r6);
                let o2 = _mm512_add_ps(_mm512_mul_ps(r5, r5), _mm512_mul_ps(r6, r6));
                let o3 = _mm512_add_ps(_mm512_mul_ps(r4, r2), _mm512_mul_ps(r6, r3));
                let o4 = _mm512_add_ps(_mm512_mul_ps(r6, r2), _mm512_mul_ps(r5, r3));
                for (c, o) in [o0, o1, o2, o3, o4].into_iter().enumerate() {
                    let base = mrow.as_mut_ptr().wrapping_add(5 * x + c);
                    // SAFETY: writes `mrow[5 x + c + 5 l]` for the lanes `l < 16`, below
                    // `mrow[5 (x + 16)]`, and `5 (x + 16) <= 5 (w - 5) < mrow.len() = 5 w`.
                    unsafe { _mm512_i32scatter_ps::<4>(base, lane5, o) };
                }
                x += 16;
            }
        }
        while x < w {
            update_pixel(r0, r1, flow, w, h, x, y, &mut mrow[5 * x..5 * x + 5]);
            x += 1;
        }
    }
}

/// `floor` of 16 lanes as `i32`, matching [`floor_i`] for every value whose floor fits an `i32`;
/// larger magnitudes give `i32::MIN` or `i32::MAX`, which the caller's bounds test sends to the
/// outside branch, where [`floor_i`]'s values go too.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn floor_v(v: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    let i = _mm512_cvttps_epi32(v);
    let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_cvtepi32_ps(i), v);
    _mm512_mask_sub_epi32(i, above, i, _mm512_set1_epi32(1))
}

#[cfg(test)]
mod tests {
    use super::super::poly_kernels;
    use super::*;
    use crate::synth;
    use mex_core::simd::{self, SimdLevel};

    /// The levels this process may run: every one up to [`simd::level`].
    fn levels() -> Vec<SimdLevel> {
        let l: Vec<_> = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|&l| l <= simd::level())
            .collect();
        if l.len() == 1 {
            eprintln!("only the portable kernels run here (MEX_SIMD or the CPU)");
        }
        l
    }

    /// [`poly_band`] at `level` (at most [`simd::level`]).
    fn poly_at(
        level: SimdLevel,
        src: &[f32],
        w: usize,
        h: usize,
        k: &PolyKernel<'_>,
        y0: usize,
        band: &mut [f32],
    ) {
        assert!(level <= simd::level());
        match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `level <= simd::level()` (asserted), so the CPU supports AVX-512F.
            SimdLevel::Avx512 => unsafe { poly_rows_avx512(src, w, h, k, y0, band) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `level <= simd::level()` (asserted), so the CPU supports AVX2.
            SimdLevel::Avx2 => unsafe { poly_rows_avx2(src, w, h, k, y0, band) },
            _ => poly_rows(src, w, h, k, y0, band),
        }
    }

    /// [`update_band`] at `level` (at most [`simd::level`]).
    #[allow(clippy::too_many_arguments)]
    fn update_at(
        level: SimdLevel,
        r0: &[f32],
        r1: &[f32],
        flow: &[f32],
        w: usize,
        h: usize,
        y0: usize,
        band: &mut [f32],
    ) {
        assert!(level <= simd::level());
        match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `level <= simd::level()` (asserted), so the CPU supports AVX-512F and AVX2.
            SimdLevel::Avx512 => unsafe { update_rows_avx512(r0, r1, flow, w, h, y0, band) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `level <= simd::level()` (asserted), so the CPU supports AVX2.
            SimdLevel::Avx2 => unsafe { update_rows_avx2(r0, r1, flow, w, h, y0, band) },
            _ => update_rows(r0, r1, flow, w, h, y0, band),
        }
    }

    fn assert_same_bits(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "{what}, value {k}: {x} vs {y}");
        }
    }

    /// Every level's matrix update gives the portable code's bits, for random expansions and
    /// flows that keep the sample inside, cross the border and leave the image (up to 3e9 px),
    /// on widths with and without vector steps.
    #[test]
    fn matrix_update_levels_equal_the_portable_code_on_random_data() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for (w, h) in [(64usize, 40usize), (37, 29), (100, 23), (26, 12), (21, 11), (7, 5)] {
            let n = w * h;
            let r0: Vec<f32> = (0..5 * n).map(|_| 10.0 * rnd()).collect();
            let r1: Vec<f32> = (0..5 * n).map(|_| 10.0 * rnd()).collect();
            for scale in [0.0f32, 1.5, 12.0, 3e9] {
                let flow: Vec<f32> =
                    (0..2 * n).map(|k| scale * rnd() + if k % 7 == 0 { 0.5 } else { 0.0 }).collect();
                let mut want = vec![f32::NAN; 5 * n];
                update_rows(&r0, &r1, &flow, w, h, 0, &mut want);
                for level in levels() {
                    let what = format!("{level:?} {w}x{h} scale {scale}");
                    let mut got = vec![f32::NAN; 5 * n];
                    update_at(level, &r0, &r1, &flow, w, h, 0, &mut got);
                    assert_same_bits(&got, &want, &what);
                    // a band that starts further down
                    let y0 = h / 2;
                    let mut band = vec![f32::NAN; 5 * w * (h - y0)];
                    update_at(level, &r0, &r1, &flow, w, h, y0, &mut band);
                    assert_same_bits(&band, &want[5 * w * y0..], &format!("{what} from row {y0}"));
                }
            }
        }
    }

    /// On a real-sized input (two 128x128 frames of a smooth texture deformed by Gaussian bumps,
    /// and a 117x83 one), every level's polynomial expansion and matrix update, and the
    /// dispatchers, give the portable code's bits: whole images and bands, `poly_n` 5 and 7, the
    /// true flow, a zero flow and a flow large enough to send samples out of the image.
    #[test]
    fn kernels_equal_the_portable_code_on_real_sized_frames() {
        for (w, h, seed) in [(128usize, 128usize, 8u64), (117, 83, 5)] {
            let n = w * h;
            let (f0, f1, truth) = synth::deformed_pair(w, h, 3.0, seed);
            let (f0, f1) = (f0.as_raw(), f1.as_raw());
            for (pn, sigma) in [(5usize, 1.1f64), (7, 1.5)] {
                let (g, xg, xxg, ig) = poly_kernels(pn, sigma);
                let k = PolyKernel { g: &g, xg: &xg, xxg: &xxg, ig, n: pn };
                let mut r0 = vec![f32::NAN; 5 * n];
                let mut r1 = vec![f32::NAN; 5 * n];
                poly_rows(f0, w, h, &k, 0, &mut r0);
                poly_rows(f1, w, h, &k, 0, &mut r1);
                let y0 = 37;
                for level in levels() {
                    let what = format!("{level:?} {w}x{h} poly_n {pn}");
                    let mut got = vec![f32::NAN; 5 * n];
                    poly_at(level, f0, w, h, &k, 0, &mut got);
                    assert_same_bits(&got, &r0, &format!("{what} expansion"));
                    let mut band = vec![f32::NAN; 5 * w * (h - y0)];
                    poly_at(level, f1, w, h, &k, y0, &mut band);
                    assert_same_bits(&band, &r1[5 * w * y0..], &format!("{what} expansion from row {y0}"));
                }
                let mut got = vec![f32::NAN; 5 * n];
                poly_band(f1, w, h, &k, 0, &mut got);
                assert_same_bits(&got, &r1, "poly_band");

                let interleave = |s: f32, shift: f32| -> Vec<f32> {
                    truth
                        .u()
                        .iter()
                        .zip(truth.v())
                        .flat_map(|(&u, &v)| [s * u + shift, s * v - shift])
                        .collect()
                };
                for (name, flow) in [
                    ("true flow", interleave(1.0, 0.0)),
                    ("zero flow", vec![0.0; 2 * n]),
                    ("large flow", interleave(6.0, 7.25)),
                ] {
                    let mut want = vec![f32::NAN; 5 * n];
                    update_rows(&r0, &r1, &flow, w, h, 0, &mut want);
                    for level in levels() {
                        let what = format!("{level:?} {w}x{h} poly_n {pn} {name}");
                        let mut got = vec![f32::NAN; 5 * n];
                        update_at(level, &r0, &r1, &flow, w, h, 0, &mut got);
                        assert_same_bits(&got, &want, &format!("{what} update"));
                        let mut band = vec![f32::NAN; 5 * w * (h - y0)];
                        update_at(level, &r0, &r1, &flow, w, h, y0, &mut band);
                        assert_same_bits(&band, &want[5 * w * y0..], &format!("{what} update from row {y0}"));
                    }
                    let mut got = vec![f32::NAN; 5 * n];
                    update_band(&r0, &r1, &flow, w, h, 0, &mut got);
                    assert_same_bits(&got, &want, &format!("update_band {name}"));
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn gather_indices_fit_is_exact_and_never_overflows() {
        assert!(gather_indices_fit(128, 128));
        // w = 1: 5 (h + 2) = i32::MAX - 2 fits, one more row does not
        let h = 429_496_727usize;
        assert_eq!(5 * (h + 2), i32::MAX as usize - 2);
        assert!(gather_indices_fit(1, h));
        assert!(!gather_indices_fit(1, h + 1));
        assert!(!gather_indices_fit(usize::MAX, 2));
        assert!(!gather_indices_fit(2, usize::MAX));
    }
}
