//! Array operations of facenet-pytorch's `detect_face`: area resampling (`interpolate(mode="area")`),
//! box generation, NMS (torchvision's and the numpy `Min` variant), `rerec`, `pad` and `bbreg`.

/// A candidate box: `[x1, y1, x2, y2, score, r1, r2, r3, r4]` (regression offsets last).
pub(crate) type Cand = [f32; 9];

/// Reusable buffers of [`area_resize_norm`].
#[derive(Debug, Default)]
pub(crate) struct ResizeScratch {
    /// Column sums (from the window's left edge) of one output row's source rows.
    diff: Vec<u32>,
    /// Window sums of one output row.
    hsum: Vec<u32>,
    /// Source window `[s, e)` of every output column.
    spans: Vec<(usize, usize)>,
    /// Width of every output column's window, as `f32`.
    kw: Vec<f32>,
}

/// The integral images of the `C` channels of an interleaved 8-bit `w x h` image (`C` values
/// per pixel) into `out`: `(h + 1) x (w + 1)` values per channel, `out[c][y·(w+1) + x]` = the
/// sum of channel `c` over the pixels above and left of `(x, y)` (row and column 0 are zero).
/// Computed with wrapping `u32` arithmetic, so that a difference of four entries is the exact
/// sum of any rectangle (below 2^32 for every image of at most 16 843 009 pixels). One channel
/// per task (rayon).
pub(crate) fn integral_images<const C: usize>(src: &[u8], w: usize, h: usize, out: &mut [Vec<u32>; C]) {
    use rayon::prelude::*;
    let iw = w + 1;
    // One channel per task (in parallel when threads are free).
    out.par_iter_mut().enumerate().for_each(|(c, ii)| {
        // Every value is written below; only the first row and column are set here.
        ii.resize(iw * (h + 1), 0);
        ii[..iw].fill(0);
        if w == 0 {
            return;
        }
        for (y, row) in src.chunks_exact(w * C).take(h).enumerate() {
            let (above, below) = ii.split_at_mut((y + 1) * iw);
            let (prev, cur) = (&above[y * iw..], &mut below[..iw]);
            cur[0] = 0;
            // Running sum along the row (a chain of adds), plus the row above.
            let mut run = 0u32;
            for ((d, &u), px) in cur[1..].iter_mut().zip(&prev[1..]).zip(row.chunks_exact(C)) {
                run = run.wrapping_add(u32::from(px[c]));
                *d = u.wrapping_add(run);
            }
        }
    });
}

/// `torch.nn.functional.interpolate(mode="area")` (adaptive average pooling) of the window
/// `[x0, x0+cw) x [y0, y0+ch)` of an 8-bit plane, given by its integral image `ii` (from
/// [`integral_images`]; `iw` = the plane's width + 1), into `dst` (`ow x oh`), normalised as
/// facenet-pytorch does (`(v - 127.5) * 0.0078125`).
///
/// Bit for bit what PyTorch computes on the image converted to `f32`: its CPU kernel adds the
/// window in `f32` (exact, the values being integers and every window sum below 2^24 for windows
/// under 65 793 pixels) and divides by the window height, then by its width; here each window sum
/// is the exact difference of integral-image entries (so the cost does not grow with the window),
/// divided the same way.
pub(crate) fn area_resize_norm(
    ii: &[u32],
    iw: usize,
    (x0, y0, cw, ch): (usize, usize, usize, usize),
    dst: &mut [f32],
    (ow, oh): (usize, usize),
    scratch: &mut ResizeScratch,
) {
    use mex_core::simd::{self, SimdLevel};
    let args = (ii, iw, (x0, y0, cw, ch), dst, (ow, oh), scratch);
    match simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx512` only where the CPU supports AVX-512F/VL, AVX2 and FMA.
        SimdLevel::Avx512 => unsafe { area_resize_avx512(args) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd::level()` is `Avx2` only where the CPU supports AVX2 and FMA.
        SimdLevel::Avx2 => unsafe { area_resize_avx2(args) },
        _ => area_resize_impl(args),
    }
}

/// The arguments of [`area_resize_norm`].
type ResizeArgs<'a> =
    (&'a [u32], usize, (usize, usize, usize, usize), &'a mut [f32], (usize, usize), &'a mut ResizeScratch);

/// [`area_resize_impl`] compiled for AVX-512 (the same operations in wider registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn area_resize_avx512(args: ResizeArgs<'_>) {
    area_resize_impl(args)
}

/// [`area_resize_impl`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn area_resize_avx2(args: ResizeArgs<'_>) {
    area_resize_impl(args)
}

/// The resize: per output row, the difference of the integral image's rows at the window's
/// bottom and top edges (column sums from the window's left edge), then per output column the
/// difference at its window's right and left edges, and the divisions.
#[inline(always)]
fn area_resize_impl((ii, iw, (x0, y0, cw, ch), dst, (ow, oh), scratch): ResizeArgs<'_>) {
    let ResizeScratch { diff, hsum, spans, kw } = scratch;
    diff.resize(cw + 1, 0);
    hsum.resize(ow, 0);
    spans.clear();
    spans.extend((0..ow).map(|ox| (ox * cw / ow, ((ox + 1) * cw).div_ceil(ow))));
    kw.clear();
    kw.extend(spans.iter().map(|&(s, e)| (e - s) as f32));
    // Integral-image row `y` over the window's columns `x0 ..= x0 + cw`.
    let row = |y: usize| &ii[y * iw + x0..][..cw + 1];
    for (oy, drow) in dst[..ow * oh].chunks_exact_mut(ow).enumerate() {
        let (s, e) = (oy * ch / oh, ((oy + 1) * ch).div_ceil(oh));
        // Vertical: diff[x] = sum of rows s..e over columns [0, x0 + x) (wrapping; exact
        // differences below).
        for ((d, &b), &t) in diff.iter_mut().zip(row(y0 + e)).zip(row(y0 + s)) {
            *d = b.wrapping_sub(t);
        }
        // Horizontal: window sums (exact).
        for (h, &(a, b)) in hsum.iter_mut().zip(spans.iter()) {
            *h = diff[b].wrapping_sub(diff[a]);
        }
        // PyTorch: sum / kh / kw, then facenet-pytorch's normalisation.
        let kh = (e - s) as f32;
        for ((d, &h), &w) in drow.iter_mut().zip(hsum.iter()).zip(kw.iter()) {
            *d = (h as f32 / kh / w - 127.5) * 0.0078125;
        }
    }
}

/// facenet-pytorch's `generateBoundingBox` (stride 2, cell size 12) for one image.
pub(crate) fn generate_bounding_box(
    reg: &[f32],
    prob: &[f32],
    (w, h): (usize, usize),
    scale: f64,
    thresh: f32,
    out: &mut Vec<Cand>,
) {
    let plane = w * h;
    let scale = scale as f32;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let p = prob[i];
            if p >= thresh {
                let (bx, by) = (x as f32, y as f32);
                out.push([
                    ((2.0 * bx + 1.0) / scale).floor(),
                    ((2.0 * by + 1.0) / scale).floor(),
                    ((2.0 * bx + 12.0) / scale).floor(),
                    ((2.0 * by + 12.0) / scale).floor(),
                    p,
                    reg[i],
                    reg[plane + i],
                    reg[2 * plane + i],
                    reg[3 * plane + i],
                ]);
            }
        }
    }
}

/// Indices of `scores` sorted by decreasing score (stable).
fn order_desc(boxes: &[Cand]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b][4].total_cmp(&boxes[a][4]));
    order
}

/// torchvision's `nms`: IoU without the +1, suppress when IoU > `thresh`; returns kept indices in
/// decreasing score order.
pub(crate) fn nms_torchvision(boxes: &[Cand], thresh: f32) -> Vec<usize> {
    let order = order_desc(boxes);
    let area: Vec<f32> = boxes.iter().map(|b| (b[2] - b[0]) * (b[3] - b[1])).collect();
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (oi, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = &boxes[i];
        for &j in &order[oi + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &boxes[j];
            let xx1 = bi[0].max(bj[0]);
            let yy1 = bi[1].max(bj[1]);
            let xx2 = bi[2].min(bj[2]);
            let yy2 = bi[3].min(bj[3]);
            let inter = (xx2 - xx1).max(0.0) * (yy2 - yy1).max(0.0);
            let ovr = inter / (area[i] + area[j] - inter);
            if ovr > thresh {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// facenet-pytorch's `nms_numpy` with method `Min`: areas with +1, overlap = inter / min(area),
/// keep when overlap <= `thresh`; returns kept indices in decreasing score order.
pub(crate) fn nms_min(boxes: &[Cand], thresh: f32) -> Vec<usize> {
    let area: Vec<f32> = boxes.iter().map(|b| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0)).collect();
    // numpy: I = argsort(s) ascending, repeatedly take the last.
    let mut remaining: Vec<usize> = order_desc(boxes);
    let mut keep = Vec::new();
    while let Some((&i, rest)) = remaining.split_first() {
        keep.push(i);
        let bi = &boxes[i];
        let next: Vec<usize> = rest
            .iter()
            .copied()
            .filter(|&j| {
                let bj = &boxes[j];
                let w = (bi[2].min(bj[2]) - bi[0].max(bj[0]) + 1.0).max(0.0);
                let h = (bi[3].min(bj[3]) - bi[1].max(bj[1]) + 1.0).max(0.0);
                let inter = w * h;
                inter / area[i].min(area[j]) <= thresh
            })
            .collect();
        remaining = next;
    }
    keep
}

/// facenet-pytorch's `rerec`: squares each box around its centre with side `max(w, h)`.
pub(crate) fn rerec(b: &mut Cand) {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    b[0] = b[0] + w * 0.5 - l * 0.5;
    b[1] = b[1] + h * 0.5 - l * 0.5;
    b[2] = b[0] + l;
    b[3] = b[1] + l;
}

/// facenet-pytorch's `bbreg` (widths with +1).
pub(crate) fn bbreg(b: &mut Cand, reg: [f32; 4]) {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    b[0] += reg[0] * w;
    b[1] += reg[1] * h;
    b[2] += reg[2] * w;
    b[3] += reg[3] * h;
}

/// facenet-pytorch's `pad` followed by its crop test: the 0-based crop window
/// `(x0, y0, width, height)` = `[x-1, ex) x [y-1, ey)`, or `None` when it is empty.
pub(crate) fn pad_window(b: &Cand, w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    // `trunc().int()`: saturating conversion keeps absurd values harmless.
    let x = (b[0].trunc() as i64).max(1);
    let y = (b[1].trunc() as i64).max(1);
    let ex = (b[2].trunc() as i64).min(w as i64);
    let ey = (b[3].trunc() as i64).min(h as i64);
    if ey > y - 1 && ex > x - 1 {
        Some(((x - 1) as usize, (y - 1) as usize, (ex - x + 1) as usize, (ey - y + 1) as usize))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's adaptive average pooling on one plane, written out: the window sum in `f64`
    /// (exact), then `/ kh / kw` in `f32`, then facenet-pytorch's normalisation.
    fn textbook(
        src: &[u8],
        stride: usize,
        (x0, y0, cw, ch): (usize, usize, usize, usize),
        (ow, oh): (usize, usize),
    ) -> Vec<f32> {
        let mut out = Vec::new();
        for oy in 0..oh {
            let (sy, ey) = ((oy * ch) / oh, ((oy + 1) * ch).div_ceil(oh));
            for ox in 0..ow {
                let (sx, ex) = ((ox * cw) / ow, ((ox + 1) * cw).div_ceil(ow));
                let mut sum = 0.0f64;
                for y in sy..ey {
                    for x in sx..ex {
                        sum += f64::from(src[(y0 + y) * stride + x0 + x]);
                    }
                }
                let v = sum as f32 / (ey - sy) as f32 / (ex - sx) as f32;
                out.push((v - 127.5) * 0.0078125);
            }
        }
        out
    }

    #[test]
    fn area_resize_matches_hand_values() {
        let norm = |v: f32| (v - 127.5) * 0.0078125;
        let mut tmp = ResizeScratch::default();
        let mut ii = [Vec::new()];
        let mut resize = |src: &[u8], (w, h): (usize, usize), dst: &mut [f32], (ow, oh): (usize, usize)| {
            integral_images(src, w, h, &mut ii);
            area_resize_norm(&ii[0], w + 1, (0, 0, w, h), dst, (ow, oh), &mut tmp);
        };
        // 4x1 -> 3x1: windows [0,2), [1,3), [2,4).
        let mut dst = [0.0; 3];
        resize(&[0, 3, 6, 9], (4, 1), &mut dst, (3, 1));
        assert_eq!(dst, [norm(1.5), norm(4.5), norm(7.5)]);
        // 2x2 -> 1x1 mean; 1x1 -> 2x2 replicate.
        let mut d1 = [0.0; 1];
        resize(&[1, 2, 3, 6], (2, 2), &mut d1, (1, 1));
        assert_eq!(d1, [norm(3.0)]);
        let mut d4 = [0.0; 4];
        resize(&[5], (1, 1), &mut d4, (2, 2));
        assert_eq!(d4, [norm(5.0); 4]);
        // 3x3 -> 1x1: 10/3/3 rounded twice (PyTorch), not 10/9.
        resize(&[1, 1, 1, 1, 2, 1, 1, 1, 1], (3, 3), &mut d1, (1, 1));
        assert_eq!(d1, [norm(10.0f32 / 3.0 / 3.0)]);
    }

    #[test]
    fn area_resize_is_bitwise_pytorchs_formula() {
        let (w, h) = (53, 37);
        let mut st = 7u64;
        let src: Vec<u8> = (0..w * h)
            .map(|_| {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (st >> 56) as u8
            })
            .collect();
        let mut tmp = ResizeScratch::default();
        let mut iis = [Vec::new()];
        integral_images(&src, w, h, &mut iis);
        let ii = &iis[0];
        assert_eq!(ii.len(), (w + 1) * (h + 1));
        // Three interleaved channels give the same three images.
        let rgb: Vec<u8> = src.iter().flat_map(|&v| [v, v.wrapping_mul(3), 255 - v]).collect();
        let mut three = [vec![7u32; 5], Vec::new(), Vec::new()];
        integral_images(&rgb, w, h, &mut three);
        for (c, t) in three.iter().enumerate() {
            let plane: Vec<u8> = rgb.iter().skip(c).step_by(3).copied().collect();
            let mut one = [vec![9u32; 3000]];
            integral_images(&plane, w, h, &mut one);
            assert_eq!(t, &one[0], "channel {c}");
        }
        // The integral image against plain sums at a few corners.
        for (x, y) in [(0, 0), (1, 1), (53, 37), (20, 5), (7, 30)] {
            let want: u32 = (0..y)
                .flat_map(|yy| (0..x).map(move |xx| (xx, yy)))
                .map(|(xx, yy)| u32::from(src[yy * w + xx]))
                .sum();
            assert_eq!(ii[y * (w + 1) + x], want, "({x}, {y})");
        }
        let full = (0, 0, w, h);
        let cases = [
            (full, (53, 37)),
            (full, (38, 27)),
            (full, (27, 19)),
            (full, (12, 12)),
            (full, (5, 3)),
            (full, (1, 1)),
            (full, (60, 40)),
            ((3, 4, 30, 21), (24, 24)),
            ((10, 2, 17, 17), (48, 48)),
            ((0, 20, 53, 17), (24, 24)),
        ];
        for (win, (ow, oh)) in cases {
            let want = textbook(&src, w, win, (ow, oh));
            let mut got = vec![f32::NAN; ow * oh];
            area_resize_norm(ii, w + 1, win, &mut got, (ow, oh), &mut tmp);
            assert_eq!(got, want, "{win:?} -> {ow}x{oh}");
            // Each instruction path, whatever this CPU runs by default.
            let mut got = vec![f32::NAN; ow * oh];
            area_resize_impl((ii, w + 1, win, &mut got, (ow, oh), &mut tmp));
            assert_eq!(got, want, "portable {win:?} -> {ow}x{oh}");
            #[cfg(target_arch = "x86_64")]
            if mex_core::simd::has_avx512() {
                let mut got = vec![f32::NAN; ow * oh];
                // SAFETY: the CPU supports AVX-512F/VL, AVX2 and FMA (checked above).
                unsafe { area_resize_avx512((ii, w + 1, win, &mut got, (ow, oh), &mut tmp)) };
                assert_eq!(got, want, "AVX-512 {win:?} -> {ow}x{oh}");
            }
        }
    }

    #[test]
    fn nms_variants() {
        let b = |x0: f32, s: f32| [x0, 0.0, x0 + 10.0, 10.0, s, 0.0, 0.0, 0.0, 0.0];
        // IoU of boxes shifted by 2: 80/120 = 0.667.
        let boxes = vec![b(0.0, 0.5), b(2.0, 0.9), b(30.0, 0.7)];
        assert_eq!(nms_torchvision(&boxes, 0.7), vec![1, 2, 0]);
        assert_eq!(nms_torchvision(&boxes, 0.6), vec![1, 2]);
        // Min overlap with +1: inter 9*11=99, area 121 -> 0.818.
        assert_eq!(nms_min(&boxes, 0.7), vec![1, 2]);
        assert_eq!(nms_min(&boxes, 0.9), vec![1, 2, 0]);
    }

    #[test]
    fn rerec_and_pad() {
        let mut c = [10.0, 20.0, 30.0, 60.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        rerec(&mut c);
        assert_eq!(&c[..4], &[0.0, 20.0, 40.0, 60.0]);
        assert_eq!(pad_window(&c, 35, 100), Some((0, 19, 35, 41)));
        let far = [200.0, 200.0, 300.0, 300.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(pad_window(&far, 100, 100), None);
    }
}
