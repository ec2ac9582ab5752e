//! Atomic file writing: a file is written to a temporary file in the same folder and renamed into
//! place, so that its final path holds either the old content or the whole new content, never a
//! half-written file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why [`write_atomic_with`] failed. In both cases nothing is left at the temporary path and the
/// final path is untouched.
#[derive(Debug)]
pub enum AtomicWriteError<E> {
    /// The writer given to [`write_atomic_with`] failed.
    Write(E),
    /// Syncing the temporary file or renaming it into place failed.
    Io {
        /// The final path that was not written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl<E> AtomicWriteError<E> {
    /// The writer's error as is, or an I/O failure turned into `E` by `io` (typically the
    /// caller's `Error::Io { path, source }` constructor).
    pub fn into_error(self, io: impl FnOnce(PathBuf, std::io::Error) -> E) -> E {
        match self {
            AtomicWriteError::Write(e) => e,
            AtomicWriteError::Io { path, source } => io(path, source),
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for AtomicWriteError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AtomicWriteError::Write(e) => e.fmt(f),
            AtomicWriteError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for AtomicWriteError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AtomicWriteError::Write(e) => Some(e),
            AtomicWriteError::Io { source, .. } => Some(source),
        }
    }
}

/// A file on its way to `path`: its content is written to a temporary path in the same folder
/// ([`PendingFile::tmp`]), and [`PendingFile::commit`] syncs it and renames it into place.
/// Dropped uncommitted (an error on the way, or a panic), it removes the temporary file, so the
/// final path holds either its old content or the whole new one. [`write_atomic_with`] is the
/// one-call form; `PendingFile` serves writers that stream into an open file or commit several
/// files together.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("mex-core-pending-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (a, b) = (mex_core::PendingFile::new(&dir.join("a.txt")), mex_core::PendingFile::new(&dir.join("b.txt")));
/// std::fs::write(a.tmp(), "first")?;
/// std::fs::write(b.tmp(), "second")?;
/// // nothing is at the final paths until both are written
/// assert!(!dir.join("a.txt").exists());
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(std::fs::read_to_string(dir.join("b.txt"))?, "second");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// The pending file for `path` (nothing is created yet). The temporary path is hidden,
    /// unique within the process, and ends in `path`'s extension so that writers that pick a
    /// format from the extension pick the same one.
    pub fn new(path: &Path) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = path.parent().unwrap_or(Path::new(""));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}{ext}", std::process::id()));
        Self { tmp, path: path.to_path_buf(), committed: false }
    }

    /// Where to write the content.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the temporary file to disk and renames it to the final path. On failure (no
    /// temporary file was written, the sync or the rename failed) the temporary file is
    /// removed and the final path is untouched.
    pub fn commit(mut self) -> std::io::Result<()> {
        std::fs::OpenOptions::new().write(true).open(&self.tmp).and_then(|f| f.sync_all())?;
        std::fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes the file at `path` atomically: `write` gets a temporary path in the same folder and
/// writes the whole content there; on success the temporary file is synced to disk and renamed to
/// `path`. When `write` fails (or panics), or the sync or rename fails, the temporary file is
/// removed and `path` is left as it was. The folder must exist. (See [`PendingFile`] for
/// streaming writers and several files committed together.)
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("mex-core-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let p = dir.join("out.txt");
/// mex_core::write_atomic_with(&p, |tmp| std::fs::write(tmp, "all or nothing"))?;
/// assert_eq!(std::fs::read_to_string(&p)?, "all or nothing");
/// // a writer that fails leaves the old content
/// let r = mex_core::write_atomic_with(&p, |tmp| {
///     std::fs::write(tmp, "half")?;
///     Err::<(), _>(std::io::Error::other("disk full"))
/// });
/// assert!(r.is_err());
/// assert_eq!(std::fs::read_to_string(&p)?, "all or nothing");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn write_atomic_with<T, E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, AtomicWriteError<E>> {
    let file = PendingFile::new(path);
    let value = write(file.tmp()).map_err(AtomicWriteError::Write)?;
    file.commit().map_err(|source| AtomicWriteError::Io { path: path.to_path_buf(), source })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mex-core-atomic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn success_writes_whole_file_and_no_temp() {
        let d = scratch("ok");
        let p = d.join("fig.png");
        let seen = write_atomic_with(&p, |tmp| {
            assert_eq!(tmp.parent(), Some(d.as_path()));
            assert_eq!(tmp.extension().and_then(|e| e.to_str()), Some("png"));
            assert!(!p.exists(), "final path must not exist while writing");
            std::fs::write(tmp, b"abc").map(|_| 7)
        })
        .unwrap();
        assert_eq!(seen, 7);
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        assert_eq!(names(&d), vec!["fig.png".to_string()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failing_writer_leaves_nothing_new() {
        let d = scratch("fail");
        let p = d.join("a.json");
        let r = write_atomic_with(&p, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err::<(), _>("encoder failed")
        });
        assert!(matches!(r, Err(AtomicWriteError::Write("encoder failed"))));
        assert!(names(&d).is_empty(), "left behind: {:?}", names(&d));
        // an existing file keeps its old content
        std::fs::write(&p, b"old").unwrap();
        let r = write_atomic_with(&p, |tmp| {
            std::fs::write(tmp, b"new, half").unwrap();
            Err::<(), _>("again")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(&d), vec!["a.json".to_string()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn panicking_writer_leaves_no_temp() {
        let d = scratch("panic");
        let p = d.join("b.txt");
        let r = std::panic::catch_unwind(|| {
            let _ = write_atomic_with(&p, |tmp| -> Result<(), ()> {
                std::fs::write(tmp, b"x").unwrap();
                panic!("writer panicked");
            });
        });
        assert!(r.is_err());
        assert!(names(&d).is_empty(), "left behind: {:?}", names(&d));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rename_failure_is_io_error_and_removes_temp() {
        let d = scratch("dir");
        // the final path is a non-empty folder: the rename fails
        let p = d.join("out");
        std::fs::create_dir_all(p.join("inside")).unwrap();
        let r = write_atomic_with(&p, |tmp| std::fs::write(tmp, b"x"));
        let e = r.unwrap_err();
        assert!(matches!(&e, AtomicWriteError::Io { path, .. } if path == &p), "{e}");
        assert_eq!(names(&d), vec!["out".to_string()]);
        // a writer that writes nothing is an I/O error too, not an empty file
        let q = d.join("empty.txt");
        let e = write_atomic_with(&q, |_| Ok::<(), std::io::Error>(())).unwrap_err();
        assert!(matches!(e, AtomicWriteError::Io { .. }));
        assert!(!q.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
