//! Spotting metrics of the MEGC challenges (MEGC2019 spotting guideline, Facial-Micro-ExpressionGC/MEGC2019) and the MEGC2023 spot-then-recognise
//! score (STRS).
//!
//! * A predicted interval is a true positive when its frame-inclusive IoU with a ground-truth
//!   interval is at least 0.5 ([`SpotConfig::iou_threshold`]) and that ground truth is not matched
//!   yet (one-to-one). Per video: `TP = a`, `FP = n − a`, `FN = m − a` for `n` predictions, `m`
//!   ground-truth intervals and `a` matches.
//! * **Matching order** ([`Matching::Greedy`], the default): predictions are visited in increasing
//!   `(onset, offset)` order (the MEGC log is sorted by predicted onset); each takes the still
//!   unmatched ground truth with the highest IoU `>= threshold`, ties to the ground truth with the
//!   smallest `(onset, offset)`. [`Matching::Maximum`] instead finds a maximum-cardinality one-to-one
//!   matching (it can only give more TPs, and only when ground-truth intervals overlap each other).
//! * Database level: the whole database is one long video: `P = ΣTP / Σ(TP+FP)`,
//!   `R = ΣTP / Σ(TP+FN)`, `F1 = 2PR / (P + R)` (pooled, not the mean of per-video F1). Zero
//!   divisions give 0, as in the MEGC reference code.
//! * With expression types (micro / macro, MEGC2020+), predictions of a type are matched against
//!   ground truth of the same type only; the "overall" counts are the sums over types.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

use mex_core::Interval;
use serde::{Deserialize, Serialize};

use crate::classification::ConfusionMatrix;
use crate::error::{Error, Result};

/// An interval of frames `[onset, offset]`, both inclusive (no apex needed for spotting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// First frame.
    pub onset: usize,
    /// Last frame (inclusive).
    pub offset: usize,
}

impl Span {
    /// A span, checking `onset <= offset`.
    pub fn new(onset: usize, offset: usize) -> Result<Self> {
        if onset > offset {
            return Err(Error::InvalidParam {
                name: "span",
                value: format!("onset {onset}, offset {offset}"),
                reason: "need onset <= offset",
            });
        }
        Ok(Self { onset, offset })
    }

    /// Number of frames `offset − onset + 1` (saturating at `usize::MAX` for the one span
    /// `[0, usize::MAX]` whose length does not fit).
    pub fn len(&self) -> usize {
        self.offset.saturating_sub(self.onset).saturating_add(1)
    }

    /// Always false: a span holds at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Intersection over union of the frame sets (inclusive), `|A ∩ B| / |A ∪ B|`; identical to
    /// [`mex_core::Interval::iou`].
    pub fn iou(&self, other: &Span) -> f64 {
        mex_core::frame_iou((self.onset, self.offset), (other.onset, other.offset))
    }
}

impl From<Interval> for Span {
    fn from(i: Interval) -> Self {
        Self { onset: i.onset, offset: i.offset }
    }
}

/// How predictions are paired with ground truth (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matching {
    /// Predictions in `(onset, offset)` order, each to its best free ground truth.
    #[default]
    Greedy,
    /// A maximum-cardinality one-to-one matching.
    Maximum,
}

/// Parameters of the spotting evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpotConfig {
    /// A prediction matches a ground truth when IoU `>=` this (MEGC: 0.5).
    pub iou_threshold: f64,
    /// Matching rule.
    pub matching: Matching,
}

impl Default for SpotConfig {
    fn default() -> Self {
        Self { iou_threshold: 0.5, matching: Matching::Greedy }
    }
}

impl SpotConfig {
    /// Checks `0 < iou_threshold <= 1`.
    pub fn validate(&self) -> Result<()> {
        if !(self.iou_threshold > 0.0 && self.iou_threshold <= 1.0) {
            return Err(Error::InvalidParam {
                name: "iou_threshold",
                value: self.iou_threshold.to_string(),
                reason: "must lie in (0, 1]",
            });
        }
        Ok(())
    }
}

/// TP/FP/FN counts of spotting, per video or pooled (add them up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotCounts {
    /// Matched predictions.
    pub tp: u64,
    /// Unmatched predictions.
    pub fp: u64,
    /// Unmatched ground-truth intervals.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl SpotCounts {
    /// `TP / (TP + FP)`, 0 when there is no prediction.
    pub fn precision(&self) -> f64 {
        let d = self.tp + self.fp;
        if d == 0 {
            0.0
        } else {
            self.tp as f64 / d as f64
        }
    }

    /// `TP / (TP + FN)`, 0 when there is no ground truth.
    pub fn recall(&self) -> f64 {
        let d = self.tp + self.fn_;
        if d == 0 {
            0.0
        } else {
            self.tp as f64 / d as f64
        }
    }

    /// `2PR / (P + R)`, 0 when `P + R = 0`.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

impl Add for SpotCounts {
    type Output = SpotCounts;
    fn add(self, o: SpotCounts) -> SpotCounts {
        SpotCounts { tp: self.tp + o.tp, fp: self.fp + o.fp, fn_: self.fn_ + o.fn_ }
    }
}

impl AddAssign for SpotCounts {
    fn add_assign(&mut self, o: SpotCounts) {
        *self = *self + o;
    }
}

/// One true-positive pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpotMatch {
    /// Index into the predictions.
    pub pred: usize,
    /// Index into the ground truth.
    pub gt: usize,
    /// Their IoU.
    pub iou: f64,
}

/// Result of one video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSpotResult {
    /// TP/FP/FN.
    pub counts: SpotCounts,
    /// The matched pairs, in prediction visiting order.
    pub matches: Vec<SpotMatch>,
}

fn sorted_order(spans: &[Span]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..spans.len()).collect();
    o.sort_by_key(|&i| (spans[i], i));
    o
}

/// Matches the predictions of one video against its ground truth.
pub fn match_video(gt: &[Span], pred: &[Span], cfg: &SpotConfig) -> Result<VideoSpotResult> {
    cfg.validate()?;
    for s in gt.iter().chain(pred) {
        Span::new(s.onset, s.offset)?;
    }
    let p_order = sorted_order(pred);
    let g_order = sorted_order(gt);
    // Only ground truths whose onset lies in [p.onset - |p| / t, p.offset] can reach IoU t with
    // p (they must overlap it and be at most |p| / t long): a window of `g_order`, found by
    // binary search, so that matching interval data is near-linear.
    let t = cfg.iou_threshold;
    let window = |p: &Span| {
        let reach = (p.len() as f64 / t).ceil();
        let lo_onset = if reach >= p.onset as f64 { 0 } else { p.onset - reach as usize };
        let a = g_order.partition_point(|&g| gt[g].onset < lo_onset);
        let b = g_order.partition_point(|&g| gt[g].onset <= p.offset);
        &g_order[a..b.max(a)]
    };
    let mut gt_of_pred: Vec<Option<usize>> = vec![None; pred.len()];
    match cfg.matching {
        Matching::Greedy => {
            let mut taken = vec![false; gt.len()];
            for &p in &p_order {
                let mut best: Option<(usize, f64)> = None;
                for &g in window(&pred[p]) {
                    if taken[g] {
                        continue;
                    }
                    let iou = pred[p].iou(&gt[g]);
                    if iou >= t && best.is_none_or(|(_, b)| iou > b) {
                        best = Some((g, iou));
                    }
                }
                if let Some((g, _)) = best {
                    taken[g] = true;
                    gt_of_pred[p] = Some(g);
                }
            }
        }
        Matching::Maximum => {
            // Kuhn's augmenting paths (iterative, visit stamps instead of clearing); candidate
            // lists in ground-truth order.
            let adj: Vec<Vec<usize>> = pred
                .iter()
                .map(|p| window(p).iter().copied().filter(|&g| p.iou(&gt[g]) >= t).collect())
                .collect();
            let mut pred_of_gt: Vec<Option<usize>> = vec![None; gt.len()];
            let mut seen = vec![0usize; gt.len()];
            for (k, &p) in p_order.iter().enumerate() {
                augment(p, k + 1, &adj, &mut seen, &mut pred_of_gt);
            }
            for (g, p) in pred_of_gt.iter().enumerate() {
                if let Some(p) = *p {
                    gt_of_pred[p] = Some(g);
                }
            }
        }
    }
    let matches: Vec<SpotMatch> = p_order
        .iter()
        .filter_map(|&p| gt_of_pred[p].map(|g| SpotMatch { pred: p, gt: g, iou: pred[p].iou(&gt[g]) }))
        .collect();
    let a = matches.len() as u64;
    Ok(VideoSpotResult {
        counts: SpotCounts { tp: a, fp: pred.len() as u64 - a, fn_: gt.len() as u64 - a },
        matches,
    })
}

/// One augmenting-path search from prediction `p0` (depth-first, on an explicit stack, the
/// candidates of each prediction in order); `stamp` marks the ground truths visited in this search.
fn augment(
    p0: usize,
    stamp: usize,
    adj: &[Vec<usize>],
    seen: &mut [usize],
    pred_of_gt: &mut [Option<usize>],
) -> bool {
    // Frames: (prediction, next candidate index, the ground truth that led here).
    let mut stack: Vec<(usize, usize, usize)> = vec![(p0, 0, usize::MAX)];
    while let Some(top) = stack.last_mut() {
        let (p, i) = (top.0, top.1);
        let Some(&g) = adj[p].get(i) else {
            stack.pop();
            continue;
        };
        top.1 += 1;
        if seen[g] == stamp {
            continue;
        }
        seen[g] = stamp;
        match pred_of_gt[g] {
            Some(q) => stack.push((q, 0, g)),
            None => {
                // Flip the path: each frame's prediction takes the ground truth below it.
                pred_of_gt[g] = Some(p);
                for k in (1..stack.len()).rev() {
                    pred_of_gt[stack[k].2] = Some(stack[k - 1].0);
                }
                return true;
            }
        }
    }
    false
}

/// Expression type of a spotted interval (MEGC2020+ evaluate them separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpressionType {
    /// Micro-expression.
    Micro,
    /// Macro-expression.
    Macro,
}

impl fmt::Display for ExpressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpressionType::Micro => "micro",
            ExpressionType::Macro => "macro",
        })
    }
}

impl FromStr for ExpressionType {
    type Err = Error;
    /// `micro`/`me`/`micro-expression` or `macro`/`mae`/`macro-expression`, case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "micro" | "me" | "micro-expression" => Ok(ExpressionType::Micro),
            "macro" | "mae" | "macro-expression" => Ok(ExpressionType::Macro),
            _ => Err(Error::InvalidParam {
                name: "type",
                value: s.to_string(),
                reason: "expected micro or macro",
            }),
        }
    }
}

/// A labelled interval of a database: video id, optional type, frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotRecord {
    /// Video identifier.
    pub video: String,
    /// Expression type, when the evaluation is typed.
    pub kind: Option<ExpressionType>,
    /// Frames.
    pub span: Span,
}

/// Database-level spotting result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotEvaluation {
    /// Pooled counts over all videos (and types).
    pub overall: SpotCounts,
    /// Counts of each video (summed over types).
    pub per_video: BTreeMap<String, SpotCounts>,
    /// Pooled counts of each type, when every record has a type.
    pub per_type: Option<BTreeMap<ExpressionType, SpotCounts>>,
}

/// Evaluates a whole database. Either every record (ground truth and prediction) has a type, and
/// types are matched separately, or none has. Videos with predictions but no ground truth count
/// their predictions as FP.
pub fn evaluate_spotting(gt: &[SpotRecord], pred: &[SpotRecord], cfg: &SpotConfig) -> Result<SpotEvaluation> {
    cfg.validate()?;
    let typed = gt.iter().chain(pred).filter(|r| r.kind.is_some()).count();
    let typed = match typed {
        0 => false,
        t if t == gt.len() + pred.len() => true,
        _ => {
            return Err(Error::InvalidParam {
                name: "type",
                value: format!("{typed} of {} records typed", gt.len() + pred.len()),
                reason: "either every record has an expression type or none has",
            })
        }
    };
    type Key = (String, Option<ExpressionType>);
    let mut groups: BTreeMap<Key, (Vec<Span>, Vec<Span>)> = BTreeMap::new();
    for r in gt {
        groups.entry((r.video.clone(), r.kind)).or_default().0.push(r.span);
    }
    for r in pred {
        groups.entry((r.video.clone(), r.kind)).or_default().1.push(r.span);
    }
    let mut overall = SpotCounts::default();
    let mut per_video: BTreeMap<String, SpotCounts> = BTreeMap::new();
    let mut per_type: BTreeMap<ExpressionType, SpotCounts> = BTreeMap::new();
    for ((video, kind), (g, p)) in &groups {
        let c = match_video(g, p, cfg)?.counts;
        overall += c;
        *per_video.entry(video.clone()).or_default() += c;
        if let Some(k) = kind {
            *per_type.entry(*k).or_default() += c;
        }
    }
    if typed {
        for k in [ExpressionType::Micro, ExpressionType::Macro] {
            per_type.entry(k).or_default();
        }
    }
    Ok(SpotEvaluation { overall, per_video, per_type: typed.then_some(per_type) })
}

/// Ground truth and predictions of one video for STRS: each interval with its emotion class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrsVideo {
    /// Ground-truth intervals and classes.
    pub gt: Vec<(Span, usize)>,
    /// Predicted intervals and classes.
    pub pred: Vec<(Span, usize)>,
}

/// Analysis (recognition) scores on the spotted true positives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnalysisScores {
    /// Number of TP pairs classified.
    pub n_pairs: u64,
    /// Mean per-class precision over the classes present among the pairs.
    pub precision: f64,
    /// Mean per-class recall over the same classes (this is the UAR).
    pub recall: f64,
    /// `2 P R / (P + R)` of the two means above.
    pub f1: f64,
    /// Mean per-class F1 (UF1).
    pub uf1: f64,
    /// Unweighted average recall = `recall`, the mean of per-class RECALL (the published
    /// `strs_metric.py` reports mean precision under this name; we do not).
    pub uar: f64,
}

/// The MEGC2023 spot-then-recognise result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrsResult {
    /// Pooled spotting counts.
    pub spot: SpotCounts,
    /// Spotting F1.
    pub f1_spot: f64,
    /// Recognition of the spotted TPs.
    pub analysis: AnalysisScores,
    /// `f1_spot × analysis.f1`.
    pub strs: f64,
}

/// STRS = F1_spotting × F1_analysis (Liong, See & Chan 2023; genbing99/STRS-Metric).
///
/// Spotting uses [`match_video`] (one-to-one, unlike the reference script which lets one
/// prediction match several ground truths). Analysis: the `(gt class, predicted class)` pairs of
/// all TPs form a confusion matrix; per-class precision/recall (zero-division 0) are averaged over
/// the classes present among the pairs (the reference script crashes on a class absent from the
/// pairs); `F1_analysis = 2 P̄ R̄ / (P̄ + R̄)`. With no TP, every analysis score is 0.
pub fn strs(videos: &[StrsVideo], n_classes: usize, cfg: &SpotConfig) -> Result<StrsResult> {
    let mut spot = SpotCounts::default();
    let mut cm = ConfusionMatrix::new(n_classes)?;
    for v in videos {
        let g: Vec<Span> = v.gt.iter().map(|x| x.0).collect();
        let p: Vec<Span> = v.pred.iter().map(|x| x.0).collect();
        let r = match_video(&g, &p, cfg)?;
        spot += r.counts;
        for m in &r.matches {
            cm.add(v.gt[m.gt].1, v.pred[m.pred].1)?;
        }
    }
    let analysis = if cm.total() == 0 {
        AnalysisScores { n_pairs: 0, precision: 0.0, recall: 0.0, f1: 0.0, uf1: 0.0, uar: 0.0 }
    } else {
        let present: Vec<_> =
            (0..n_classes).filter(|&c| cm.is_present(c)).map(|c| cm.class_stats(c)).collect();
        let k = present.len() as f64;
        let precision = present.iter().map(|s| s.precision).sum::<f64>() / k;
        let recall = present.iter().map(|s| s.recall).sum::<f64>() / k;
        let uf1 = present.iter().map(|s| s.f1).sum::<f64>() / k;
        let f1 =
            if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        AnalysisScores { n_pairs: cm.total(), precision, recall, f1, uf1, uar: recall }
    };
    let f1_spot = spot.f1();
    Ok(StrsResult { spot, f1_spot, analysis, strs: f1_spot * analysis.f1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: usize, b: usize) -> Span {
        Span::new(a, b).unwrap()
    }

    #[test]
    fn iou_matches_core_interval() {
        for (a, b, c, d) in [(0, 9, 5, 14), (3, 3, 3, 3), (0, 4, 5, 9), (2, 20, 4, 6)] {
            let i = Interval::new(a, a, b).unwrap();
            let j = Interval::new(c, c, d).unwrap();
            assert_eq!(Span::from(i).iou(&Span::from(j)), i.iou(&j));
        }
    }

    #[test]
    fn megc_rule_by_hand() {
        // gt: [10,19] (10 frames), [50,59]; preds: [12,21] IoU 8/12 TP, [14,23] IoU 6/14 < .5 FP,
        // [100,110] FP.
        let gt = [s(10, 19), s(50, 59)];
        let pred = [s(100, 110), s(14, 23), s(12, 21)];
        let r = match_video(&gt, &pred, &SpotConfig::default()).unwrap();
        assert_eq!(r.counts, SpotCounts { tp: 1, fp: 2, fn_: 1 });
        assert_eq!(r.matches[0].pred, 2);
        // exactly 0.5 counts: [0,9] vs [0,19] = 10/20
        let r = match_video(&[s(0, 19)], &[s(0, 9)], &SpotConfig::default()).unwrap();
        assert_eq!(r.counts.tp, 1);
    }

    #[test]
    fn one_to_one_and_order() {
        // two predictions on one GT: only one TP.
        let r = match_video(&[s(0, 9)], &[s(0, 9), s(1, 9)], &SpotConfig::default()).unwrap();
        assert_eq!(r.counts, SpotCounts { tp: 1, fp: 1, fn_: 0 });
        // predictions are visited by onset, so (2,11) comes before (4,13); it takes the free GT of
        // highest IoU, not the first: A=(0,9) 8/12, B=(2,11) 1.0 -> B.
        let gt = [s(0, 9), s(2, 11)];
        let pred = [s(4, 13), s(2, 11)];
        let r = match_video(&gt, &pred, &SpotConfig::default()).unwrap();
        // (4,13): A inter 6 union 14 < .5 -> FP.
        assert_eq!(r.matches.len(), 1);
        assert_eq!((r.matches[0].pred, r.matches[0].gt), (1, 1));
        assert_eq!(r.counts, SpotCounts { tp: 1, fp: 1, fn_: 1 });
    }

    #[test]
    fn extreme_spans_do_not_overflow() {
        let top = Span::new(usize::MAX - 4, usize::MAX).unwrap();
        assert_eq!(top.iou(&top), 1.0);
        let all = Span::new(0, usize::MAX).unwrap();
        assert_eq!(all.iou(&all), 1.0);
        assert_eq!(all.len(), usize::MAX);
        assert!(all.iou(&top) > 0.0 && all.iou(&top) < 1e-15);
        let r = match_video(&[top], &[top], &SpotConfig::default()).unwrap();
        assert_eq!(r.counts.tp, 1);
        let r =
            match_video(&[top], &[top], &SpotConfig { matching: Matching::Maximum, ..SpotConfig::default() })
                .unwrap();
        assert_eq!(r.counts.tp, 1);
    }

    #[test]
    fn maximum_matching_is_fast_and_agrees_with_a_brute_force_on_small_cases() {
        // 10,000 intervals each side: near-linear (this took about 29 s with a quadratic search).
        let gt: Vec<Span> = (0..10_000).map(|i| s(i * 10, i * 10 + 7)).collect();
        let pred: Vec<Span> = (0..10_000).map(|i| s(i * 10 + 1, i * 10 + 8)).collect();
        let cfg = SpotConfig { matching: Matching::Maximum, ..SpotConfig::default() };
        let r = match_video(&gt, &pred, &cfg).unwrap();
        assert_eq!(r.counts.tp, 10_000);
        // Small random cases: the matching size equals a brute-force maximum over all subsets
        // of predictions' assignments.
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % n) as usize
        };
        for _ in 0..300 {
            let (ng, np) = (1 + rnd(5), 1 + rnd(5));
            let mut mk = |k: usize| -> Vec<Span> {
                (0..k)
                    .map(|_| {
                        let a = rnd(30);
                        s(a, a + 1 + rnd(8))
                    })
                    .collect()
            };
            let g = mk(ng);
            let p = mk(np);
            let got = match_video(&g, &p, &cfg).unwrap().counts.tp as usize;
            fn best(p: &[Span], g: &[Span], used: &mut Vec<bool>, i: usize) -> usize {
                if i == p.len() {
                    return 0;
                }
                let mut m = best(p, g, used, i + 1);
                for j in 0..g.len() {
                    if !used[j] && p[i].iou(&g[j]) >= 0.5 {
                        used[j] = true;
                        m = m.max(1 + best(p, g, used, i + 1));
                        used[j] = false;
                    }
                }
                m
            }
            assert_eq!(got, best(&p, &g, &mut vec![false; g.len()], 0), "{g:?} {p:?}");
        }
    }

    #[test]
    fn maximum_beats_greedy_when_gts_overlap() {
        // A=[0,9], B=[0,5]. P1=[0,8] (visited first): A 9/10=.9, B 6/9=.67 -> greedy takes A.
        // P2=[0,12]: A 10/13=.77, B 6/13 < .5 -> A taken -> FP. Maximum: P1-B, P2-A -> 2 TPs.
        let gt = [s(0, 9), s(0, 5)];
        let pred = [s(0, 8), s(0, 12)];
        let g = match_video(&gt, &pred, &SpotConfig::default()).unwrap();
        assert_eq!(g.counts, SpotCounts { tp: 1, fp: 1, fn_: 1 });
        let cfg = SpotConfig { matching: Matching::Maximum, ..SpotConfig::default() };
        let m = match_video(&gt, &pred, &cfg).unwrap();
        assert_eq!(m.counts, SpotCounts { tp: 2, fp: 0, fn_: 0 });
    }

    #[test]
    fn database_pools_counts_not_f1() {
        let rec = |v: &str, a, b| SpotRecord { video: v.into(), kind: None, span: s(a, b) };
        // video a: 1 TP (of 1 gt, 1 pred) -> F1 1; video b: 0 TP, 3 FP, 1 FN -> F1 0.
        let gt = [rec("a", 0, 9), rec("b", 0, 9)];
        let pred = [rec("a", 0, 9), rec("b", 30, 39), rec("b", 50, 59), rec("b", 70, 79)];
        let e = evaluate_spotting(&gt, &pred, &SpotConfig::default()).unwrap();
        assert_eq!(e.overall, SpotCounts { tp: 1, fp: 3, fn_: 1 });
        // pooled: P 1/4, R 1/2, F1 = 2*(1/8)/(3/4) = 1/3 (mean of per-video F1 would be 0.5)
        assert!((e.overall.f1() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.per_video["b"], SpotCounts { tp: 0, fp: 3, fn_: 1 });
        assert!(e.per_type.is_none());
    }

    #[test]
    fn types_are_matched_separately() {
        let rec = |k: ExpressionType, a, b| SpotRecord { video: "v".into(), kind: Some(k), span: s(a, b) };
        use ExpressionType::*;
        // a micro prediction on a macro GT does not count.
        let gt = [rec(Macro, 0, 29), rec(Micro, 100, 109)];
        let pred = [rec(Micro, 0, 29), rec(Micro, 101, 110)];
        let e = evaluate_spotting(&gt, &pred, &SpotConfig::default()).unwrap();
        let t = e.per_type.unwrap();
        assert_eq!(t[&Micro], SpotCounts { tp: 1, fp: 1, fn_: 0 });
        assert_eq!(t[&Macro], SpotCounts { tp: 0, fp: 0, fn_: 1 });
        assert_eq!(e.overall, SpotCounts { tp: 1, fp: 1, fn_: 1 });
        let mixed = [SpotRecord { video: "v".into(), kind: None, span: s(0, 1) }];
        assert!(evaluate_spotting(&gt, &mixed, &SpotConfig::default()).is_err());
    }

    #[test]
    fn strs_uar_is_mean_recall_not_mean_precision() {
        // 4 TP pairs (gt, pred): (0,0), (0,0), (0,1), (1,1); one FP prediction, no FN.
        // class 0: TP 2 FP 0 FN 1 -> P 1, R 2/3; class 1: TP 1 FP 1 FN 0 -> P 1/2, R 1.
        // mean P = 0.75, mean R = 5/6 (UAR), F1_analysis = 2*.75*(5/6)/(.75+5/6)
        let v = StrsVideo {
            gt: vec![(s(0, 9), 0), (s(20, 29), 0), (s(40, 49), 0), (s(60, 69), 1)],
            pred: vec![(s(0, 9), 0), (s(20, 29), 0), (s(40, 49), 1), (s(60, 69), 1), (s(90, 99), 1)],
        };
        let r = strs(&[v], 2, &SpotConfig::default()).unwrap();
        assert_eq!(r.spot, SpotCounts { tp: 4, fp: 1, fn_: 0 });
        let uar = (2.0 / 3.0 + 1.0) / 2.0;
        assert!((r.analysis.uar - uar).abs() < 1e-12);
        assert!((r.analysis.uar - 0.75).abs() > 0.05, "UAR must not be mean precision");
        let f1a = 2.0 * 0.75 * uar / (0.75 + uar);
        let f1s = 2.0 * 0.8 * 1.0 / 1.8;
        assert!((r.analysis.f1 - f1a).abs() < 1e-12);
        assert!((r.strs - f1s * f1a).abs() < 1e-12);
        // UF1: F1_0 = 4/5, F1_1 = 2/3
        assert!((r.analysis.uf1 - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }
}
