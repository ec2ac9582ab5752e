#!/usr/bin/env python3
"""Summarise a (possibly unfinished) mex-classify LOSO folds folder: pooled UF1/UAR over the
finished folds, per-dataset breakdown, mean seconds per epoch.

usage: python3 scripts/classify_loso_summary.py FOLDS_DIR
"""
import glob, json, os, sys


def ds_of(s):
    return "casme2" if s.startswith("sub") else "smic" if s.startswith("s") else "samm"


def scores(p):
    f1, ar, k = 0.0, 0.0, 0
    for c in range(3):
        tp = sum(1 for g, q in p if g == c and q == c)
        fp = sum(1 for g, q in p if g != c and q == c)
        n = sum(1 for g, _ in p if g == c)
        if n + fp:
            f1 += 2 * tp / (tp + fp + n); k += 1
        if n:
            ar += tp / n
    return f1 / max(k, 1), ar / 3


folds = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json")))]
preds = [(p["label"], p["pred"], f["subject"]) for f in folds for p in f["predictions"]]
u, a = scores([(g, q) for g, q, _ in preds])
print(f"{len(folds)} folds, {len(preds)} samples: UF1 {u:.4f} UAR {a:.4f}")
for d in ("casme2", "smic", "samm"):
    p = [(g, q) for g, q, s in preds if ds_of(s) == d]
    if p:
        u, a = scores(p)
        print(f"  {d:<7} UF1 {u:.4f} UAR {a:.4f} (n {len(p)}, folds {sum(1 for f in folds if ds_of(f['subject']) == d)})")
ep = [f["elapsed_s"] / len(f["epochs"]) for f in folds]
print(f"mean {sum(ep) / len(ep):.2f} s per epoch of one fold (wall, folds in parallel)")
