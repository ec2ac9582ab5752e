#!/usr/bin/env python3
"""Generate the CSV inputs and scikit-learn expected values of the `mex metrics classify` tests.

    python3 scripts/metrics_cli_fixtures.py

writes crates/mex-cli/tests/fixtures/metrics/{classify_megc.csv,classify_megc.expected.json}.
The CSV mixes class names and integers and has `subject` and `dataset` columns; the expected
values are scikit-learn's (macro F1 with inferred labels, balanced accuracy, kappa, ...), with the
per-dataset scores computed on the pooled predictions restricted to each dataset.
"""
import csv
import json
import os
import warnings

import numpy as np
from sklearn import metrics

warnings.simplefilter("ignore")
DIR = os.path.join(os.path.dirname(__file__), "..", "crates", "mex-cli", "tests", "fixtures", "metrics")
NAMES = ["negative", "positive", "surprise"]


def scores(t, p):
    return {"n": int(len(t)), "uf1": metrics.f1_score(t, p, average="macro"),
            "uar": metrics.balanced_accuracy_score(t, p)}


def main():
    rng = np.random.RandomState(7)
    rows = []
    for ds, n_subj, probs in [("casme2", 5, [0.6, 0.22, 0.18]), ("smic", 4, [0.43, 0.31, 0.26]),
                              ("samm", 5, [0.69, 0.2, 0.11])]:
        for s in range(n_subj):
            for _ in range(rng.randint(2, 7)):
                t = rng.choice(3, p=probs)
                p = t if rng.rand() < 0.6 else rng.choice(3)
                rows.append((ds, f"{ds}_s{s:02d}", int(t), int(p)))
    os.makedirs(DIR, exist_ok=True)
    with open(os.path.join(DIR, "classify_megc.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject", "dataset", "label", "pred"])
        for i, (ds, subj, t, p) in enumerate(rows):
            # alternate between names and integers, and vary case, to exercise the parser
            lt = NAMES[t] if i % 2 == 0 else str(t)
            lp = NAMES[p].upper() if i % 3 == 0 else (str(p) if i % 3 == 1 else NAMES[p])
            w.writerow([subj, ds, lt, lp])
    t = np.array([r[2] for r in rows])
    p = np.array([r[3] for r in rows])
    ds = np.array([r[0] for r in rows])
    pr, rc, f1, sup = metrics.precision_recall_fscore_support(t, p, labels=[0, 1, 2], zero_division=0)
    exp = {
        **scores(t, p),
        "accuracy": metrics.accuracy_score(t, p),
        "macro_f1": metrics.f1_score(t, p, average="macro"),
        "weighted_f1": metrics.f1_score(t, p, average="weighted"),
        "kappa": metrics.cohen_kappa_score(t, p),
        "per_class": [{"label": NAMES[c], "precision": pr[c], "recall": rc[c], "f1": f1[c],
                       "support": int(sup[c])} for c in range(3)],
        "confusion": metrics.confusion_matrix(t, p, labels=[0, 1, 2]).tolist(),
        "per_dataset": {d: scores(t[ds == d], p[ds == d]) for d in sorted(set(ds))},
    }
    with open(os.path.join(DIR, "classify_megc.expected.json"), "w") as f:
        json.dump(exp, f, indent=1, default=float)
    print("wrote", len(rows), "rows to", os.path.normpath(DIR))


if __name__ == "__main__":
    main()
