//! Statistics of screening studies: group comparisons (Hedges' g, Mann-Whitney U), ROC AUC with
//! a subject-level bootstrap, rank correlation with a clinical score (Spearman), test-retest
//! reliability (ICC), the Benjamini-Hochberg adjustment across indicators, and a cross-validated
//! L2 logistic regression with folds grouped by subject.
//!
//! Each function is checked against SciPy, statsmodels, pingouin or scikit-learn output committed
//! as fixtures (`tests/fixtures/study_reference.json`, written by
//! `scripts/metrics_study_fixtures.py`), to 1e-6. Definitions and sources: `docs/study.md`.
//!
//! ```
//! use mex_metrics::study::{hedges_g, mann_whitney, MwuMethod};
//! let patients = [3.1, 2.4, 2.9, 3.8, 2.2, 3.0];
//! let controls = [4.0, 3.9, 4.4, 3.3, 4.8, 4.1];
//! let g = hedges_g(&patients, &controls, 0.95).unwrap();
//! assert!(g.g.estimate < 0.0 && g.g.ci_high < 0.0);
//! let mw = mann_whitney(&patients, &controls, MwuMethod::Auto).unwrap();
//! assert!(mw.p_value < 0.05);
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod classifier;
mod dist;
mod effect;
mod icc;
mod logistic;
mod multiple;
mod rank;

pub use classifier::{auc_cluster_bootstrap, cross_validate_logistic, AucCi, CvConfig, CvResult, RocBand};
pub use effect::{describe, hedges_g, GroupSummary, HedgesG};
pub use icc::{icc, icc_long, Icc};
pub use logistic::{fit_logistic, grouped_folds, LogisticConfig, LogisticModel, Standardizer};
pub use multiple::benjamini_hochberg;
pub use rank::{mann_whitney, spearman, MannWhitney, MwuMethod, Spearman};

/// A point estimate with a two-sided confidence interval (field names as in `report.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimateCi {
    /// The estimate.
    pub estimate: f64,
    /// Lower bound.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
}

impl EstimateCi {
    /// Whether `v` lies in `[ci_low, ci_high]`.
    pub fn covers(&self, v: f64) -> bool {
        self.ci_low <= v && v <= self.ci_high
    }
}

pub(crate) fn check_confidence(c: f64) -> Result<()> {
    if !(c > 0.0 && c < 1.0) {
        return Err(Error::InvalidParam {
            name: "confidence",
            value: c.to_string(),
            reason: "must lie in (0, 1)",
        });
    }
    Ok(())
}
