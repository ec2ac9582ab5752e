#!/usr/bin/env python3
"""OpenCV peer comparison for mex-flow: same frames, same run, EPE and time for both.

Usage (from the workspace root):
    pip install opencv-contrib-python-headless numpy
    python3 benches/peers/flow_opencv.py [--reps 5] [--threads 1 2]

It builds and runs the `flow_peer` example of mex-flow to write 8-bit PNG frame pairs with known
flow (`.flo`) to a temporary folder, runs OpenCV's DualTVL1 (opencv-contrib `cv2.optflow`),
calcOpticalFlowFarneback and DIS (ULTRAFAST / FAST / MEDIUM) on them with `cv2.setNumThreads(1)`,
then runs the mex-flow estimators on the same files with RAYON_NUM_THREADS=1 (and 2), and prints a
Markdown table: mean interior EPE (8 px border) over the pairs of a size and the median time per pair.

On a machine without cargo, pass a prebuilt binary with `--exe PATH` (the build step is then
skipped); the frames are still written by that binary to a temporary folder.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np


def read_flo(path):
    with open(path, "rb") as f:
        magic = np.fromfile(f, np.float32, 1)[0]
        assert magic == 202021.25, path
        w, h = np.fromfile(f, np.int32, 2)
        data = np.fromfile(f, np.float32, 2 * w * h).reshape(h, w, 2)
    return data


def epe_interior(flow, truth, border=8):
    d = flow[border:-border, border:-border] - truth[border:-border, border:-border]
    return float(np.sqrt((d ** 2).sum(-1)).mean())


def opencv_methods():
    dis = {}
    for name, preset in [("ultrafast", cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
                         ("fast", cv2.DISOPTICAL_FLOW_PRESET_FAST),
                         ("medium", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)]:
        dis[name] = cv2.DISOpticalFlow_create(preset)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    m = [("tvl1", lambda a, b: tvl1.calc(a, b, None)),
         ("farneback", lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 13, 10, 5, 1.1, 0))]
    for name, d in dis.items():
        m.append((f"dis-{name}", (lambda d: lambda a, b: d.calc(a, b, None))(d)))
    return m


def run_opencv(folder, reps):
    cv2.setNumThreads(1)
    rows = []
    stems = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".flo"))
    for size in (128, 256):
        for name, fn in opencv_methods():
            epes, times = [], []
            for s in (s for s in stems if s.startswith(f"{size}_")):
                a = cv2.imread(os.path.join(folder, s + ".0.png"), cv2.IMREAD_GRAYSCALE)
                b = cv2.imread(os.path.join(folder, s + ".1.png"), cv2.IMREAD_GRAYSCALE)
                truth = read_flo(os.path.join(folder, s + ".flo"))
                flow = fn(a, b)
                for _ in range(reps):
                    t0 = time.perf_counter()
                    flow = fn(a, b)
                    times.append((time.perf_counter() - t0) * 1e3)
                epes.append(epe_interior(flow, truth))
            rows.append({"impl": "opencv", "method": name, "size": size, "threads": 1,
                         "epe": float(np.mean(epes)), "ms": float(np.median(times))})
    return rows


def run_mex(exe, folder, reps, threads):
    rows = []
    for t in threads:
        env = dict(os.environ, RAYON_NUM_THREADS=str(t))
        out = subprocess.run([exe, "run", folder, str(reps)], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--exe", help="a prebuilt flow_peer binary (skips the cargo build)")
    args = ap.parse_args()
    exe = args.exe
    if exe is None:
        subprocess.run(["cargo", "build", "--release", "-p", "mex-flow", "--example", "flow_peer"], check=True)
        exe = os.path.join("target", "release", "examples", "flow_peer")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([exe, "write", folder], check=True)
        cv_rows = run_opencv(folder, args.reps)
        mex_rows = run_mex(exe, folder, args.reps, args.threads)
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    print()
    print("| method | size | OpenCV EPE | OpenCV ms (1 thr) | mex EPE | "
          + " | ".join(f"mex ms ({t} thr)" for t in args.threads)
          + " | EPE ratio mex/OpenCV | speed-up (1 thr) |")
    print("|---|---|---|---|---|" + "---|" * len(args.threads) + "---|---|")
    for cv in cv_rows:
        mex = {r["threads"]: r for r in mex_rows if r["method"] == cv["method"] and r["size"] == cv["size"]}
        if not mex:
            continue
        m1 = mex[args.threads[0]]
        times = " | ".join(f"{mex[t]['ms']:.2f}" for t in args.threads)
        print(f"| {cv['method']} | {cv['size']} | {cv['epe']:.4f} | {cv['ms']:.2f} | {m1['epe']:.4f} | {times} "
              f"| {m1['epe'] / cv['epe']:.2f} | {cv['ms'] / m1['ms']:.2f}x |")


if __name__ == "__main__":
    main()
