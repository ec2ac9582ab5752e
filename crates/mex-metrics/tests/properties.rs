//! Property tests: bounds, label-permutation invariance, perfect prediction, pooling vs averaging.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_metrics::{mean_of_fold_f1, pool_folds, roc_auc, ConfusionMatrix};
use proptest::prelude::*;

fn labels(n: usize, k: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1..=n).prop_flat_map(move |len| (prop::collection::vec(0..k, len), prop::collection::vec(0..k, len)))
}

proptest! {
    #[test]
    fn scores_lie_in_unit_interval((t, p) in labels(60, 4)) {
        let m = ConfusionMatrix::from_labels(&t, &p, 4).unwrap();
        let r = m.report().unwrap();
        for v in [r.accuracy, r.uf1, r.uar, r.macro_f1, r.weighted_f1] {
            prop_assert!((0.0..=1.0).contains(&v), "{v}");
        }
        if let Some(k) = r.kappa {
            prop_assert!((-1.0..=1.0).contains(&k));
        }
        for s in &r.per_class {
            prop_assert!((0.0..=1.0).contains(&s.precision) && (0.0..=1.0).contains(&s.recall));
            prop_assert!((0.0..=1.0).contains(&s.f1));
        }
    }

    #[test]
    fn uf1_uar_invariant_under_label_permutation((t, p) in labels(60, 3), perm in Just(vec![0usize, 1, 2]).prop_shuffle()) {
        let a = ConfusionMatrix::from_labels(&t, &p, 3).unwrap();
        let tp: Vec<usize> = t.iter().map(|&x| perm[x]).collect();
        let pp: Vec<usize> = p.iter().map(|&x| perm[x]).collect();
        let b = ConfusionMatrix::from_labels(&tp, &pp, 3).unwrap();
        prop_assert!((a.uf1().unwrap() - b.uf1().unwrap()).abs() < 1e-12);
        prop_assert!((a.uar().unwrap() - b.uar().unwrap()).abs() < 1e-12);
        prop_assert!((a.weighted_f1().unwrap() - b.weighted_f1().unwrap()).abs() < 1e-12);
    }

    #[test]
    fn perfect_prediction_scores_one((t, _) in labels(40, 5)) {
        let m = ConfusionMatrix::from_labels(&t, &t, 5).unwrap();
        prop_assert_eq!(m.uf1().unwrap(), 1.0);
        prop_assert_eq!(m.uar().unwrap(), 1.0);
        prop_assert_eq!(m.accuracy().unwrap(), 1.0);
        prop_assert_eq!(m.weighted_f1().unwrap(), 1.0);
    }

    #[test]
    fn merge_of_folds_equals_pooled_labels(folds in prop::collection::vec(labels(10, 3), 1..6)) {
        let mut merged = ConfusionMatrix::new(3).unwrap();
        let (mut at, mut ap) = (Vec::new(), Vec::new());
        for (t, p) in &folds {
            merged.merge(&ConfusionMatrix::from_labels(t, p, 3).unwrap()).unwrap();
            at.extend_from_slice(t);
            ap.extend_from_slice(p);
        }
        prop_assert_eq!(&merged, &ConfusionMatrix::from_labels(&at, &ap, 3).unwrap());
        let pooled = pool_folds(folds.iter().map(|(t, p)| (t.as_slice(), p.as_slice())), 3).unwrap();
        prop_assert_eq!(merged, pooled);
    }

    #[test]
    fn auc_is_flip_symmetric(t in prop::collection::vec(any::<bool>(), 2..50), s in prop::collection::vec(0u8..10, 50)) {
        prop_assume!(t.iter().any(|&x| x) && t.iter().any(|&x| !x));
        let s: Vec<f64> = s[..t.len()].iter().map(|&v| v as f64 / 10.0).collect();
        let a = roc_auc(&t, &s).unwrap();
        let neg: Vec<f64> = s.iter().map(|v| -v).collect();
        prop_assert!((0.0..=1.0).contains(&a));
        prop_assert!((a + roc_auc(&t, &neg).unwrap() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn pooled_uf1_is_not_the_mean_of_fold_f1() {
    // fold 1: one sample of class 0 predicted right -> fold macro F1 = 1.
    // fold 2: classes 0,1,1 predicted 1,1,1 -> F1_0 = 0, F1_1 = 4/5 -> fold macro F1 = 0.4.
    // mean of folds = 0.7. Pooled: class 0 TP1 FP0 FN1 -> 2/3; class 1 TP2 FP1 FN0 -> 4/5;
    // UF1 = (2/3 + 4/5)/2 = 11/15 = 0.7333.
    let f1 = (vec![0usize], vec![0usize]);
    let f2 = (vec![0usize, 1, 1], vec![1usize, 1, 1]);
    let folds = [(f1.0.as_slice(), f1.1.as_slice()), (f2.0.as_slice(), f2.1.as_slice())];
    let pooled = pool_folds(folds, 2).unwrap().uf1().unwrap();
    let mean = mean_of_fold_f1(folds, 2).unwrap();
    assert!((pooled - 11.0 / 15.0).abs() < 1e-12);
    assert!((mean - 0.7).abs() < 1e-12);
    assert!((pooled - mean).abs() > 0.03);
}

fn spans(max_len: usize) -> impl Strategy<Value = Vec<mex_metrics::Span>> {
    prop::collection::vec((0usize..200, 0usize..40), 0..max_len)
        .prop_map(|v| v.into_iter().map(|(a, l)| mex_metrics::Span::new(a, a + l).unwrap()).collect())
}

proptest! {
    #[test]
    fn spotting_counts_are_consistent(gt in spans(8), pred in spans(8)) {
        use mex_metrics::{match_video, Matching, SpotConfig};
        let greedy = match_video(&gt, &pred, &SpotConfig::default()).unwrap();
        let max = match_video(&gt, &pred, &SpotConfig { matching: Matching::Maximum, ..SpotConfig::default() }).unwrap();
        for r in [&greedy, &max] {
            prop_assert_eq!(r.counts.tp + r.counts.fp, pred.len() as u64);
            prop_assert_eq!(r.counts.tp + r.counts.fn_, gt.len() as u64);
            let mut g: Vec<usize> = r.matches.iter().map(|m| m.gt).collect();
            g.sort_unstable();
            g.dedup();
            prop_assert_eq!(g.len(), r.matches.len(), "a ground truth matched twice");
            for m in &r.matches {
                prop_assert!(m.iou >= 0.5 && (m.iou - pred[m.pred].iou(&gt[m.gt])).abs() < 1e-15);
            }
            let f1 = r.counts.f1();
            prop_assert!((0.0..=1.0).contains(&f1));
        }
        prop_assert!(max.counts.tp >= greedy.counts.tp);
    }

    #[test]
    fn auc_equals_mann_whitney_pair_count(t in prop::collection::vec(any::<bool>(), 2..40), s in prop::collection::vec(0u8..6, 40)) {
        prop_assume!(t.iter().any(|&x| x) && t.iter().any(|&x| !x));
        let s: Vec<f64> = s[..t.len()].iter().map(|&v| f64::from(v)).collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for i in (0..t.len()).filter(|&i| t[i]) {
            for j in (0..t.len()).filter(|&j| !t[j]) {
                pairs += 1.0;
                wins += if s[i] > s[j] { 1.0 } else if s[i] == s[j] { 0.5 } else { 0.0 };
            }
        }
        prop_assert!((roc_auc(&t, &s).unwrap() - wins / pairs).abs() < 1e-12);
    }
}
