//! A tour of mex-metrics on small made-up data: MEGC UF1/UAR of pooled LOSO folds, a clinical
//! screening summary, spotting F1, a subject-level bootstrap CI and a paired comparison.
//!
//! Run: `cargo run -p mex-metrics --example metrics_basic`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_metrics::{
    cluster_bootstrap, evaluate_spotting, mcnemar_labels, megc_breakdown, paired_permutation_test,
    pool_folds, roc_auc, youden_threshold, BinaryCounts, BootstrapConfig, ConfusionMatrix, PermutationConfig,
    Span, SpotConfig, SpotRecord,
};

fn main() -> anyhow::Result<()> {
    // --- MEGC2019 composite protocol: pool the test predictions of every LOSO fold ---------------
    // fold = one held-out subject; labels 0 negative, 1 positive, 2 surprise
    let folds: Vec<(&str, &str, Vec<usize>, Vec<usize>)> = vec![
        ("casme2", "sub01", vec![0, 0, 1, 2], vec![0, 0, 1, 0]),
        ("casme2", "sub02", vec![0, 1, 1], vec![0, 1, 0]),
        ("smic", "s01", vec![0, 2, 2, 1], vec![0, 2, 2, 1]),
        ("samm", "006", vec![0, 0, 0, 2], vec![0, 1, 0, 2]),
    ];
    let pooled = pool_folds(folds.iter().map(|f| (f.2.as_slice(), f.3.as_slice())), 3)?;
    let report = pooled.report()?;
    println!("pooled over {} folds: n = {}", folds.len(), report.n);
    println!("  UF1 {:.4}  UAR {:.4}  accuracy {:.4}", report.uf1, report.uar, report.accuracy);

    let (mut truth, mut pred, mut dataset, mut subject) = (vec![], vec![], vec![], vec![]);
    for (d, s, t, p) in &folds {
        truth.extend_from_slice(t);
        pred.extend_from_slice(p);
        dataset.extend(std::iter::repeat_n(*d, t.len()));
        subject.extend(std::iter::repeat_n(*s, t.len()));
    }
    for (d, s) in megc_breakdown(&truth, &pred, &dataset, 3)?.per_group {
        println!("  {d:<7} n {:>2}  UF1 {:.4}  UAR {:.4}", s.n, s.uf1, s.uar);
    }

    // --- subject-level bootstrap CI of UF1 ------------------------------------------------------
    let ci = cluster_bootstrap(
        &subject,
        |idx| ConfusionMatrix::from_indices(&truth, &pred, idx, 3)?.uf1(),
        &BootstrapConfig { n_resamples: 1000, confidence: 0.95, seed: 7 },
    )?;
    println!("  UF1 95% CI (subject bootstrap): {:.3} – {:.3}", ci.lower, ci.upper);

    // --- two variants on the same samples ------------------------------------------------------
    let pred_b: Vec<usize> = pred.iter().map(|&p| if p == 1 { 0 } else { p }).collect();
    let m = mcnemar_labels(&truth, &pred, &pred_b)?;
    let uf1 = |p: &[usize]| ConfusionMatrix::from_labels(&truth, p, 3)?.uf1();
    let perm = paired_permutation_test(&pred, &pred_b, uf1, &PermutationConfig::default())?;
    println!(
        "  A vs B: McNemar b={} c={} p={:.3}; ΔUF1 {:+.3}, permutation p={:.3}",
        m.b,
        m.c,
        m.p_value(),
        perm.observed,
        perm.p_value
    );

    // --- clinical screening -----------------------------------------------------------------------
    let has_condition = [true, true, true, true, false, false, false, false, false, false];
    let score = [0.92, 0.71, 0.55, 0.30, 0.62, 0.41, 0.33, 0.20, 0.12, 0.05];
    let c = BinaryCounts::at_threshold(&has_condition, &score, 0.5)?;
    println!(
        "screening at 0.5: sensitivity {:.2} specificity {:.2} PPV {:.2} NPV {:.2}; AUC {:.3}",
        c.sensitivity()?,
        c.specificity()?,
        c.ppv()?,
        c.npv()?,
        roc_auc(&has_condition, &score)?
    );
    let y = youden_threshold(&has_condition, &score)?;
    println!("  Youden-optimal threshold {:.2} (J = {:.2})", y.threshold, y.j);

    // --- spotting -------------------------------------------------------------------------------------
    let rec = |v: &str, a, b| SpotRecord { video: v.into(), kind: None, span: Span::new(a, b).unwrap() };
    let gt = [rec("v1", 10, 19), rec("v1", 100, 140), rec("v2", 5, 20)];
    let spotted = [rec("v1", 12, 21), rec("v1", 60, 70), rec("v2", 6, 22)];
    let e = evaluate_spotting(&gt, &spotted, &SpotConfig::default())?;
    println!(
        "spotting: TP {} FP {} FN {} -> P {:.3} R {:.3} F1 {:.3}",
        e.overall.tp,
        e.overall.fp,
        e.overall.fn_,
        e.overall.precision(),
        e.overall.recall(),
        e.overall.f1()
    );
    Ok(())
}
