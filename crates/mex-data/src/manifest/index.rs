//! Indexing a dataset as its publisher ships it into a manifest.

use crate::loaders::smic::infer_pattern;
use crate::loaders::{
    load_casme2, load_casme_sq, load_samm, load_samm_lv, load_smic, Casme2Config, Casme2Release,
    CasmeSqConfig, SammConfig, SammLvConfig, SmicConfig,
};
use crate::megc::{build_megc2019_with, megc3_label, MegcRules};
use crate::sample::{list_images, names};
use crate::table::Table;
use crate::{Dataset, Error, Result, Sample};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The datasets `mex-data` indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// CASME II (coding spreadsheet + `subNN/EPxx_yy` frame folders).
    Casme2,
    /// SAMM, short clips (FACS-codes spreadsheet + `006/006_1_2` frame folders).
    Samm,
    /// SMIC-HS (folders only).
    Smic,
    /// CAS(ME)² long videos (`code_final.xlsx` + `rawpic/s15/15_0101disgustingteeth`).
    #[serde(alias = "casme-sq")]
    CasmeSq,
    /// SAMM Long Videos (release spreadsheet + `006_1` video folders).
    #[serde(alias = "samm-lv")]
    SammLv,
    /// The MEGC2019 composite (3 classes) built from CASME II, SAMM and SMIC-HS.
    #[serde(alias = "megc")]
    Megc2019,
}

impl DatasetKind {
    /// Every kind, in a fixed order.
    pub const ALL: [DatasetKind; 6] = [
        DatasetKind::Casme2,
        DatasetKind::Samm,
        DatasetKind::Smic,
        DatasetKind::CasmeSq,
        DatasetKind::SammLv,
        DatasetKind::Megc2019,
    ];

    /// The `dataset` name the samples carry (`casme2`, `samm`, `smic`, `casme_sq`, `samm_lv`),
    /// `megc2019` for the composite.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Casme2 => names::CASME2,
            DatasetKind::Samm => names::SAMM,
            DatasetKind::Smic => names::SMIC,
            DatasetKind::CasmeSq => names::CASME_SQ,
            DatasetKind::SammLv => names::SAMM_LV,
            DatasetKind::Megc2019 => "megc2019",
        }
    }

    /// The name on the command line (`casme2`, `samm`, `smic`, `casme-sq`, `samm-lv`, `megc`).
    pub fn cli_name(self) -> &'static str {
        match self {
            DatasetKind::Casme2 => "casme2",
            DatasetKind::Samm => "samm",
            DatasetKind::Smic => "smic",
            DatasetKind::CasmeSq => "casme-sq",
            DatasetKind::SammLv => "samm-lv",
            DatasetKind::Megc2019 => "megc",
        }
    }

    /// The dataset's published name.
    pub fn title(self) -> &'static str {
        match self {
            DatasetKind::Casme2 => "CASME II",
            DatasetKind::Samm => "SAMM",
            DatasetKind::Smic => "SMIC-HS",
            DatasetKind::CasmeSq => "CAS(ME)^2",
            DatasetKind::SammLv => "SAMM Long Videos",
            DatasetKind::Megc2019 => "the MEGC2019 composite",
        }
    }

    /// The coding file as shipped.
    pub fn coding_hint(self) -> &'static str {
        match self {
            DatasetKind::Casme2 => "CASME2-coding-20140508.xlsx",
            DatasetKind::Samm => "SAMM_Micro_FACS_Codes_v2.xlsx",
            DatasetKind::Smic => "none: SMIC-HS ships no coding file",
            DatasetKind::CasmeSq => "CAS(ME)^2code_final.xlsx",
            DatasetKind::SammLv => "SAMM_LongVideos_V2_Release.xlsx",
            DatasetKind::Megc2019 => "the CASME II, SAMM and SMIC-HS manifests",
        }
    }

    /// The frames folder as shipped.
    pub fn frames_hint(self) -> &'static str {
        match self {
            DatasetKind::Casme2 => {
                "the folder holding sub01, sub02, ... (CASME2_RAW_selected, or Cropped with release cropped)"
            }
            DatasetKind::Samm => "the folder holding 006, 007, ... (each with 006_1_2/006_05562.jpg)",
            DatasetKind::Smic => "the HS folder holding s1, s2, ... (each with micro/<emotion>/<clip>/)",
            DatasetKind::CasmeSq => "the rawpic (or cropped) folder holding s15, s16, ...",
            DatasetKind::SammLv => "the folder holding the video folders 006_1, 006_2, ...",
            DatasetKind::Megc2019 => "the frames folders of the three parts",
        }
    }

    /// What identifies the dataset's coding file (used in messages).
    fn evidence(self) -> &'static str {
        match self {
            DatasetKind::Casme2 => "clips named like EP02_01f",
            DatasetKind::Samm => "clips named like 006_1_2 and no Type column",
            DatasetKind::SammLv => "a Type column and clips named like 006_1_1",
            DatasetKind::CasmeSq => "no header row and a macro-/micro-expression column",
            DatasetKind::Smic | DatasetKind::Megc2019 => "",
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.cli_name())
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = Error;

    /// Accepts the command-line names, the sample names and common spellings
    /// (`casme2`, `casme-sq`, `casme_sq`, `cas(me)^2`, `samm-lv`, `sammlv`, `megc`, `megc2019`).
    fn from_str(s: &str) -> Result<Self> {
        let t: String = s.trim().to_lowercase().chars().map(|c| if c == '-' { '_' } else { c }).collect();
        Ok(match t.as_str() {
            "casme2" | "casme_ii" | "casmeii" => DatasetKind::Casme2,
            "samm" => DatasetKind::Samm,
            "smic" | "smic_hs" => DatasetKind::Smic,
            "casme_sq" | "cas(me)^2" | "cas(me)2" | "casme^2" => DatasetKind::CasmeSq,
            "samm_lv" | "sammlv" | "samm_long_videos" => DatasetKind::SammLv,
            "megc" | "megc2019" => DatasetKind::Megc2019,
            _ => {
                return Err(Error::param(
                    "dataset",
                    s,
                    "expected one of casme2, samm, smic, casme-sq, samm-lv, megc",
                ))
            }
        })
    }
}

/// Which CASME II frame release the frames folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    /// `CASME2_RAW_selected/subNN/EPxx_yy/imgN.jpg`.
    #[default]
    Raw,
    /// `Cropped/subNN/EPxx_yy/reg_imgN.jpg`.
    Cropped,
}

/// Where a dataset is on disk: the coding file as shipped and the frames folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFiles {
    /// The coding spreadsheet (or the same table saved as CSV); `None` for SMIC-HS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coding: Option<PathBuf>,
    /// The frames folder (see [`DatasetKind::frames_hint`]).
    pub frames: PathBuf,
    /// CASME II only: which frame release `frames` holds (default raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// A per-subject demographics table (CSV or spreadsheet; see [`apply_demographics`]) whose
    /// sex, ethnicity and age fill the samples' fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demographics: Option<PathBuf>,
}

/// What [`index`] does with clips whose frames are not on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingFrames {
    /// Leave them out of the manifest and list them in [`IndexReport::dropped`].
    #[default]
    Drop,
    /// Fail with [`Error::BadFramePath`] naming the coding file, row and the first missing path.
    Error,
}

/// Options of [`index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexOptions {
    /// Clips whose frames are missing.
    pub missing_frames: MissingFrames,
}

/// A sample left out of the manifest, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// `dataset/subject/clip`.
    pub sample: String,
    /// Where the record came from (coding file and row, or folder).
    pub provenance: String,
    /// The reason, one short phrase shared by all samples dropped for it (`frame file missing`).
    pub reason: String,
    /// The particular (the missing path, the unmapped emotion).
    pub detail: String,
}

/// The result of indexing: the manifest and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexReport {
    /// The manifest.
    pub dataset: Dataset,
    /// Samples left out, in source order.
    pub dropped: Vec<Dropped>,
    /// Remarks about samples kept (e.g. emotions without a class in the label set).
    pub notes: Vec<String>,
}

impl IndexReport {
    /// Number of dropped samples per reason.
    pub fn dropped_by_reason(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for d in &self.dropped {
            *m.entry(d.reason.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// Which dataset a coding file belongs to, from its header and clip names; `None` when it is not
/// recognised (the loader then reports what it misses).
pub fn sniff_coding(path: &Path) -> Option<DatasetKind> {
    let t = Table::read(path, 0).ok()?;
    if let Ok(h) = t.find_header(&[&["Subject"], &["Filename"]]) {
        let fcol = h.find(&["Filename"])?;
        let clips: Vec<String> =
            t.data_rows(&h).take(50).map(|r| r.text_or_empty(fcol)).filter(|c| !c.is_empty()).collect();
        if clips.is_empty() {
            return None;
        }
        let casme = clips.iter().filter(|c| c.to_ascii_uppercase().starts_with("EP")).count();
        let samm = clips
            .iter()
            .filter(|c| {
                let parts: Vec<&str> = c.split('_').collect();
                parts.len() >= 2
                    && parts.iter().all(|p| !p.is_empty() && p.chars().all(|x| x.is_ascii_digit()))
            })
            .count();
        if 2 * samm > clips.len() {
            return Some(if h.find(&["Type"]).is_some() { DatasetKind::SammLv } else { DatasetKind::Samm });
        }
        if 2 * casme > clips.len() {
            return Some(DatasetKind::Casme2);
        }
        return None;
    }
    let typed = t
        .rows
        .iter()
        .take(50)
        .filter(|r| r.get(7).is_some_and(|c| c.text().to_lowercase().ends_with("expression")))
        .count();
    (typed > 0).then_some(DatasetKind::CasmeSq)
}

fn check_frames_dir(kind: DatasetKind, dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Err(Error::param(
            "frames",
            dir.display(),
            format!("no such folder; give {}", kind.frames_hint()),
        ));
    }
    if !dir.is_dir() {
        return Err(Error::param("frames", dir.display(), format!("is a file; give {}", kind.frames_hint())));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let visible = rd.filter_map(|e| e.ok()).any(|e| !e.file_name().to_string_lossy().starts_with('.'));
    if !visible {
        return Err(Error::EmptyFolder {
            path: dir.to_path_buf(),
            what: format!("expected {}", kind.frames_hint()),
        });
    }
    Ok(())
}

fn row_of(provenance: &str) -> usize {
    provenance
        .rsplit_once(":row ")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// The first missing piece of a sample's frames: `(reason, detail)`.
fn missing_frames(s: &Sample, needs_pattern: bool) -> Option<(String, String)> {
    let Some(dir) = &s.path else {
        return Some(("no frame folder for the video".into(), format!("video `{}`", s.clip)));
    };
    if !dir.is_dir() {
        return Some(("frame folder missing".into(), dir.display().to_string()));
    }
    if needs_pattern && s.frame_pattern.is_none() {
        return Some(("frame numbering not recognised".into(), dir.display().to_string()));
    }
    for n in [s.onset, s.apex_or_middle(), s.offset].into_iter().flatten() {
        if let Some(f) = s.frame_path(n) {
            if !f.is_file() {
                return Some(("frame file missing".into(), f.display().to_string()));
            }
        }
    }
    None
}

/// Reads a dataset as shipped (`files`) into a manifest whose samples point at frames that exist.
///
/// Checks, each an error that says what to fix: the coding file belongs to the dataset asked for
/// ([`sniff_coding`]), the frames folder exists and is not empty, and at least one clip of the
/// coding file is found under it (a folder of another dataset or release matches none). Then the
/// loader's own checks (bad cells, missing columns: file, row and column). Clips whose folder or
/// onset / apex (the middle frame when none is annotated) / offset frame file is missing are dropped and listed (or an error, with
/// [`MissingFrames::Error`]). SAMM Long Videos frames get their numbering pattern from the
/// folder's file names. [`DatasetKind::Megc2019`] is built with [`index_megc`].
pub fn index(kind: DatasetKind, files: &DataFiles, opts: &IndexOptions) -> Result<IndexReport> {
    if kind == DatasetKind::Megc2019 {
        return Err(Error::param(
            "dataset",
            kind,
            "the composite is built from the CASME II, SAMM and SMIC-HS manifests (index_megc)",
        ));
    }
    if kind != DatasetKind::Casme2 && files.release == Some(Release::Cropped) {
        return Err(Error::param(
            "release",
            "cropped",
            format!(
                "only CASME II has a release choice; for {}, give the folder of the release you use as frames",
                kind.title()
            ),
        ));
    }
    check_frames_dir(kind, &files.frames)?;
    // The manifest must work from any folder: frame paths are absolute.
    let frames_root = std::fs::canonicalize(&files.frames).map_err(|e| Error::io(&files.frames, e))?;
    let coding = match (kind, &files.coding) {
        (DatasetKind::Smic, Some(c)) => return Err(Error::param(
            "coding",
            c.display(),
            "SMIC-HS ships no coding file: give only the frames folder (the HS folder holding s1, s2, ...)",
        )),
        (DatasetKind::Smic, None) => None,
        (_, None) => {
            return Err(Error::param(
                "coding",
                "(none)",
                format!("{} needs its coding file ({})", kind.title(), kind.coding_hint()),
            ))
        }
        (_, Some(c)) => {
            if !c.is_file() {
                return Err(Error::param(
                    "coding",
                    c.display(),
                    format!("no such file; give {}", kind.coding_hint()),
                ));
            }
            if let Some(found) = sniff_coding(c).filter(|&f| f != kind) {
                return Err(Error::param(
                    "coding",
                    c.display(),
                    format!(
                        "this is the {} coding file ({}), not {}'s ({}): index it as `{}` or give the right file",
                        found.title(),
                        found.evidence(),
                        kind.title(),
                        kind.coding_hint(),
                        found.cli_name()
                    ),
                ));
            }
            Some(c.clone())
        }
    };
    let frames = Some(frames_root.clone());
    let mut ds = match kind {
        DatasetKind::Casme2 => {
            let mut cfg = Casme2Config::new(coding.clone().unwrap_or_default());
            cfg.frames_root = frames;
            cfg.verify_frames = false;
            cfg.release = match files.release.unwrap_or_default() {
                Release::Raw => Casme2Release::Raw,
                Release::Cropped => Casme2Release::Cropped,
            };
            load_casme2(&cfg)?
        }
        DatasetKind::Samm => {
            let mut cfg = SammConfig::new(coding.clone().unwrap_or_default());
            cfg.frames_root = frames;
            cfg.verify_frames = false;
            load_samm(&cfg)?
        }
        DatasetKind::Smic => load_smic(&SmicConfig::new(&frames_root)).map_err(|e| match e {
            Error::EmptyFolder { path, .. } if path == frames_root => Error::EmptyFolder {
                path,
                what: format!(
                    "no SMIC-HS clip (s1/micro/negative/s1_ne_01/...) under it; give {}",
                    kind.frames_hint()
                ),
            },
            other => other,
        })?,
        DatasetKind::CasmeSq => {
            let mut cfg = CasmeSqConfig::new(coding.clone().unwrap_or_default());
            cfg.frames_root = frames;
            cfg.verify_frames = false;
            load_casme_sq(&cfg)?
        }
        DatasetKind::SammLv => {
            let mut cfg = SammLvConfig::new(coding.clone().unwrap_or_default());
            cfg.frames_root = frames;
            cfg.verify_frames = false;
            let mut ds = load_samm_lv(&cfg)?;
            number_long_video_frames(&mut ds);
            ds
        }
        DatasetKind::Megc2019 => return Err(Error::param("dataset", kind, "use index_megc")),
    };
    let n_total = ds.samples.len();
    if n_total == 0 {
        return Err(Error::EmptyFolder {
            path: coding.clone().unwrap_or_else(|| files.frames.clone()),
            what: "no sample rows".into(),
        });
    }
    let mut kept = Vec::with_capacity(n_total);
    let mut dropped = Vec::new();
    for s in std::mem::take(&mut ds.samples) {
        match missing_frames(&s, kind == DatasetKind::SammLv) {
            None => kept.push(s),
            Some((reason, detail)) => {
                dropped.push(Dropped { sample: s.id(), provenance: s.provenance.clone(), reason, detail })
            }
        }
    }
    if kept.is_empty() {
        let first = &dropped[0];
        let mut hint = String::new();
        if kind == DatasetKind::Casme2 {
            let other = match files.release.unwrap_or_default() {
                Release::Raw => ("reg_img", "cropped"),
                Release::Cropped => ("img", "raw"),
            };
            let first_file = Path::new(&first.detail);
            if let (Some(dir), Some(name)) = (first_file.parent(), first_file.file_name()) {
                let n = name.to_string_lossy();
                let num: String = n.chars().filter(|c| c.is_ascii_digit()).collect();
                if dir.join(format!("{}{num}.jpg", other.0)).is_file() {
                    hint = format!(
                        " (the folder holds the {0} release: set release = \"{0}\", or --release {0})",
                        other.1
                    );
                }
            }
        }
        let src = coding.as_ref().map_or_else(|| "the dataset".to_string(), |c| c.display().to_string());
        return Err(Error::param(
            "frames",
            files.frames.display(),
            format!(
                "none of the {n_total} clips of {src} is there ({}: {}){hint}; give {}",
                first.reason,
                first.detail,
                kind.frames_hint()
            ),
        ));
    }
    if opts.missing_frames == MissingFrames::Error {
        if let Some(d) = dropped.first() {
            return Err(Error::BadFramePath {
                path: coding.unwrap_or_else(|| files.frames.clone()),
                row: row_of(&d.provenance),
                frame_path: PathBuf::from(&d.detail),
            });
        }
    }
    ds.samples = kept;
    let mut notes = Vec::new();
    if let Some(d) = &files.demographics {
        let n = apply_demographics(&mut ds, d)?;
        let total = ds.subjects().len();
        notes.push(format!("demographics of {n} of {total} subjects from {}", d.display()));
    }
    let unlabelled: Vec<&Sample> = ds.samples.iter().filter(|s| s.label.is_none()).collect();
    if !unlabelled.is_empty() {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &unlabelled {
            *by.entry(s.emotion.as_str()).or_insert(0) += 1;
        }
        let list: Vec<String> = by.iter().map(|(e, n)| format!("{e} {n}")).collect();
        let n = unlabelled.len();
        notes.push(format!(
            "{n} sample{} no class in {} ({}): kept in the manifest, not used by mex eval",
            if n == 1 { " has" } else { "s have" },
            ds.classes.name,
            list.join(", ")
        ));
    }
    Ok(IndexReport { dataset: ds, dropped, notes })
}

/// Gives SAMM Long Videos samples the frame pattern of their video folder (`006_1_{n:05}.jpg`
/// style names, inferred from the files) so that onset/apex/offset numbers address files.
/// Folders whose files are not numbered consecutively keep no pattern (dropped by [`index`]).
fn number_long_video_frames(ds: &mut Dataset) {
    let mut cache: HashMap<PathBuf, Option<String>> = HashMap::new();
    for s in &mut ds.samples {
        let Some(dir) = s.path.clone() else { continue };
        if s.frame_pattern.is_some() || !dir.is_dir() {
            continue;
        }
        let pat = cache
            .entry(dir.clone())
            .or_insert_with(|| list_images(&dir).ok().and_then(|f| infer_pattern(&f)).map(|(p, _, _)| p))
            .clone();
        s.frame_pattern = pat;
    }
}

/// Builds the MEGC2019 composite (3 classes) from indexed parts (CASME II, SAMM, SMIC-HS, in any
/// order) with `rules`, listing every sample left out: the rules' exclusions and the emotions
/// outside negative / positive / surprise. Parts holding another dataset are refused; a missing
/// part is reported in the notes (the official list has 442 samples from all three).
pub fn index_megc(parts: &[&Dataset], rules: &MegcRules) -> Result<IndexReport> {
    let allowed = [names::CASME2, names::SAMM, names::SMIC];
    for p in parts {
        if let Some(s) = p.samples.iter().find(|s| !allowed.contains(&s.dataset.as_str())) {
            return Err(Error::param(
                "part",
                &p.name,
                format!(
                    "holds {} samples; the MEGC2019 composite takes CASME II, SAMM and SMIC-HS manifests",
                    s.dataset
                ),
            ));
        }
    }
    let mut dropped = Vec::new();
    let mut present = std::collections::BTreeSet::new();
    for name in allowed {
        for p in parts {
            for s in p.samples.iter().filter(|s| s.dataset == name) {
                present.insert(name);
                if rules.excludes(s) {
                    dropped.push(Dropped {
                        sample: s.id(),
                        provenance: s.provenance.clone(),
                        reason: "MEGC2019 exclusion".into(),
                        detail: format!("{}/{}", s.subject, s.clip),
                    });
                } else if megc3_label(name, &s.emotion).is_none() {
                    dropped.push(Dropped {
                        sample: s.id(),
                        provenance: s.provenance.clone(),
                        reason: "emotion outside negative/positive/surprise".into(),
                        detail: s.emotion.clone(),
                    });
                }
            }
        }
    }
    let dataset = build_megc2019_with(parts, rules);
    if dataset.is_empty() {
        return Err(Error::param("part", parts.len(), "no sample maps to negative, positive or surprise"));
    }
    let mut notes = Vec::new();
    let missing: Vec<&str> = allowed.iter().copied().filter(|n| !present.contains(n)).collect();
    if !missing.is_empty() {
        notes.push(format!(
            "incomplete composite: no {} samples (the MEGC2019 list has 442 samples from casme2, samm and smic)",
            missing.join(", ")
        ));
    }
    Ok(IndexReport { dataset, dropped, notes })
}

/// Which CASME II samples the composite excludes besides the unmapped emotions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MegcExclusions {
    /// sub04/EP12_01f and sub24/EP02_07: the rules that reproduce the official 442-sample list.
    #[default]
    Official,
    /// MEB's rules, which also drop sub05/EP12_03f.
    Meb,
}

impl MegcExclusions {
    /// The composite rules.
    pub fn rules(self) -> MegcRules {
        match self {
            MegcExclusions::Official => MegcRules::default(),
            MegcExclusions::Meb => MegcRules::meb(),
        }
    }
}

/// Where the three parts of the MEGC2019 composite are on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MegcFiles {
    /// CASME II (coding file, frames, release).
    pub casme2: DataFiles,
    /// SAMM (coding file, frames).
    pub samm: DataFiles,
    /// SMIC-HS (frames only).
    pub smic: DataFiles,
    /// Exclusion rules.
    #[serde(default)]
    pub exclusions: MegcExclusions,
}

/// Indexes the three parts with [`index`] and builds the composite with [`index_megc`]; the
/// samples the parts leave out come first in [`IndexReport::dropped`].
pub fn index_megc_files(files: &MegcFiles, opts: &IndexOptions) -> Result<IndexReport> {
    let a = index(DatasetKind::Casme2, &files.casme2, opts)?;
    let b = index(DatasetKind::Samm, &files.samm, opts)?;
    let c = index(DatasetKind::Smic, &files.smic, opts)?;
    let mut r = index_megc(&[&a.dataset, &b.dataset, &c.dataset], &files.exclusions.rules())?;
    let mut dropped = Vec::new();
    for part in [a, b, c] {
        dropped.extend(part.dropped);
    }
    dropped.append(&mut r.dropped);
    r.dropped = dropped;
    Ok(r)
}

/// The decade band of an age in years (`23` -> `20-29`).
fn age_band(years: i64) -> String {
    let lo = years.div_euclid(10) * 10;
    format!("{lo}-{}", lo + 9)
}

/// Fills `sex`, `ethnicity` and `age_band` of the samples from a per-subject table (CSV or
/// spreadsheet, first sheet): a `Subject` column (`6`, `006`, `sub01`, `s1`: matched to each
/// sample's subject as the loaders name it) and any of `Sex`/`Gender`, `Ethnicity`/`Race`,
/// `Age` (years, turned into a decade band `20-29`) or `Age band`. Returns the number of subjects
/// of `ds` found in the table; subjects missing from it keep empty fields. Errors name the file,
/// row and column (a header without `Subject`, an age that is not a number).
pub fn apply_demographics(ds: &mut Dataset, path: &Path) -> Result<usize> {
    let t = Table::read(path, 0)?;
    let h = t.find_header(&[&["Subject", "Participant", "ID"]])?;
    let c_subj = h.col(&t, &["Subject", "Participant", "ID"])?;
    let c_sex = h.find(&["Sex", "Gender"]);
    let c_eth = h.find(&["Ethnicity", "Race", "Ethnic group"]);
    let c_age = h.find(&["Age"]);
    let c_band = h.find(&["Age band", "Age group", "Age range"]);
    if c_sex.is_none() && c_eth.is_none() && c_age.is_none() && c_band.is_none() {
        return Err(Error::MissingColumn {
            path: path.to_path_buf(),
            column: "Sex, Ethnicity or Age".into(),
            header_row: h.row_number,
        });
    }
    type Fields = (Option<String>, Option<String>, Option<String>);
    let mut rows: Vec<(String, Fields)> = Vec::new();
    for row in t.data_rows(&h) {
        let subject = row.text_or_empty(c_subj);
        if subject.is_empty() {
            continue;
        }
        let text = |c: Option<usize>| c.map(|c| row.text_or_empty(c)).filter(|v| !v.is_empty());
        let band = match (c_age, text(c_band)) {
            (_, Some(b)) => Some(b),
            (Some(c), None) if !row.cell(c).is_blank() => {
                let years = row.cell(c).as_i64().ok_or_else(|| row.bad(c, "expected an age in years"))?;
                Some(age_band(years))
            }
            _ => None,
        };
        rows.push((subject, (text(c_sex), text(c_eth), band)));
    }
    let mut matched = std::collections::BTreeSet::new();
    for s in &mut ds.samples {
        let hit = rows.iter().find(|(raw, _)| {
            crate::loaders::canonical_subject(&s.dataset, raw).is_some_and(|c| c == s.subject)
        });
        if let Some((_, (sex, eth, band))) = hit {
            s.sex = sex.clone();
            s.ethnicity = eth.clone();
            s.age_band = band.clone();
            matched.insert(s.subject_key());
        }
    }
    Ok(matched.len())
}
