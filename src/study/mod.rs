//! Screening studies (`mex study`): a table of recordings from two groups in, a report out that
//! says which facial indicators separate the groups, how reliably, with honest intervals.
//!
//! * [`config`]: the study file (`STUDY.toml`), column renames and settings;
//! * [`table`]: the CSV table (named columns, every other numeric column an indicator) and its
//!   checks (duplicate columns, non-numeric indicators, NaN, a subject in two groups, fewer than two
//!   subjects per group), each error naming the line and column;
//! * [`recordings`]: analysis JSON files read directly, videos and frames folders analysed by
//!   `mex analyze` into a content-keyed cache (one recording per cluster job with
//!   [`StudyMode::Recording`]);
//! * [`report`]: the statistics (subject-level group comparisons, ROC AUC, Spearman, ICC,
//!   subgroups, the grouped cross-validated classifier) and the `report.json` schema;
//! * [`markdown`], [`plots`]: `report.md` and the figures.
//!
//! Definitions and sources: docs/study.md.
//!
//! ```no_run
//! # fn main() -> mex::Result<()> {
//! use mex::study::{run_study, StudyConfig, StudyMode, StudyOutcome};
//! let cfg = StudyConfig::from_file("examples/studies/synthetic.toml".as_ref())?;
//! if let StudyOutcome::Report(r) = run_study(&cfg, "out/study".as_ref(), StudyMode::All, None)? {
//!     println!("{} indicators", r.indicators.len());
//! }
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod markdown;
pub mod plots;
pub mod recordings;
pub mod report;
pub mod table;

pub use config::{ColumnNames, StudyAnalyzeConfig, StudyConfig};
pub use report::{compute_report, StudyReport};
pub use table::{check_groups, read_table, Row, Table};

use crate::io::{write_atomic, write_json_atomic};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a `mex study` invocation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyMode {
    /// Analyse every recording not yet in the cache, then write the report.
    All,
    /// Analyse recording `K` only (0-based, in table order among rows with a recording): one
    /// cluster job.
    Recording(usize),
    /// Write the report from the cache; an error names the first recording not analysed yet.
    Merge,
}

/// The result of [`run_study`].
#[derive(Debug, Clone, PartialEq)]
pub enum StudyOutcome {
    /// One recording's job finished.
    Analysed {
        /// Its index.
        index: usize,
        /// Number of recordings of the table.
        total: usize,
        /// Whether the analysis ran (false: it was in the cache or is an analysis JSON).
        ran: bool,
        /// The recording.
        path: PathBuf,
    },
    /// The report was written.
    Report(Box<StudyReport>),
}

/// Runs a study: checks the table, analyses (or looks up) the recordings, computes the statistics
/// and writes `report.json`, `report.md` and `plots/` under `out`. Nothing is written when the
/// table is invalid. `cache` defaults to `out/cache`.
pub fn run_study(
    cfg: &StudyConfig,
    out: &Path,
    mode: StudyMode,
    cache: Option<&Path>,
) -> Result<StudyOutcome> {
    let mut table = read_table(cfg)?;
    let (positive, negative) = check_groups(&mut table, cfg)?;
    let recs = recordings::list_recordings(&table, cfg)?;
    let cache: PathBuf = cache.map_or_else(|| out.join("cache"), Path::to_path_buf);
    // a recording without a face is bad input: named by its line and column
    let analyse = |rec: &recordings::Recording| {
        recordings::ensure_analysed(rec, cfg, &cache).map_err(|e| match e {
            Error::NoFace { .. } => {
                table.error_at(rec.line, &cfg.columns.recording, format!("{}: {e}", rec.path.display()))
            }
            e => e,
        })
    };
    // folders created for the cache are removed again when an analysis fails and leaves them empty
    let mut made = crate::io::Leftovers::default();
    match mode {
        StudyMode::Recording(k) => {
            let rec = recs.get(k).ok_or_else(|| {
                Error::Invalid(format!(
                    "--recording {k}: the table has {} recordings (0..{})",
                    recs.len(),
                    recs.len().saturating_sub(1)
                ))
            })?;
            if rec.key.is_some() {
                made.create_dir_all(&cache)?;
            }
            let ran = analyse(rec)?;
            made.keep();
            return Ok(StudyOutcome::Analysed { index: k, total: recs.len(), ran, path: rec.path.clone() });
        }
        StudyMode::All => {
            if recs.iter().any(|r| r.key.is_some()) {
                made.create_dir_all(&cache)?;
            }
            for rec in &recs {
                analyse(rec)?;
            }
            made.keep();
        }
        StudyMode::Merge => {
            for (k, rec) in recs.iter().enumerate() {
                let json = rec.analysis_json(&cache);
                if !json.is_file() {
                    return Err(Error::Invalid(format!(
                        "recording {k} ({}, line {}) has no analysis in {}: run it with --recording {k}",
                        rec.path.display(),
                        rec.line,
                        cache.display()
                    )));
                }
            }
        }
    }
    // indicator values of the recordings
    let rcol = cfg.columns.recording.clone();
    let mut names: BTreeSet<String> = table.indicator_columns.iter().cloned().collect();
    for rec in &recs {
        let json = rec.analysis_json(&cache);
        let inds = recordings::read_indicators(&json).map_err(|e| table.error_at(rec.line, &rcol, e))?;
        for (name, v) in inds {
            if table.indicator_columns.contains(&name) {
                return Err(table.error_at(
                    rec.line,
                    &name,
                    format!("indicator `{name}` is both a column of the table and in {}", json.display()),
                ));
            }
            names.insert(name.clone());
            if let Some(v) = v {
                table.rows[rec.row].values.insert(name, v);
            }
        }
    }
    let indicators: Vec<String> = match &cfg.indicators {
        Some(list) => {
            for i in list {
                if !names.contains(i) {
                    return Err(Error::Config {
                        file: "study".into(),
                        field: "indicators".into(),
                        reason: format!(
                            "`{i}` is not an indicator of the table or the analyses (found: {})",
                            names.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
            list.clone()
        }
        None => names.into_iter().collect(),
    };
    if indicators.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no indicators: give numeric columns or recordings",
            table.path.display()
        )));
    }
    let report = compute_report(&table.rows, &indicators, &positive, &negative, cfg)?;
    let report = write_report(report, out)?;
    Ok(StudyOutcome::Report(Box::new(report)))
}

/// Writes the figures, `report.json` and `report.md` under `out` (each atomically) and returns the
/// report with its `files` filled in.
pub fn write_report(mut report: StudyReport, out: &Path) -> Result<StudyReport> {
    let mut files = plots::write_plots(&report, out)?;
    files.push("report.json".into());
    files.push("report.md".into());
    report.files = files;
    write_json_atomic(&out.join("report.json"), &report)?;
    write_atomic(&out.join("report.md"), markdown::render(&report).as_bytes())?;
    Ok(report)
}
