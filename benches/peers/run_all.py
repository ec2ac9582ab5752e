#!/usr/bin/env python3
"""One entry point for the peer comparisons: runs every stage against its peer on this machine
and prints the performance table of docs/performance.md (Markdown on stdout, progress on stderr).

    python3 benches/peers/run_all.py [--quick] [--only align flow spot classify]

Stages and peers (install the peers first; each script's docstring says how):
  align     facenet-pytorch 2.6.0 MTCNN and dlib's 68-point predictor   (align_peers.py)
  flow      OpenCV DualTVL1, Farneback, DIS                              (flow_opencv.py)
  spot      mex-flow's streaming spotter (no peer)                       (example spot_throughput)
  classify  PyTorch STSTNet inference, training step and epoch           (classify_ststnet_torch.py)

`classify` needs the released STSTNet inputs under $MEX_TEST_DATA/ststnet-composite and is skipped
without them. A stage whose peer is not installed is reported as skipped, not as a failure.
Ratios are peer time / mex time (above 1: mex is faster); both sides of a ratio are measured in
the same run on the same inputs.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PEERS = os.path.join(ROOT, "benches", "peers")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, env=None):
    """Runs `cmd` in the workspace root; returns its stdout, or None (with the reason logged)."""
    log("$", " ".join(cmd))
    r = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, **(env or {})), capture_output=True, text=True)
    if r.returncode != 0:
        log(f"  skipped: exit {r.returncode}: {r.stderr.strip().splitlines()[-1:] or ''}")
        return None
    return r.stdout


def row(stage, what, threads, peer, peer_ms, mex_ms):
    ratio = f"{peer_ms / mex_ms:.2f}x" if peer_ms and mex_ms else "-"
    pm = f"{peer_ms:.2f}" if peer_ms else "-"
    return f"| {stage} | {what} | {threads} | {peer} | {pm} | {mex_ms:.2f} | {ratio} |"


def stage_align(quick):
    out = run([sys.executable, os.path.join(PEERS, "align_peers.py"),
               "crates/mex-align/tests/data/frame640x480.png", "3" if quick else "10", "1" if quick else "6"])
    if out is None:
        return []
    r = json.loads(out)
    rows = []
    for t in (1, 2):
        rows.append(row("alignment", "MTCNN detection, 640x480", t, "facenet-pytorch",
                        r.get(f"facenet_mtcnn_ms_{t}t"), r[f"mex_mtcnn_ms_{t}t"]))
    rows.append(row("alignment", "68 landmarks per face", 1, "dlib", r.get("dlib68_ms"), r["mex_dlib68_ms_1t"]))
    rows.append(row("alignment", "similarity warp to 128x128", 1, "-", None, r["mex_align_ms_1t"]))
    return rows


def stage_flow(quick):
    out = run([sys.executable, os.path.join(PEERS, "flow_opencv.py"), "--reps", "1" if quick else "3",
               "--threads", "1", "2"])
    if out is None:
        return []
    rows = []
    for line in out.splitlines():
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(c) < 8 or not c[1].isdigit():
            continue
        method, size, cv_ms, m1, m2 = c[0], c[1], float(c[3]), float(c[5]), float(c[6])
        what = f"{method} {size}x{size} (EPE OpenCV {c[2]}, mex {c[4]})"
        rows.append(row("flow", what, 1, "OpenCV", cv_ms, m1))
        rows.append(row("flow", what, 2, "OpenCV (1 thread)", cv_ms, m2))
    return rows


def stage_spot(quick):
    rows = []
    n = "128" if quick else "512"
    for t in (1, 2):
        out = run(["cargo", "run", "--release", "-q", "-p", "mex-flow", "--example", "spot_throughput", "--", n],
                  env={"RAYON_NUM_THREADS": str(t)})
        if out is None:
            continue
        # "N frames of 128x128 in S s: F frames/s on T thread(s) (E events)"
        fps = float(out.split(":")[1].split("frames/s")[0])
        rows.append(row("spotting", "128x128 frame through the streaming spotter", t, "-", None, 1e3 / fps))
    return rows


def stage_classify(quick):
    data = os.path.join(os.environ.get("MEX_TEST_DATA", ""), "ststnet-composite")
    if not os.path.isdir(data):
        log("classify: skipped: MEX_TEST_DATA not set (or no ststnet-composite in it)")
        return []
    out = run([sys.executable, os.path.join(PEERS, "classify_ststnet_torch.py"), "compare", "--data", data,
               "--reps", "3" if quick else "10"])
    if out is None:
        return []
    rows = []
    for line in out.splitlines():
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(c) < 5 or not c[1].isdigit():
            continue
        stage = "inference" if c[0].startswith("inference") else "training"
        rows.append(row(stage, f"STSTNet {c[0]}", int(c[1]), "PyTorch", float(c[2]), float(c[3])))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not figures)")
    ap.add_argument("--only", nargs="+", choices=["align", "flow", "spot", "classify"])
    a = ap.parse_args()
    stages = {"align": stage_align, "flow": stage_flow, "spot": stage_spot, "classify": stage_classify}
    rows = []
    for name, f in stages.items():
        if a.only and name not in a.only:
            continue
        rows += f(a.quick)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d', time.gmtime())}; Python {platform.python_version()}")
    print()
    print("| stage | what | threads | peer | peer ms | mex ms | peer / mex |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print("| analysis | `mex analyze` throughput | - | - | - | (filled in by hand, see performance.md) | - |")


if __name__ == "__main__":
    main()
