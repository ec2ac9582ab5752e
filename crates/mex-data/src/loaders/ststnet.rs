//! The STSTNet flow-image release: `<subject>/u_test/<label>/<subject>_<clip> .png`.

use super::canonical_subject;
use crate::sample::{names, natural_cmp};
use crate::{Dataset, Error, Result, Sample};
use mex_core::ClassSet;
use std::path::{Path, PathBuf};

/// The dataset a subject folder name belongs to: `sub*` CASME II, `s*` SMIC, three digits SAMM.
pub fn dataset_of_subject(name: &str) -> Option<&'static str> {
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if let Some(r) = name.strip_prefix("sub") {
        return all_digits(r).then_some(names::CASME2);
    }
    if let Some(r) = name.strip_prefix('s') {
        return all_digits(r).then_some(names::SMIC);
    }
    (name.len() == 3 && all_digits(name)).then_some(names::SAMM)
}

fn dirs(p: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(p).map_err(|e| Error::io(p, e))? {
        let q = e.map_err(|e| Error::io(p, e))?.path();
        if q.is_dir() {
            v.push(q);
        }
    }
    v.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    Ok(v)
}

fn name(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads the STSTNet input images: one [`Sample`] per image with `path` = the PNG, the MEGC
/// 3-class label from the label folder, the dataset inferred from the subject folder name and
/// the clip from the file name (`006_006_1_2 .png` -> `006_1_2`; the stray space before `.png`
/// in some names is tolerated). Errors: unknown subject naming, a non-numeric label folder, a
/// subject folder without `u_test`, or no image at all.
pub fn load_ststnet_inputs(root: &Path) -> Result<Dataset> {
    let classes = ClassSet::megc3();
    let mut samples = Vec::new();
    for sdir in dirs(root)? {
        let sname = name(&sdir);
        let dataset = dataset_of_subject(&sname).ok_or_else(|| Error::BadName {
            path: root.to_path_buf(),
            name: sname.clone(),
            reason: "expected subNN (CASME II), sNN (SMIC) or NNN (SAMM)".into(),
        })?;
        let subject = canonical_subject(dataset, &sname).unwrap_or_else(|| sname.clone());
        let test = sdir.join("u_test");
        if !test.is_dir() {
            return Err(Error::EmptyFolder { path: sdir.clone(), what: "no u_test folder".into() });
        }
        for ldir in dirs(&test)? {
            let lname = name(&ldir);
            let label =
                lname.parse::<usize>().ok().filter(|&l| l < classes.len()).ok_or_else(|| Error::BadName {
                    path: test.clone(),
                    name: lname.clone(),
                    reason: "expected a label folder 0, 1 or 2".into(),
                })?;
            let mut files: Vec<PathBuf> = Vec::new();
            for e in std::fs::read_dir(&ldir).map_err(|e| Error::io(&ldir, e))? {
                let p = e.map_err(|e| Error::io(&ldir, e))?.path();
                if p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"))
                {
                    files.push(p);
                }
            }
            files.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
            for f in files {
                let stem = f.file_stem().map(|s| s.to_string_lossy().trim().to_string()).unwrap_or_default();
                let clip = stem.strip_prefix(&format!("{sname}_")).unwrap_or(&stem).to_string();
                samples.push(Sample {
                    dataset: dataset.into(),
                    subject: subject.clone(),
                    clip,
                    path: Some(f.clone()),
                    label: Some(label),
                    emotion: classes.name(label).unwrap_or_default().into(),
                    provenance: f.display().to_string(),
                    ..Default::default()
                });
            }
        }
    }
    if samples.is_empty() {
        return Err(Error::EmptyFolder {
            path: root.to_path_buf(),
            what: "no <subject>/u_test/<label>/*.png".into(),
        });
    }
    Ok(Dataset::new("ststnet_inputs", classes, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_naming() {
        assert_eq!(dataset_of_subject("sub01"), Some("casme2"));
        assert_eq!(dataset_of_subject("s1"), Some("smic"));
        assert_eq!(dataset_of_subject("s20"), Some("smic"));
        assert_eq!(dataset_of_subject("006"), Some("samm"));
        assert_eq!(dataset_of_subject("06"), None);
        assert_eq!(dataset_of_subject("subject"), None);
    }
}
