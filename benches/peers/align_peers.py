#!/usr/bin/env python3
"""Peer timings for mex-align, in one run on the same images and the same machine:
facenet-pytorch 2.6.0 MTCNN (torch.set_num_threads 1 and 2), dlib's 68-point shape predictor
(Python binding), and mex-align (examples/align_timing.rs with RAYON_NUM_THREADS 1 and 2).

    pip install torch torchvision dlib-bin && pip install --no-deps facenet-pytorch==2.6.0
    apt-get install -y libdlib-data
    python3 benches/peers/align_peers.py [IMAGE] [REPEATS] [ROUNDS]

With ROUNDS > 1 the MTCNN timings alternate: every round times facenet-pytorch, then mex-align,
with one thread and then with two, so that both sides of each ratio are measured within seconds
of each other on a host whose speed drifts; the report adds every round's ratio and the median
of the per-round ratios (the headline figures then are those medians).
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
IMAGE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates/mex-align/tests/data/frame640x480.png")
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
MODEL = os.environ.get("MEX_DLIB_MODEL", "/usr/share/dlib/shape_predictor_68_face_landmarks.dat")


def median_ms(f, n):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def main():
    from facenet_pytorch import MTCNN
    img = Image.open(IMAGE).convert("RGB")
    mtcnn = MTCNN(device="cpu")
    res = {"image": os.path.basename(IMAGE), "size": img.size}
    boxes, _ = mtcnn.detect(img)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "mex-align", "--example", "align_timing"],
                   cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "align_timing")

    def facenet(th):
        torch.set_num_threads(th)
        return median_ms(lambda: mtcnn.detect(img), REPEATS)

    def mex(th):
        env = dict(os.environ, RAYON_NUM_THREADS=str(th))
        out = subprocess.run([exe, IMAGE, str(REPEATS), MODEL], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)

    rounds = {1: [], 2: []}
    for _ in range(ROUNDS):
        for th in (1, 2):
            f = facenet(th)
            r = mex(th)
            rounds[th].append((f, r))
    for th in (1, 2):
        fs = [f for f, _ in rounds[th]]
        ms = [r["mtcnn_ms"] for _, r in rounds[th]]
        last = rounds[th][-1][1]
        res[f"facenet_mtcnn_ms_{th}t"] = statistics.median(fs)
        res[f"mex_mtcnn_ms_{th}t"] = statistics.median(ms)
        res[f"mex_dlib68_ms_{th}t"] = last["dlib68_ms"]
        res[f"mex_align_ms_{th}t"] = last["align_ms"]
        ratios = [f / m for f, m in zip(fs, ms)]
        res[f"mtcnn_speedup_{th}t"] = statistics.median(ratios)
        if ROUNDS > 1:
            res[f"rounds_{th}t"] = [{"facenet_ms": round(f, 2), "mex_ms": round(m, 2), "ratio": round(f / m, 2)}
                                    for f, m in zip(fs, ms)]
    if os.path.exists(MODEL) and boxes is not None:
        import dlib
        sp = dlib.shape_predictor(MODEL)
        gray = np.asarray(img.convert("L"))
        b = [int(round(v)) for v in boxes[0]]
        rect = dlib.rectangle(*b)
        res["dlib68_ms"] = median_ms(lambda: sp(gray, rect), REPEATS * 50)
    if "dlib68_ms" in res and res.get("mex_dlib68_ms_1t"):
        res["dlib68_speedup_1t"] = res["dlib68_ms"] / res["mex_dlib68_ms_1t"]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
