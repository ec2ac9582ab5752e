//! Main directional maximal difference (MDMD), the MEGC2020 spotting baseline.

use super::{Spotted, SpotterConfig};
use crate::error::{invalid, Result};
use crate::FlowField;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Parameters of MDMD ([`super::SpotMethod::Mdmd`]): Wang, Wu, Qian, Li and Fu, "A main
/// directional maximal difference analysis for spotting facial movements from long-term videos",
/// Neurocomputing 230 (2017); run as the MEGC2020 baseline by He, Wang, Li, Yap and Fu,
/// "Spotting macro- and micro-expression intervals in long video sequences", FG 2020.
///
/// For every frame `i` (the current frame CF), with head frame HF = `i - k` and tail frame
/// TF = `i + k`: the flows HF→CF `(ρ₁, θ₁)` and HF→TF `(ρ₂, θ₂)` (head motion removed as the
/// spotter is configured). The crop is cut into `blocks × blocks` blocks; in each, the pixels
/// are binned by the quadrant of `θ₁` and the main direction is the fullest bin; the block
/// value is the mean of the largest third of `ρ₁ − ρ₂` over the main-direction pixels, and the
/// frame feature `F(i)` the mean of the largest third of the block values. The contrast is
/// `C(i) = F(i) − (F(i − m) + F(i + m)) / 2` with `m = k − 1`, and a frame is spotted when
/// `C(i) > mean(C) + p · (max(C) − mean(C))`; runs of spotted frames are the intervals (as the
/// baseline's code turns frame predictions into intervals).
///
/// Streaming differences from the published code: the mean and maximum of `C` are taken over
/// the last `window_s` seconds instead of the whole video, the quadrants come from
/// `atan2(v, u)` (the MATLAB code's `atan(u ./ v)` folds them into two), and the flow is the
/// spotter's estimator instead of RLOF. The baseline chooses `k` per dataset and expression
/// type (CAS(ME)²: 12 frames for micro, 39 for macro at 30 fps; SAMM: 80 and 260 at 200 fps)
/// and reports the best `p`; here `k = round(k_s · fps)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MdmdConfig {
    /// Head / tail distance in seconds (0.4 s: the baseline's micro-expression setting).
    pub k_s: f64,
    /// Blocks per side of the grid.
    pub blocks: usize,
    /// Threshold position between the mean and the maximum of the contrast (0..1).
    pub p: f32,
    /// Window of the threshold statistics, seconds.
    pub window_s: f64,
}

impl Default for MdmdConfig {
    fn default() -> Self {
        Self { k_s: 0.4, blocks: 6, p: 0.5, window_s: 60.0 }
    }
}

impl MdmdConfig {
    /// `k` in frames at `fps` (at least 1).
    pub fn k(&self, fps: f64) -> usize {
        ((self.k_s * fps).round() as usize).max(1)
    }

    /// Checks ranges.
    pub fn validate(&self, fps: f64) -> Result<()> {
        if !(self.k_s.is_finite() && self.k_s > 0.0 && self.k_s * fps <= 10_000.0) {
            return Err(invalid("k_s", self.k_s, "must be > 0 and at most 10000 frames"));
        }
        if !(1..=64).contains(&self.blocks) {
            return Err(invalid("blocks", self.blocks, "must lie in 1..=64"));
        }
        if !(self.p.is_finite() && (0.0..=1.0).contains(&self.p)) {
            return Err(invalid("p", self.p, "must lie in [0, 1]"));
        }
        if !(self.window_s.is_finite() && self.window_s > 0.0 && self.window_s <= 3600.0) {
            return Err(invalid("window_s", self.window_s, "must lie in (0, 3600] s"));
        }
        Ok(())
    }
}

/// Mean of the largest third (at least one) of `v` (reordered).
fn top_third_mean(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let n = ((v.len() as f32 / 3.0).round() as usize).clamp(1, v.len());
    if n < v.len() {
        v.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
    }
    v[..n].iter().sum::<f32>() / n as f32
}

/// The MDMD feature of one frame from the flows HF→CF (`f1`) and HF→TF (`f2`).
pub(crate) fn feature(f1: &FlowField, f2: &FlowField, blocks: usize, buf: &mut Vec<f32>) -> f32 {
    let (w, h) = f1.size();
    let (bw, bh) = (w / blocks, h / blocks);
    if bw == 0 || bh == 0 {
        return 0.0;
    }
    let (u1, v1, u2, v2) = (f1.u(), f1.v(), f2.u(), f2.v());
    let mut values = Vec::with_capacity(blocks * blocks);
    for by in 0..blocks {
        for bx in 0..blocks {
            let mut count = [0usize; 4];
            let quad = |i: usize| -> usize {
                match (u1[i] >= 0.0, v1[i] >= 0.0) {
                    (true, true) => 0,
                    (false, true) => 1,
                    (false, false) => 2,
                    (true, false) => 3,
                }
            };
            for y in by * bh..(by + 1) * bh {
                for x in bx * bw..(bx + 1) * bw {
                    count[quad(y * w + x)] += 1;
                }
            }
            let main = (0..4).max_by_key(|&q| (count[q], std::cmp::Reverse(q))).unwrap_or(0);
            buf.clear();
            for y in by * bh..(by + 1) * bh {
                for x in bx * bw..(bx + 1) * bw {
                    let i = y * w + x;
                    if quad(i) == main {
                        buf.push(u1[i].hypot(v1[i]) - u2[i].hypot(v2[i]));
                    }
                }
            }
            values.push(top_third_mean(buf));
        }
    }
    top_third_mean(&mut values)
}

/// Streaming state of MDMD.
pub(crate) struct State {
    k: usize,
    m: usize,
    p: f32,
    window: usize,
    /// `(frame, F)` of the last `2 m + 1` frames.
    feats: VecDeque<(usize, f32)>,
    /// Contrast values of the threshold window.
    contrast: VecDeque<f32>,
    run: Option<(usize, usize, f32)>,
}

impl State {
    pub(crate) fn new(c: &MdmdConfig, cfg: &SpotterConfig) -> Self {
        let k = c.k(cfg.fps);
        let m = k.saturating_sub(1);
        Self {
            k,
            m,
            p: c.p,
            window: ((c.window_s * cfg.fps).round() as usize).max(8),
            feats: VecDeque::with_capacity(2 * m + 1),
            contrast: VecDeque::new(),
            run: None,
        }
    }

    /// `t` is the frame whose frames `t - 2k, t - k, t` gave `f`: the feature is frame `t - k`'s.
    pub(crate) fn feed(&mut self, t: usize, f: f32, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        let i = t - self.k;
        self.feats.push_back((i, f));
        if self.feats.len() > 2 * self.m + 1 {
            self.feats.pop_front();
        }
        if self.feats.len() < 2 * self.m + 1 {
            return;
        }
        let (c_i, f_c) = self.feats[self.m];
        let c = f_c - 0.5 * (self.feats[0].1 + self.feats[2 * self.m].1);
        if self.contrast.len() == self.window {
            self.contrast.pop_front();
        }
        self.contrast.push_back(c);
        // enough history for the statistics: one head-to-tail span
        let spotted = if self.contrast.len() > 2 * self.k {
            let n = self.contrast.len() as f32;
            let mean = self.contrast.iter().sum::<f32>() / n;
            let max = self.contrast.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            c > mean + self.p * (max - mean) && max > mean
        } else {
            false
        };
        match (&mut self.run, spotted) {
            (Some(r), true) => {
                r.1 = c_i;
                r.2 = r.2.max(c);
            }
            (None, true) => self.run = Some((c_i, c_i, c)),
            (Some(_), false) => self.close(cfg, events),
            (None, false) => {}
        }
    }

    fn close(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        if let Some((a, b, peak)) = self.run.take() {
            if let Some(s) = Spotted::new(a, (a + b) / 2, b, peak, cfg) {
                events.push(s);
            }
        }
    }

    pub(crate) fn finish(&mut self, cfg: &SpotterConfig, events: &mut Vec<Spotted>) {
        self.close(cfg, events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_third_of_hand_values() {
        let mut v = vec![1.0, 9.0, 3.0, 7.0, 5.0, 2.0];
        // the largest 2 of 6: 9 and 7
        assert_eq!(top_third_mean(&mut v), 8.0);
        assert_eq!(top_third_mean(&mut [4.0]), 4.0);
        assert_eq!(top_third_mean(&mut []), 0.0);
    }

    #[test]
    fn feature_of_a_flash_and_a_hold() {
        // a block moving right by 1 px at CF and back at TF gives its magnitude; a movement
        // still held at TF gives 0
        let w = 12;
        let moving = FlowField::from_fn(w, w, |_, _| (1.0, 0.0));
        let still = FlowField::zeros(w, w);
        let mut buf = Vec::new();
        assert!((feature(&moving, &still, 2, &mut buf) - 1.0).abs() < 1e-6);
        assert!(feature(&moving, &moving, 2, &mut buf).abs() < 1e-6);
    }
}
