//! Middlebury `.flo` files: the magic float `202021.25`, width and height as little-endian
//! `i32`, then `width * height` interleaved `(u, v)` little-endian `f32` pairs, row-major.

use crate::{Error, FlowField, Result};
use std::io::{Read, Write};
use std::path::Path;

/// The `.flo` magic number.
pub const FLO_MAGIC: f32 = 202021.25;
/// Largest accepted side (guards against absurd headers).
const MAX_SIDE: i32 = 1 << 16;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::FloFormat { reason: reason.into() }
}

/// Writes a field in `.flo` format.
pub fn write_flo<W: Write>(mut w: W, flow: &FlowField) -> Result<()> {
    let (fw, fh) = flow.size();
    let mut buf = Vec::with_capacity(12 + 8 * fw * fh);
    buf.extend_from_slice(&FLO_MAGIC.to_le_bytes());
    buf.extend_from_slice(&(fw as i32).to_le_bytes());
    buf.extend_from_slice(&(fh as i32).to_le_bytes());
    for (u, v) in flow.u().iter().zip(flow.v()) {
        buf.extend_from_slice(&u.to_le_bytes());
        buf.extend_from_slice(&v.to_le_bytes());
    }
    w.write_all(&buf).map_err(|e| Error::Io { path: "<writer>".into(), source: e })
}

/// Reads a `.flo` stream; a wrong magic, an invalid size, a truncated body or trailing bytes are
/// [`Error::FloFormat`] errors.
pub fn read_flo<R: Read>(mut r: R) -> Result<FlowField> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|e| Error::Io { path: "<reader>".into(), source: e })?;
    parse_flo(&bytes)
}

/// Parses `.flo` bytes.
pub fn parse_flo(bytes: &[u8]) -> Result<FlowField> {
    if bytes.len() < 12 {
        return Err(corrupt(format!("truncated header: {} bytes, need 12", bytes.len())));
    }
    let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
    let magic = f32::from_le_bytes(word(0));
    if magic != FLO_MAGIC {
        return Err(corrupt(format!("bad magic {magic} (expected {FLO_MAGIC})")));
    }
    let w = i32::from_le_bytes(word(4));
    let h = i32::from_le_bytes(word(8));
    if !(1..=MAX_SIDE).contains(&w) || !(1..=MAX_SIDE).contains(&h) {
        return Err(corrupt(format!("invalid size {w}x{h}")));
    }
    let (w, h) = (w as usize, h as usize);
    let need = 12 + 8 * w * h;
    if bytes.len() < need {
        return Err(corrupt(format!("truncated data: {} bytes for {w}x{h}, need {need}", bytes.len())));
    }
    if bytes.len() > need {
        return Err(corrupt(format!("{} trailing bytes after {w}x{h} data", bytes.len() - need)));
    }
    let mut u = Vec::with_capacity(w * h);
    let mut v = Vec::with_capacity(w * h);
    for k in 0..w * h {
        u.push(f32::from_le_bytes(word(12 + 8 * k)));
        v.push(f32::from_le_bytes(word(16 + 8 * k)));
    }
    Ok(FlowField::from_planes(w, h, u, v)?)
}

/// Writes a `.flo` file, through a temporary file in the same folder and a rename (a failed write
/// leaves no file).
pub fn write_flo_file(path: impl AsRef<Path>, flow: &FlowField) -> Result<()> {
    let p = path.as_ref();
    let io = |source| Error::Io { path: p.display().to_string(), source };
    mex_core::write_atomic_with(p, |tmp| {
        let f = std::fs::File::create(tmp).map_err(io)?;
        let mut w = std::io::BufWriter::new(f);
        write_flo(&mut w, flow).map_err(|e| match e {
            Error::Io { source, .. } => io(source),
            other => other,
        })?;
        w.flush().map_err(io)
    })
    .map_err(|e| e.into_error(|_, source| io(source)))
}

/// Reads a `.flo` file.
pub fn read_flo_file(path: impl AsRef<Path>) -> Result<FlowField> {
    let p = path.as_ref();
    let bytes = std::fs::read(p).map_err(|e| Error::Io { path: p.display().to_string(), source: e })?;
    parse_flo(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(w in 1usize..20, h in 1usize..20, seed in any::<u64>()) {
            let mut s = seed;
            let f = FlowField::from_fn(w, h, |_, _| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((s >> 40) as f32) / 1e4 - 800.0, ((s >> 20) as u32 as f32) / 1e6 - 2000.0)
            });
            let mut buf = Vec::new();
            write_flo(&mut buf, &f).unwrap();
            prop_assert_eq!(buf.len(), 12 + 8 * w * h);
            let back = read_flo(&buf[..]).unwrap();
            prop_assert_eq!(back, f);
        }

        #[test]
        fn any_truncation_is_an_error(cut in 0usize..44) {
            let f = FlowField::from_fn(2, 2, |x, y| (x as f32, y as f32));
            let mut buf = Vec::new();
            write_flo(&mut buf, &f).unwrap();
            prop_assume!(cut < buf.len());
            let r = read_flo(&buf[..cut]);
            prop_assert!(matches!(r, Err(Error::FloFormat { .. })), "{:?}", r);
        }
    }

    #[test]
    fn corrupt_headers_are_typed_errors() {
        let f = FlowField::zeros(3, 2);
        let mut buf = Vec::new();
        write_flo(&mut buf, &f).unwrap();
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert!(matches!(parse_flo(&bad), Err(Error::FloFormat { .. })));
        let mut neg = buf.clone();
        neg[4..8].copy_from_slice(&(-3i32).to_le_bytes());
        assert!(matches!(parse_flo(&neg), Err(Error::FloFormat { .. })));
        let mut long = buf.clone();
        long.push(0);
        assert!(matches!(parse_flo(&long), Err(Error::FloFormat { .. })));
        assert!(matches!(read_flo_file("/nonexistent/x.flo"), Err(Error::Io { .. })));
    }

    #[test]
    fn flo_files_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let f = FlowField::from_fn(4, 3, |x, y| (x as f32 * 0.5, -(y as f32)));
        let p = dir.path().join("a.flo");
        write_flo_file(&p, &f).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 12 + 8 * 12);
        assert_eq!(read_flo_file(&p).unwrap(), f);
        // a folder in the way: an Io error naming it, nothing left beside it
        let blocked = dir.path().join("b.flo");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        let e = write_flo_file(&blocked, &f).unwrap_err();
        assert!(matches!(&e, Error::Io { path, .. } if path.ends_with("b.flo")), "{e}");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.flo", "b.flo"]);
    }
}
