//! Median filtering of flow planes (OpenCV's `medianBlur` on float images): pruned sorting
//! networks over whole rows for 3x3 and 5x5 windows, register kernels for 5x5 windows compiled
//! per instruction set (AVX2, AVX-512; chosen through [`mex_core::simd`]), selection for larger
//! windows. Results are the same on every instruction set (min / max only).

use mex_core::simd;
use std::sync::OnceLock;

/// A median network compiled for `k x k` windows: comparator pairs on buffer indices (min to
/// the first) and the buffer holding the median at the end.
struct MedianNet {
    pairs: Vec<(usize, usize)>,
    out: usize,
}

/// Batcher's odd-even merge sort on `n = 2^m` slots whose slots `real..n` hold `+inf`;
/// comparators against known `+inf` slots become renamings, and comparators that cannot
/// influence the median slot are pruned.
fn median_net(real: usize) -> MedianNet {
    let n = real.next_power_of_two();
    let keep = real / 2;
    let mut net = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        net.push((i + j, i + j + k));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    let mut perm: Vec<usize> = (0..n).collect();
    let mut inf: Vec<bool> = (0..n).map(|i| i >= real).collect();
    let mut live = Vec::new();
    for (a, b) in net {
        if inf[b] {
            continue;
        }
        if inf[a] {
            perm.swap(a, b);
            inf.swap(a, b);
            continue;
        }
        live.push((a, b, perm[a], perm[b]));
    }
    let mut needed = vec![false; n];
    needed[keep] = true;
    let mut pairs = Vec::new();
    for &(a, b, pa, pb) in live.iter().rev() {
        if needed[a] || needed[b] {
            needed[a] = true;
            needed[b] = true;
            pairs.push((pa, pb));
        }
    }
    pairs.reverse();
    MedianNet { pairs, out: perm[keep] }
}

fn network(k: usize) -> &'static MedianNet {
    static N3: OnceLock<MedianNet> = OnceLock::new();
    static N5: OnceLock<MedianNet> = OnceLock::new();
    if k == 3 {
        N3.get_or_init(|| median_net(9))
    } else {
        N5.get_or_init(|| median_net(25))
    }
}

#[inline(always)]
fn apply_net_impl(bufs: &mut [f32], w: usize, pairs: &[(usize, usize)]) {
    for &(a, b) in pairs {
        let (lo, hi) = if a < b {
            let (s1, s2) = bufs.split_at_mut(b * w);
            (&mut s1[a * w..a * w + w], &mut s2[..w])
        } else {
            let (s1, s2) = bufs.split_at_mut(a * w);
            (&mut s2[..w], &mut s1[b * w..b * w + w])
        };
        for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
            let p = *l;
            let q = *h;
            *l = if p < q { p } else { q };
            *h = if p < q { q } else { p };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply_net_avx2(bufs: &mut [f32], w: usize, pairs: &[(usize, usize)]) {
    apply_net_impl(bufs, w, pairs)
}

fn apply_net(bufs: &mut [f32], w: usize, pairs: &[(usize, usize)]) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        unsafe { apply_net_avx2(bufs, w, pairs) };
        return;
    }
    apply_net_impl(bufs, w, pairs)
}

/// `out[x] = row[clamp(x + dx, 0, w - 1)]`: a straight copy between the replicated borders.
fn shifted_row(row: &[f32], dx: isize, out: &mut [f32]) {
    let w = row.len();
    let (Some(&first), Some(&last)) = (row.first(), row.last()) else { return };
    // out[x] reads row[x + dx] for lo <= x < hi; left of lo it is row[0], from hi on row[w - 1].
    let lo = (-dx).clamp(0, w as isize) as usize;
    let hi = (w as isize - dx.max(0)).clamp(lo as isize, w as isize) as usize;
    out[..lo].fill(first);
    if hi > lo {
        let start = (lo as isize + dx) as usize;
        out[lo..hi].copy_from_slice(&row[start..start + (hi - lo)]);
    }
    out[hi..].fill(last);
}

/// The comparators of [`median_net`]`(25)` as literals, handed to the macro `$cb` after its
/// own arguments, so that the register kernels below are unrolled with constant indices (a
/// test checks the list against `median_net(25)`).
#[cfg(target_arch = "x86_64")]
macro_rules! median25_pairs {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)*;
        (0, 1) (2, 3) (4, 5) (6, 7) (8, 9) (10, 11) (12, 13) (14, 15) (16, 17) (18, 19) (20, 21)
        (22, 23) (0, 2) (1, 3) (4, 6) (5, 7) (8, 10) (9, 11) (12, 14) (13, 15) (16, 18) (17, 19)
        (20, 22) (21, 23) (1, 2) (5, 6) (9, 10) (13, 14) (17, 18) (21, 22) (0, 4) (1, 5) (2, 6)
        (3, 7) (8, 12) (9, 13) (10, 14) (11, 15) (16, 20) (17, 21) (18, 22) (19, 23) (2, 4) (3, 5)
        (10, 12) (11, 13) (18, 20) (19, 21) (1, 2) (3, 4) (5, 6) (9, 10) (11, 12) (13, 14) (17, 18)
        (19, 20) (21, 22) (0, 8) (1, 9) (2, 10) (3, 11) (4, 12) (5, 13) (6, 14) (7, 15) (16, 24)
        (4, 8) (5, 9) (6, 10) (7, 11) (20, 24) (2, 4) (3, 5) (6, 8) (7, 9) (10, 12) (11, 13)
        (18, 20) (19, 21) (22, 24) (1, 2) (3, 4) (5, 6) (7, 8) (9, 10) (11, 12) (13, 14) (17, 18)
        (19, 20) (21, 22) (23, 24) (0, 16) (1, 17) (2, 18) (3, 19) (4, 20) (5, 21) (6, 22) (7, 23)
        (8, 24) (8, 16) (9, 17) (10, 18) (11, 19) (12, 20) (13, 21) (6, 10) (7, 11) (12, 16)
        (13, 17) (10, 12) (11, 13) (11, 12)
        )
    };
}

/// Applies the comparators to the vectors `$v` with the instruction set's `$min` / `$max`: as
/// `apply_net`, lo = if p < q { p } else { q } and hi = if p < q { q } else { p }.
#[cfg(target_arch = "x86_64")]
macro_rules! median25_apply {
    ($v:ident, $min:ident, $max:ident; $(($a:literal, $b:literal))*) => {
        $( { let (p, q) = ($v[$a], $v[$b]); $v[$a] = $min(p, q); $v[$b] = $max(q, p); } )*
    };
}

/// Slot of the median after the comparators of [`median25_pairs`].
#[cfg(target_arch = "x86_64")]
const MEDIAN25_OUT: usize = 12;

/// 5x5 medians of one row with the 25 window values of `LANES` pixels in vector registers.
/// `rows` are the five source rows of the window, each padded with two replicated values on
/// either side (`w + 4` values); `w` must be at least the lane count. The last vector of a row
/// overlaps the one before when `w` is not a multiple of it (the same medians are written twice).
#[cfg(target_arch = "x86_64")]
mod median5_simd {
    use std::arch::x86_64::*;

    /// One row kernel per instruction set: its name, target feature, vector type, lanes, and
    /// load / store / min / max intrinsics.
    macro_rules! row_kernel {
        ($name:ident, $feature:literal, $vec:ty, $lanes:literal, $load:ident, $store:ident, $min:ident, $max:ident) => {
            #[target_feature(enable = $feature)]
            pub(super) fn $name(rows: [&[f32]; 5], w: usize, out: &mut [f32]) {
                let mut x = 0;
                loop {
                    let x0 = x.min(w - $lanes);
                    let mut v: [$vec; 25] = std::array::from_fn(|i| {
                        let src = &rows[i / 5][x0 + i % 5..x0 + i % 5 + $lanes];
                        // SAFETY: `src` holds one vector's values.
                        unsafe { $load(src.as_ptr()) }
                    });
                    median25_pairs!(median25_apply!(v, $min, $max));
                    let dst = &mut out[x0..x0 + $lanes];
                    // SAFETY: `dst` holds one vector's values.
                    unsafe { $store(dst.as_mut_ptr(), v[super::MEDIAN25_OUT]) };
                    if x0 + $lanes == w {
                        return;
                    }
                    x += $lanes;
                }
            }
        };
    }

    row_kernel!(
        row_avx512,
        "avx512f",
        __m512,
        16,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_min_ps,
        _mm512_max_ps
    );
    row_kernel!(row_avx2, "avx2", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_min_ps, _mm256_max_ps);
}

/// The vector width (16 with AVX-512, 8 with AVX2) of the 5x5 register kernels
/// ([`median5_simd`]) for rows of `w` pixels on this CPU, or `None` (no AVX2, or a row narrower
/// than a vector).
#[cfg(target_arch = "x86_64")]
fn median5_width(w: usize) -> Option<usize> {
    let lanes = if simd::has_avx512() {
        16
    } else if simd::has_avx2() {
        8
    } else {
        return None;
    };
    (w >= lanes).then_some(lanes)
}

/// The 5x5 median of rows `y0..` into `band` with the register kernels of width `lanes` = 16
/// (AVX-512) or 8 (AVX2); `w >= lanes`, and the CPU must support that instruction set (else
/// nothing is written). `pad` is scratch.
#[cfg(target_arch = "x86_64")]
fn median5_lanes(
    lanes: usize,
    src: &[f32],
    w: usize,
    h: usize,
    y0: usize,
    band: &mut [f32],
    pad: &mut Vec<f32>,
) {
    // the band's source rows y0 - 2 .. y1 + 2 (clamped), two replicated values either side
    let (pw, n) = (w + 4, band.len() / w);
    if pad.len() < (n + 4) * pw {
        pad.resize((n + 4) * pw, 0.0);
    }
    for (i, prow) in pad[..(n + 4) * pw].chunks_mut(pw).enumerate() {
        let yy = (y0 + i).saturating_sub(2).min(h - 1);
        let srow = &src[yy * w..yy * w + w];
        prow[..2].fill(srow[0]);
        prow[2..w + 2].copy_from_slice(srow);
        prow[w + 2..].fill(srow[w - 1]);
    }
    let (wide, avx2) = (lanes == 16 && simd::has_avx512(), simd::has_avx2());
    for (r, out) in band.chunks_mut(w).enumerate() {
        let rows: [&[f32]; 5] = std::array::from_fn(|i| &pad[(r + i) * pw..(r + i + 1) * pw]);
        // SAFETY: the CPU supports the instruction set of the kernel called (checked here).
        unsafe {
            if wide {
                median5_simd::row_avx512(rows, w, out)
            } else if avx2 {
                median5_simd::row_avx2(rows, w, out)
            }
        }
    }
}

thread_local! {
    static MEDIAN_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Median filter of odd size `k` with replicated borders (OpenCV's `medianBlur` on float images
/// supports 3 and 5; larger sizes use selection). `band` must not alias `src`.
///
/// Sizes 3 and 5 run a pruned sorting network on whole rows (one buffer per window offset), so
/// that every comparator is a vectorised min / max over a row.
///
/// Computes rows `y0 .. y0 + band.len() / w` into `band` (the whole image with `y0 = 0`);
/// `k` must be odd and greater than 1.
pub(crate) fn median_rows(src: &[f32], w: usize, h: usize, k: usize, y0: usize, band: &mut [f32]) {
    let r = (k / 2) as isize;
    #[cfg(target_arch = "x86_64")]
    if let (5, Some(lanes)) = (k, median5_width(w)) {
        MEDIAN_SCRATCH.with(|cell| median5_lanes(lanes, src, w, h, y0, band, &mut cell.borrow_mut()));
        return;
    }
    if k == 3 || k == 5 {
        let net = network(k);
        let kk = k * k;
        MEDIAN_SCRATCH.with(|cell| {
            let mut bufs = cell.borrow_mut();
            if bufs.len() < kk * w {
                bufs.resize(kk * w, 0.0);
            }
            let bufs = &mut bufs[..kk * w];
            for (ry, row) in band.chunks_mut(w).enumerate() {
                let y = (y0 + ry) as isize;
                let mut idx = 0;
                for dy in -r..=r {
                    let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                    let srow = &src[yy * w..yy * w + w];
                    for dx in -r..=r {
                        shifted_row(srow, dx, &mut bufs[idx * w..idx * w + w]);
                        idx += 1;
                    }
                }
                apply_net(bufs, w, &net.pairs);
                row.copy_from_slice(&bufs[net.out * w..net.out * w + w]);
            }
        });
    } else {
        let mut buf = vec![0.0f32; k * k];
        for (ry, row) in band.chunks_mut(w).enumerate() {
            let y = (y0 + ry) as isize;
            for (x, out) in row.iter_mut().enumerate() {
                let mut idx = 0;
                for dy in -r..=r {
                    let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                    for dx in -r..=r {
                        let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                        buf[idx] = src[yy * w + xx];
                        idx += 1;
                    }
                }
                let m = buf.len() / 2;
                buf.select_nth_unstable_by(m, f32::total_cmp);
                *out = buf[m];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_sort() {
        // 37 and 21 columns: the register kernels' full vectors and their overlapping last one
        for (w, h) in [(13, 7), (2, 3), (1, 4), (37, 6), (21, 5), (16, 3)] {
            median_matches_sort_at(w, h);
        }
    }

    /// The 5x5 register kernels against the row-buffer network (the path for other CPUs and
    /// narrow rows), bit for bit, on bands that start inside the image.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn median5_kernels_match_the_row_network() {
        let net = network(5);
        assert_eq!(net.out, MEDIAN25_OUT);
        for (w, h, y0, n) in [(40usize, 9usize, 0usize, 9usize), (23, 11, 3, 5), (16, 4, 2, 2), (64, 7, 6, 1)]
        {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919 + 13) % 211) as f32 * 0.37 - 31.0).collect();
            let mut runs = Vec::new();
            for (lanes, ok) in [(16, simd::has_avx512()), (8, simd::has_avx2())] {
                if ok && w >= lanes {
                    let (mut fast, mut pad) = (vec![0.0; n * w], Vec::new());
                    median5_lanes(lanes, &src, w, h, y0, &mut fast, &mut pad);
                    runs.push((lanes, fast));
                } else {
                    eprintln!("skipped: {lanes} lanes at width {w} (CPU or width)");
                }
            }
            // the row-buffer network, as `median_rows` runs it without the register kernels
            let mut bufs = vec![0.0; 25 * w];
            for r in 0..n {
                let y = (y0 + r) as isize;
                let mut idx = 0;
                for dy in -2..=2isize {
                    let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                    for dx in -2..=2isize {
                        shifted_row(&src[yy * w..yy * w + w], dx, &mut bufs[idx * w..idx * w + w]);
                        idx += 1;
                    }
                }
                apply_net(&mut bufs, w, &net.pairs);
                let want = &bufs[net.out * w..net.out * w + w];
                for (lanes, fast) in &runs {
                    let got = &fast[r * w..r * w + w];
                    let same = want.iter().zip(got).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{lanes} lanes, {w}x{h} row {y}");
                }
            }
        }
    }

    /// The literal comparator list of the register kernels is `median_net(25)`'s.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn median25_literals_are_the_pruned_network() {
        macro_rules! list {
            (; $(($a:literal, $b:literal))*) => {
                vec![$(($a, $b)),*]
            };
        }
        let v: Vec<(usize, usize)> = median25_pairs!(list!());
        assert_eq!(v, network(5).pairs);
    }

    fn median_matches_sort_at(w: usize, h: usize) {
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 101) as f32 - 50.0).collect();
        for k in [3usize, 5, 7] {
            let mut dst = vec![0.0; w * h];
            median_rows(&src, w, h, k, 0, &mut dst);
            let r = (k / 2) as isize;
            for y in 0..h as isize {
                for x in 0..w as isize {
                    let mut v = Vec::new();
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                            let xx = (x + dx).clamp(0, w as isize - 1) as usize;
                            v.push(src[yy * w + xx]);
                        }
                    }
                    v.sort_by(f32::total_cmp);
                    assert_eq!(dst[y as usize * w + x as usize], v[v.len() / 2], "k={k} at ({x},{y})");
                }
            }
        }
    }

    #[test]
    fn shifted_row_replicates_borders() {
        for w in 1..9usize {
            let row: Vec<f32> = (0..w).map(|i| i as f32 * 1.5 - 2.0).collect();
            for dx in -4isize..=4 {
                let mut out = vec![f32::NAN; w];
                shifted_row(&row, dx, &mut out);
                let want: Vec<f32> =
                    (0..w as isize).map(|x| row[(x + dx).clamp(0, w as isize - 1) as usize]).collect();
                assert_eq!(out, want, "w={w} dx={dx}");
            }
        }
    }
}
