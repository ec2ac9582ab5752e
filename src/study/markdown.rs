//! `report.md`: the study report for people.

use super::report::{StudyReport, SubgroupResult};
use mex_metrics::study::EstimateCi;
use std::fmt::Write as _;

fn ci(e: &Option<EstimateCi>) -> String {
    match e {
        Some(e) => format!("{:.2} [{:.2}, {:.2}]", e.estimate, e.ci_low, e.ci_high),
        None => "–".into(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v != 0.0 && v.abs() < 10f64.powi(-(digits as i32)) => format!("{v:.1e}"),
        Some(v) => format!("{v:.digits$}"),
        None => "–".into(),
    }
}

/// Renders the report as Markdown.
pub fn render(r: &StudyReport) -> String {
    let mut s = String::new();
    let conf = (r.settings.confidence * 100.0).round();
    let _ = writeln!(s, "# Study report: {}\n", r.study);
    let _ = writeln!(s, "> **{}**\n>\n> Privacy: {}\n", r.disclaimer, r.privacy);
    let _ = writeln!(s, "## Sample\n");
    let _ = writeln!(s, "| group | subjects | recordings |\n|---|---:|---:|");
    let _ = writeln!(
        s,
        "| {} (positive) | {} | {} |",
        r.positive_group, r.n_subjects.positive, r.n_recordings.positive
    );
    let _ = writeln!(
        s,
        "| {} (reference) | {} | {} |\n",
        r.negative_group, r.n_subjects.negative, r.n_recordings.negative
    );
    let _ = writeln!(
        s,
        "Statistics are computed on subject means (several recordings of one subject are averaged), \
         except ICC (sessions) and the classifier (recordings, folds grouped by subject). Intervals are \
         {conf:.0} %; bootstrap: {} subject-level resamples, seed {}.\n",
        r.settings.bootstrap_resamples, r.settings.seed
    );
    let _ = writeln!(s, "## Group comparison per indicator\n");
    let _ = writeln!(
        s,
        "| indicator | n (pos/ref) | mean ± SD {} | mean ± SD {} | Hedges' g [CI] | Mann-Whitney p | BH-adjusted p | AUC [CI] |",
        r.positive_group, r.negative_group
    );
    let _ = writeln!(s, "|---|---|---|---|---|---:|---:|---|");
    for i in &r.indicators {
        let ms = |g: &super::report::GroupStats| match (g.mean, g.sd) {
            (Some(m), Some(sd)) => format!("{m:.3} ± {sd:.3}"),
            (Some(m), None) => format!("{m:.3}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {}/{} | {} | {} | {} | {} | {} | {} |",
            i.name,
            i.n_per_group.positive,
            i.n_per_group.negative,
            ms(&i.positive),
            ms(&i.negative),
            ci(&i.hedges_g),
            num(i.mann_whitney_p, 4),
            num(i.p_adjusted, 4),
            ci(&i.auc)
        );
    }
    let _ = writeln!(
        s,
        "\nHedges' g > 0 and AUC > 0.5: higher in {} than in {}. ![forest plot](plots/forest.svg)\n",
        r.positive_group, r.negative_group
    );
    if r.indicators.iter().any(|i| i.spearman.is_some()) {
        let _ = writeln!(s, "## Correlation with the clinical score\n");
        let _ = writeln!(s, "| indicator | subjects | Spearman rho [CI] | p |\n|---|---:|---|---:|");
        for i in r.indicators.iter().filter(|i| i.spearman.is_some()) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                i.name,
                i.spearman_n,
                ci(&i.spearman),
                num(i.spearman_p, 4)
            );
        }
        s.push('\n');
    }
    if r.indicators.iter().any(|i| i.icc2_1.is_some()) {
        let _ = writeln!(s, "## Test-retest reliability\n");
        let _ = writeln!(
            s,
            "| indicator | subjects x sessions | ICC(2,1) [CI] | ICC(3,1) [CI] |\n|---|---|---|---|"
        );
        for i in r.indicators.iter().filter(|i| i.icc2_1.is_some()) {
            let _ = writeln!(
                s,
                "| {} | {} x {} | {} | {} |",
                i.name,
                i.icc_n_subjects,
                i.icc_n_sessions,
                ci(&i.icc2_1),
                ci(&i.icc3_1)
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "## Cross-validated classifier\n");
    match &r.classifier {
        Some(c) => {
            let _ = writeln!(
                s,
                "L2 logistic regression (C = {}) over the {} standardised indicators, {} folds grouped by \
                 subject ({} recordings; {} / {} subjects). Cross-validated AUC (mean of the test folds' AUCs) {}, CI from a bootstrap of the whole cross-validation (conservative); at the Youden threshold chosen \
                 on the training folds only (median probability {:.3}): sensitivity {:.3}, specificity {:.3}. \
                 Expected calibration error {:.3}.\n",
                r.settings.c,
                c.indicators.len(),
                c.n_folds,
                c.n_recordings,
                c.n_per_group.positive,
                c.n_per_group.negative,
                ci(&Some(c.auc)),
                c.threshold,
                c.sensitivity,
                c.specificity,
                c.ece
            );
            let _ = writeln!(s, "![ROC](plots/roc.svg) ![calibration](plots/calibration.svg)\n");
        }
        None => {
            let _ =
                writeln!(s, "Not computed: {}.\n", r.classifier_note.as_deref().unwrap_or("not computable"));
        }
    }
    if !r.subgroups.is_empty() {
        let _ = writeln!(s, "## Subgroups (heterogeneity)\n");
        let _ = writeln!(s, "| variable | level | indicator | n (pos/ref) | Hedges' g [CI] | AUC |\n|---|---|---|---|---|---:|");
        for g in &r.subgroups {
            let SubgroupResult { variable, level, indicator, n_per_group, hedges_g, auc } = g;
            let _ = writeln!(
                s,
                "| {variable} | {level} | {indicator} | {}/{} | {} | {} |",
                n_per_group.positive,
                n_per_group.negative,
                ci(hedges_g),
                num(*auc, 2)
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "## Methods\n\nHedges' g: pooled-SD standardised mean difference with the small-sample correction \
         `1 − 3/(4(n1+n2) − 9)`, CI from the Hedges & Olkin (1985) standard error with a t critical value \
         (as pingouin and R effsize). Mann-Whitney U: two-sided, exact for small samples without ties, \
         otherwise normal approximation with tie and continuity corrections (as SciPy). p-values adjusted \
         across indicators by Benjamini-Hochberg. AUC: ties count one half; CI: percentile stratified \
         bootstrap over subjects. Spearman rho: CI by the Fisher z transform. ICC(2,1) and ICC(3,1): \
         Shrout & Fleiss (1979), McGraw & Wong (1996) intervals (as pingouin). Classifier: out-of-fold \
         probabilities pooled over folds; standardisation, model and threshold fitted on training folds \
         only. Definitions and sources: docs/study.md of mex."
    );
    s
}
