//! In-memory datasets of `(subject, input, label)` samples and the reader of STSTNet's released
//! inputs (`inputs/<subject>/u_test/<label>/<name>.png`).

use crate::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Identity of one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleInfo {
    /// Subject id (LOSO group), e.g. `sub01`, `s3`, `006`.
    pub subject: String,
    /// Sample id (file name or video name).
    pub id: String,
    /// Class label.
    pub label: u32,
}

/// Samples with inputs of one shape `(C, H, W)`, stored contiguously (N x C x H x W).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    shape: (usize, usize, usize),
    samples: Vec<SampleInfo>,
    data: Vec<f32>,
}

impl Dataset {
    /// An empty dataset of inputs shaped `(C, H, W)`.
    pub fn new(shape: (usize, usize, usize)) -> Self {
        Self { shape, samples: Vec::new(), data: Vec::new() }
    }

    /// Appends a sample; `input` must hold `C * H * W` finite values.
    pub fn push(&mut self, info: SampleInfo, input: &[f32]) -> Result<()> {
        let (c, h, w) = self.shape;
        if input.len() != c * h * w {
            return Err(Error::InputShape {
                what: format!("sample {}/{}", info.subject, info.id),
                expected: vec![c, h, w],
                found: vec![input.len()],
            });
        }
        if input.iter().any(|v| !v.is_finite()) {
            return Err(Error::Dataset(format!("sample {}/{} has non-finite values", info.subject, info.id)));
        }
        self.samples.push(info);
        self.data.extend_from_slice(input);
        Ok(())
    }

    /// Input shape `(C, H, W)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Sample identities, in order.
    pub fn samples(&self) -> &[SampleInfo] {
        &self.samples
    }

    /// The input of sample `i` (`C * H * W` values).
    pub fn input(&self, i: usize) -> &[f32] {
        let n = self.shape.0 * self.shape.1 * self.shape.2;
        &self.data[i * n..(i + 1) * n]
    }

    /// Distinct subjects in order of first appearance.
    pub fn subjects(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in &self.samples {
            if !v.contains(&s.subject) {
                v.push(s.subject.clone());
            }
        }
        v
    }

    /// Indices of the samples of `subject`.
    pub fn indices_of(&self, subject: &str) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.samples[i].subject == subject).collect()
    }

    /// A new dataset holding the samples at `indices` (in that order).
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut d = Dataset::new(self.shape);
        let n = self.shape.0 * self.shape.1 * self.shape.2;
        d.data.reserve(indices.len() * n);
        for &i in indices {
            d.samples.push(self.samples[i].clone());
            d.data.extend_from_slice(self.input(i));
        }
        d
    }

    /// Inputs of `indices` as an `(n, C, H, W)` tensor.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let (c, h, w) = self.shape;
        let mut buf = Vec::with_capacity(indices.len() * c * h * w);
        for &i in indices {
            buf.extend_from_slice(self.input(i));
        }
        Ok(Tensor::from_vec(buf, (indices.len(), c, h, w), device)?)
    }

    /// All inputs as an `(N, C, H, W)` tensor.
    pub fn inputs(&self, device: &Device) -> Result<Tensor> {
        let (c, h, w) = self.shape;
        Ok(Tensor::from_slice(&self.data, (self.len(), c, h, w), device)?)
    }

    /// Labels, in order.
    pub fn labels(&self) -> Vec<u32> {
        self.samples.iter().map(|s| s.label).collect()
    }
}

/// The MEGC2019 composite source dataset of a subject id as named in STSTNet's folders:
/// `sub*` is CASME II, `s*` is SMIC-HS, digits are SAMM.
pub fn composite_dataset_of(subject: &str) -> &'static str {
    if subject.starts_with("sub") {
        "casme2"
    } else if subject.starts_with('s') {
        "smic"
    } else if !subject.is_empty() && subject.bytes().all(|b| b.is_ascii_digit()) {
        "samm"
    } else {
        "unknown"
    }
}

/// Reads a PNG the way OpenCV's `imread(path)` does for 8-bit RGB files: channels in
/// B, G, R order, values 0..255 as f32, laid out C x H x W. The image must be `size` x `size`.
pub fn read_bgr_image(path: &Path, size: usize) -> Result<Vec<f32>> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::Image { path: path.into(), reason: e.to_string() })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if (w as usize, h as usize) != (size, size) {
        return Err(Error::InputShape {
            what: path.display().to_string(),
            expected: vec![size, size],
            found: vec![h as usize, w as usize],
        });
    }
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        out[i] = p[2] as f32;
        out[plane + i] = p[1] as f32;
        out[2 * plane + i] = p[0] as f32;
    }
    Ok(out)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        v.push(e.map_err(|e| Error::io(dir, e))?.path());
    }
    v.sort();
    Ok(v)
}

/// Loads STSTNet's released inputs: `dir/<subject>/u_test/<label>/<name>.png` (28x28 RGB PNGs,
/// read as BGR 0..255). `dir` may also be the folder that contains `inputs/`. Subjects, labels
/// and files are taken in sorted order; the sample id is the file name without `.png` and
/// trailing spaces (some released names have a space before `.png`).
pub fn load_ststnet_inputs(dir: &Path) -> Result<Dataset> {
    let root = if dir.join("inputs").is_dir() { dir.join("inputs") } else { dir.to_path_buf() };
    if !root.is_dir() {
        return Err(Error::io(&root, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    let mut ds = Dataset::new((3, 28, 28));
    for sub in sorted_entries(&root)? {
        let test = sub.join("u_test");
        if !test.is_dir() {
            continue;
        }
        let subject = sub.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        for label_dir in sorted_entries(&test)? {
            if !label_dir.is_dir() {
                continue;
            }
            let name = label_dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let label: u32 = name.parse().map_err(|_| {
                Error::Dataset(format!("{}: label folder is not a number", label_dir.display()))
            })?;
            for f in sorted_entries(&label_dir)? {
                let fname = f.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let Some(stem) = fname.strip_suffix(".png") else { continue };
                let input = read_bgr_image(&f, 28)?;
                let info = SampleInfo { subject: subject.clone(), id: stem.trim_end().to_string(), label };
                ds.push(info, &input)?;
            }
        }
    }
    if ds.is_empty() {
        return Err(Error::Dataset(format!(
            "{}: no `<subject>/u_test/<label>/*.png` inputs",
            root.display()
        )));
    }
    Ok(ds)
}
