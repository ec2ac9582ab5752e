//! Recordings of the table: analysis JSON files read directly; videos and frames folders analysed
//! with `mex analyze` into a cache keyed by content, so that a study (or one cluster job) only
//! analyses what is not on disk yet.

use super::config::StudyConfig;
use super::table::Table;
use crate::analyze::{run_analyze, AnalyzeConfig};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// FNV-1a, 64 bit: a fast, stable (documented, version-independent) non-cryptographic hash.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// 64-bit FNV-1a of a string (used to derive per-indicator seeds).
pub(crate) fn fnv_str(s: &str) -> u64 {
    let mut h = Fnv::new();
    h.write(s.as_bytes());
    h.0
}

/// Whether a recording is an analysis JSON (read directly) rather than media to analyse.
pub fn is_analysis_json(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// The analysis settings used for media recordings, with the landmark model resolved to the one
/// actually used (so that the cache key changes when a 68-point model is installed or removed).
pub fn analyze_config(cfg: &StudyConfig) -> AnalyzeConfig {
    let d = AnalyzeConfig::default();
    AnalyzeConfig { fps: Some(cfg.analyze.fps), save_frames: false, landmarks: d.landmarks.resolved(), ..d }
}

/// The cache key of a media recording: FNV-1a 64 over a version tag, the analysis settings, and
/// the content: a file's bytes, or a folder's sorted listing of (name, size, modification time)
/// of its files. Renaming or moving a recording keeps its key; changing its content or the
/// settings changes it.
pub fn content_key(path: &Path, acfg: &AnalyzeConfig) -> Result<String> {
    let io = |p: &Path, e| Error::Io { path: p.to_path_buf(), source: e };
    let mut h = Fnv::new();
    h.write(b"mex-study-cache-v1\0");
    h.write(serde_json::to_string(acfg).unwrap_or_default().as_bytes());
    if path.is_dir() {
        let mut entries: Vec<(String, u64, u128)> = Vec::new();
        for e in std::fs::read_dir(path).map_err(|e| io(path, e))? {
            let e = e.map_err(|e| io(path, e))?;
            let md = e.metadata().map_err(|err| io(&e.path(), err))?;
            if md.is_file() {
                let mtime = md
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                entries.push((e.file_name().to_string_lossy().into_owned(), md.len(), mtime));
            }
        }
        entries.sort();
        h.write(b"dir\0");
        for (name, size, mtime) in entries {
            h.write(name.as_bytes());
            h.write(&size.to_le_bytes());
            h.write(&mtime.to_le_bytes());
        }
    } else {
        let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
        h.write(b"file\0");
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(|e| io(path, e))?;
            if n == 0 {
                break;
            }
            h.write(&buf[..n]);
        }
    }
    Ok(format!("{:016x}", h.0))
}

/// Reads the top-level `"indicators"` object of an analysis JSON: name -> number or null.
pub fn read_indicators(path: &Path) -> Result<BTreeMap<String, Option<f64>>> {
    let v: serde_json::Value = crate::io::read_json(path)?;
    let obj = v.get("indicators").and_then(|i| i.as_object()).ok_or_else(|| Error::Json {
        path: path.to_path_buf(),
        reason: "no top-level \"indicators\" object (write it with a current `mex analyze`)".into(),
    })?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let x = match val {
            serde_json::Value::Null => None,
            serde_json::Value::Number(n) => n.as_f64(),
            other => {
                return Err(Error::Json {
                    path: path.to_path_buf(),
                    reason: format!("indicator `{k}` is {other}, not a number or null"),
                })
            }
        };
        out.insert(k.clone(), x);
    }
    Ok(out)
}

/// A recording of the table that needs work or a look-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Index of the row in the table.
    pub row: usize,
    /// Line of the row in the CSV.
    pub line: usize,
    /// Resolved path.
    pub path: PathBuf,
    /// `Some(key)` for media analysed into the cache; `None` for an analysis JSON.
    pub key: Option<String>,
}

impl Recording {
    /// The analysis JSON of this recording (in the cache for media).
    pub fn analysis_json(&self, cache: &Path) -> PathBuf {
        match &self.key {
            Some(k) => cache.join(k).join("analysis.json"),
            None => self.path.clone(),
        }
    }
}

/// The recordings of the table in row order (rows without a recording are skipped). A missing
/// file or folder is an error naming its line and column.
pub fn list_recordings(table: &Table, cfg: &StudyConfig) -> Result<Vec<Recording>> {
    let acfg = analyze_config(cfg);
    let mut out = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        let Some(path) = table.recording_path(row) else { continue };
        if !path.exists() {
            return Err(table.error_at(
                row.line,
                &cfg.columns.recording,
                format!("recording {} does not exist", path.display()),
            ));
        }
        let key = if is_analysis_json(&path) { None } else { Some(content_key(&path, &acfg)?) };
        out.push(Recording { row: i, line: row.line, path, key });
    }
    Ok(out)
}

/// Analyses a media recording into `cache/<key>/` unless it is there already. The analysis is
/// written to a temporary folder and renamed into place, so an interrupted job leaves no partial
/// entry. Returns whether it ran.
pub fn ensure_analysed(rec: &Recording, cfg: &StudyConfig, cache: &Path) -> Result<bool> {
    let Some(key) = &rec.key else { return Ok(false) };
    let done = cache.join(key);
    if done.join("analysis.json").is_file() {
        return Ok(false);
    }
    let io = |p: &Path, e| Error::Io { path: p.to_path_buf(), source: e };
    std::fs::create_dir_all(cache).map_err(|e| io(cache, e))?;
    let tmp = cache.join(format!(".{key}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    run_analyze(&rec.path, &analyze_config(cfg), &tmp)?;
    if done.exists() {
        // another job finished the same content first: keep its entry
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    } else {
        std::fs::rename(&tmp, &done).map_err(|e| io(&done, e))?;
    }
    Ok(true)
}
