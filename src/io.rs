//! Atomic file writing: every report and fold result is written to a temporary file in the same
//! folder and renamed into place, so an interrupted run never leaves a half-written file.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (temporary file + rename), creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| io(tmp, e)))
}

/// Writes `path` atomically with `write`, which gets the temporary path to write the whole content
/// to (same folder, same extension); creates parent folders. When `write` fails, nothing is left
/// at the temporary path and `path` is untouched (see [`mex_core::write_atomic_with`]).
pub fn write_atomic_with<T>(path: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    mex_core::write_atomic_with(path, write)
        .map_err(|e| e.into_error(|path, source| Error::Io { path, source }))
}

/// Writes an image atomically; the format follows `path`'s extension.
pub fn save_image_atomic<P, C>(img: &image::ImageBuffer<P, C>, path: &Path) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    write_atomic_with(path, |tmp| img.save(tmp).map_err(|e| io(tmp, std::io::Error::other(e))))
}

fn io(p: &Path, e: std::io::Error) -> Error {
    Error::Io { path: p.to_path_buf(), source: e }
}

/// What a failed command removes when dropped: the files it wrote, then the folders it created
/// (each only when empty, deepest first). [`Leftovers::keep`] on success.
#[derive(Default)]
pub(crate) struct Leftovers {
    /// Files to remove.
    pub(crate) files: Vec<PathBuf>,
    /// Folders to remove when empty, parents first.
    dirs: Vec<PathBuf>,
}

impl Leftovers {
    /// Creates `dir` and its missing parents, remembering those that did not exist.
    pub(crate) fn create_dir_all(&mut self, dir: &Path) -> Result<()> {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), source: e })?;
        self.dirs.extend(missing.into_iter().rev());
        Ok(())
    }

    /// Success: keeps everything.
    pub(crate) fn keep(mut self) {
        self.files.clear();
        self.dirs.clear();
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let s = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Json { path: path.to_path_buf(), reason: e.to_string() })?;
    write_atomic(path, &s)
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Json { path: path.to_path_buf(), reason: e.to_string() })
}

/// Largest experiment or study file (TOML or JSON) read, bytes (16 MiB): configuration files are
/// read whole, so an absurd one is refused before it is read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads a configuration file as text, refusing one larger than [`MAX_CONFIG_BYTES`] (checked
/// before reading, and again while reading, for files that grow or are not regular files).
pub fn read_config_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let too_big = || Error::Config {
        file: path.display().to_string(),
        field: "(file size)".into(),
        reason: format!("larger than the {} MiB a configuration file may have", MAX_CONFIG_BYTES >> 20),
    };
    let io = |e| Error::Io { path: path.to_path_buf(), source: e };
    let f = std::fs::File::open(path).map_err(io)?;
    if let Ok(m) = f.metadata() {
        if m.len() > MAX_CONFIG_BYTES {
            return Err(too_big());
        }
    }
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_config_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_CONFIG_BYTES + 1).unwrap(); // sparse: nothing is written
        let e = read_config_text(&p).unwrap_err().to_string();
        assert!(e.contains("16 MiB") && e.contains("big.toml"), "{e}");
        std::fs::write(&p, "name = \"x\"\n").unwrap();
        assert_eq!(read_config_text(&p).unwrap(), "name = \"x\"\n");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.json");
        write_json_atomic(&p, &vec![1, 2, 3]).unwrap();
        write_json_atomic(&p, &vec![4]).unwrap();
        let v: Vec<i32> = read_json(&p).unwrap();
        assert_eq!(v, vec![4]);
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
        assert!(read_json::<Vec<i32>>(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn a_failed_write_leaves_no_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("crop.png");
        let r = write_atomic_with(&p, |tmp| {
            std::fs::write(tmp, b"half a file").unwrap();
            Err::<(), _>(Error::Invalid("encoder failed".into()))
        });
        assert!(matches!(r, Err(Error::Invalid(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // an image: written whole, decodable, nothing beside it
        let img = image::GrayImage::from_fn(5, 4, |x, y| image::Luma([(10 * x + y) as u8]));
        save_image_atomic(&img, &p).unwrap();
        assert_eq!(image::open(&p).unwrap().to_luma8(), img);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
