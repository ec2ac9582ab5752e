//! Intraclass correlation coefficients for test-retest reliability (Shrout & Fleiss 1979;
//! McGraw & Wong 1996), with the F-based confidence intervals of pingouin's `intraclass_corr`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dist::{f_ppf, f_sf};
use super::{check_confidence, EstimateCi};
use crate::error::{check_finite, check_len, Error, Result};

/// The single-measure ICC forms of a complete subjects x sessions table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Icc {
    /// Subjects (targets) with a value at every session.
    pub n_subjects: usize,
    /// Sessions (raters / occasions).
    pub n_sessions: usize,
    /// ICC(1,1): one-way random effects, absolute agreement.
    pub icc1: EstimateCi,
    /// ICC(2,1) = ICC(A,1): two-way random effects, absolute agreement, single measure.
    pub icc2_1: EstimateCi,
    /// ICC(3,1) = ICC(C,1): two-way mixed effects, consistency, single measure.
    pub icc3_1: EstimateCi,
    /// `F = MS_subjects / MS_error` of the two-way model.
    pub f: f64,
    /// Its p-value with `(n−1, (n−1)(k−1))` degrees of freedom.
    pub p_value: f64,
}

/// ICCs of `table[subject][session]` (every row the same length `k >= 2`, `n >= 2` rows), from
/// the two-way ANOVA without replication (mean squares `MSB` subjects, `MSJ` sessions, `MSE`
/// error, `MSW` within subjects):
///
/// * ICC(1,1) = `(MSB − MSW) / (MSB + (k−1) MSW)`;
/// * ICC(2,1) = `(MSB − MSE) / (MSB + (k−1) MSE + k (MSJ − MSE) / n)`;
/// * ICC(3,1) = `(MSB − MSE) / (MSB + (k−1) MSE)`.
///
/// Intervals at level `confidence` (pingouin uses 0.95): ICC(1,1) and ICC(3,1) from the exact F
/// distribution of `MSB/MSW` and `MSB/MSE`; ICC(2,1) from McGraw & Wong's (1996) approximation
/// with Satterthwaite's degrees of freedom `v`, exactly as pingouin (validated there against R's
/// `psych::ICC`).
///
/// ```
/// // three subjects measured twice; the second session reads about 1 higher
/// let t = vec![vec![1.0, 2.1], vec![4.0, 4.9], vec![7.0, 8.0]];
/// let icc = mex_metrics::study::icc(&t, 0.95).unwrap();
/// assert!(icc.icc3_1.estimate > 0.99); // near-perfect consistency
/// assert!(icc.icc2_1.estimate < icc.icc3_1.estimate - 0.02); // the shift costs absolute agreement
/// ```
pub fn icc(table: &[Vec<f64>], confidence: f64) -> Result<Icc> {
    check_confidence(confidence)?;
    let n = table.len();
    if n < 2 {
        return Err(Error::Undefined { metric: "ICC", reason: "needs at least two subjects" });
    }
    let k = table[0].len();
    if k < 2 {
        return Err(Error::Undefined { metric: "ICC", reason: "needs at least two sessions" });
    }
    for row in table {
        check_len("ICC sessions per subject", k, row.len())?;
        check_finite("ICC values", row)?;
    }
    let (nf, kf) = (n as f64, k as f64);
    let grand = table.iter().flatten().sum::<f64>() / (nf * kf);
    let row_means: Vec<f64> = table.iter().map(|r| r.iter().sum::<f64>() / kf).collect();
    let col_means: Vec<f64> = (0..k).map(|j| table.iter().map(|r| r[j]).sum::<f64>() / nf).collect();
    let ss_total: f64 = table.iter().flatten().map(|v| (v - grand).powi(2)).sum();
    let ss_rows: f64 = kf * row_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    let ss_cols: f64 = nf * col_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    let ss_err = (ss_total - ss_rows - ss_cols).max(0.0);
    let df1 = nf - 1.0;
    let df_err = df1 * (kf - 1.0);
    let df_within = nf * (kf - 1.0);
    let msb = ss_rows / df1;
    let msj = ss_cols / (kf - 1.0);
    let mse = ss_err / df_err;
    let msw = (ss_cols + ss_err) / df_within;
    if !(mse > 0.0 && msw > 0.0) {
        return Err(Error::Undefined {
            metric: "ICC",
            reason: "no within-subject variation (error mean square is zero)",
        });
    }
    let icc1 = (msb - msw) / (msb + (kf - 1.0) * msw);
    let icc2 = (msb - mse) / (msb + (kf - 1.0) * mse + kf * (msj - mse) / nf);
    let icc3 = (msb - mse) / (msb + (kf - 1.0) * mse);
    let alpha = 1.0 - confidence;
    let q = 1.0 - alpha / 2.0;

    let f1 = msb / msw;
    let f1l = f1 / f_ppf(q, df1, df_within);
    let f1u = f1 * f_ppf(q, df_within, df1);
    let ci1 = ((f1l - 1.0) / (f1l + kf - 1.0), (f1u - 1.0) / (f1u + kf - 1.0));

    let f3 = msb / mse;
    let f3l = f3 / f_ppf(q, df1, df_err);
    let f3u = f3 * f_ppf(q, df_err, df1);
    let ci3 = ((f3l - 1.0) / (f3l + kf - 1.0), (f3u - 1.0) / (f3u + kf - 1.0));

    let fj = msj / mse;
    let a = kf * icc2 * fj + nf * (1.0 + (kf - 1.0) * icc2) - kf * icc2;
    let vn = df_err * a * a;
    let b = nf * (1.0 + (kf - 1.0) * icc2) - kf * icc2;
    let vd = df1 * kf * kf * icc2 * icc2 * fj * fj + b * b;
    let v = vn / vd;
    let f2u = f_ppf(q, df1, v);
    let f2l = f_ppf(q, v, df1);
    let den = kf * msj + (kf * nf - kf - nf) * mse;
    let l2 = nf * (msb - f2u * mse) / (f2u * den + nf * msb);
    let u2 = nf * (f2l * msb - mse) / (den + nf * f2l * msb);

    let ec = |e: f64, (lo, hi): (f64, f64)| EstimateCi { estimate: e, ci_low: lo, ci_high: hi };
    Ok(Icc {
        n_subjects: n,
        n_sessions: k,
        icc1: ec(icc1, ci1),
        icc2_1: ec(icc2, (l2, u2)),
        icc3_1: ec(icc3, ci3),
        f: f3,
        p_value: f_sf(f3, df1, df_err),
    })
}

/// ICCs from long-format data: one value per (subject, session) record. Several values of one
/// subject at one session are averaged (pingouin's `pivot_table`); subjects missing any session
/// are dropped (listwise deletion, pingouin's `nan_policy="omit"`). Sessions are all sessions that
/// occur.
pub fn icc_long<K, S>(subjects: &[K], sessions: &[S], values: &[f64], confidence: f64) -> Result<Icc>
where
    K: Ord + Clone,
    S: Ord + Clone,
{
    check_len("subjects/values", subjects.len(), values.len())?;
    check_len("sessions/values", sessions.len(), values.len())?;
    check_finite("ICC values", values)?;
    let mut session_ix: BTreeMap<S, usize> = BTreeMap::new();
    for s in sessions {
        let next = session_ix.len();
        session_ix.entry(s.clone()).or_insert(next);
    }
    // stable column order = sorted session keys
    let cols: BTreeMap<S, usize> = session_ix.keys().cloned().enumerate().map(|(i, s)| (s, i)).collect();
    let k = cols.len();
    let mut cells: BTreeMap<K, Vec<(f64, usize)>> = BTreeMap::new();
    for ((subj, sess), &v) in subjects.iter().zip(sessions).zip(values) {
        let row = cells.entry(subj.clone()).or_insert_with(|| vec![(0.0, 0); k]);
        let c = cols.get(sess).copied().unwrap_or(0);
        row[c].0 += v;
        row[c].1 += 1;
    }
    let table: Vec<Vec<f64>> = cells
        .into_values()
        .filter(|row| row.iter().all(|&(_, c)| c > 0))
        .map(|row| row.into_iter().map(|(s, c)| s / c as f64).collect())
        .collect();
    icc(&table, confidence)
}
