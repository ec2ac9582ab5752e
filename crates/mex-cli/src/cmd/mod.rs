//! One module per subcommand; each exposes an `Args` struct and `run`.

pub mod align;
pub mod analyze;
pub mod data;
pub mod demo;
pub mod eval;
pub mod flow;
pub mod metrics;
pub mod reproduce;
pub mod robustness;
pub mod spot;
pub mod study;

/// Most bootstrap resamples or permutations a flag accepts.
pub const MAX_RESAMPLES: usize = mex::experiment::config::MAX_RESAMPLES;
/// Most threads (parallel folds) a flag accepts; 0 means one per core.
pub const MAX_JOBS: usize = 64;
/// Most training epochs a flag accepts.
pub const MAX_EPOCHS: usize = 100_000;

fn parse_bounded(s: &str, max: usize, what: &str) -> Result<usize, String> {
    let v: usize = s.trim().parse().map_err(|_| format!("`{}` is not a whole number", shown_value(s)))?;
    if v > max {
        return Err(format!("{v} {what} is more than the maximum of {max}"));
    }
    Ok(v)
}

/// Parses a resample or permutation count (0..=[`MAX_RESAMPLES`]).
pub fn parse_resamples(s: &str) -> Result<usize, String> {
    parse_bounded(s, MAX_RESAMPLES, "resamples")
}

/// Parses a thread count (0 = one per core, at most [`MAX_JOBS`]).
pub fn parse_jobs(s: &str) -> Result<usize, String> {
    parse_bounded(s, MAX_JOBS, "threads")
}

/// Parses an epoch count (1..=[`MAX_EPOCHS`]).
pub fn parse_epochs(s: &str) -> Result<usize, String> {
    let v = parse_bounded(s, MAX_EPOCHS, "epochs")?;
    if v == 0 {
        return Err("0 epochs: need at least 1".into());
    }
    Ok(v)
}

/// Output files written all or nothing: each goes to a [`mex_core::PendingFile`] beside its final
/// path (same extension, so image writers pick the same format), and [`Outputs::commit`] syncs
/// and renames them all into place; dropped before that (an error on the way), every temporary
/// file is removed.
#[derive(Debug, Default)]
pub struct Outputs {
    files: Vec<mex_core::PendingFile>,
}

impl Outputs {
    /// The temporary path to write `path`'s content to; errors when its folder does not exist
    /// or `path` is a folder.
    pub fn tmp(&mut self, path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            anyhow::bail!("{}: the folder {} does not exist", path.display(), dir.display());
        }
        if path.is_dir() {
            anyhow::bail!("{}: is a folder, expected a file name", path.display());
        }
        let file = mex_core::PendingFile::new(path);
        let tmp = file.tmp().to_path_buf();
        self.files.push(file);
        Ok(tmp)
    }

    /// Syncs and renames every temporary file into place.
    pub fn commit(self) -> anyhow::Result<()> {
        for file in self.files {
            let path = file.path().display().to_string();
            file.commit().map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        }
        Ok(())
    }
}

/// A value from the user for a message: at most 60 characters, control characters escaped.
pub fn shown_value(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    let more = if s.chars().count() > 60 { "..." } else { "" };
    format!("{}{more}", cut.escape_debug())
}

/// A plain-text table of an experiment report's variants.
pub fn summary_table(r: &mex::experiment::Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "experiment {} ({}, {} samples, {} folds)",
        r.experiment, r.protocol, r.n_samples, r.n_folds
    );
    let _ = writeln!(s, "{:<22} {:>24} {:>24} {:>9}", "variant", "UF1 [95% CI]", "UAR [95% CI]", "accuracy");
    for v in &r.variants {
        let ci = |c: &mex::metrics::ConfidenceInterval| {
            format!("{:.3} [{:.3}, {:.3}]", c.estimate, c.lower, c.upper)
        };
        let _ = writeln!(s, "{:<22} {:>24} {:>24} {:>9.3}", v.name, ci(&v.uf1), ci(&v.uar), v.accuracy);
    }
    for c in &r.comparisons {
        let _ = writeln!(
            s,
            "{} vs {}: UF1 difference {:+.3}, permutation p = {:.3}, McNemar p = {:.3}",
            c.a, c.b, c.uf1_difference, c.permutation_p, c.mcnemar_p
        );
    }
    s
}
