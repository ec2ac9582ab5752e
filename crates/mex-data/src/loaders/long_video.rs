//! Long-video spotting datasets: CAS(ME)² and SAMM Long Videos. Each annotated movement is one
//! [`Sample`] whose `clip` is the video, `kind` is `micro` or `macro`, and onset/apex/offset are
//! absolute frame numbers in that video.

use super::{canonical_subject, check_exists};
use crate::sample::names;
use crate::table::{Cell, Table};
use crate::{Dataset, Result, Sample};
use mex_core::ClassSet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Label set of the long-video loaders: the movement type.
pub fn kind_classes() -> ClassSet {
    ClassSet::new("expression_type", &["macro", "micro"])
}

/// Where CAS(ME)² is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasmeSqConfig {
    /// `CAS(ME)^2code_final.xlsx` / `code_final.xlsx`: sheet 0 the annotations (no header),
    /// sheet 1 the subject naming, sheet 2 the video naming.
    pub coding_file: PathBuf,
    /// The `rawpic` (or `cropped`) folder holding `s15/15_0101disgustingteeth/img1.jpg`.
    pub frames_root: Option<PathBuf>,
    /// Check that every video folder exists.
    pub verify_frames: bool,
    /// Frame rate (30).
    pub fps: f32,
}

impl CasmeSqConfig {
    /// Metadata only.
    pub fn new(coding_file: impl Into<PathBuf>) -> Self {
        Self { coding_file: coding_file.into(), frames_root: None, verify_frames: true, fps: 30.0 }
    }
}

/// Reads CAS(ME)². Sheet 0 columns (positional, no header): subject, video, onset, apex, offset,
/// AU, emotion, type (`macro-expression` / `micro-expression`), self-report. `offset == 0` means
/// the offset is not annotated: the apex is used as the end. The video's name is the part of
/// `video` before `_` (`disgustingteeth_1` -> `disgustingteeth`); sheet 2 maps it to its code
/// (`0101`) and sheet 1 maps the subject number of sheet 0 (its third column) to the folder code
/// (second column, `15` -> folder `s15`). Video folder: `s15/15_0101disgustingteeth`.
pub fn load_casme_sq(cfg: &CasmeSqConfig) -> Result<Dataset> {
    let path = &cfg.coding_file;
    let t = Table::read(path, 0)?;
    let subj_map = Table::read(path, 1).ok();
    let video_map = Table::read(path, 2).ok();
    // subject (sheet 0 value) -> folder code
    let mut subj_code: HashMap<String, String> = HashMap::new();
    if let Some(m) = &subj_map {
        for r in &m.rows {
            if let (Some(code), Some(id)) = (r.get(1), r.get(2)) {
                if let (Some(c), Some(i)) = (code.as_i64(), id.as_i64()) {
                    subj_code.insert(i.to_string(), c.to_string());
                }
            }
        }
    }
    let mut video_code: HashMap<String, String> = HashMap::new();
    if let Some(m) = &video_map {
        for r in &m.rows {
            if let (Some(code), Some(name)) = (r.first(), r.get(1)) {
                let c = match code {
                    Cell::Int(_) | Cell::Float(_) => {
                        code.as_i64().map(|v| format!("{v:04}")).unwrap_or_default()
                    }
                    _ => code.text(),
                };
                if !c.is_empty() && !name.is_blank() {
                    video_code.insert(name.text().to_lowercase(), c);
                }
            }
        }
    }
    let h = Table::positional_header(&[
        "subject",
        "video",
        "onset",
        "apex",
        "offset",
        "au",
        "emotion",
        "type",
        "selfReport",
    ]);
    let mut samples = Vec::new();
    for row in t.data_rows(&h) {
        let subj_raw = row.text(0)?;
        let video = row.text(1)?;
        let onset = row.usize(2)?;
        let apex = row.opt_usize(3)?;
        let off_raw = row.opt_usize(4)?;
        let offset = match off_raw {
            Some(0) | None => apex.ok_or_else(|| row.bad(4, "offset 0 and no apex to end the movement"))?,
            Some(o) => o,
        };
        if offset < onset {
            return Err(row.bad(4, format!("offset {offset} before onset {onset}")));
        }
        let ty = row.text(7)?.to_lowercase();
        let kind = if ty.starts_with("micro") {
            "micro"
        } else if ty.starts_with("macro") {
            "macro"
        } else {
            return Err(row.bad(7, "expected macro-expression or micro-expression"));
        };
        let vname = video.split('_').next().unwrap_or(&video).to_string();
        let key = subj_raw.trim_end_matches(".0").to_string();
        let code = subj_code.get(&key).cloned().unwrap_or_else(|| key.clone());
        let subject = format!("s{code}");
        let folder = video_code.get(&vname.to_lowercase()).map(|vc| format!("{code}_{vc}{vname}"));
        let path = match (&cfg.frames_root, &folder) {
            (Some(r), Some(f)) => Some(r.join(&subject).join(f)),
            (Some(_), None) if cfg.verify_frames => {
                return Err(row.bad(1, format!("video name `{vname}` is not in the naming sheet (sheet 3)")));
            }
            _ => None,
        };
        if cfg.verify_frames {
            if let Some(p) = &path {
                check_exists(path_of(cfg), row.number(), p)?;
            }
        }
        samples.push(Sample {
            dataset: names::CASME_SQ.into(),
            subject,
            clip: folder.unwrap_or_else(|| vname.clone()),
            path,
            frame_pattern: Some("img{n}.jpg".into()),
            fps: Some(cfg.fps),
            onset: Some(onset),
            apex: apex.filter(|&a| a >= onset && a <= offset),
            offset: Some(offset),
            label: kind_classes().parse(kind).ok(),
            emotion: row.text_or_empty(6),
            kind: Some(kind.into()),
            action_units: row.text_or_empty(5),
            provenance: format!("{}:row {}", path_of(cfg).display(), row.number()),
            ..Default::default()
        });
    }
    Ok(Dataset::new(names::CASME_SQ, kind_classes(), samples))
}

fn path_of(cfg: &CasmeSqConfig) -> &std::path::Path {
    &cfg.coding_file
}

/// Where SAMM Long Videos is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SammLvConfig {
    /// `SAMM_LongVideos_V2_Release.xlsx` (or the same table as CSV).
    pub coding_file: PathBuf,
    /// The folder holding the video folders `006_1`, ...
    pub frames_root: Option<PathBuf>,
    /// Sheet index.
    pub sheet: usize,
    /// Check that every video folder exists.
    pub verify_frames: bool,
    /// Frame rate (200).
    pub fps: f32,
}

impl SammLvConfig {
    /// Metadata only.
    pub fn new(coding_file: impl Into<PathBuf>) -> Self {
        Self { coding_file: coding_file.into(), frames_root: None, sheet: 0, verify_frames: true, fps: 200.0 }
    }
}

/// Reads SAMM Long Videos: preamble rows, then a header with `Subject`, `Filename`, `Onset`,
/// `Apex`, `Offset`, `Type` (`Macro` / `Micro - 1/2`), `Action Units`. The video is the first
/// two parts of `Filename` (`006_1_1` -> `006_1`). Apex `-1` or blank = not annotated; offset
/// `0`/blank falls back to the apex.
pub fn load_samm_lv(cfg: &SammLvConfig) -> Result<Dataset> {
    let t = Table::read(&cfg.coding_file, cfg.sheet)?;
    let h = t.find_header(&[&["Subject"], &["Filename"], &["Onset", "Onset Frame"], &["Type"]])?;
    let c_subj = h.col(&t, &["Subject"])?;
    let c_file = h.col(&t, &["Filename"])?;
    let c_on = h.col(&t, &["Onset", "Onset Frame"])?;
    let c_ap = h.col(&t, &["Apex", "Apex Frame"])?;
    let c_off = h.col(&t, &["Offset", "Offset Frame"])?;
    let c_type = h.col(&t, &["Type"])?;
    let c_au = h.find(&["Action Units", "Action Unit"]);
    let c_em = h.find(&["Estimated Emotion", "Emotion"]);
    let mut samples = Vec::new();
    for row in t.data_rows(&h) {
        let subject = canonical_subject(names::SAMM_LV, &row.text(c_subj)?)
            .ok_or_else(|| row.bad(c_subj, "expected a subject number"))?;
        let file = row.text(c_file)?;
        let parts: Vec<&str> = file.split('_').collect();
        if parts.len() < 2 {
            return Err(row.bad(c_file, "expected <subject>_<video>_<n>"));
        }
        let video = format!("{}_{}", parts[0], parts[1]);
        let onset = row.usize(c_on)?;
        let apex = row.opt_usize(c_ap)?;
        let offset = match row.opt_usize(c_off)? {
            Some(0) | None => apex.ok_or_else(|| row.bad(c_off, "no offset and no apex"))?,
            Some(o) => o,
        };
        if offset < onset {
            return Err(row.bad(c_off, format!("offset {offset} before onset {onset}")));
        }
        let ty = row.text(c_type)?.to_lowercase();
        let kind = if ty.starts_with("micro") {
            "micro"
        } else if ty.starts_with("macro") {
            "macro"
        } else {
            return Err(row.bad(c_type, "expected Macro or Micro - 1/2"));
        };
        let path = cfg.frames_root.as_ref().map(|r| r.join(&video));
        if cfg.verify_frames {
            if let Some(p) = &path {
                check_exists(&cfg.coding_file, row.number(), p)?;
            }
        }
        samples.push(Sample {
            dataset: names::SAMM_LV.into(),
            subject,
            clip: video,
            path,
            frame_pattern: None,
            fps: Some(cfg.fps),
            onset: Some(onset),
            apex: apex.filter(|&a| a >= onset && a <= offset),
            offset: Some(offset),
            label: kind_classes().parse(kind).ok(),
            emotion: c_em.map(|c| row.text_or_empty(c)).unwrap_or_default(),
            kind: Some(kind.into()),
            action_units: c_au.map(|c| row.text_or_empty(c)).unwrap_or_default(),
            provenance: format!("{}:row {} ({file})", cfg.coding_file.display(), row.number()),
            ..Default::default()
        });
    }
    Ok(Dataset::new(names::SAMM_LV, kind_classes(), samples))
}

/// Groups a long-video dataset's movements by `(subject, video)`, sorted by onset.
pub fn by_video(ds: &Dataset) -> BTreeMap<(String, String), Vec<&Sample>> {
    let mut m: BTreeMap<(String, String), Vec<&Sample>> = BTreeMap::new();
    for s in &ds.samples {
        m.entry((s.subject.clone(), s.clip.clone())).or_default().push(s);
    }
    for v in m.values_mut() {
        v.sort_by_key(|s| s.onset);
    }
    m
}
