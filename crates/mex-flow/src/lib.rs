//! Dense optical flow, optical strain, micro-motion features and spotting for facial
//! micro-expression analysis.
//!
//! * Estimators behind the object-safe [`FlowEstimator`] trait, each with a config whose
//!   `Default` equals the reference implementation's defaults:
//!   [`TvL1Config`] (Dual TV-L1 as OpenCV's `DualTVL1OpticalFlow` / IPOL 2013),
//!   [`FarnebackConfig`] (OpenCV's `calcOpticalFlowFarneback`) and [`DisConfig`]
//!   (OpenCV's `DISOpticalFlow` presets). [`FlowConfig`] is the serde-tagged enum over them.
//! * [`strain`]: optical strain with named variants, magnitude / orientation and the STSTNet
//!   input builder.
//! * [`io`]: Middlebury `.flo` read / write; [`viz`]: the Middlebury colour wheel.
//! * [`features`]: HOOF, MDMO and head-motion compensation.
//! * [`spot`]: a streaming, memory-bounded spotter of micro- and macro-movements.
//! * [`synth`]: synthetic frame pairs with known flow (for tests and benchmarks).
//!
//! ```
//! use mex_flow::{FlowConfig, FlowEstimator, synth};
//! let (f0, f1, truth) = synth::translated_pair(64, 64, 0.6, -0.3, 7);
//! let est = FlowConfig::Dis(mex_flow::DisConfig::medium()).build().unwrap();
//! let flow = est.estimate(&f0, &f1).unwrap();
//! assert!(flow.epe_interior(&truth, 8).unwrap() < 0.5);
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod dis;
mod error;
mod farneback;
pub mod features;
pub(crate) mod imgops;
pub mod io;
mod median;
pub mod spot;
pub mod strain;
pub mod synth;
mod tvl1;
pub mod viz;

pub use dis::{Dis, DisConfig, DisPreset};
pub use error::{Error, Result};
pub use farneback::{Farneback, FarnebackConfig};
pub use mex_core::{FlowField, GrayF32};
pub use tvl1::{TvL1, TvL1Config};

use serde::{Deserialize, Serialize};

/// A dense optical-flow estimator: the displacement of every pixel of the first frame.
///
/// Object safe; every implementation is `Send + Sync` and keeps its scratch buffers inside, so
/// repeated calls of [`FlowEstimator::estimate_into`] on frames of one size allocate nothing.
pub trait FlowEstimator {
    /// Short method name (`"tvl1"`, `"farneback"`, `"dis"`).
    fn name(&self) -> &'static str;

    /// Flow from `frame0` to `frame1` (same size, gray, 0..255 scale by convention).
    fn estimate(&self, frame0: &GrayF32, frame1: &GrayF32) -> Result<FlowField> {
        let mut out = FlowField::zeros(0, 0);
        self.estimate_into(frame0, frame1, &mut out)?;
        Ok(out)
    }

    /// Like [`FlowEstimator::estimate`], writing into `out` (resized as needed, reusing its
    /// allocation).
    fn estimate_into(&self, frame0: &GrayF32, frame1: &GrayF32, out: &mut FlowField) -> Result<()>;
}

/// Every estimator's configuration, tagged by method (`{"method": "tvl1", ...}` in JSON / TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum FlowConfig {
    /// Dual TV-L1.
    #[serde(rename = "tvl1")]
    TvL1(TvL1Config),
    /// Farnebäck polynomial expansion.
    Farneback(FarnebackConfig),
    /// Dense inverse search.
    Dis(DisConfig),
}

impl FlowConfig {
    /// Validates and builds the estimator.
    pub fn build(&self) -> Result<Box<dyn FlowEstimator + Send + Sync>> {
        Ok(match self {
            FlowConfig::TvL1(c) => Box::new(c.build()?),
            FlowConfig::Farneback(c) => Box::new(c.build()?),
            FlowConfig::Dis(c) => Box::new(c.build()?),
        })
    }

    /// A name that identifies method and preset (for benchmark ids and reports), e.g.
    /// `"tvl1"`, `"farneback"`, `"dis-fast"`.
    pub fn name(&self) -> String {
        match self {
            FlowConfig::TvL1(_) => "tvl1".into(),
            FlowConfig::Farneback(_) => "farneback".into(),
            FlowConfig::Dis(c) => format!("dis-{}", c.preset_name()),
        }
    }

    /// The default configuration of a method by name (`tvl1`, `farneback`, `dis`) and optional
    /// preset (DIS: `ultrafast`, `fast`, `medium`; default `fast`).
    pub fn from_name(method: &str, preset: Option<&str>) -> Result<Self> {
        let m = method.to_ascii_lowercase();
        match (m.as_str(), preset) {
            ("tvl1" | "tv-l1" | "dualtvl1", None) => Ok(FlowConfig::TvL1(TvL1Config::default())),
            ("farneback", None) => Ok(FlowConfig::Farneback(FarnebackConfig::default())),
            ("dis", p) => Ok(FlowConfig::Dis(DisConfig::preset(p.unwrap_or("fast").parse()?))),
            ("tvl1" | "tv-l1" | "dualtvl1" | "farneback", Some(p)) => {
                Err(error::invalid("preset", p, "presets exist only for the dis method"))
            }
            _ => Err(error::invalid("method", method, "unknown method (expected tvl1, farneback or dis)")),
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig::TvL1(TvL1Config::default())
    }
}

/// Checks a frame pair: non-empty, equal sizes, at least `min` pixels a side, finite values.
pub fn validate_pair(frame0: &GrayF32, frame1: &GrayF32, min: usize, what: &'static str) -> Result<()> {
    let a = (frame0.width() as usize, frame0.height() as usize);
    let b = (frame1.width() as usize, frame1.height() as usize);
    if a.0 == 0 || a.1 == 0 {
        return Err(Error::Empty { what: "frame0" });
    }
    if b.0 == 0 || b.1 == 0 {
        return Err(Error::Empty { what: "frame1" });
    }
    if a != b {
        return Err(Error::SizeMismatch { left: a, right: b });
    }
    if a.0 < min || a.1 < min {
        return Err(Error::TooSmall { width: a.0, height: a.1, min, what });
    }
    check_finite(frame0.as_raw(), "frame0")?;
    check_finite(frame1.as_raw(), "frame1")
}

pub(crate) fn check_finite(v: &[f32], what: &'static str) -> Result<()> {
    // a branch-free pass over blocks (it vectorises); the index is searched only on failure
    let finite = v.chunks(256).all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()));
    if finite {
        return Ok(());
    }
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Takes the workspace out of its mutex (or a fresh one when another thread holds it).
pub(crate) fn with_workspace<W: Default, R>(m: &std::sync::Mutex<W>, f: impl FnOnce(&mut W) -> R) -> R {
    match m.try_lock() {
        Ok(mut g) => f(&mut g),
        Err(std::sync::TryLockError::Poisoned(p)) => {
            let mut g = p.into_inner();
            *g = W::default();
            f(&mut g)
        }
        Err(std::sync::TryLockError::WouldBlock) => f(&mut W::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_json_and_names() {
        for c in [
            FlowConfig::TvL1(TvL1Config::default()),
            FlowConfig::Farneback(FarnebackConfig::default()),
            FlowConfig::Dis(DisConfig::fast()),
        ] {
            let s = serde_json::to_string(&c).unwrap();
            assert!(s.contains("\"method\""), "{s}");
            let back: FlowConfig = serde_json::from_str(&s).unwrap();
            assert_eq!(back, c);
            assert!(c.build().is_ok());
        }
        assert_eq!(FlowConfig::from_name("dis", Some("medium")).unwrap().name(), "dis-medium");
        assert!(FlowConfig::from_name("lucas", None).is_err());
        assert!(FlowConfig::from_name("dis", Some("turbo")).is_err());
    }

    #[test]
    fn validation_rejects_bad_pairs() {
        let a = GrayF32::new(32, 32);
        let b = GrayF32::new(32, 30);
        assert!(matches!(validate_pair(&a, &b, 8, "t"), Err(Error::SizeMismatch { .. })));
        let e = GrayF32::new(0, 0);
        assert!(matches!(validate_pair(&e, &e, 8, "t"), Err(Error::Empty { .. })));
        let s = GrayF32::new(4, 4);
        assert!(matches!(validate_pair(&s, &s, 8, "t"), Err(Error::TooSmall { .. })));
        let mut n = GrayF32::new(32, 32);
        n.put_pixel(3, 2, image::Luma([f32::NAN]));
        assert!(matches!(validate_pair(&a, &n, 8, "t"), Err(Error::NonFinite { index: 67, .. })));
    }
}
