//! The table a paper reports about its data.

use crate::{Dataset, Sample};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Minimum, median, mean and maximum of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Number of values.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

impl Distribution {
    /// The distribution of `v`; `None` when `v` is empty.
    pub fn of(mut v: Vec<f64>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n.is_multiple_of(2) { 0.5 * (v[n / 2 - 1] + v[n / 2]) } else { v[n / 2] };
        Some(Self { n, min: v[0], median, mean: v.iter().sum::<f64>() / n as f64, max: v[n - 1] })
    }
}

/// Statistics of one dataset (or of all samples together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Dataset name (`casme2`, ...) or `total`.
    pub name: String,
    /// Samples.
    pub n_samples: usize,
    /// Samples with a class label.
    pub n_labelled: usize,
    /// Samples per class of the manifest's label set, in label order.
    pub classes: Vec<(String, usize)>,
    /// Samples per emotion as written in the source.
    pub emotions: BTreeMap<String, usize>,
    /// Samples per movement type (`micro`, `macro`) where the source gives one.
    pub kinds: BTreeMap<String, usize>,
    /// Distinct subjects.
    pub n_subjects: usize,
    /// Samples per subject.
    pub samples_per_subject: Option<Distribution>,
    /// Distinct videos (`clip` values): one per sample for short clips, fewer for long videos.
    pub n_videos: usize,
    /// Samples per frame rate (the rate formatted as text, `200`).
    pub fps: BTreeMap<String, usize>,
    /// Clip length, frames (`offset - onset + 1`).
    pub clip_frames: Option<Distribution>,
    /// Clip length, milliseconds.
    pub clip_ms: Option<Distribution>,
    /// Onset to apex, frames (annotated apexes only).
    pub onset_to_apex_frames: Option<Distribution>,
    /// Samples with an annotated apex.
    pub n_apex_annotated: usize,
    /// Subjects per sex (empty when the manifest holds none).
    pub sex: BTreeMap<String, usize>,
    /// Subjects per ethnicity (empty when the manifest holds none).
    pub ethnicity: BTreeMap<String, usize>,
    /// Subjects per age band (empty when the manifest holds none).
    pub age_band: BTreeMap<String, usize>,
}

/// Statistics of a manifest: per dataset and in total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The manifest's name.
    pub name: String,
    /// Its label set's name.
    pub class_set: String,
    /// One entry per dataset name, sorted.
    pub datasets: Vec<DatasetStats>,
    /// All samples together.
    pub total: DatasetStats,
}

fn subject_counts(
    samples: &[&Sample],
    field: impl Fn(&Sample) -> Option<&String>,
) -> BTreeMap<String, usize> {
    // first value given for each subject
    let mut per: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for s in samples {
        let e = per.entry(s.subject_key()).or_insert(None);
        if e.is_none() {
            *e = field(s).cloned();
        }
    }
    if per.values().all(Option::is_none) {
        return BTreeMap::new();
    }
    let mut m = BTreeMap::new();
    for v in per.into_values() {
        *m.entry(v.unwrap_or_else(|| "unknown".into())).or_insert(0) += 1;
    }
    m
}

fn dataset_stats(name: &str, ds: &Dataset, samples: &[&Sample]) -> DatasetStats {
    let mut classes: Vec<(String, usize)> = ds.classes.names.iter().map(|n| (n.clone(), 0)).collect();
    let mut emotions = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    let mut fps = BTreeMap::new();
    let mut per_subject: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut videos = BTreeSet::new();
    let (mut frames, mut ms, mut to_apex) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_labelled = 0;
    let mut n_apex = 0;
    for s in samples {
        if let Some(c) = s.label.and_then(|l| classes.get_mut(l)) {
            c.1 += 1;
            n_labelled += 1;
        }
        if !s.emotion.is_empty() {
            *emotions.entry(s.emotion.clone()).or_insert(0) += 1;
        }
        if let Some(k) = &s.kind {
            *kinds.entry(k.clone()).or_insert(0) += 1;
        }
        if let Some(f) = s.fps {
            *fps.entry(format!("{f}")).or_insert(0) += 1;
        }
        *per_subject.entry(s.subject_key()).or_insert(0) += 1;
        videos.insert((s.dataset.clone(), s.subject.clone(), s.clip.clone()));
        if let (Some(on), Some(off)) = (s.onset, s.offset) {
            if off >= on {
                let n = (off - on + 1) as f64;
                frames.push(n);
                if let Some(f) = s.fps.filter(|f| *f > 0.0) {
                    ms.push(1000.0 * n / f as f64);
                }
                if let Some(a) = s.apex.filter(|&a| a >= on && a <= off) {
                    n_apex += 1;
                    to_apex.push((a - on) as f64);
                }
            }
        }
    }
    DatasetStats {
        name: name.to_string(),
        n_samples: samples.len(),
        n_labelled,
        classes,
        emotions,
        kinds,
        n_subjects: per_subject.len(),
        samples_per_subject: Distribution::of(per_subject.values().map(|&v| v as f64).collect()),
        n_videos: videos.len(),
        fps,
        clip_frames: Distribution::of(frames),
        clip_ms: Distribution::of(ms),
        onset_to_apex_frames: Distribution::of(to_apex),
        n_apex_annotated: n_apex,
        sex: subject_counts(samples, |s| s.sex.as_ref()),
        ethnicity: subject_counts(samples, |s| s.ethnicity.as_ref()),
        age_band: subject_counts(samples, |s| s.age_band.as_ref()),
    }
}

/// Computes the statistics of a manifest.
pub fn stats(ds: &Dataset) -> Stats {
    let all: Vec<&Sample> = ds.samples.iter().collect();
    let datasets = ds
        .dataset_names()
        .iter()
        .map(|n| {
            let part: Vec<&Sample> = ds.samples.iter().filter(|s| s.dataset == *n).collect();
            dataset_stats(n, ds, &part)
        })
        .collect();
    Stats {
        name: ds.name.clone(),
        class_set: ds.classes.name.clone(),
        datasets,
        total: dataset_stats("total", ds, &all),
    }
}

fn fmt_num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

fn fmt_dist(d: &Option<Distribution>) -> String {
    match d {
        Some(d) => format!("{} [{}, {}]", fmt_num(d.median), fmt_num(d.min), fmt_num(d.max)),
        None => "-".into(),
    }
}

impl Stats {
    /// The columns of the text table: each dataset, then the total when there are several.
    fn columns(&self) -> Vec<&DatasetStats> {
        let mut c: Vec<&DatasetStats> = self.datasets.iter().collect();
        if c.len() != 1 {
            c.push(&self.total);
        }
        c
    }

    /// A plain-text table: one column per dataset (and the total), rows for samples, classes,
    /// subjects, videos, frame rates, clip lengths (median [min, max]), apexes, movement types,
    /// demographics and the source emotions.
    pub fn to_text(&self) -> String {
        let cols = self.columns();
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let cell = |f: &dyn Fn(&DatasetStats) -> String| cols.iter().map(|d| f(d)).collect::<Vec<_>>();
        rows.push(("samples".into(), cell(&|d| d.n_samples.to_string())));
        rows.push((format!("labelled ({})", self.class_set), cell(&|d| d.n_labelled.to_string())));
        for (i, (name, _)) in self.total.classes.iter().enumerate() {
            rows.push((format!("  {name}"), cell(&|d| d.classes.get(i).map_or(0, |c| c.1).to_string())));
        }
        rows.push(("subjects".into(), cell(&|d| d.n_subjects.to_string())));
        rows.push(("samples per subject".into(), cell(&|d| fmt_dist(&d.samples_per_subject))));
        rows.push(("videos".into(), cell(&|d| d.n_videos.to_string())));
        rows.push((
            "frame rate (fps)".into(),
            cell(&|d| d.fps.keys().cloned().collect::<Vec<_>>().join("/")),
        ));
        rows.push(("clip length, frames".into(), cell(&|d| fmt_dist(&d.clip_frames))));
        rows.push(("clip length, ms".into(), cell(&|d| fmt_dist(&d.clip_ms))));
        rows.push(("onset to apex, frames".into(), cell(&|d| fmt_dist(&d.onset_to_apex_frames))));
        rows.push(("apex annotated".into(), cell(&|d| d.n_apex_annotated.to_string())));
        let section = |rows: &mut Vec<(String, Vec<String>)>,
                       title: &str,
                       get: &dyn Fn(&DatasetStats) -> &BTreeMap<String, usize>| {
            let keys: BTreeSet<&String> = cols.iter().flat_map(|d| get(d).keys()).collect();
            if keys.is_empty() {
                return;
            }
            rows.push((title.into(), vec![String::new(); cols.len()]));
            for k in keys {
                rows.push((
                    format!("  {k}"),
                    cols.iter().map(|d| get(d).get(k).copied().unwrap_or(0).to_string()).collect(),
                ));
            }
        };
        section(&mut rows, "movement type", &|d| &d.kinds);
        section(&mut rows, "sex (subjects)", &|d| &d.sex);
        section(&mut rows, "ethnicity (subjects)", &|d| &d.ethnicity);
        section(&mut rows, "age band (subjects)", &|d| &d.age_band);
        section(&mut rows, "emotion as coded", &|d| &d.emotions);
        let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0).max(8);
        let widths: Vec<usize> = (0..cols.len())
            .map(|j| {
                rows.iter()
                    .map(|r| r.1[j].chars().count())
                    .chain(std::iter::once(cols[j].name.len()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        let _ = writeln!(s, "manifest {} (label set {})", self.name, self.class_set);
        let _ = write!(s, "{:<w0$}", "");
        for (d, w) in cols.iter().zip(&widths) {
            let _ = write!(s, "  {:>w$}", d.name);
        }
        s.push('\n');
        for (label, vals) in rows {
            let _ = write!(s, "{label:<w0$}");
            for (v, w) in vals.iter().zip(&widths) {
                let _ = write!(s, "  {v:>w$}");
            }
            s.push('\n');
        }
        s
    }
}
