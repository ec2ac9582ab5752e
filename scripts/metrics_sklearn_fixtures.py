#!/usr/bin/env python3
"""Generate the scikit-learn / SciPy reference values that mex-metrics tests compare against.

Run once (needs `pip install scikit-learn scipy numpy`):

    python3 scripts/metrics_sklearn_fixtures.py

writes crates/mex-metrics/tests/fixtures/sklearn_reference.json. Not part of the test path: the
JSON is committed. Inputs are drawn from fixed seeds, so re-running reproduces the same file
(up to library version differences, recorded in the file).
"""
import json
import os
import warnings

import numpy as np
import scipy
import sklearn
from scipy import stats
from sklearn import metrics
from sklearn.calibration import calibration_curve

warnings.simplefilter("ignore")
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "mex-metrics", "tests", "fixtures",
                   "sklearn_reference.json")


def megc_reference(gt, pred, n_classes):
    """UF1/UAR as christy1206/STSTNet recognition_evaluation (one-vs-rest per class, pooled)."""
    f1s, ars = [], []
    for c in range(n_classes):
        g = np.array([1 if x == c else 0 for x in gt])
        p = np.array([1 if x == c else 0 for x in pred])
        try:
            tn, fp, fn, tp = metrics.confusion_matrix(g, p).ravel()
            f1s.append(2 * tp / (2 * tp + fp + fn))
            ars.append(tp / (tp + fn) if tp + fn > 0 else float("nan"))
        except ValueError:
            pass
    return float(np.mean(f1s)), float(np.nanmean(ars))


def classification_case(name, truth, pred, n):
    truth, pred = np.asarray(truth), np.asarray(pred)
    labels = list(range(n))
    p, r, f, s = metrics.precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    kappa = metrics.cohen_kappa_score(truth, pred)
    uf1, uar = megc_reference(truth, pred, n)
    return {
        "name": name,
        "n_classes": n,
        "truth": truth.tolist(),
        "pred": pred.tolist(),
        "accuracy": metrics.accuracy_score(truth, pred),
        "macro_f1": metrics.f1_score(truth, pred, average="macro"),
        "weighted_f1": metrics.f1_score(truth, pred, average="weighted"),
        "balanced_accuracy": metrics.balanced_accuracy_score(truth, pred),
        "kappa": None if np.isnan(kappa) else kappa,
        "precision": p.tolist(),
        "recall": r.tolist(),
        "f1": f.tolist(),
        "support": s.tolist(),
        "confusion": metrics.confusion_matrix(truth, pred, labels=labels).tolist(),
        "megc_uf1": uf1,
        "megc_uar": uar,
    }


def curve(fpr, tpr, thr):
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(),
            "thresholds": [None if np.isinf(t) else float(t) for t in thr]}


def binary_case(name, truth, scores, probs):
    truth = np.asarray(truth, dtype=bool)
    scores, probs = np.asarray(scores, dtype=float), np.asarray(probs, dtype=float)
    fd, td, thd = metrics.roc_curve(truth, scores, drop_intermediate=True)
    ff, tf, thf = metrics.roc_curve(truth, scores, drop_intermediate=False)
    j = tf - ff
    k = 1 + int(np.argmax(j[1:]))
    cm = metrics.confusion_matrix(truth, scores >= 0.5, labels=[False, True])
    ece = {}
    for n_bins in (5, 10):
        prob_true, prob_pred = calibration_curve(truth, probs, n_bins=n_bins, strategy="uniform")
        bins = np.linspace(0.0, 1.0, n_bins + 1)
        counts = np.bincount(np.searchsorted(bins[1:-1], probs), minlength=n_bins)
        counts = counts[counts > 0]
        ece[str(n_bins)] = float(np.sum(counts / len(probs) * np.abs(prob_true - prob_pred)))
    return {
        "name": name,
        "truth": truth.tolist(),
        "scores": scores.tolist(),
        "probs": probs.tolist(),
        "roc_drop": curve(fd, td, thd),
        "roc_full": curve(ff, tf, thf),
        "roc_auc": metrics.roc_auc_score(truth, scores),
        "average_precision": metrics.average_precision_score(truth, scores),
        "brier": metrics.brier_score_loss(truth, probs),
        "ece": ece,
        "youden": {"threshold": float(thf[k]), "j": float(j[k])},
        "at_half": {"tn": int(cm[0, 0]), "fp": int(cm[0, 1]), "fn": int(cm[1, 0]), "tp": int(cm[1, 1])},
    }


def main():
    rng = np.random.RandomState(20240601)
    cls = []
    # 3-class MEGC-like, imbalanced 250:109:83 ratio, noisy classifier
    t = rng.choice(3, size=120, p=[0.565, 0.247, 0.188])
    pr = np.where(rng.rand(120) < 0.65, t, rng.choice(3, size=120))
    cls.append(classification_case("megc_like_120", t, pr, 3))
    # 5 classes, one class only predicted never true (class 4), class 3 absent everywhere
    t = rng.choice(3, size=40)
    pr = np.where(rng.rand(40) < 0.5, t, rng.choice([0, 1, 2, 4], size=40))
    cls.append(classification_case("absent_classes_5", t, pr, 5))
    # small all-classes case
    cls.append(classification_case("tiny_4", [0, 1, 2, 3, 3, 2, 1, 0, 0, 0], [0, 2, 2, 3, 1, 2, 1, 0, 3, 0], 4))
    # all-negative predictor on the MEGC composite class counts
    t = np.array([0] * 250 + [1] * 109 + [2] * 83)
    cls.append(classification_case("all_negative_442", t, np.zeros_like(t), 3))

    binr = []
    t = rng.rand(80) < 0.4
    s = np.round(np.clip(t * 0.25 + rng.rand(80) * 0.75, 0, 1), 1)  # heavy ties
    binr.append(binary_case("ties_80", t, s, s))
    t = rng.rand(50) < 0.3
    s = t * 1.0 + rng.randn(50)  # unbounded scores, no ties
    pb = 1 / (1 + np.exp(-2 * s))
    binr.append(binary_case("continuous_50", t, s, pb))
    binr.append(binary_case("tiny_6", [0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.5, 0.5],
                            [0.1, 0.4, 0.35, 0.8, 0.5, 0.5]))

    mcn = []
    for b, c in [(1, 6), (0, 5), (10, 12), (30, 12), (100, 140), (3, 3), (0, 1)]:
        n = b + c
        chi2 = max(abs(b - c) - 1, 0) ** 2 / n
        mcn.append({"b": b, "c": c, "exact_p": stats.binomtest(min(b, c), n, 0.5).pvalue,
                    "chi2": chi2, "chi2_p": float(stats.chi2.sf(chi2, 1))})

    out = {"generator": "scripts/metrics_sklearn_fixtures.py",
           "versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__},
           "classification": cls, "binary": binr, "mcnemar": mcn}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, allow_nan=False)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
