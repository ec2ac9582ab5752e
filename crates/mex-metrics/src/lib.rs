//! Evaluation metrics for facial micro-expression analysis.
//!
//! * [`classification`]: a streaming [`ConfusionMatrix`]; accuracy, per-class precision / recall /
//!   F1 with support, macro and weighted F1, balanced accuracy, Cohen's kappa; the MEGC2019
//!   composite-protocol **UF1** and **UAR** of pooled LOSO predictions with a per-dataset breakdown.
//! * [`binary`]: clinical screening metrics: sensitivity, specificity, PPV, NPV at a threshold,
//!   ROC curve and ROC-AUC (ties as scikit-learn), average precision, the Youden-optimal
//!   threshold, Brier score, expected calibration error.
//! * [`spotting`]: interval IoU, the MEGC spotting rule (TP when IoU >= 0.5, one-to-one), per-video
//!   and pooled database P/R/F1, micro / macro / overall F1, and the MEGC2023 STRS score.
//! * [`compare`]: subject-level bootstrap confidence intervals for any metric, McNemar's test,
//!   paired permutation tests, subgroup breakdowns.
//! * [`study`]: screening-study statistics: Hedges' g, Mann-Whitney U, Spearman's rho, ICC(2,1)
//!   and ICC(3,1), Benjamini-Hochberg, subject-level AUC bootstrap, grouped cross-validated
//!   logistic regression.
//!
//! Every definition, its source and its edge-case rules are in `docs/metrics.md` of the
//! repository. No dependency on image or candle.
//!
//! ```
//! use mex_metrics::{megc_scores, ConfusionMatrix};
//! // pooled predictions of all LOSO folds (0 negative, 1 positive, 2 surprise)
//! let truth = [0, 0, 0, 1, 1, 2];
//! let pred = [0, 0, 1, 1, 2, 2];
//! let s = megc_scores(&truth, &pred, 3).unwrap();
//! assert!((s.uf1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
//! assert!((s.uar - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod binary;
pub mod classification;
pub mod compare;
mod error;
pub mod spotting;
mod stats;
pub mod study;

pub use binary::{
    average_precision, brier_score, calibration, roc_auc, roc_curve, youden_threshold, BinaryCounts,
    Calibration, CalibrationBin, RocCurve, YoudenPoint,
};
pub use classification::{
    mean_of_fold_f1, megc_breakdown, megc_scores, pool_folds, ClassStats, ClassificationReport,
    ConfusionMatrix, MegcBreakdown, MegcScores,
};
pub use compare::{
    bootstrap, cluster_bootstrap, mcnemar, mcnemar_labels, paired_permutation_test,
    paired_permutation_test_blocked, subgroup_breakdown, BootstrapConfig, ConfidenceInterval, McNemar,
    PermutationConfig, PermutationTest, SubgroupBreakdown, SubgroupRow,
};
pub use error::{Error, Result};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use spotting::{
    evaluate_spotting, match_video, strs, ExpressionType, Matching, Span, SpotConfig, SpotCounts,
    SpotEvaluation, SpotMatch, SpotRecord, StrsResult, StrsVideo, VideoSpotResult,
};
