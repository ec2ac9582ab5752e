//! The statistics of a study and the report (`report.json` schema, version 1).

use super::config::StudyConfig;
use super::recordings::fnv_str;
use super::table::Row;
use crate::Result;
use mex_metrics::study::{
    auc_cluster_bootstrap, benjamini_hochberg, cross_validate_logistic, describe, hedges_g, icc_long,
    mann_whitney, spearman, CvConfig, EstimateCi, GroupSummary, LogisticConfig, MwuMethod, RocBand,
};
use mex_metrics::{BootstrapConfig, CalibrationBin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the `report.json` schema (documented in docs/study.md).
pub const SCHEMA_VERSION: u32 = 1;

/// A count per compared group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerGroup {
    /// Positive group.
    pub positive: usize,
    /// Negative (reference) group.
    pub negative: usize,
}

/// Mean and SD of one group (subject-level values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Subjects with a value.
    pub n: usize,
    /// Mean.
    pub mean: Option<f64>,
    /// Sample SD (`ddof = 1`).
    pub sd: Option<f64>,
}

/// The results of one indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorResult {
    /// Indicator name.
    pub name: String,
    /// Subjects with a value, per group.
    pub n_per_group: PerGroup,
    /// Positive group's subject-level mean and SD.
    pub positive: GroupStats,
    /// Negative group's subject-level mean and SD.
    pub negative: GroupStats,
    /// Hedges' g (positive − negative) with its CI.
    pub hedges_g: Option<EstimateCi>,
    /// Mann-Whitney U of the positive group.
    pub mann_whitney_u: Option<f64>,
    /// Two-sided Mann-Whitney p-value.
    pub mann_whitney_p: Option<f64>,
    /// Benjamini-Hochberg adjusted p-value across indicators.
    pub p_adjusted: Option<f64>,
    /// ROC AUC of the indicator for the positive group, subject-level bootstrap CI.
    pub auc: Option<EstimateCi>,
    /// Spearman's rho with the clinical score (subject level), Fisher-z CI.
    pub spearman: Option<EstimateCi>,
    /// Subjects in the Spearman correlation.
    pub spearman_n: usize,
    /// Spearman p-value.
    pub spearman_p: Option<f64>,
    /// ICC(2,1) across sessions.
    pub icc2_1: Option<EstimateCi>,
    /// ICC(3,1) across sessions.
    pub icc3_1: Option<EstimateCi>,
    /// Subjects with a value at every session (ICC).
    pub icc_n_subjects: usize,
    /// Sessions (ICC).
    pub icc_n_sessions: usize,
    /// Recordings without a value for this indicator (null in their analysis).
    pub n_missing_recordings: usize,
}

/// One cell of a subgroup table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupResult {
    /// `sex`, `age_band` or `site`.
    pub variable: String,
    /// The level (e.g. `F`, `40-59`, `site-A`).
    pub level: String,
    /// Indicator name.
    pub indicator: String,
    /// Subjects per group in this subgroup.
    pub n_per_group: PerGroup,
    /// Hedges' g with CI (null with fewer than two subjects in a group).
    pub hedges_g: Option<EstimateCi>,
    /// ROC AUC point estimate.
    pub auc: Option<f64>,
}

/// The cross-validated classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierResult {
    /// Indicators used as features.
    pub indicators: Vec<String>,
    /// Recordings used (those with every indicator).
    pub n_recordings: usize,
    /// Subjects used, per group.
    pub n_per_group: PerGroup,
    /// Folds grouped by subject.
    pub n_folds: usize,
    /// Cross-validated AUC (mean of the test folds' AUCs) with its subject-level bootstrap CI.
    pub auc: EstimateCi,
    /// AUC of the pooled out-of-fold probabilities (for comparison; biased low in small samples).
    pub auc_pooled: f64,
    /// Sensitivity at the training folds' Youden thresholds.
    pub sensitivity: f64,
    /// Specificity at the training folds' Youden thresholds.
    pub specificity: f64,
    /// Median of the folds' thresholds (probability of the positive group).
    pub threshold: f64,
    /// Each fold's threshold.
    pub fold_thresholds: Vec<f64>,
    /// Brier-type calibration summary: expected calibration error.
    pub ece: f64,
    /// Reliability diagram bins.
    pub calibration: Vec<CalibrationBin>,
    /// Pooled ROC curve: false-positive rates.
    pub roc_fpr: Vec<f64>,
    /// Pooled ROC curve: true-positive rates.
    pub roc_tpr: Vec<f64>,
    /// Pointwise bootstrap band of the ROC curve.
    pub roc_band: RocBand,
}

/// Settings echoed in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSettings {
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Bootstrap resamples.
    pub bootstrap_resamples: usize,
    /// Seed.
    pub seed: u64,
    /// Classifier folds.
    pub n_folds: usize,
    /// Logistic regression `C`.
    pub c: f64,
    /// Age-band cut points.
    pub age_bands: Vec<f64>,
}

/// The study report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReport {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Study name.
    pub study: String,
    /// What this is and is not.
    pub disclaimer: String,
    /// What the report holds (derived numbers only).
    pub privacy: String,
    /// Positive group label.
    pub positive_group: String,
    /// Negative group label.
    pub negative_group: String,
    /// Recordings (table rows) per group.
    pub n_recordings: PerGroup,
    /// Subjects per group.
    pub n_subjects: PerGroup,
    /// Settings.
    pub settings: ReportSettings,
    /// Per-indicator results, in name order.
    pub indicators: Vec<IndicatorResult>,
    /// The cross-validated classifier (null when not computable).
    pub classifier: Option<ClassifierResult>,
    /// Why the classifier is null, if it is.
    pub classifier_note: Option<String>,
    /// Subgroup tables.
    pub subgroups: Vec<SubgroupResult>,
    /// Files written next to the report (relative paths).
    pub files: Vec<String>,
}

/// The disclaimer printed in every report.
pub const DISCLAIMER: &str = "Research analysis, not a diagnostic device: these statistics describe group differences in this sample and must not be used to diagnose individuals.";
/// The privacy note printed in every report.
pub const PRIVACY: &str = "The report holds derived numbers only (indicator statistics, counts, subject and group labels as given in the table); no face images or video frames are written.";

/// One subject: group, the row indices of its recordings.
struct Subject<'a> {
    positive: bool,
    rows: Vec<&'a Row>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn subject_means<'a>(subjects: &BTreeMap<&'a str, Subject<'a>>, ind: &str) -> Vec<(&'a str, bool, f64)> {
    subjects
        .iter()
        .filter_map(|(name, s)| {
            let vals: Vec<f64> = s.rows.iter().filter_map(|r| r.values.get(ind).copied()).collect();
            mean(&vals).map(|m| (*name, s.positive, m))
        })
        .collect()
}

fn stats_of(v: &[f64]) -> GroupStats {
    match describe(v) {
        Ok(GroupSummary { n, mean, sd }) => {
            GroupStats { n, mean: Some(mean), sd: sd.is_finite().then_some(sd) }
        }
        Err(_) => GroupStats { n: 0, mean: None, sd: None },
    }
}

fn auc_point(pos: &[f64], neg: &[f64]) -> Option<f64> {
    mann_whitney(pos, neg, MwuMethod::Asymptotic).ok().map(|m| m.auc)
}

fn age_band(age: f64, cuts: &[f64]) -> String {
    let fmt = |v: f64| if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v}") };
    match cuts.iter().position(|&c| age < c) {
        Some(0) => format!("<{}", fmt(cuts[0])),
        Some(i) => format!("{}-<{}", fmt(cuts[i - 1]), fmt(cuts[i])),
        None => format!(">={}", fmt(cuts[cuts.len() - 1])),
    }
}

/// Computes every statistic of the study from the checked rows (all of the two compared groups)
/// and the indicators to study.
pub fn compute_report(
    rows: &[Row],
    indicators: &[String],
    positive: &str,
    negative: &str,
    cfg: &StudyConfig,
) -> Result<StudyReport> {
    let mut subjects: BTreeMap<&str, Subject<'_>> = BTreeMap::new();
    for r in rows {
        subjects
            .entry(r.subject.as_str())
            .or_insert_with(|| Subject { positive: r.group == positive, rows: Vec::new() })
            .rows
            .push(r);
    }
    let count = |f: &dyn Fn(bool) -> usize| PerGroup { positive: f(true), negative: f(false) };
    let n_recordings = count(&|p| rows.iter().filter(|r| (r.group == positive) == p).count());
    let n_subjects = count(&|p| subjects.values().filter(|s| s.positive == p).count());
    let has_sessions = rows.iter().any(|r| r.session.is_some());

    let mut results = Vec::with_capacity(indicators.len());
    for ind in indicators {
        let per_subject = subject_means(&subjects, ind);
        let pos: Vec<f64> = per_subject.iter().filter(|s| s.1).map(|s| s.2).collect();
        let neg: Vec<f64> = per_subject.iter().filter(|s| !s.1).map(|s| s.2).collect();
        let g = hedges_g(&pos, &neg, cfg.confidence).ok().map(|h| h.g);
        let mw = if pos.len() >= 2 && neg.len() >= 2 {
            mann_whitney(&pos, &neg, MwuMethod::Auto).ok()
        } else {
            None
        };
        let auc = if pos.len() >= 2 && neg.len() >= 2 {
            let truth: Vec<bool> = per_subject.iter().map(|s| s.1).collect();
            let scores: Vec<f64> = per_subject.iter().map(|s| s.2).collect();
            let clusters: Vec<&str> = per_subject.iter().map(|s| s.0).collect();
            let bcfg = BootstrapConfig {
                n_resamples: cfg.bootstrap_resamples,
                confidence: cfg.confidence,
                seed: cfg.seed ^ fnv_str(ind),
            };
            auc_cluster_bootstrap(&truth, &scores, &clusters, &bcfg).ok().map(|a| a.auc)
        } else {
            None
        };
        // Spearman with the clinical score: subject means of indicator and score
        let mut sx = Vec::new();
        let mut sy = Vec::new();
        for s in subjects.values() {
            let vals: Vec<f64> = s.rows.iter().filter_map(|r| r.values.get(ind).copied()).collect();
            let scores: Vec<f64> = s.rows.iter().filter_map(|r| r.score).collect();
            if let (Some(a), Some(b)) = (mean(&vals), mean(&scores)) {
                sx.push(a);
                sy.push(b);
            }
        }
        let sp = spearman(&sx, &sy, cfg.confidence).ok();
        let (mut icc2, mut icc3, mut icc_n, mut icc_k) = (None, None, 0, 0);
        if has_sessions {
            let recs: Vec<(&str, &str, f64)> = rows
                .iter()
                .filter_map(|r| Some((r.subject.as_str(), r.session.as_deref()?, *r.values.get(ind)?)))
                .collect();
            let subj: Vec<&str> = recs.iter().map(|r| r.0).collect();
            let sess: Vec<&str> = recs.iter().map(|r| r.1).collect();
            let vals: Vec<f64> = recs.iter().map(|r| r.2).collect();
            if let Ok(icc) = icc_long(&subj, &sess, &vals, cfg.confidence) {
                icc2 = Some(icc.icc2_1);
                icc3 = Some(icc.icc3_1);
                icc_n = icc.n_subjects;
                icc_k = icc.n_sessions;
            }
        }
        results.push(IndicatorResult {
            name: ind.clone(),
            n_per_group: PerGroup { positive: pos.len(), negative: neg.len() },
            positive: stats_of(&pos),
            negative: stats_of(&neg),
            hedges_g: g,
            mann_whitney_u: mw.map(|m| m.u),
            mann_whitney_p: mw.map(|m| m.p_value),
            p_adjusted: None,
            auc,
            spearman: sp.map(|s| s.rho),
            spearman_n: sx.len(),
            spearman_p: sp.map(|s| s.p_value),
            icc2_1: icc2,
            icc3_1: icc3,
            icc_n_subjects: icc_n,
            icc_n_sessions: icc_k,
            n_missing_recordings: rows.iter().filter(|r| !r.values.contains_key(ind)).count(),
        });
    }
    let ps: Vec<Option<f64>> = results.iter().map(|r| r.mann_whitney_p).collect();
    let adj = benjamini_hochberg(&ps).map_err(|e| crate::Error::stage("metrics", "Benjamini-Hochberg", e))?;
    for (r, a) in results.iter_mut().zip(adj) {
        r.p_adjusted = a;
    }

    // subgroups
    let mut subgroups = Vec::new();
    type Level = Box<dyn Fn(&Row) -> Option<String>>;
    let cuts = cfg.age_bands.clone();
    let vars: Vec<(&str, Level)> = vec![
        ("sex", Box::new(|r: &Row| r.sex.clone())),
        ("age_band", Box::new(move |r: &Row| r.age.map(|a| age_band(a, &cuts)))),
        ("site", Box::new(|r: &Row| r.site.clone())),
    ];
    for (var, level_of) in &vars {
        // a subject's level: that of its first recording with one
        let mut levels: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (name, s) in &subjects {
            if let Some(l) = s.rows.iter().find_map(|r| level_of(r)) {
                levels.entry(l).or_default().push(*name);
            }
        }
        if levels.is_empty() {
            continue;
        }
        for (level, members) in &levels {
            for ind in indicators {
                let vals: Vec<(bool, f64)> = members
                    .iter()
                    .filter_map(|m| {
                        let s = subjects.get(m)?;
                        let v: Vec<f64> = s.rows.iter().filter_map(|r| r.values.get(ind).copied()).collect();
                        Some((s.positive, mean(&v)?))
                    })
                    .collect();
                let pos: Vec<f64> = vals.iter().filter(|v| v.0).map(|v| v.1).collect();
                let neg: Vec<f64> = vals.iter().filter(|v| !v.0).map(|v| v.1).collect();
                subgroups.push(SubgroupResult {
                    variable: (*var).into(),
                    level: level.clone(),
                    indicator: ind.clone(),
                    n_per_group: PerGroup { positive: pos.len(), negative: neg.len() },
                    hedges_g: hedges_g(&pos, &neg, cfg.confidence).ok().map(|h| h.g),
                    auc: if pos.is_empty() || neg.is_empty() { None } else { auc_point(&pos, &neg) },
                });
            }
        }
    }

    // classifier over recordings with every indicator
    let (classifier, classifier_note) = if indicators.is_empty() {
        (None, Some("no indicators".to_string()))
    } else {
        let used: Vec<&Row> =
            rows.iter().filter(|r| indicators.iter().all(|i| r.values.contains_key(i))).collect();
        let x: Vec<Vec<f64>> =
            used.iter().map(|r| indicators.iter().map(|i| r.values[i]).collect()).collect();
        let y: Vec<bool> = used.iter().map(|r| r.group == positive).collect();
        let s: Vec<&str> = used.iter().map(|r| r.subject.as_str()).collect();
        let cv = CvConfig {
            n_folds: cfg.n_folds,
            logistic: LogisticConfig { c: cfg.c, ..LogisticConfig::default() },
            seed: cfg.seed,
            bootstrap: BootstrapConfig {
                n_resamples: cfg.bootstrap_resamples,
                confidence: cfg.confidence,
                seed: cfg.seed,
            },
            calibration_bins: 10,
        };
        let mut subj_pos: BTreeMap<&str, bool> = BTreeMap::new();
        for (k, &p) in s.iter().zip(&y) {
            subj_pos.insert(k, p);
        }
        let per = PerGroup {
            positive: subj_pos.values().filter(|&&p| p).count(),
            negative: subj_pos.values().filter(|&&p| !p).count(),
        };
        if per.positive < 2 || per.negative < 2 {
            (None, Some("fewer than two subjects per group with every indicator".to_string()))
        } else {
            match cross_validate_logistic(&x, &y, &s, &cv) {
                Ok(r) => (
                    Some(ClassifierResult {
                        indicators: indicators.to_vec(),
                        n_recordings: used.len(),
                        n_per_group: per,
                        n_folds: r.fold_thresholds.len(),
                        auc: r.auc.auc,
                        auc_pooled: r.auc_pooled,
                        sensitivity: r.sensitivity,
                        specificity: r.specificity,
                        threshold: r.threshold,
                        fold_thresholds: r.fold_thresholds,
                        ece: r.calibration.ece,
                        calibration: r.calibration.bins,
                        roc_fpr: r.roc.fpr,
                        roc_tpr: r.roc.tpr,
                        roc_band: r.auc.band,
                    }),
                    None,
                ),
                Err(e) => (None, Some(e.to_string())),
            }
        }
    };
    Ok(StudyReport {
        schema_version: SCHEMA_VERSION,
        study: cfg.name.clone(),
        disclaimer: DISCLAIMER.into(),
        privacy: PRIVACY.into(),
        positive_group: positive.into(),
        negative_group: negative.into(),
        n_recordings,
        n_subjects,
        settings: ReportSettings {
            confidence: cfg.confidence,
            bootstrap_resamples: cfg.bootstrap_resamples,
            seed: cfg.seed,
            n_folds: cfg.n_folds,
            c: cfg.c,
            age_bands: cfg.age_bands.clone(),
        },
        indicators: results,
        classifier,
        classifier_note,
        subgroups,
        files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// Two sessions per subject; indicator `a` higher in the positive group by a true
    /// standardised effect `effect` on subject means, `b` and `c` without a difference. (The
    /// 100-study coverage tests are in mex-metrics' tests/study_properties.rs.)
    fn rows(seed: u64, effect: f64, n: usize) -> Vec<Row> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let z = Normal::new(0.0, 1.0).unwrap();
        let (sd_b, sd_w) = (1.0, 0.5);
        let sd_mean = (sd_b * sd_b + sd_w * sd_w / 2.0f64).sqrt();
        let mut out = Vec::new();
        for s in 0..2 * n {
            let pos = s < n;
            let base: Vec<f64> = (0..3).map(|_| sd_b * z.sample(&mut rng)).collect();
            for session in 0..2 {
                let mut values = BTreeMap::new();
                for (j, name) in ["a", "b", "c"].iter().enumerate() {
                    let shift = if pos && j == 0 { effect * sd_mean } else { 0.0 };
                    values.insert(name.to_string(), base[j] + shift + sd_w * z.sample(&mut rng));
                }
                out.push(Row {
                    line: out.len() + 2,
                    recording: None,
                    subject: format!("s{s}"),
                    group: if pos { "p".into() } else { "c".into() },
                    session: Some(session.to_string()),
                    score: None,
                    age: None,
                    sex: None,
                    site: None,
                    values,
                });
            }
        }
        out
    }

    #[test]
    fn report_fields_on_one_study() {
        let cfg = StudyConfig { bootstrap_resamples: 100, ..StudyConfig::default() };
        let rows = rows(3, 1.5, 15);
        let inds: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let r = compute_report(&rows, &inds, "p", "c", &cfg).unwrap();
        assert_eq!(r.n_subjects, PerGroup { positive: 15, negative: 15 });
        assert_eq!(r.n_recordings, PerGroup { positive: 30, negative: 30 });
        let a = &r.indicators[0];
        assert_eq!(a.n_per_group, PerGroup { positive: 15, negative: 15 });
        assert!(a.hedges_g.unwrap().ci_low > 0.0);
        assert!(a.auc.unwrap().estimate > 0.7);
        // between-subject SD 1, within 0.5: ICC about 0.8
        let icc = a.icc2_1.unwrap();
        assert!(icc.estimate > 0.5 && icc.ci_low < icc.estimate && icc.estimate < icc.ci_high);
        assert_eq!((a.icc_n_subjects, a.icc_n_sessions), (30, 2));
        assert!(a.spearman.is_none()); // no score column
        assert!(a.p_adjusted.unwrap() >= a.mann_whitney_p.unwrap());
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["indicators"][0]["spearman"].is_null());
        assert!(json["classifier"]["auc"]["ci_low"].is_number());
    }
}
