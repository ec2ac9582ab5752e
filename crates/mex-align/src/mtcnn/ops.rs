//! Array operations of facenet-pytorch's `detect_face`: area resampling (`interpolate(mode="area")`),
//! box generation, NMS (torchvision's and the numpy `Min` variant), `rerec`, `pad` and `bbreg`.

/// A candidate box: `[x1, y1, x2, y2, score, r1, r2, r3, r4]` (regression offsets last).
pub(crate) type Cand = [f32; 9];

/// Reusable buffers of [`area_resize_plane`].
#[derive(Debug, Default)]
pub(crate) struct ResizeScratch {
    tmp: Vec<f32>,
    spans: Vec<(usize, usize)>,
}

/// `torch.nn.functional.interpolate(mode="area")` (adaptive average pooling) of one plane's crop
/// `[x0, x0+cw) x [y0, y0+ch)` of `src` (row stride `stride`) into `dst` (`ow x oh`), separably.
/// `scratch` is reused space, resized as needed.
pub(crate) fn area_resize_plane(
    src: &[f32],
    stride: usize,
    (x0, y0, cw, ch): (usize, usize, usize, usize),
    dst: &mut [f32],
    (ow, oh): (usize, usize),
    scratch: &mut ResizeScratch,
) {
    let ResizeScratch { tmp, spans } = scratch;
    if tmp.len() < ch * ow {
        tmp.resize(ch * ow, 0.0);
    }
    // Every value of `tmp[..ch * ow]` is written before it is read.
    let tmp = &mut tmp[..ch * ow];
    // The source window of every output column (integer divisions hoisted out of the row loop).
    spans.clear();
    spans.extend((0..ow).map(|ox| (ox * cw / ow, ((ox + 1) * cw).div_ceil(ow))));
    // Horizontal pass: tmp[r, ox] = mean of src row r over the x window of ox.
    let src_row = |r: usize| &src[(y0 + r) * stride + x0..(y0 + r) * stride + x0 + cw];
    if ow == cw {
        for (r, trow) in tmp.chunks_exact_mut(ow).enumerate() {
            trow.copy_from_slice(src_row(r));
        }
    } else {
        // Four rows at a time (independent sums, one span lookup); every sum still adds its window
        // left to right, as the one-row loop does.
        let mut blocks = tmp.chunks_exact_mut(4 * ow);
        let mut r = 0;
        for block in &mut blocks {
            let rows = [src_row(r), src_row(r + 1), src_row(r + 2), src_row(r + 3)];
            let (t0, rest) = block.split_at_mut(ow);
            let (t1, rest) = rest.split_at_mut(ow);
            let (t2, t3) = rest.split_at_mut(ow);
            for (ox, &(s, e)) in spans.iter().enumerate() {
                let mut a = [rows[0][s], rows[1][s], rows[2][s], rows[3][s]];
                for j in s + 1..e {
                    for (acc, row) in a.iter_mut().zip(&rows) {
                        *acc += row[j];
                    }
                }
                let n = (e - s) as f32;
                t0[ox] = a[0] / n;
                t1[ox] = a[1] / n;
                t2[ox] = a[2] / n;
                t3[ox] = a[3] / n;
            }
            r += 4;
        }
        for trow in blocks.into_remainder().chunks_exact_mut(ow) {
            let row = src_row(r);
            for (t, &(s, e)) in trow.iter_mut().zip(spans.iter()) {
                let sum: f32 = row[s..e].iter().sum();
                *t = sum / (e - s) as f32;
            }
            r += 1;
        }
    }
    // Vertical pass.
    for oy in 0..oh {
        let s = oy * ch / oh;
        let e = ((oy + 1) * ch).div_ceil(oh);
        let drow = &mut dst[oy * ow..(oy + 1) * ow];
        drow.copy_from_slice(&tmp[s * ow..(s + 1) * ow]);
        for r in s + 1..e {
            for (d, t) in drow.iter_mut().zip(&tmp[r * ow..(r + 1) * ow]) {
                *d += *t;
            }
        }
        if e - s > 1 {
            let inv = (e - s) as f32;
            for d in drow.iter_mut() {
                *d /= inv;
            }
        }
    }
}

/// Sets `v` to `n` values, reusing its allocation; the values are stale (callers overwrite them).
pub(crate) fn fit_len(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    v.truncate(n);
}

/// Rows of one plane held in blocks of [`RowBlocks::R`], column by column
/// (`data[(rb·w + x)·R + i]` = row `rb·R + i`, column `x`), for whole-image area resampling that
/// sums `R` rows at once. Built once per image and shared by every pyramid level.
#[derive(Debug, Default)]
pub(crate) struct RowBlocks {
    data: Vec<f32>,
    w: usize,
    h: usize,
}

/// Reusable buffers of [`RowBlocks::area_resize`].
#[derive(Debug, Default)]
pub(crate) struct BlockScratch {
    /// Horizontal means, row by row (`[row][ox]`, rows padded to whole blocks).
    tmp: Vec<f32>,
    spans: Vec<(usize, usize)>,
    vspans: Vec<(usize, usize)>,
}

impl RowBlocks {
    /// Rows per block (the vector width of the horizontal pass).
    const R: usize = 16;

    /// Refills the blocks from a `w x h` plane (rows past `h` in the last block are zero).
    pub(crate) fn fill(&mut self, plane: &[f32], w: usize, h: usize) {
        const R: usize = RowBlocks::R;
        let nb = h.div_ceil(R);
        fit_len(&mut self.data, nb * w * R);
        for (rb, blk) in self.data.chunks_exact_mut(w * R).enumerate() {
            // Rows past the image (last block) are zero.
            let rows: [&[f32]; R] = std::array::from_fn(|i| {
                let y = rb * R + i;
                if y < h {
                    &plane[y * w..(y + 1) * w]
                } else {
                    &[]
                }
            });
            for (x, col) in blk.chunks_exact_mut(R).enumerate() {
                for (c, row) in col.iter_mut().zip(&rows) {
                    *c = row.get(x).copied().unwrap_or(0.0);
                }
            }
        }
        (self.w, self.h) = (w, h);
    }

    /// The whole plane area-resampled to `ow x oh` into `dst`: bit for bit what
    /// [`area_resize_plane`] gives for the full window (every sum is taken in the same order and
    /// divided the same way), with the horizontal pass done for `R` rows at once.
    pub(crate) fn area_resize(&self, dst: &mut [f32], size: (usize, usize), scratch: &mut BlockScratch) {
        use super::direct::{simd_level, Simd};
        match simd_level() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd_level` checked that the CPU supports AVX2 (and FMA, unused here).
            Simd::Avx2 | Simd::Avx512 => unsafe { self.area_resize_avx2(dst, size, scratch) },
            _ => self.area_resize_impl(dst, size, scratch),
        }
    }

    /// [`Self::area_resize`] compiled for AVX2 (the same operations, in wider registers).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn area_resize_avx2(&self, dst: &mut [f32], size: (usize, usize), scratch: &mut BlockScratch) {
        self.area_resize_impl(dst, size, scratch)
    }

    #[inline(always)]
    fn area_resize_impl(&self, dst: &mut [f32], (ow, oh): (usize, usize), scratch: &mut BlockScratch) {
        const R: usize = RowBlocks::R;
        let (w, h) = (self.w, self.h);
        let hp = h.div_ceil(R) * R;
        let BlockScratch { tmp, spans, vspans } = scratch;
        if tmp.len() < ow * hp {
            tmp.resize(ow * hp, 0.0);
        }
        spans.clear();
        spans.extend((0..ow).map(|ox| (ox * w / ow, ((ox + 1) * w).div_ceil(ow))));
        vspans.clear();
        vspans.extend((0..oh).map(|oy| (oy * h / oh, ((oy + 1) * h).div_ceil(oh))));
        // Horizontal pass: tmp[r][ox] = (src[r][s] + ... + src[r][e-1]) / (e - s), left to right,
        // for R rows at once.
        for (rb, blk) in self.data.chunks_exact(w * R).enumerate() {
            let rows = &mut tmp[rb * R * ow..(rb + 1) * R * ow];
            for (ox, &(s, e)) in spans.iter().enumerate() {
                let mut a = [0.0f32; R];
                a.copy_from_slice(&blk[s * R..(s + 1) * R]);
                for v in blk[(s + 1) * R..e * R].chunks_exact(R) {
                    for (ai, vi) in a.iter_mut().zip(v) {
                        *ai += *vi;
                    }
                }
                let n = (e - s) as f32;
                for (i, ai) in a.iter().enumerate() {
                    rows[i * ow + ox] = *ai / n;
                }
            }
        }
        // Vertical pass, whole rows at once.
        for (drow, &(s, e)) in dst.chunks_exact_mut(ow).zip(vspans.iter()) {
            drow.copy_from_slice(&tmp[s * ow..(s + 1) * ow]);
            for r in s + 1..e {
                for (d, t) in drow.iter_mut().zip(&tmp[r * ow..(r + 1) * ow]) {
                    *d += *t;
                }
            }
            if e - s > 1 {
                let n = (e - s) as f32;
                for d in drow.iter_mut() {
                    *d /= n;
                }
            }
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

    #[test]
    fn area_resize_matches_hand_values() {
        // 4x1 -> 3x1: windows [0,2), [1,3), [2,4).
        let src = [0.0, 3.0, 6.0, 9.0];
        let mut dst = [0.0; 3];
        let mut tmp = ResizeScratch::default();
        area_resize_plane(&src, 4, (0, 0, 4, 1), &mut dst, (3, 1), &mut tmp);
        assert_eq!(dst, [1.5, 4.5, 7.5]);
        // 2x2 -> 1x1 mean; 1x1 -> 2x2 replicate.
        let mut d1 = [0.0; 1];
        area_resize_plane(&[1.0, 2.0, 3.0, 6.0], 2, (0, 0, 2, 2), &mut d1, (1, 1), &mut tmp);
        assert_eq!(d1, [3.0]);
        let mut d4 = [0.0; 4];
        area_resize_plane(&[5.0], 1, (0, 0, 1, 1), &mut d4, (2, 2), &mut tmp);
        assert_eq!(d4, [5.0; 4]);
    }

    #[test]
    fn row_blocks_resize_is_bitwise_the_separable_resize() {
        let (w, h) = (53, 37);
        let mut st = 7u64;
        let src: Vec<f32> = (0..w * h)
            .map(|_| {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((st >> 33) % 256) as f32
            })
            .collect();
        let mut blocks = RowBlocks::default();
        blocks.fill(&src, w, h);
        let (mut t1, mut t2) = (ResizeScratch::default(), BlockScratch::default());
        for (ow, oh) in [(53, 37), (38, 27), (27, 19), (12, 12), (5, 3), (1, 1), (60, 40)] {
            let mut want = vec![0.0f32; ow * oh];
            area_resize_plane(&src, w, (0, 0, w, h), &mut want, (ow, oh), &mut t1);
            let mut got = vec![f32::NAN; ow * oh];
            blocks.area_resize(&mut got, (ow, oh), &mut t2);
            assert_eq!(got, want, "{ow}x{oh}");
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
