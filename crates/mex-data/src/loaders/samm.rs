//! SAMM (short clips): the FACS-codes spreadsheet with its preamble rows, and the frame folders.

use super::{canonical_subject, check_sample_frames};
use crate::sample::names;
use crate::table::Table;
use crate::{Dataset, Result, Sample};
use mex_core::ClassSet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where SAMM is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SammConfig {
    /// `SAMM_Micro_FACS_Codes_v2.xlsx` (or the same table as CSV).
    pub coding_file: PathBuf,
    /// The folder holding `006`, `007`, ...; `None`: metadata only.
    pub frames_root: Option<PathBuf>,
    /// Sheet index.
    pub sheet: usize,
    /// Check that every clip's onset and offset frame files exist.
    pub verify_frames: bool,
}

impl SammConfig {
    /// Metadata only, first sheet.
    pub fn new(coding_file: impl Into<PathBuf>) -> Self {
        Self { coding_file: coding_file.into(), frames_root: None, sheet: 0, verify_frames: true }
    }
}

/// SAMM frame rate.
pub const SAMM_FPS: f32 = 200.0;

/// SAMM's emotion classes (as written in the spreadsheet, lower-cased).
pub fn samm_classes() -> ClassSet {
    ClassSet::new(
        "samm",
        &["anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other"],
    )
}

/// Reads SAMM. The header row is found by content after the text preamble; columns `Subject`,
/// `Filename`, `Onset Frame`, `Apex Frame`, `Offset Frame`, `Micro` (type), `Action Units`,
/// `Estimated Emotion`. Subject `6` -> folder `006`; frames `006/006_1_2/006_05562.jpg`.
pub fn load_samm(cfg: &SammConfig) -> Result<Dataset> {
    let t = Table::read(&cfg.coding_file, cfg.sheet)?;
    let h = t.find_header(&[&["Subject"], &["Filename"], &["Onset Frame", "Onset"]])?;
    let c_subj = h.col(&t, &["Subject"])?;
    let c_file = h.col(&t, &["Filename"])?;
    let c_on = h.col(&t, &["Onset Frame", "Onset"])?;
    let c_ap = h.col(&t, &["Apex Frame", "Apex"])?;
    let c_off = h.col(&t, &["Offset Frame", "Offset"])?;
    let c_au = h.col(&t, &["Action Units"])?;
    let c_em = h.col(&t, &["Estimated Emotion", "Emotion"])?;
    let c_type = h.find(&["Micro", "Type"]);
    let classes = samm_classes();
    let mut samples = Vec::new();
    for row in t.data_rows(&h) {
        let raw = row.text(c_subj)?;
        let subject = canonical_subject(names::SAMM, &raw)
            .ok_or_else(|| row.bad(c_subj, "expected a subject number"))?;
        let clip = row.text(c_file)?;
        let onset = row.usize(c_on)?;
        let apex = row.opt_usize(c_ap)?;
        let offset = row.usize(c_off)?;
        if offset < onset {
            return Err(row.bad(c_off, format!("offset before onset {onset}")));
        }
        let emotion = row.text_or_empty(c_em);
        let kind = c_type.map(|c| row.text_or_empty(c).to_lowercase()).filter(|k| !k.is_empty());
        let path = cfg.frames_root.as_ref().map(|r| r.join(&subject).join(&clip));
        let s = Sample {
            dataset: names::SAMM.into(),
            subject: subject.clone(),
            clip,
            path,
            frame_pattern: Some(format!("{subject}_{{n:05}}.jpg")),
            fps: Some(SAMM_FPS),
            onset: Some(onset),
            apex,
            offset: Some(offset),
            label: classes.parse(&emotion).ok(),
            emotion,
            kind,
            action_units: row.text_or_empty(c_au),
            provenance: format!("{}:row {}", cfg.coding_file.display(), row.number()),
            ..Default::default()
        };
        if cfg.verify_frames {
            check_sample_frames(&cfg.coding_file, row.number(), &s)?;
        }
        samples.push(s);
    }
    Ok(Dataset::new(names::SAMM, classes, samples))
}
