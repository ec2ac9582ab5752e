//! The experiment report: metrics with subject-bootstrap intervals, breakdowns, paired tests,
//! figures, and everything needed to re-run it (seed, configuration, versions, git commit).

use super::config::ExperimentConfig;
use super::corpus::Corpus;
use crate::io::{write_atomic, write_json_atomic};
use crate::plots;
use crate::{Error, Result};
use mex_classify::Prediction;
use mex_metrics::{
    cluster_bootstrap, mcnemar_labels, megc_breakdown, paired_permutation_test, BootstrapConfig, ClassStats,
    ConfidenceInterval, ConfusionMatrix, MegcScores, PermutationConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Provenance of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Version of every mex crate used (one workspace version).
    pub crate_versions: BTreeMap<String, String>,
    /// Git commit the binary was built from (`unknown` outside a git checkout), with `-dirty`
    /// when the working tree had uncommitted changes.
    pub git_commit: String,
    /// Seconds since the Unix epoch when the report was written.
    pub created_unix_s: u64,
}

impl Provenance {
    /// The provenance of this build.
    pub fn current() -> Self {
        let v = env!("CARGO_PKG_VERSION").to_string();
        let crate_versions =
            ["mex", "mex-core", "mex-align", "mex-flow", "mex-classify", "mex-metrics", "mex-data"]
                .iter()
                .map(|c| (c.to_string(), v.clone()))
                .collect();
        let created_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self { crate_versions, git_commit: env!("MEX_GIT_COMMIT").to_string(), created_unix_s }
    }
}

/// UF1 and UAR of one group of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupScores {
    /// Group value (dataset name, subgroup value, subject).
    pub group: String,
    /// Samples in the group.
    pub n: u64,
    /// Pooled UF1 of the group's samples.
    pub uf1: f64,
    /// Pooled UAR of the group's samples.
    pub uar: f64,
    /// Accuracy of the group's samples.
    pub accuracy: f64,
}

/// The results of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    /// Variant name.
    pub name: String,
    /// Samples evaluated.
    pub n: u64,
    /// Pooled UF1 with its subject-bootstrap interval.
    pub uf1: ConfidenceInterval,
    /// Pooled UAR with its subject-bootstrap interval.
    pub uar: ConfidenceInterval,
    /// Accuracy.
    pub accuracy: f64,
    /// Per-class statistics of the pooled confusion matrix.
    pub per_class: Vec<ClassStats>,
    /// Pooled confusion matrix (rows = truth).
    pub confusion: Vec<Vec<u64>>,
    /// Pooled predictions restricted to each dataset.
    pub per_dataset: Vec<GroupScores>,
    /// Pooled predictions restricted to each value of each subgroup field present.
    pub per_subgroup: BTreeMap<String, Vec<GroupScores>>,
    /// Per test subject.
    pub per_subject: Vec<GroupScores>,
    /// Training and evaluation time summed over folds, seconds.
    pub fold_seconds: f64,
}

/// A paired comparison of two variants on the same samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// First variant.
    pub a: String,
    /// Second variant.
    pub b: String,
    /// `UF1(a) − UF1(b)`.
    pub uf1_difference: f64,
    /// Two-sided p-value of the paired permutation test on the UF1 difference (predictions of a
    /// and b swapped per sample).
    pub permutation_p: f64,
    /// McNemar's test on per-sample correctness: discordant counts and the exact p-value.
    pub mcnemar_b: u64,
    /// Samples that b gets right and a wrong.
    pub mcnemar_c: u64,
    /// McNemar's exact binomial p-value.
    pub mcnemar_p: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Experiment name.
    pub experiment: String,
    /// The seed of the run.
    pub seed: u64,
    /// Protocol name.
    pub protocol: String,
    /// Class names.
    pub classes: Vec<String>,
    /// Samples.
    pub n_samples: usize,
    /// Folds.
    pub n_folds: usize,
    /// Per-variant results.
    pub variants: Vec<VariantReport>,
    /// Every pair of variants.
    pub comparisons: Vec<Comparison>,
    /// The full configuration.
    pub config: ExperimentConfig,
    /// Versions, commit, time.
    pub provenance: Provenance,
}

fn m_err(what: &str, e: mex_metrics::Error) -> Error {
    Error::stage("metrics", what.to_string(), e)
}

fn group_scores(
    truth: &[usize],
    pred: &[usize],
    keys: &[String],
    n_classes: usize,
    what: &str,
) -> Result<Vec<GroupScores>> {
    let b = megc_breakdown(truth, pred, keys, n_classes).map_err(|e| m_err(what, e))?;
    let mut out = Vec::with_capacity(b.per_group.len());
    for (group, s) in b.per_group {
        let MegcScores { n, uf1, uar } = s;
        let (mut ok, mut tot) = (0u64, 0u64);
        for ((k, t), p) in keys.iter().zip(truth).zip(pred) {
            if *k == group {
                tot += 1;
                ok += u64::from(t == p);
            }
        }
        out.push(GroupScores {
            group,
            n,
            uf1,
            uar,
            accuracy: if tot > 0 { ok as f64 / tot as f64 } else { 0.0 },
        });
    }
    Ok(out)
}

/// Computes the report from per-variant predictions in corpus order.
pub fn build_report(
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    n_folds: usize,
    per_variant: &[(String, Vec<Prediction>, f64)],
) -> Result<Report> {
    let nc = corpus.classes.len();
    let truth: Vec<usize> = corpus.samples.iter().map(|s| s.label).collect();
    let subjects: Vec<String> = corpus.samples.iter().map(|s| s.subject.clone()).collect();
    let datasets: Vec<String> = corpus.samples.iter().map(|s| s.dataset.clone()).collect();
    let boot = BootstrapConfig {
        n_resamples: cfg.evaluation.bootstrap,
        confidence: cfg.evaluation.confidence,
        seed: cfg.seed,
    };
    let mut variants = Vec::with_capacity(per_variant.len());
    let mut preds_of: Vec<Vec<usize>> = Vec::with_capacity(per_variant.len());
    for (name, preds, secs) in per_variant {
        let pred: Vec<usize> = preds.iter().map(|p| p.pred as usize).collect();
        let cm = ConfusionMatrix::from_labels(&truth, &pred, nc).map_err(|e| m_err(name, e))?;
        let rep = cm.report().map_err(|e| m_err(name, e))?;
        let ci = |f: fn(&ConfusionMatrix) -> mex_metrics::Result<f64>| {
            cluster_bootstrap(
                &subjects,
                |idx| f(&ConfusionMatrix::from_indices(&truth, &pred, idx, nc)?),
                &boot,
            )
            .map_err(|e| m_err(name, e))
        };
        let uf1 = ci(ConfusionMatrix::uf1)?;
        let uar = ci(ConfusionMatrix::uar)?;
        let mut per_subgroup = BTreeMap::new();
        let fields: std::collections::BTreeSet<&String> =
            corpus.samples.iter().flat_map(|s| s.groups.keys()).collect();
        for field in fields {
            let keys: Vec<String> = corpus
                .samples
                .iter()
                .map(|s| s.groups.get(field).cloned().unwrap_or_else(|| "(unknown)".into()))
                .collect();
            per_subgroup.insert(field.clone(), group_scores(&truth, &pred, &keys, nc, name)?);
        }
        variants.push(VariantReport {
            name: name.clone(),
            n: rep.n,
            uf1,
            uar,
            accuracy: rep.accuracy,
            per_class: rep.per_class,
            confusion: rep.confusion,
            per_dataset: group_scores(&truth, &pred, &datasets, nc, name)?,
            per_subgroup,
            per_subject: group_scores(&truth, &pred, &subjects, nc, name)?,
            fold_seconds: *secs,
        });
        preds_of.push(pred);
    }
    let mut comparisons = Vec::new();
    let perm = PermutationConfig { n_permutations: cfg.evaluation.permutations, seed: cfg.seed };
    for i in 0..per_variant.len() {
        for j in i + 1..per_variant.len() {
            let (a, b) = (&preds_of[i], &preds_of[j]);
            let uf1_of = |p: &[usize]| ConfusionMatrix::from_labels(&truth, p, nc)?.uf1();
            let t = paired_permutation_test(a, b, uf1_of, &perm).map_err(|e| m_err("comparison", e))?;
            let m = mcnemar_labels(&truth, a, b).map_err(|e| m_err("comparison", e))?;
            comparisons.push(Comparison {
                a: per_variant[i].0.clone(),
                b: per_variant[j].0.clone(),
                uf1_difference: t.observed,
                permutation_p: t.p_value,
                mcnemar_b: m.b,
                mcnemar_c: m.c,
                mcnemar_p: m.exact_p,
            });
        }
    }
    Ok(Report {
        experiment: cfg.name.clone(),
        seed: cfg.seed,
        protocol: cfg.protocol.name(),
        classes: corpus.classes.names.clone(),
        n_samples: corpus.len(),
        n_folds,
        variants,
        comparisons,
        config: cfg.clone(),
        provenance: Provenance::current(),
    })
}

fn ci_str(c: &ConfidenceInterval) -> String {
    format!("{:.4} [{:.3}, {:.3}]", c.estimate, c.lower, c.upper)
}

/// The report as Markdown.
pub fn to_markdown(r: &Report) -> String {
    let mut s = String::new();
    let pct = (r.config.evaluation.confidence * 100.0).round();
    let _ = writeln!(s, "# Experiment `{}`\n", r.experiment);
    let _ = writeln!(
        s,
        "Protocol `{}`, {} samples, {} folds, classes {}. Seed {}. Intervals: {pct}% percentile bootstrap over subjects ({} resamples).\n",
        r.protocol,
        r.n_samples,
        r.n_folds,
        r.classes.join(" / "),
        r.seed,
        r.config.evaluation.bootstrap
    );
    let _ = writeln!(
        s,
        "## Results\n\n| variant | n | UF1 [{pct}% CI] | UAR [{pct}% CI] | accuracy | fold time (s) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for v in &r.variants {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.4} | {:.1} |",
            v.name,
            v.n,
            ci_str(&v.uf1),
            ci_str(&v.uar),
            v.accuracy,
            v.fold_seconds
        );
    }
    let _ = writeln!(s, "\n![UF1 per variant](comparison_uf1.png)\n");
    let _ = writeln!(s, "## Per dataset (pooled predictions restricted to the dataset)\n");
    let _ = writeln!(s, "| variant | dataset | n | UF1 | UAR | accuracy |\n|---|---|---|---|---|---|");
    for v in &r.variants {
        for g in &v.per_dataset {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.4} | {:.4} | {:.4} |",
                v.name, g.group, g.n, g.uf1, g.uar, g.accuracy
            );
        }
    }
    let any_sub = r.variants.iter().any(|v| !v.per_subgroup.is_empty());
    let _ = writeln!(s, "\n## Subgroups\n");
    if any_sub {
        let _ = writeln!(
            s,
            "| variant | field | group | n | UF1 | UAR | accuracy |\n|---|---|---|---|---|---|---|"
        );
        for v in &r.variants {
            for (field, rows) in &v.per_subgroup {
                for g in rows {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} |",
                        v.name, field, g.group, g.n, g.uf1, g.uar, g.accuracy
                    );
                }
            }
        }
    } else {
        let _ = writeln!(
            s,
            "The samples carry no demographic fields (sex, ethnicity, age band): no subgroup breakdown."
        );
    }
    let _ = writeln!(s, "\n## Paired comparisons\n");
    if r.comparisons.is_empty() {
        let _ = writeln!(s, "One variant: nothing to compare.");
    } else {
        let _ = writeln!(
            s,
            "| a | b | UF1(a) − UF1(b) | permutation p ({} relabellings) | McNemar b / c | McNemar exact p |\n|---|---|---|---|---|---|",
            r.config.evaluation.permutations
        );
        for c in &r.comparisons {
            let _ = writeln!(
                s,
                "| {} | {} | {:+.4} | {:.4} | {} / {} | {:.4} |",
                c.a, c.b, c.uf1_difference, c.permutation_p, c.mcnemar_b, c.mcnemar_c, c.mcnemar_p
            );
        }
    }
    let _ = writeln!(s, "\n## Figures\n");
    for v in &r.variants {
        let _ = writeln!(
            s,
            "- `{0}`: [confusion matrix](confusion_{0}.png), [per subject](subjects_{0}.png)",
            v.name
        );
    }
    let _ = writeln!(s, "\n## Reproducibility\n");
    let _ = writeln!(s, "- git commit: `{}`", r.provenance.git_commit);
    for (k, v) in &r.provenance.crate_versions {
        let _ = writeln!(s, "- {k} {v}");
    }
    let _ = writeln!(s, "- full configuration: `config.json` beside this file and `config` in `report.json`");
    s
}

/// Writes `report.json`, `report.md` and the figures into `dir`.
pub fn write_report(r: &Report, dir: &Path) -> Result<()> {
    for v in &r.variants {
        plots::confusion_matrix(
            &dir.join(format!("confusion_{}", v.name)),
            &format!("{}: pooled confusion", v.name),
            &r.classes,
            &v.confusion,
        )?;
        let labels: Vec<String> = v.per_subject.iter().map(|g| g.group.clone()).collect();
        let values: Vec<f64> = v.per_subject.iter().map(|g| g.accuracy).collect();
        plots::bars_with_ci(
            &dir.join(format!("subjects_{}", v.name)),
            &format!("{}: accuracy per test subject", v.name),
            "accuracy",
            &labels,
            &values,
            None,
        )?;
    }
    let names: Vec<String> = r.variants.iter().map(|v| v.name.clone()).collect();
    for (metric, get) in [
        ("uf1", (|v: &VariantReport| v.uf1) as fn(&VariantReport) -> ConfidenceInterval),
        ("uar", |v: &VariantReport| v.uar),
    ] {
        let vals: Vec<f64> = r.variants.iter().map(|v| get(v).estimate).collect();
        let cis: Vec<(f64, f64)> = r.variants.iter().map(|v| (get(v).lower, get(v).upper)).collect();
        plots::bars_with_ci(
            &dir.join(format!("comparison_{metric}")),
            &format!(
                "{} per variant ({:.0}% CI)",
                metric.to_uppercase(),
                r.config.evaluation.confidence * 100.0
            ),
            &metric.to_uppercase(),
            &names,
            &vals,
            Some(&cis),
        )?;
    }
    write_json_atomic(&dir.join("report.json"), r)?;
    write_atomic(&dir.join("report.md"), to_markdown(r).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::{DatasetSpec, SyntheticSpec};
    use crate::experiment::corpus::synth_dataset_config;
    use mex_data::synth::SynthDataset;

    #[test]
    fn subgroups_and_datasets_are_broken_down_with_counts() {
        let spec = SyntheticSpec { n_subjects: 4, clips_per_class: [1, 1, 1], ..SyntheticSpec::default() };
        let synth = SynthDataset::generate(&synth_dataset_config(&spec, 1)).unwrap();
        let mut manifest = synth.dataset.clone();
        for s in &mut manifest.samples {
            // Subjects 1 and 3 are "f", 2 and 4 are "m".
            let k: usize = s.subject.trim_start_matches("sub").parse().unwrap();
            s.sex = Some(if k % 2 == 1 { "f".into() } else { "m".into() });
        }
        let corpus = Corpus::from_frames(manifest, Box::new(synth)).unwrap();
        let text = "name = \"t\"\n[dataset]\nkind = \"synthetic\"\n[evaluation]\nbootstrap = 20\npermutations = 20\n[[variants]]\nname = \"a\"\n[[variants]]\nname = \"b\"";
        let mut cfg = ExperimentConfig::from_toml_str(text, "t.toml").unwrap();
        cfg.dataset = DatasetSpec::Synthetic(spec);
        // Variant a is right on "f" subjects and wrong on "m"; b is right everywhere.
        let pred = |right_on_m: bool| -> Vec<Prediction> {
            corpus
                .samples
                .iter()
                .map(|s| {
                    let ok = s.groups["sex"] == "f" || right_on_m;
                    let p = if ok { s.label } else { (s.label + 1) % 3 };
                    Prediction {
                        subject: s.subject.clone(),
                        id: s.id.clone(),
                        label: s.label as u32,
                        pred: p as u32,
                        probs: vec![],
                    }
                })
                .collect()
        };
        let per_variant = vec![("a".to_string(), pred(false), 1.0), ("b".to_string(), pred(true), 1.0)];
        let r = build_report(&cfg, &corpus, 4, &per_variant).unwrap();
        let a = &r.variants[0];
        let sex = &a.per_subgroup["sex"];
        assert_eq!(sex.len(), 2);
        assert_eq!((sex[0].group.as_str(), sex[0].n, sex[0].accuracy), ("f", 6, 1.0));
        assert_eq!((sex[1].group.as_str(), sex[1].n, sex[1].accuracy), ("m", 6, 0.0));
        assert_eq!(a.accuracy, 0.5);
        assert_eq!(r.variants[1].uf1.estimate, 1.0);
        assert_eq!(a.per_dataset.len(), 1);
        assert_eq!(a.per_dataset[0].n, 12);
        // McNemar: b is right on the 6 samples a gets wrong, never the reverse.
        assert_eq!((r.comparisons[0].mcnemar_b, r.comparisons[0].mcnemar_c), (0, 6));
        assert!(to_markdown(&r).contains("| a | sex | m | 6 |"));
    }
}
