//! Loaders for the published dataset layouts. Each reads the metadata file and folders as the
//! publisher ships them, from a path the user gives, and returns a [`crate::Dataset`].
//!
//! | dataset | metadata | frames |
//! |---|---|---|
//! | CASME II | `CASME2-coding-*.xlsx` (blank-header columns, `/` apex) | `subNN/EPxx_yy/imgN.jpg`, cropped `reg_imgN.jpg` |
//! | SAMM | `SAMM_*_Micro_FACS_Codes_v2.xlsx` (preamble rows) | `006/006_1_2/006_05562.jpg` |
//! | SMIC-HS | none (folders) | `s1/micro/negative/s1_ne_01/*.bmp` |
//! | CAS(ME)² | `code_final.xlsx` (no header; naming sheets) | `rawpic/s15/15_0101disgustingteeth/imgN.jpg` |
//! | SAMM-LV | `SAMM_LongVideos_V2_Release.xlsx` (preamble rows) | `006_1/` |
//! | STSTNet inputs | none | `<subject>/u_test/<label>/<subject>_<clip> .png` |
//!
//! Every metadata loader also accepts the same table saved as CSV.

pub mod casme2;
pub mod long_video;
pub mod samm;
pub mod smic;
pub mod ststnet;

pub use casme2::{load_casme2, Casme2Config, Casme2Release};
pub use long_video::{load_casme_sq, load_samm_lv, CasmeSqConfig, SammLvConfig};
pub use samm::{load_samm, SammConfig};
pub use smic::{load_smic, ApexRule, SmicConfig};
pub use ststnet::load_ststnet_inputs;

use crate::{Error, Result};
use std::path::Path;

/// Canonical subject id of a dataset from a raw cell or folder name: CASME II `1`/`sub1` ->
/// `sub01`; SAMM `6` -> `006`; SMIC `1`/`s1` -> `s01`. Other datasets: the trimmed text.
pub fn canonical_subject(dataset: &str, raw: &str) -> Option<String> {
    let t = raw.trim();
    let digits = |p: &str| -> Option<u32> {
        let d = t.strip_prefix(p).unwrap_or(t);
        let d = d.strip_suffix(".0").unwrap_or(d);
        d.parse::<u32>().ok()
    };
    match dataset {
        crate::sample::names::CASME2 => digits("sub").map(|n| format!("sub{n:02}")),
        crate::sample::names::SAMM | crate::sample::names::SAMM_LV => digits("").map(|n| format!("{n:03}")),
        crate::sample::names::SMIC => digits("s").map(|n| format!("s{n:02}")),
        _ => (!t.is_empty()).then(|| t.to_string()),
    }
}

/// Errors with [`Error::BadFramePath`] unless `frame` exists.
pub(crate) fn check_exists(meta: &Path, row: usize, frame: &Path) -> Result<()> {
    if frame.exists() {
        Ok(())
    } else {
        Err(Error::BadFramePath { path: meta.to_path_buf(), row, frame_path: frame.to_path_buf() })
    }
}

/// Errors with [`Error::BadFramePath`] unless the sample's frame folder and its onset and offset
/// frames exist (the check the spreadsheet loaders run with `verify_frames`).
pub(crate) fn check_sample_frames(meta: &Path, row: usize, s: &crate::Sample) -> Result<()> {
    let Some(dir) = &s.path else { return Ok(()) };
    check_exists(meta, row, dir)?;
    for n in [s.onset, s.offset].into_iter().flatten() {
        if let Some(f) = s.frame_path(n) {
            check_exists(meta, row, &f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_canonicalise() {
        assert_eq!(canonical_subject("casme2", "1").as_deref(), Some("sub01"));
        assert_eq!(canonical_subject("casme2", "sub17").as_deref(), Some("sub17"));
        assert_eq!(canonical_subject("samm", "6").as_deref(), Some("006"));
        assert_eq!(canonical_subject("samm", "006").as_deref(), Some("006"));
        assert_eq!(canonical_subject("samm", "6.0").as_deref(), Some("006"));
        assert_eq!(canonical_subject("smic", "s1").as_deref(), Some("s01"));
        assert_eq!(canonical_subject("smic", "s01").as_deref(), Some("s01"));
        assert_eq!(canonical_subject("casme2", "x"), None);
    }
}
