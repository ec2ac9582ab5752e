//! CASME II: the coding spreadsheet and the frame folders.

use super::{canonical_subject, check_sample_frames};
use crate::sample::names;
use crate::table::Table;
use crate::{Dataset, Result, Sample};
use mex_core::ClassSet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which frame release the frames root points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Casme2Release {
    /// `CASME2_RAW_selected/subNN/EPxx_yy/imgN.jpg`.
    #[default]
    Raw,
    /// `Cropped/subNN/EPxx_yy/reg_imgN.jpg`.
    Cropped,
}

/// Where CASME II is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Casme2Config {
    /// The coding spreadsheet (`CASME2-coding-20140508.xlsx`, or the same table as CSV).
    pub coding_file: PathBuf,
    /// The folder holding `sub01`, `sub02`, ... (raw or cropped release); `None`: metadata only.
    pub frames_root: Option<PathBuf>,
    /// Which release `frames_root` is.
    pub release: Casme2Release,
    /// Sheet index in the workbook.
    pub sheet: usize,
    /// Check that every clip's onset and offset frame files exist.
    pub verify_frames: bool,
}

impl Casme2Config {
    /// Metadata only, first sheet.
    pub fn new(coding_file: impl Into<PathBuf>) -> Self {
        Self {
            coding_file: coding_file.into(),
            frames_root: None,
            release: Casme2Release::Raw,
            sheet: 0,
            verify_frames: true,
        }
    }
}

/// CASME II frame rate.
pub const CASME2_FPS: f32 = 200.0;

/// Reads CASME II. Columns (found by name in the first row that holds them; blank header
/// cells are tolerated): `Subject`, `Filename`, `OnsetFrame`, `ApexFrame` (`/` = not annotated),
/// `OffsetFrame`, `Action Units`, `Estimated Emotion`. Labels index [`ClassSet::casme2_5`]
/// (`fear` and `sadness` get no label). Errors name the file and row.
pub fn load_casme2(cfg: &Casme2Config) -> Result<Dataset> {
    let t = Table::read(&cfg.coding_file, cfg.sheet)?;
    let h = t.find_header(&[&["Subject"], &["Filename"], &["OnsetFrame", "Onset Frame", "Onset"]])?;
    let c_subj = h.col(&t, &["Subject"])?;
    let c_file = h.col(&t, &["Filename"])?;
    let c_on = h.col(&t, &["OnsetFrame", "Onset Frame", "Onset"])?;
    let c_ap = h.col(&t, &["ApexFrame", "Apex Frame", "Apex"])?;
    let c_off = h.col(&t, &["OffsetFrame", "Offset Frame", "Offset"])?;
    let c_au = h.col(&t, &["Action Units", "AU", "Action Unit"])?;
    let c_em = h.col(&t, &["Estimated Emotion", "Emotion"])?;
    let classes = ClassSet::casme2_5();
    let pattern = match cfg.release {
        Casme2Release::Raw => "img{n}.jpg",
        Casme2Release::Cropped => "reg_img{n}.jpg",
    };
    let mut samples = Vec::new();
    for row in t.data_rows(&h) {
        let raw_subj = row.text(c_subj)?;
        let subject = canonical_subject(names::CASME2, &raw_subj)
            .ok_or_else(|| row.bad(c_subj, "expected a subject number (1..26) or subNN"))?;
        let clip = row.text(c_file)?;
        let onset = row.usize(c_on)?;
        let apex = row.opt_usize(c_ap)?;
        let offset = row.usize(c_off)?;
        if offset < onset {
            return Err(row.bad(c_off, format!("offset before onset {onset}")));
        }
        if let Some(a) = apex.filter(|&a| a < onset || a > offset) {
            return Err(row.bad(c_ap, format!("apex {a} outside onset..offset {onset}..{offset}")));
        }
        let emotion = row.text_or_empty(c_em).to_lowercase();
        let path = cfg.frames_root.as_ref().map(|r| r.join(&subject).join(&clip));
        let s = Sample {
            dataset: names::CASME2.into(),
            subject,
            clip,
            path,
            frame_pattern: Some(pattern.into()),
            fps: Some(CASME2_FPS),
            onset: Some(onset),
            apex,
            offset: Some(offset),
            label: classes.parse(&emotion).ok(),
            emotion,
            kind: Some("micro".into()),
            action_units: row.text_or_empty(c_au),
            provenance: format!("{}:row {}", cfg.coding_file.display(), row.number()),
            ..Default::default()
        };
        if cfg.verify_frames {
            check_sample_frames(&cfg.coding_file, row.number(), &s)?;
        }
        samples.push(s);
    }
    Ok(Dataset::new(names::CASME2, classes, samples))
}
