#!/usr/bin/env python3
"""Reference fixture for mex-indicators' find_peaks: SciPy's scipy.signal.find_peaks(x,
prominence=p) (peaks, prominences, left_bases, right_bases) on seeded signals: EAR-like series
with blinks and noise, quantised signals with plateaus and ties, random walks, edge cases.

Writes crates/mex-indicators/tests/fixtures/find_peaks_scipy.json. Run from the repository root:

    python3 scripts/indicators_find_peaks.py
"""
import json
import os

import numpy as np
import scipy
from scipy.signal import find_peaks

rng = np.random.default_rng(21)
cases = []


def add(name, x, prominence):
    x = np.asarray(x, dtype=np.float64)
    peaks, props = find_peaks(x, prominence=prominence)
    cases.append({
        "name": name,
        "x": x.tolist(),
        "prominence": prominence,
        "peaks": peaks.tolist(),
        "prominences": props["prominences"].tolist(),
        "left_bases": props["left_bases"].tolist(),
        "right_bases": props["right_bases"].tolist(),
    })


# EAR-like series (OpenDBM runs find_peaks on -EAR with prominence 0.1).
for k in range(6):
    n = 300
    ear = 0.3 + 0.01 * rng.standard_normal(n)
    for _ in range(5):
        c = int(rng.integers(5, n - 5))
        depth = rng.uniform(0.05, 0.28)
        w = int(rng.integers(1, 4))
        for j in range(-w, w + 1):
            ear[c + j] -= depth * (1 - abs(j) / (w + 1))
    add(f"ear_{k}", -ear, 0.1)
# Quantised signals: plateaus and ties at every level.
for k in range(6):
    add(f"quantised_{k}", np.round(rng.uniform(0, 4, 200)), float(k % 3))
# Random walks, several prominence levels.
for k in range(6):
    add(f"walk_{k}", np.cumsum(rng.standard_normal(400)), [0.0, 0.5, 2.0][k % 3])
# Edge cases.
add("empty", [], 0.1)
add("one", [1.0], 0.1)
add("two", [1.0, 2.0], 0.1)
add("flat", [1.0] * 10, 0.0)
add("plateau_at_end", [0.0, 1.0, 1.0], 0.0)
add("even_plateau", [0.0, 2.0, 2.0, 2.0, 2.0, 0.0, 1.0, 0.0], 0.0)
add("equal_bases", [0.0, 3.0, 0.0, 3.0, 0.0], 1.0)

out = "crates/mex-indicators/tests/fixtures/find_peaks_scipy.json"
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump({"scipy_version": scipy.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {out} (SciPy {scipy.__version__})")
