//! SMIC-HS: a folder layout without a spreadsheet and without apex annotations.

use super::canonical_subject;
use crate::sample::{list_images, names, natural_cmp};
use crate::{Dataset, Error, Result, Sample};
use mex_core::ClassSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How to set the apex of clips that have none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum ApexRule {
    /// `onset + (offset - onset) / 2` (MEB's rule; the MEGC2019 practice).
    #[default]
    Middle,
    /// `onset + round(f · (offset - onset))`, `f` in [0, 1].
    Fraction(f32),
    /// Leave the apex empty (e.g. to spot it later).
    Unset,
}

/// Where SMIC-HS is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmicConfig {
    /// The folder holding `s1`, `s2`, ... (e.g. `SMIC/HS` or `SMIC_all_cropped/HS`).
    pub root: PathBuf,
    /// Apex rule.
    pub apex: ApexRule,
    /// Frame rate (SMIC-HS: 100).
    pub fps: f32,
}

impl SmicConfig {
    /// Defaults: middle-frame apex, 100 fps.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), apex: ApexRule::Middle, fps: 100.0 }
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut v = Vec::new();
    for e in rd {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            v.push(p);
        }
    }
    v.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `(prefix, number, digits, extension)` of `reg_00012.bmp`-like names.
fn split_numbered(name: &str) -> Option<(String, usize, usize, String)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let digits: String = stem.chars().rev().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let prefix = &stem[..stem.len() - digits.len()];
    let num: String = digits.chars().rev().collect();
    Some((prefix.to_string(), num.parse().ok()?, num.len(), ext.to_string()))
}

/// Infers `(pattern, first, last)` when the frames are `prefix` + consecutive numbers.
pub(crate) fn infer_pattern(files: &[PathBuf]) -> Option<(String, usize, usize)> {
    let parts: Vec<_> = files.iter().map(|f| split_numbered(&file_name(f))).collect::<Option<Vec<_>>>()?;
    let (prefix, _, _, ext) = parts.first()?.clone();
    if parts.iter().any(|p| p.0 != prefix || p.3 != ext) {
        return None;
    }
    let mut nums: Vec<usize> = parts.iter().map(|p| p.1).collect();
    nums.sort_unstable();
    if nums.windows(2).any(|w| w[1] != w[0] + 1) {
        return None;
    }
    let widths: Vec<usize> = parts.iter().map(|p| p.2).collect();
    let padded = widths.iter().all(|&w| w == widths[0]) && parts.iter().any(|p| p.2 > p.1.to_string().len());
    let pat =
        if padded { format!("{prefix}{{n:0{}}}.{ext}", widths[0]) } else { format!("{prefix}{{n}}.{ext}") };
    Some((pat, nums[0], *nums.last()?))
}

/// Reads SMIC-HS from `root/s<k>/micro/{negative,positive,surprise}/<clip>/<frames>`.
/// Subjects without a `micro` folder are skipped (SMIC-HS has 20 subject folders, 16 with
/// micro-expressions). Subject `s1` -> `s01`, clip `s1_ne_01` -> `s01_ne_01`. Frames numbered
/// consecutively give a pattern and absolute frame numbers; otherwise frames are indexed
/// 0.. in natural order. Labels index [`ClassSet::megc3`]. An empty clip folder, or a root
/// without any clip, is an [`Error::EmptyFolder`].
pub fn load_smic(cfg: &SmicConfig) -> Result<Dataset> {
    if !cfg.root.is_dir() {
        return Err(Error::BadFramePath { path: cfg.root.clone(), row: 0, frame_path: cfg.root.clone() });
    }
    let classes = ClassSet::megc3();
    let mut samples = Vec::new();
    for sdir in sorted_dirs(&cfg.root)? {
        let sname = file_name(&sdir);
        let Some(subject) = canonical_subject(names::SMIC, &sname) else {
            continue;
        };
        let micro = sdir.join("micro");
        if !micro.is_dir() {
            continue;
        }
        for edir in sorted_dirs(&micro)? {
            let emotion = file_name(&edir);
            let label = classes.parse(&emotion).map_err(|_| Error::BadName {
                path: micro.clone(),
                name: emotion.clone(),
                reason: "expected negative, positive or surprise".into(),
            })?;
            for cdir in sorted_dirs(&edir)? {
                let raw_clip = file_name(&cdir);
                let clip = match raw_clip.split_once('_') {
                    Some((s, rest)) if canonical_subject(names::SMIC, s).is_some() => {
                        format!("{subject}_{rest}")
                    }
                    _ => raw_clip.clone(),
                };
                let files = list_images(&cdir)?;
                let (pattern, first, last) = match infer_pattern(&files) {
                    Some((p, a, b)) => (Some(p), a, b),
                    None => (None, 0, files.len() - 1),
                };
                let apex = match cfg.apex {
                    ApexRule::Middle => Some(first + (last - first) / 2),
                    ApexRule::Fraction(f) => {
                        Some(first + (f.clamp(0.0, 1.0) * (last - first) as f32).round() as usize)
                    }
                    ApexRule::Unset => None,
                };
                samples.push(Sample {
                    dataset: names::SMIC.into(),
                    subject: subject.clone(),
                    clip,
                    path: Some(cdir.clone()),
                    frame_pattern: pattern,
                    fps: Some(cfg.fps),
                    onset: Some(first),
                    apex,
                    offset: Some(last),
                    label: Some(label),
                    emotion: classes.name(label).unwrap_or_default().to_string(),
                    kind: Some("micro".into()),
                    provenance: format!("{}", cdir.display()),
                    ..Default::default()
                });
            }
        }
    }
    if samples.is_empty() {
        return Err(Error::EmptyFolder {
            path: cfg.root.clone(),
            what: "no s<k>/micro/<emotion>/<clip> folders".into(),
        });
    }
    Ok(Dataset::new(names::SMIC, classes, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_inferred() {
        let f = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            infer_pattern(&f(&["reg_00001.bmp", "reg_00002.bmp", "reg_00003.bmp"])),
            Some(("reg_{n:05}.bmp".into(), 1, 3))
        );
        assert_eq!(infer_pattern(&f(&["image9.jpg", "image10.jpg"])), Some(("image{n}.jpg".into(), 9, 10)));
        assert_eq!(infer_pattern(&f(&["a1.jpg", "a3.jpg"])), None);
        assert_eq!(infer_pattern(&f(&["a1.jpg", "b2.jpg"])), None);
    }
}
