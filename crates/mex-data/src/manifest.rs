//! From a dataset as shipped to a checked manifest, and the numbers a paper reports about it.
//!
//! * [`index`]: read a dataset's coding file and frame folders ([`DataFiles`]) into a
//!   [`Dataset`](crate::Dataset), with the clips whose frames are missing set aside and listed, and a coding file
//!   of another dataset or a frames folder that does not match the coding file refused with an
//!   error that says what to fix; [`index_megc`] builds the MEGC2019 composite from the three
//!   indexed parts, listing every sample it drops and why;
//! * [`check`]: every frame a manifest points to exists and decodes (in parallel);
//! * [`stats`]: samples per class and dataset, subjects, demographics where shipped, clip
//!   lengths and frame rates, as a serialisable table with a plain-text rendering.
//!
//! ```
//! use mex_data::manifest::{index, DataFiles, DatasetKind, IndexOptions};
//! # fn main() -> mex_data::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| mex_data::Error::io("tmp", e))?;
//! # let root = dir.path().join("HS");
//! # for n in 1..=3 {
//! #     let p = root.join(format!("s1/micro/positive/s1_po_01/reg_{n:05}.png"));
//! #     std::fs::create_dir_all(p.parent().unwrap_or(&root)).map_err(|e| mex_data::Error::io(&p, e))?;
//! #     image::GrayImage::new(4, 4).save(&p).map_err(|e| mex_data::Error::io(&p, std::io::Error::other(e)))?;
//! # }
//! let files = DataFiles { coding: None, frames: root.clone(), release: None, demographics: None };
//! let out = index(DatasetKind::Smic, &files, &IndexOptions::default())?;
//! assert_eq!(out.dataset.len(), 1);
//! let report = mex_data::manifest::check(&out.dataset, &Default::default(), &|_, _| {});
//! assert!(report.is_ok());
//! let stats = mex_data::manifest::stats(&out.dataset);
//! assert_eq!(stats.total.n_subjects, 1);
//! # Ok(())
//! # }
//! ```

mod check;
mod index;
mod stats;

pub use check::{check, CheckOptions, CheckReport, FrameProblem, FrameSelection};
pub use index::{
    apply_demographics, index, index_megc, index_megc_files, sniff_coding, DataFiles, DatasetKind, Dropped,
    IndexOptions, IndexReport, MegcExclusions, MegcFiles, MissingFrames, Release,
};
pub use stats::{stats, DatasetStats, Distribution, Stats};
