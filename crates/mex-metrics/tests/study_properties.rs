//! `mex_metrics::study` on synthetic data with known truth: coverage of Hedges' g intervals,
//! the classifier's AUC interval under no group difference, grouped folds, bootstrap seeding.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_metrics::study::{
    auc_cluster_bootstrap, cross_validate_logistic, grouped_folds, hedges_g, icc_long, CvConfig,
};
use mex_metrics::BootstrapConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[test]
fn hedges_ci_covers_the_true_effect_in_at_least_90_of_100_studies() {
    let (delta, n1, n2) = (0.8, 20, 24);
    let mut covered = 0;
    for seed in 0..100u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..n1).map(|_| 10.0 + 2.0 * (delta + normal(&mut rng))).collect();
        let y: Vec<f64> = (0..n2).map(|_| 10.0 + 2.0 * normal(&mut rng)).collect();
        covered += hedges_g(&x, &y, 0.95).unwrap().g.covers(delta) as usize;
    }
    eprintln!("Hedges' g CI covered the true effect in {covered} / 100 studies");
    // Nominal 95: fewer than 90 in 100 has probability about 1 % for a correct interval.
    assert!(covered >= 90, "covered {covered} / 100");
    assert!(covered < 100, "an interval that always covers is suspicious: {covered}");
}

/// Recording-level rows of a study with `n` subjects per group, `r` recordings each, `d`
/// indicators; group difference `shift` on the first indicator (subject effects plus noise).
fn study_rows(seed: u64, n: usize, r: usize, d: usize, shift: f64) -> (Vec<Vec<f64>>, Vec<bool>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut x, mut y, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for subj in 0..2 * n {
        let pos = subj < n;
        let base: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
        for _ in 0..r {
            let row: Vec<f64> = base
                .iter()
                .enumerate()
                .map(|(j, b)| b + 0.5 * normal(&mut rng) + if pos && j == 0 { shift } else { 0.0 })
                .collect();
            x.push(row);
            y.push(pos);
            s.push(subj);
        }
    }
    (x, y, s)
}

#[test]
fn classifier_auc_ci_covers_half_without_a_group_difference() {
    let mut covered = 0;
    for seed in 0..100u64 {
        // 15 subjects per group, two recordings each, two indicators, 3 folds; 100 resamples
        // (each reruns the cross-validation) keep the 100 studies fast.
        let (x, y, s) = study_rows(1000 + seed, 15, 2, 2, 0.0);
        let cfg = CvConfig {
            n_folds: 3,
            seed,
            bootstrap: BootstrapConfig { n_resamples: 100, seed, ..Default::default() },
            ..Default::default()
        };
        let r = cross_validate_logistic(&x, &y, &s, &cfg).unwrap();
        covered += r.auc.auc.covers(0.5) as usize;
    }
    eprintln!("classifier AUC CI covered 0.5 in {covered} / 100 studies");
    assert!(covered >= 90, "covered {covered} / 100");
}

#[test]
fn classifier_separates_a_strong_effect() {
    let (x, y, s) = study_rows(7, 20, 2, 3, 4.0);
    let r = cross_validate_logistic(&x, &y, &s, &CvConfig::default()).unwrap();
    assert!(r.auc.auc.estimate > 0.95, "{:?}", r.auc.auc);
    assert!(r.auc.auc.ci_low > 0.8);
    assert!(r.sensitivity > 0.8 && r.specificity > 0.8);
    assert_eq!(r.fold_thresholds.len(), 5);
    // every probability is out of fold and in (0, 1)
    assert!(r.probabilities.iter().all(|p| *p > 0.0 && *p < 1.0));
    let total: u64 = r.calibration.bins.iter().map(|b| b.count).sum();
    assert_eq!(total as usize, y.len());
}

#[test]
fn grouped_folds_keep_subjects_whole_and_are_seeded() {
    let (_, y, s) = study_rows(3, 11, 3, 1, 0.0);
    let f = grouped_folds(&s, &y, 5, 42).unwrap();
    for i in 0..s.len() {
        for j in 0..s.len() {
            if s[i] == s[j] {
                assert_eq!(f[i], f[j], "subject {} split across folds", s[i]);
            }
        }
    }
    // both classes in every fold (11 subjects per class over 5 folds)
    for k in 0..5 {
        assert!((0..y.len()).any(|i| f[i] == k && y[i]));
        assert!((0..y.len()).any(|i| f[i] == k && !y[i]));
    }
    assert_eq!(f, grouped_folds(&s, &y, 5, 42).unwrap());
    assert_ne!(f, grouped_folds(&s, &y, 5, 43).unwrap());
    // a subject in both classes is refused
    assert!(grouped_folds(&[0, 0], &[true, false], 2, 0).is_err());
}

#[test]
fn auc_bootstrap_is_seeded_and_resamples_subjects() {
    // two recordings per subject; subject 0..4 positive with higher scores
    let truth: Vec<bool> = (0..16).map(|i| i < 8).collect();
    let scores: Vec<f64> =
        (0..16).map(|i| if i < 8 { 1.0 + i as f64 * 0.1 } else { i as f64 * 0.1 - 0.6 }).collect();
    let subj: Vec<usize> = (0..16).map(|i| i / 2).collect();
    let cfg = BootstrapConfig { n_resamples: 300, seed: 5, ..Default::default() };
    let a = auc_cluster_bootstrap(&truth, &scores, &subj, &cfg).unwrap();
    let b = auc_cluster_bootstrap(&truth, &scores, &subj, &cfg).unwrap();
    assert_eq!(a, b);
    // perfectly separated: every stratified resample has AUC 1
    assert_eq!((a.auc.estimate, a.auc.ci_low, a.auc.ci_high), (1.0, 1.0, 1.0));
    assert_eq!(a.n_used, 300);
    assert!(a.band.tpr_low.iter().all(|&t| t == 1.0) || a.band.fpr[0] == 0.0);
    // overlapping scores: a proper interval around the estimate
    let scores2: Vec<f64> = (0..16).map(|i| ((i * 7) % 16) as f64).collect();
    let c = auc_cluster_bootstrap(&truth, &scores2, &subj, &cfg).unwrap();
    assert!(c.auc.ci_low < c.auc.estimate && c.auc.estimate < c.auc.ci_high);
}

#[test]
fn icc_long_matches_the_wide_table_and_drops_incomplete_subjects() {
    // subjects a, b, c with sessions 1 and 2; d has only session 1 and is dropped; a's session 2
    // has two recordings, averaged.
    let subjects = ["a", "a", "a", "b", "b", "c", "c", "d"];
    let sessions = [1, 2, 2, 1, 2, 1, 2, 1];
    let values = [1.0, 1.5, 2.5, 4.0, 5.0, 7.0, 8.5, 100.0];
    let long = icc_long(&subjects, &sessions, &values, 0.95).unwrap();
    let wide = mex_metrics::study::icc(&[vec![1.0, 2.0], vec![4.0, 5.0], vec![7.0, 8.5]], 0.95).unwrap();
    assert_eq!(long, wide);
    assert_eq!(long.n_subjects, 3);
}
