#!/usr/bin/env python3
"""Reference values of the screening-study statistics of mex-metrics (`mex_metrics::study`).

Run once (needs `pip install numpy scipy statsmodels pingouin scikit-learn pandas`):

    python3 scripts/metrics_study_fixtures.py

writes crates/mex-metrics/tests/fixtures/study_reference.json, compared to 1e-6 by
crates/mex-metrics/tests/study_reference.rs. Not part of the test path: the JSON is committed.
Inputs are drawn from fixed seeds; library versions are recorded in the file.

Sources of each value:
- Hedges' g and its CI: pingouin.compute_effsize(eftype="hedges") and
  pingouin.compute_esci(eftype="hedges") (normal-theory SE of Hedges & Olkin, t critical value);
- Mann-Whitney U: scipy.stats.mannwhitneyu(two-sided, use_continuity=True, method=auto/exact/asymptotic);
- Spearman: scipy.stats.spearmanr (rho, p); CI: pingouin.compute_esci(eftype="spearman") (Fisher z);
- ICC: pingouin.intraclass_corr (ICC(1,1), ICC(A,1) = ICC(2,1), ICC(C,1) = ICC(3,1), F, p, CI95);
- Benjamini-Hochberg: statsmodels.stats.multitest.multipletests(method="fdr_bh");
- logistic regression: sklearn LogisticRegression(C=...) solved to a tight tolerance
  (lbfgs, tol=1e-12; checked against solver="newton-cholesky"), so that the optimum, not a
  solver's stopping point, is the reference.
"""
import json
import os
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import scipy
import sklearn
import statsmodels
from scipy import stats
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.multitest import multipletests

warnings.simplefilter("ignore")
# pingouin rounds its CI95 column to 2 decimals by default; keep full precision.
pg.options["round.column.CI95"] = None
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "mex-metrics", "tests", "fixtures",
                   "study_reference.json")
rng = np.random.default_rng(20261204)


def fl(a):
    return [float(v) for v in np.asarray(a).ravel()]


def hedges_case(name, x, y):
    g = pg.compute_effsize(x, y, paired=False, eftype="hedges")
    d = pg.compute_effsize(x, y, paired=False, eftype="cohen")
    ci = pg.compute_esci(stat=g, nx=len(x), ny=len(y), eftype="hedges", confidence=0.95, decimals=14)
    return {"name": name, "x": fl(x), "y": fl(y), "d": float(d), "g": float(g),
            "ci_low": float(ci[0]), "ci_high": float(ci[1])}


def mwu_case(name, x, y, method):
    r = stats.mannwhitneyu(x, y, alternative="two-sided", use_continuity=True, method=method)
    return {"name": name, "x": fl(x), "y": fl(y), "method": method, "u": float(r.statistic),
            "p": float(r.pvalue)}


def spearman_case(name, x, y):
    r = stats.spearmanr(x, y)
    ci = pg.compute_esci(stat=r.statistic, nx=len(x), ny=len(x), eftype="spearman", confidence=0.95,
                         decimals=14)
    return {"name": name, "x": fl(x), "y": fl(y), "rho": float(r.statistic), "p": float(r.pvalue),
            "ci_low": float(ci[0]), "ci_high": float(ci[1])}


def icc_case(name, table):
    n, k = table.shape
    df = pd.DataFrame({"subject": np.repeat(np.arange(n), k), "session": np.tile(np.arange(k), n),
                       "value": table.ravel()})
    res = pg.intraclass_corr(data=df, targets="subject", raters="session", ratings="value").set_index("Type")
    out = {"name": name, "table": [fl(r) for r in table]}
    for key, typ in [("icc1", "ICC(1,1)"), ("icc2_1", "ICC(A,1)"), ("icc3_1", "ICC(C,1)")]:
        row = res.loc[typ]
        out[key] = {"estimate": float(row["ICC"]), "ci_low": float(row["CI95"][0]),
                    "ci_high": float(row["CI95"][1])}
    out["f"] = float(res.loc["ICC(C,1)", "F"])
    out["p"] = float(res.loc["ICC(C,1)", "pval"])
    return out


def logistic_case(name, x, y, c):
    a = LogisticRegression(C=c, solver="lbfgs", tol=1e-12, max_iter=100000).fit(x, y)
    b = LogisticRegression(C=c, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(x, y)
    assert np.allclose(a.coef_, b.coef_, atol=1e-7) and np.allclose(a.intercept_, b.intercept_, atol=1e-7)
    return {"name": name, "x": [fl(r) for r in x], "y": [bool(v) for v in y], "c": c,
            "coef": fl(b.coef_[0]), "intercept": float(b.intercept_[0]),
            "proba": fl(b.predict_proba(x)[:, 1])}


hedges = [
    hedges_case("small", np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0])),
    hedges_case("normal_20_25", rng.normal(0.8, 1.0, 20), rng.normal(0.0, 1.0, 25)),
    hedges_case("unequal_sd", rng.normal(10, 3, 12), rng.normal(12, 1, 30)),
    hedges_case("large_effect", rng.normal(3, 1, 8), rng.normal(0, 1, 9)),
]
mwu = [
    mwu_case("exact_small", np.array([4.0, 5.0, 6.0]), np.array([1.0, 2.0, 3.0]), "auto"),
    mwu_case("exact_overlap", rng.normal(0.5, 1, 7), rng.normal(0, 1, 8), "auto"),
    mwu_case("exact_forced", rng.normal(0.5, 1, 10), rng.normal(0, 1, 12), "exact"),
    mwu_case("asymptotic_ties", np.round(rng.normal(0.5, 1, 15), 0), np.round(rng.normal(0, 1, 18), 0), "auto"),
    mwu_case("asymptotic_large", rng.normal(0.3, 1, 40), rng.normal(0, 1, 35), "auto"),
    mwu_case("asymptotic_forced_small", rng.normal(0.3, 1, 5), rng.normal(0, 1, 6), "asymptotic"),
]
x = rng.normal(0, 1, 30)
spear = [
    spearman_case("hand", np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 1, 4, 3, 5])),
    spearman_case("correlated", x, 0.6 * x + rng.normal(0, 0.8, 30)),
    spearman_case("ties", np.round(rng.normal(0, 1, 25), 0), np.round(rng.normal(0, 1, 25), 1)),
    spearman_case("negative", x[:12], -x[:12] + rng.normal(0, 0.5, 12)),
]
subj = rng.normal(0, 1, (15, 1))
icc = [
    icc_case("two_sessions", subj + rng.normal(0, 0.5, (15, 2)) + np.array([0.0, 0.3])),
    icc_case("three_sessions", rng.normal(0, 1, (10, 1)) + rng.normal(0, 0.7, (10, 3))),
    icc_case("poor", rng.normal(0, 1, (12, 2))),
    icc_case("wine", pg.read_dataset("icc").pivot_table(index="Wine", columns="Judge", values="Scores").to_numpy()),
]
pv = np.concatenate([rng.uniform(0, 0.05, 4), rng.uniform(0, 1, 8), [0.0, 1.0]])
bh = {"p": fl(pv), "adjusted": fl(multipletests(pv, method="fdr_bh")[1])}
X1 = rng.normal(0, 1, (40, 3))
y1 = (X1 @ np.array([1.0, -0.5, 0.0]) + rng.normal(0, 1, 40)) > 0
X2 = rng.normal(0, 1, (25, 1))
y2 = (X2[:, 0] + rng.normal(0, 0.3, 25)) > 0.2
X3 = rng.normal(5, 2, (30, 5))
y3 = rng.uniform(0, 1, 30) < 0.4
logistic = [
    logistic_case("three_features_c1", X1, y1, 1.0),
    logistic_case("separable_ish_c10", X2, y2, 10.0),
    logistic_case("noise_c0.1", X3, y3, 0.1),
]

doc = {
    "generator": "scripts/metrics_study_fixtures.py",
    "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "pingouin": pg.__version__,
                 "statsmodels": statsmodels.__version__, "scikit-learn": sklearn.__version__},
    "hedges": hedges, "mann_whitney": mwu, "spearman": spear, "icc": icc, "bh": bh,
    "logistic": logistic,
}
with open(OUT, "w") as f:
    json.dump(doc, f, indent=1)
print("wrote", os.path.normpath(OUT))

# ---------------------------------------------------------------------------------------------
# End-to-end: a small study table for `mex study` (crates/mex-cli/tests/study.rs) and the values
# its report.json must hold, computed here with pandas / SciPy / pingouin / statsmodels /
# scikit-learn on subject means (ICC on subject x session).
from sklearn.metrics import roc_auc_score

CLI = os.path.join(os.path.dirname(__file__), "..", "crates", "mex-cli", "tests", "fixtures", "study")
os.makedirs(CLI, exist_ok=True)
rows = []
for g, shift in [("patient", -0.9), ("control", 0.0)]:
    for s in range(8):
        subj = f"{g[0]}{s}"
        a_b, b_b = rng.normal(shift, 1.0), rng.normal(0.0, 1.0)
        score = float(np.round(10 - 3 * a_b + rng.normal(0, 1), 2))
        for sess in (1, 2):
            rows.append({"subject": subj, "group": g, "session": sess, "score": score,
                         "sex": "F" if s % 2 else "M", "site": "A" if s < 5 else "B",
                         "alpha": float(np.round(a_b + rng.normal(0, 0.4), 4)),
                         "beta": float(np.round(b_b + rng.normal(0, 0.4), 4))})
df = pd.DataFrame(rows)
df.to_csv(os.path.join(CLI, "table.csv"), index=False)
subj = df.groupby("subject").agg({"group": "first", "score": "mean", "alpha": "mean", "beta": "mean"})
expected = {"indicators": []}
ps = []
for ind in ["alpha", "beta"]:
    x = subj.loc[subj.group == "patient", ind].to_numpy()
    y = subj.loc[subj.group == "control", ind].to_numpy()
    g = pg.compute_effsize(x, y, eftype="hedges")
    ci = pg.compute_esci(stat=g, nx=len(x), ny=len(y), eftype="hedges", decimals=14)
    mw = stats.mannwhitneyu(x, y, alternative="two-sided")
    sp = stats.spearmanr(subj[ind], subj["score"])
    spci = pg.compute_esci(stat=sp.statistic, nx=len(subj), ny=len(subj), eftype="spearman", decimals=14)
    icc = pg.intraclass_corr(data=df, targets="subject", raters="session", ratings=ind).set_index("Type")
    auc = roc_auc_score((subj.group == "patient").to_numpy(), subj[ind].to_numpy())
    ps.append(mw.pvalue)
    expected["indicators"].append({
        "name": ind,
        "hedges_g": {"estimate": float(g), "ci_low": float(ci[0]), "ci_high": float(ci[1])},
        "mann_whitney_p": float(mw.pvalue),
        "auc_estimate": float(auc),
        "spearman": {"estimate": float(sp.statistic), "ci_low": float(spci[0]), "ci_high": float(spci[1])},
        "icc2_1": {"estimate": float(icc.loc["ICC(A,1)", "ICC"]), "ci_low": float(icc.loc["ICC(A,1)", "CI95"][0]),
                   "ci_high": float(icc.loc["ICC(A,1)", "CI95"][1])},
        "icc3_1": {"estimate": float(icc.loc["ICC(C,1)", "ICC"]), "ci_low": float(icc.loc["ICC(C,1)", "CI95"][0]),
                   "ci_high": float(icc.loc["ICC(C,1)", "CI95"][1])},
    })
for e, p in zip(expected["indicators"], multipletests(ps, method="fdr_bh")[1]):
    e["p_adjusted"] = float(p)
with open(os.path.join(CLI, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print("wrote", os.path.normpath(CLI))
