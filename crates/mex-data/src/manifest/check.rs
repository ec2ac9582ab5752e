//! Does every frame a manifest points to exist and decode?

use crate::frames::read_gray;
use crate::sample::list_images;
use crate::{Dataset, Sample};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which frames of each sample [`check`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameSelection {
    /// Every frame from onset to offset (the whole file for single-image samples).
    #[default]
    All,
    /// Onset, apex (the middle frame when no apex is annotated) and offset: the frames an
    /// onset-apex recognition pipeline reads.
    Key,
}

/// Options of [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckOptions {
    /// Frames read per sample.
    pub frames: FrameSelection,
    /// Decode every frame (with the crate's frame reader); `false` only tests that files exist.
    pub decode: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { frames: FrameSelection::All, decode: true }
    }
}

/// One frame (or frame folder) that is missing or does not decode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FrameProblem {
    /// The file or folder.
    pub path: PathBuf,
    /// The first sample (`dataset/subject/clip`) that needs it.
    pub sample: String,
    /// What is wrong (`missing`, `does not decode: ...`, `folder has 12 frames, the clip needs 40`).
    pub problem: String,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Samples checked.
    pub n_samples: usize,
    /// Distinct frame files looked at.
    pub n_frames: usize,
    /// Frames or folders that are not there.
    pub missing: Vec<FrameProblem>,
    /// Frames that are there but do not decode.
    pub undecodable: Vec<FrameProblem>,
    /// Samples with at least one problem.
    pub n_bad_samples: usize,
}

impl CheckReport {
    /// Whether every frame exists (and decodes, when decoding was asked for).
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.undecodable.is_empty()
    }
}

/// The frame files of a sample under `sel`, or a problem with its folder.
fn sample_frames(s: &Sample, sel: FrameSelection) -> Result<Vec<PathBuf>, (PathBuf, String)> {
    let Some(path) = &s.path else {
        return Err((PathBuf::new(), "the sample has no frame path".into()));
    };
    if path.is_file() {
        return Ok(vec![path.clone()]);
    }
    if !path.is_dir() {
        return Err((path.clone(), "missing".into()));
    }
    let (on, off) = match (s.onset, s.offset) {
        (Some(a), Some(b)) if b >= a => (a, b),
        _ => {
            return list_images(path).map_err(|e| (path.clone(), e.to_string()));
        }
    };
    let wanted: Vec<usize> = match sel {
        FrameSelection::All => (on..=off).collect(),
        FrameSelection::Key => {
            let mut v = vec![on, s.apex_or_middle().unwrap_or(on), off];
            v.dedup();
            v
        }
    };
    if s.frame_pattern.is_some() {
        return Ok(wanted.iter().filter_map(|&n| s.frame_path(n)).collect());
    }
    // No pattern: frame n is the folder's (n - onset)-th image in natural order.
    let files = list_images(path).map_err(|e| (path.clone(), e.to_string()))?;
    if files.len() < off - on + 1 {
        return Err((
            path.clone(),
            format!("folder has {} frames, the clip needs {}", files.len(), off - on + 1),
        ));
    }
    Ok(wanted.iter().filter_map(|&n| n.checked_sub(on).and_then(|i| files.get(i)).cloned()).collect())
}

/// Checks that every frame `ds` points to exists and, with `opts.decode`, decodes (in parallel
/// with rayon). Frames shared by several samples (long videos) are read once. `progress(done,
/// total)` is called after each frame from the worker threads.
pub fn check(ds: &Dataset, opts: &CheckOptions, progress: &(dyn Fn(usize, usize) + Sync)) -> CheckReport {
    let mut report = CheckReport { n_samples: ds.len(), ..Default::default() };
    // frame -> index of the first sample that needs it
    let mut frames: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut bad_samples = std::collections::BTreeSet::new();
    for (i, s) in ds.samples.iter().enumerate() {
        match sample_frames(s, opts.frames) {
            Ok(v) => {
                for f in v {
                    frames.entry(f).or_insert(i);
                }
            }
            Err((path, problem)) => {
                bad_samples.insert(i);
                report.missing.push(FrameProblem { path, sample: ds.samples[i].id(), problem });
            }
        }
    }
    let total = frames.len();
    report.n_frames = total;
    let done = AtomicUsize::new(0);
    let list: Vec<(PathBuf, usize)> = frames.into_iter().collect();
    let problems: Vec<(usize, bool, FrameProblem)> = list
        .par_iter()
        .filter_map(|(p, i)| {
            let r = if !p.is_file() {
                Some((*i, true, "missing".to_string()))
            } else if opts.decode {
                read_gray(p).err().map(|e| (*i, false, format!("does not decode: {e}")))
            } else {
                None
            };
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(n, total);
            r.map(|(i, missing, problem)| {
                (i, missing, FrameProblem { path: p.clone(), sample: ds.samples[i].id(), problem })
            })
        })
        .collect();
    for (i, missing, p) in problems {
        bad_samples.insert(i);
        if missing {
            report.missing.push(p);
        } else {
            report.undecodable.push(p);
        }
    }
    report.missing.sort();
    report.undecodable.sort();
    report.n_bad_samples = bad_samples.len();
    report
}
