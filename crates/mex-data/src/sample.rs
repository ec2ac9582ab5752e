//! The [`Sample`] record and the [`Dataset`] manifest, with CSV and JSON round trips.

use crate::{Error, Result};
use mex_core::{ClassSet, Interval};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Dataset names used by the loaders (the `dataset` field of a [`Sample`]).
pub mod names {
    /// CASME II.
    pub const CASME2: &str = "casme2";
    /// SAMM (short clips).
    pub const SAMM: &str = "samm";
    /// SMIC-HS.
    pub const SMIC: &str = "smic";
    /// CAS(ME)² long videos.
    pub const CASME_SQ: &str = "casme_sq";
    /// SAMM Long Videos.
    pub const SAMM_LV: &str = "samm_lv";
    /// The synthetic generator.
    pub const SYNTH: &str = "synth";
}

/// One labelled clip (or one precomputed image, such as an STSTNet flow image).
///
/// Frame numbers (`onset`, `apex`, `offset`) are the dataset's own absolute frame numbers, the
/// ones that appear in frame file names (CASME II `img46.jpg` is frame 46). Every field is a flat
/// value so that a sample is one CSV row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Dataset name (see [`names`]), e.g. `casme2`.
    pub dataset: String,
    /// Subject id in the dataset's folder form: `sub01` (CASME II), `006` (SAMM), `s01` (SMIC).
    pub subject: String,
    /// Clip (video) id: `EP02_01f`, `006_1_2`, `s01_ne_01`.
    pub clip: String,
    /// Folder holding the clip's frames, or the path of a single image (STSTNet flow images).
    pub path: Option<PathBuf>,
    /// Frame file name pattern inside `path`: `{n}` is the frame number, `{n:05}` the number
    /// zero-padded to 5 digits (`img{n}.jpg`, `006_{n:05}.jpg`). `None`: frames are the image
    /// files of `path` in natural order.
    pub frame_pattern: Option<String>,
    /// Frames per second of the recording.
    pub fps: Option<f32>,
    /// First frame of the movement.
    pub onset: Option<usize>,
    /// Frame of greatest intensity (`None` when not annotated, e.g. CASME II '/').
    pub apex: Option<usize>,
    /// Last frame of the movement.
    pub offset: Option<usize>,
    /// Label: index into the dataset's [`ClassSet`] (`None` when the emotion has no class there).
    pub label: Option<usize>,
    /// Emotion as written in the source (`happiness`, `Anger`, `negative`, ...).
    pub emotion: String,
    /// Movement type where the source gives one: `micro` or `macro` (long videos, SAMM).
    pub kind: Option<String>,
    /// Action units as written in the source (`R12+25`, `4+7`).
    pub action_units: String,
    /// Optional demographic field: sex.
    pub sex: Option<String>,
    /// Optional demographic field: ethnicity.
    pub ethnicity: Option<String>,
    /// Optional demographic field: age band (e.g. `20-29`).
    pub age_band: Option<String>,
    /// Consent or licence statement attached to the recording, when known.
    pub consent: Option<String>,
    /// Where the record came from (file and row, or `synthetic seed=...`).
    pub provenance: String,
}

impl Sample {
    /// `(dataset, subject)`: the subject key used by the splits (subject ids are only unique
    /// within a dataset).
    pub fn subject_key(&self) -> (String, String) {
        (self.dataset.clone(), self.subject.clone())
    }

    /// `dataset/subject/clip`, the sample's name in reports. Several movements of one long
    /// video share it; [`Dataset::sample_ids`] tells them apart.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.dataset, self.subject, self.clip)
    }

    /// The onset/apex/offset interval when all three are known and ordered.
    pub fn interval(&self) -> Option<Interval> {
        Interval::new(self.onset?, self.apex?, self.offset?).ok()
    }

    /// The apex, or the middle frame `onset + (offset - onset) / 2` when no apex is annotated
    /// (MEB's rule for SMIC).
    pub fn apex_or_middle(&self) -> Option<usize> {
        self.apex.or_else(|| {
            let (on, off) = (self.onset?, self.offset?);
            (off >= on).then(|| on + (off - on) / 2)
        })
    }

    /// Numeric action units parsed from [`Sample::action_units`]: `R12+25` gives `[12, 25]`,
    /// `L4+7` gives `[4, 7]`. Prefixes (L, R, T, B) and suffixes are ignored; duplicates dropped.
    pub fn au_numbers(&self) -> Vec<u32> {
        parse_aus(&self.action_units)
    }

    /// The file of frame number `n`, when the sample has a folder and a pattern.
    pub fn frame_path(&self, n: usize) -> Option<PathBuf> {
        let dir = self.path.as_ref()?;
        let pat = self.frame_pattern.as_ref()?;
        Some(dir.join(format_frame_pattern(pat, n)))
    }

    /// The frame files of the clip: `onset..=offset` through the pattern, or the sorted image
    /// files of the folder when there is no pattern. Errors when the folder is missing or empty.
    pub fn frame_paths(&self) -> Result<Vec<PathBuf>> {
        let dir = self
            .path
            .as_ref()
            .ok_or_else(|| Error::param("path", &self.clip, "sample has no frame folder"))?;
        match (&self.frame_pattern, self.onset, self.offset) {
            (Some(p), Some(on), Some(off)) if off >= on => {
                Ok((on..=off).map(|n| dir.join(format_frame_pattern(p, n))).collect())
            }
            _ => list_images(dir),
        }
    }
}

/// Parses an action-unit string into numbers (`R12+25` -> `[12, 25]`).
pub fn parse_aus(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(|c: char| c == '+' || c == ',' || c == ';' || c.is_whitespace()) {
        let digits: String =
            part.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(n) = digits.parse::<u32>() {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// Expands a frame pattern: `{n}` -> `46`, `{n:05}` -> `00046`.
pub fn format_frame_pattern(pattern: &str, n: usize) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(i) = rest.find("{n") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match tail.find('}') {
            Some(j) => {
                let spec = &tail[2..j];
                let width = spec.strip_prefix(":0").and_then(|w| w.parse::<usize>().ok()).unwrap_or(0);
                out.push_str(&format!("{n:0width$}"));
                rest = &tail[j + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Image file extensions the loaders recognise as frames.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff"];

/// The image files of a folder, in natural order (numbers compared by value, so `img9` comes
/// before `img10`). Errors when the folder cannot be read or holds no image.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        let is_img = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
        if is_img && p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(Error::EmptyFolder { path: dir.to_path_buf(), what: "no image files".into() });
    }
    files.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    Ok(files)
}

/// Natural string order: runs of digits compare by numeric value.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut ai, mut bi) = (a.char_indices().peekable(), b.char_indices().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((_, ca)), Some((_, cb))) => {
                if ca.is_ascii_digit() && cb.is_ascii_digit() {
                    let mut na = String::new();
                    while let Some(&(_, c)) = ai.peek().filter(|(_, c)| c.is_ascii_digit()) {
                        na.push(c);
                        ai.next();
                    }
                    let mut nb = String::new();
                    while let Some(&(_, c)) = bi.peek().filter(|(_, c)| c.is_ascii_digit()) {
                        nb.push(c);
                        bi.next();
                    }
                    let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                    let o = ta
                        .len()
                        .cmp(&tb.len())
                        .then_with(|| ta.cmp(tb))
                        .then_with(|| na.len().cmp(&nb.len()));
                    if o != Ordering::Equal {
                        return o;
                    }
                } else {
                    let o = ca.cmp(&cb);
                    if o != Ordering::Equal {
                        return o;
                    }
                    ai.next();
                    bi.next();
                }
            }
        }
    }
}

/// A set of samples with the label set their `label` fields index into: the manifest every
/// protocol consumes. Serialises to CSV (one row per sample, the class set in a sidecar-free
/// form: labels are indices, class names are the `emotion` column) or JSON (everything).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Name of the collection (e.g. `megc2019`, `casme2`).
    pub name: String,
    /// The label set of the samples' `label` fields.
    pub classes: ClassSet,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// One unique id per sample, in order: [`Sample::id`], with `@onset` appended where several
    /// samples share it (the movements of one long video: `samm_lv/006/006_1@566`), and `#k`
    /// when even that repeats.
    ///
    /// ```
    /// use mex_data::{Dataset, Sample};
    /// let s = |clip: &str, onset| Sample {
    ///     dataset: "d".into(), subject: "s1".into(), clip: clip.into(), onset: Some(onset),
    ///     ..Default::default()
    /// };
    /// let ds = Dataset::new("d", mex_core::ClassSet::megc3(), vec![s("v", 5), s("v", 9), s("w", 1)]);
    /// assert_eq!(ds.sample_ids(), ["d/s1/v@5", "d/s1/v@9", "d/s1/w"]);
    /// ```
    pub fn sample_ids(&self) -> Vec<String> {
        let base: Vec<String> = self.samples.iter().map(Sample::id).collect();
        let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for b in &base {
            *count.entry(b.as_str()).or_default() += 1;
        }
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        base.iter()
            .zip(&self.samples)
            .map(|(b, s)| {
                if count[b.as_str()] < 2 {
                    return b.clone();
                }
                let id = format!("{b}@{}", s.onset.unwrap_or(0));
                let k = seen.entry(id.clone()).or_default();
                *k += 1;
                if *k > 1 {
                    format!("{id}#{k}")
                } else {
                    id
                }
            })
            .collect()
    }

    /// A dataset from parts.
    pub fn new(name: impl Into<String>, classes: ClassSet, samples: Vec<Sample>) -> Self {
        Self { name: name.into(), classes, samples }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Distinct `(dataset, subject)` keys in sorted order.
    pub fn subjects(&self) -> Vec<(String, String)> {
        let s: BTreeSet<(String, String)> = self.samples.iter().map(Sample::subject_key).collect();
        s.into_iter().collect()
    }

    /// Distinct dataset names in sorted order.
    pub fn dataset_names(&self) -> Vec<String> {
        let s: BTreeSet<&str> = self.samples.iter().map(|s| s.dataset.as_str()).collect();
        s.into_iter().map(str::to_string).collect()
    }

    /// Number of samples per label index (samples without a label are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for s in &self.samples {
            if let Some(l) = s.label.filter(|&l| l < c.len()) {
                c[l] += 1;
            }
        }
        c
    }

    /// Class counts per dataset name.
    pub fn class_counts_by_dataset(&self) -> BTreeMap<String, Vec<usize>> {
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for s in &self.samples {
            let c = m.entry(s.dataset.clone()).or_insert_with(|| vec![0; self.classes.len()]);
            if let Some(l) = s.label.filter(|&l| l < c.len()) {
                c[l] += 1;
            }
        }
        m
    }

    /// Keeps the samples for which `keep` is true.
    pub fn filtered(&self, mut keep: impl FnMut(&Sample) -> bool) -> Dataset {
        Dataset {
            name: self.name.clone(),
            classes: self.classes.clone(),
            samples: self.samples.iter().filter(|s| keep(s)).cloned().collect(),
        }
    }

    /// Writes the samples as CSV with a header row (the column names are the [`Sample`] fields).
    /// Written through a temporary file in the same folder and a rename.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for s in &self.samples {
            w.serialize(s).map_err(|e| csv_err(path, &e))?;
        }
        let bytes = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
        crate::write_file(path, &bytes)
    }

    /// Reads samples written by [`Dataset::write_csv`]; `classes` is the label set.
    pub fn read_csv(path: &Path, name: impl Into<String>, classes: ClassSet) -> Result<Dataset> {
        let mut r = csv::Reader::from_path(path).map_err(|e| csv_err(path, &e))?;
        let mut samples = Vec::new();
        for rec in r.deserialize() {
            let s: Sample = rec.map_err(|e| csv_err(path, &e))?;
            if let Some(l) = s.label.filter(|&l| l >= classes.len()) {
                return Err(Error::BadCell {
                    path: path.to_path_buf(),
                    row: samples.len() + 2,
                    column: "label".into(),
                    value: l.to_string(),
                    reason: format!("label set {} has {} classes", classes.name, classes.len()),
                });
            }
            samples.push(s);
        }
        Ok(Dataset::new(name, classes, samples))
    }

    /// Writes the whole dataset (name, class set, samples) as pretty JSON, through a temporary
    /// file in the same folder and a rename.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let s = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Json { path: path.to_path_buf(), message: e.to_string() })?;
        crate::write_file(path, s.as_bytes())
    }

    /// Reads a dataset written by [`Dataset::write_json`].
    pub fn read_json(path: &Path) -> Result<Dataset> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&s).map_err(|e| Error::Json { path: path.to_path_buf(), message: e.to_string() })
    }
}

pub(crate) fn csv_err(path: &Path, e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::Csv { path: path.to_path_buf(), line, message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_patterns_expand() {
        assert_eq!(format_frame_pattern("img{n}.jpg", 46), "img46.jpg");
        assert_eq!(format_frame_pattern("006_{n:05}.jpg", 5562), "006_05562.jpg");
        assert_eq!(format_frame_pattern("reg_{n:05}.bmp", 7), "reg_00007.bmp");
        assert_eq!(format_frame_pattern("plain.png", 7), "plain.png");
    }

    #[test]
    fn aus_parse() {
        let s = Sample { action_units: "R12+25".into(), ..Default::default() };
        assert_eq!(s.au_numbers(), vec![12, 25]);
        assert_eq!(parse_aus("L4+7+ 43"), vec![4, 7, 43]);
        assert_eq!(parse_aus("4+4"), vec![4]);
        assert!(parse_aus("").is_empty());
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["img10.jpg", "img9.jpg", "img100.jpg", "img1.jpg"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["img1.jpg", "img9.jpg", "img10.jpg", "img100.jpg"]);
    }

    #[test]
    fn apex_or_middle_rule() {
        let s = Sample { onset: Some(10), offset: Some(25), ..Default::default() };
        assert_eq!(s.apex_or_middle(), Some(17));
        let s = Sample { onset: Some(10), apex: Some(12), offset: Some(25), ..Default::default() };
        assert_eq!(s.apex_or_middle(), Some(12));
        assert_eq!(s.interval().unwrap().len(), 16);
    }

    #[test]
    fn csv_and_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sample {
            dataset: "casme2".into(),
            subject: "sub01".into(),
            clip: "EP02_01f".into(),
            path: Some(PathBuf::from("/data/sub01/EP02_01f")),
            frame_pattern: Some("img{n}.jpg".into()),
            fps: Some(200.0),
            onset: Some(46),
            apex: Some(59),
            offset: Some(86),
            label: Some(1),
            emotion: "happiness".into(),
            action_units: "12".into(),
            sex: Some("F".into()),
            provenance: "x.xlsx:row 2".into(),
            ..Default::default()
        };
        let t = Sample { apex: None, label: None, path: None, frame_pattern: None, ..s.clone() };
        let d = Dataset::new("t", ClassSet::megc3(), vec![s, t]);
        let p = dir.path().join("m.csv");
        d.write_csv(&p).unwrap();
        let back = Dataset::read_csv(&p, "t", ClassSet::megc3()).unwrap();
        assert_eq!(back, d);
        let pj = dir.path().join("m.json");
        d.write_json(&pj).unwrap();
        assert_eq!(Dataset::read_json(&pj).unwrap(), d);
        // A label outside the class set is a typed error naming the row.
        let e = Dataset::read_csv(&p, "t", ClassSet::new("one", &["a"])).unwrap_err();
        assert!(matches!(e, Error::BadCell { row: 2, .. }), "{e}");
    }
}
