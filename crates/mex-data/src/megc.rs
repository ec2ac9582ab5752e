//! The MEGC2019 composite ("CDE") recognition protocol as code: the 3-class mapping of CASME II,
//! SAMM and SMIC-HS emotions, the three CASME II exclusions, and the ground-truth CSV format.
//!
//! Mapping (MEGC2019 recognition challenge document; MEB's `Megc` dataset):
//! * negative (0): CASME II `disgust`, `repression`; SAMM `Anger`, `Contempt`, `Disgust`, `Fear`,
//!   `Sadness`; SMIC `negative`;
//! * positive (1): `happiness` / `Happiness`; SMIC `positive`;
//! * surprise (2): `surprise` / `Surprise`; SMIC `surprise`;
//! * dropped: CASME II `fear`, `sadness`, `others`; SAMM `Other`; and CASME II exclusions.
//!
//! Exclusions: MEB drops sub04/EP12_01f, sub05/EP12_03f and sub24/EP02_07 ([`MegcRules::meb`]),
//! but the official list `combined_3class_gt.csv` *contains* `casme2,sub05,EP12_03f,2`, so the
//! default rules ([`MegcRules::default`], matching the official list) drop only sub04/EP12_01f
//! and sub24/EP02_07. Both are offered as named variants.

use crate::loaders::canonical_subject;
use crate::sample::{csv_err, names};
use crate::{Dataset, Error, Result, Sample};
use mex_core::ClassSet;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// MEB's CASME II exclusions (`Megc` dataset class of tvaranka/meb).
pub const MEB_EXCLUDED: [(&str, &str); 3] =
    [("sub04", "EP12_01f"), ("sub05", "EP12_03f"), ("sub24", "EP02_07")];

/// The CASME II exclusions consistent with the official 442-sample list (MEB's minus
/// sub05/EP12_03f, which the official list holds as surprise).
pub const OFFICIAL_EXCLUDED: [(&str, &str); 2] = [("sub04", "EP12_01f"), ("sub24", "EP02_07")];

/// Composite-building rules beyond the emotion mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MegcRules {
    /// CASME II `(subject, clip)` pairs dropped although their emotion maps to a class.
    pub casme2_exclusions: Vec<(String, String)>,
}

impl Default for MegcRules {
    /// The rules that reproduce the official list ([`OFFICIAL_EXCLUDED`]).
    fn default() -> Self {
        Self {
            casme2_exclusions: OFFICIAL_EXCLUDED
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }
}

impl MegcRules {
    /// MEB's rules ([`MEB_EXCLUDED`]).
    pub fn meb() -> Self {
        Self { casme2_exclusions: MEB_EXCLUDED.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect() }
    }

    /// Whether the rules drop `s`.
    pub fn excludes(&self, s: &Sample) -> bool {
        s.dataset == names::CASME2
            && self.casme2_exclusions.iter().any(|(sub, clip)| s.subject == *sub && s.clip == *clip)
    }
}

/// The MEGC 3-class label of an emotion of a dataset, `None` when the sample is not used.
pub fn megc3_label(dataset: &str, emotion: &str) -> Option<usize> {
    let e = emotion.trim().to_lowercase();
    match dataset {
        names::CASME2 => match e.as_str() {
            "disgust" | "repression" => Some(0),
            "happiness" => Some(1),
            "surprise" => Some(2),
            _ => None,
        },
        names::SAMM => match e.as_str() {
            "anger" | "contempt" | "disgust" | "fear" | "sadness" => Some(0),
            "happiness" => Some(1),
            "surprise" => Some(2),
            _ => None,
        },
        names::SMIC => match e.as_str() {
            "negative" | "ne" => Some(0),
            "positive" | "po" => Some(1),
            "surprise" | "sur" => Some(2),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the default rules drop `s`.
pub fn is_excluded(s: &Sample) -> bool {
    MegcRules::default().excludes(s)
}

/// Builds the MEGC2019 composite from the three loaded datasets (any order; samples of other
/// datasets are ignored): relabels with [`megc3_label`], drops unmapped emotions and the
/// exclusions, and keeps everything else of each sample (paths, frames, AUs). The result's
/// class set is [`ClassSet::megc3`]; sample order is CASME II, SAMM, SMIC, each in input order.
pub fn build_megc2019(parts: &[&Dataset]) -> Dataset {
    build_megc2019_with(parts, &MegcRules::default())
}

/// [`build_megc2019`] with explicit rules (e.g. [`MegcRules::meb`]).
pub fn build_megc2019_with(parts: &[&Dataset], rules: &MegcRules) -> Dataset {
    let mut out = Vec::new();
    for ds_name in [names::CASME2, names::SAMM, names::SMIC] {
        for d in parts {
            for s in d.samples.iter().filter(|s| s.dataset == ds_name) {
                if rules.excludes(s) {
                    continue;
                }
                if let Some(l) = megc3_label(ds_name, &s.emotion) {
                    let mut t = s.clone();
                    t.label = Some(l);
                    out.push(t);
                }
            }
        }
    }
    Dataset::new("megc2019", ClassSet::megc3(), out)
}

/// One row of the official list `combined_3class_gt.csv`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MegcRow {
    /// `casme2`, `samm` or `smic`.
    pub dataset: String,
    /// Canonical subject (`sub01`, `006`, `s01`; the file writes SAMM subjects as `6`).
    pub subject: String,
    /// Clip (`EP02_01f`, `006_1_2`, `s01_ne_01`).
    pub video: String,
    /// 0 negative, 1 positive, 2 surprise.
    pub label: usize,
}

/// Reads the official list (no header; `database,subject,video,label`; blank `,,,` lines, as in
/// `combined_3class_gt-2.csv`, and CRLF endings are tolerated). Errors name the line.
pub fn read_megc_gt(path: &Path) -> Result<Vec<MegcRow>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_err(path, &e))?;
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| csv_err(path, &e))?;
        let line = rec.position().map_or(0, |p| p.line());
        let f: Vec<&str> = rec.iter().map(str::trim).collect();
        if f.iter().all(|s| s.is_empty()) {
            continue;
        }
        let bad = |msg: &str| Error::Csv { path: path.to_path_buf(), line, message: msg.to_string() };
        if f.len() < 4 {
            return Err(bad("expected 4 fields: database,subject,video,label"));
        }
        let dataset = f[0].to_lowercase();
        if ![names::CASME2, names::SAMM, names::SMIC].contains(&dataset.as_str()) {
            return Err(bad(&format!("unknown database `{}`", f[0])));
        }
        let subject =
            canonical_subject(&dataset, f[1]).ok_or_else(|| bad(&format!("bad subject `{}`", f[1])))?;
        let label = f[3]
            .parse::<usize>()
            .ok()
            .filter(|&l| l < 3)
            .ok_or_else(|| bad(&format!("bad label `{}`", f[3])))?;
        out.push(MegcRow { dataset, subject, video: f[2].to_string(), label });
    }
    Ok(out)
}

/// Writes rows in the official format (SAMM subjects written as plain numbers, as the official
/// file does), through a temporary file and a rename.
pub fn write_megc_gt(rows: &[MegcRow], path: &Path) -> Result<()> {
    let mut s = String::new();
    for r in rows {
        let subj = if r.dataset == names::SAMM {
            r.subject.trim_start_matches('0').to_string()
        } else {
            r.subject.clone()
        };
        s.push_str(&format!("{},{},{},{}\r\n", r.dataset, subj, r.video, r.label));
    }
    crate::write_file(path, s.as_bytes())
}

/// The rows of a composite dataset (samples without a label are skipped).
pub fn megc_rows(ds: &Dataset) -> Vec<MegcRow> {
    ds.samples
        .iter()
        .filter_map(|s| {
            Some(MegcRow {
                dataset: s.dataset.clone(),
                subject: s.subject.clone(),
                video: s.clip.clone(),
                label: s.label?,
            })
        })
        .collect()
}

/// The official list as a [`Dataset`] (metadata only).
pub fn gt_dataset(rows: &[MegcRow]) -> Dataset {
    let c = ClassSet::megc3();
    let samples = rows
        .iter()
        .map(|r| Sample {
            dataset: r.dataset.clone(),
            subject: r.subject.clone(),
            clip: r.video.clone(),
            label: Some(r.label),
            emotion: c.name(r.label).unwrap_or_default().into(),
            provenance: "combined_3class_gt.csv".into(),
            ..Default::default()
        })
        .collect();
    Dataset::new("megc2019", c, samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_rules() {
        assert_eq!(megc3_label("casme2", "repression"), Some(0));
        assert_eq!(megc3_label("casme2", "fear"), None);
        assert_eq!(megc3_label("casme2", "sadness"), None);
        assert_eq!(megc3_label("casme2", "others"), None);
        assert_eq!(megc3_label("samm", "Fear"), Some(0));
        assert_eq!(megc3_label("samm", "Contempt"), Some(0));
        assert_eq!(megc3_label("samm", "Other"), None);
        assert_eq!(megc3_label("samm", "Happiness"), Some(1));
        assert_eq!(megc3_label("smic", "surprise"), Some(2));
        assert_eq!(megc3_label("unknown", "surprise"), None);
    }

    #[test]
    fn gt_round_trip_with_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gt.csv");
        std::fs::write(&p, "casme2,sub01,EP02_01f,1\r\n,,,\r\nsamm,6,006_1_2,0\r\nsmic,s01,s01_ne_01,0\r\n")
            .unwrap();
        let rows = read_megc_gt(&p).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].subject, "006");
        let q = dir.path().join("gt2.csv");
        write_megc_gt(&rows, &q).unwrap();
        assert_eq!(read_megc_gt(&q).unwrap(), rows);
        std::fs::write(&p, "casme2,sub01,EP02_01f,7\n").unwrap();
        assert!(matches!(read_megc_gt(&p).unwrap_err(), Error::Csv { line: 1, .. }));
    }
}
