#!/usr/bin/env python3
"""How the indicators of `mex analyze` move under degradations of a real video.

Degrades MEX_TEST_DATA/videos/single_face.mp4 with FFmpeg filters (lighting, noise, blur, JPEG-like
compression, rotation, scale, frame rate), runs `mex analyze` on each version and prints a Markdown
table of the main indicators next to the clean video's.

    python3 scripts/indicators_robustness.py path/to/mex $MEX_TEST_DATA/videos/single_face.mp4
"""
import json
import os
import subprocess
import sys
import tempfile

MEX, VIDEO = sys.argv[1], sys.argv[2]
CASES = [
    ("clean", []),
    ("darker (brightness -0.25)", ["-vf", "eq=brightness=-0.25"]),
    ("noise (sigma about 10 gray levels)", ["-vf", "noise=alls=25:allf=t"]),
    ("blur (Gaussian sigma 2 px)", ["-vf", "gblur=sigma=2"]),
    ("compression (H.264 CRF 40)", ["-crf", "40"]),
    ("rotation 10 degrees", ["-vf", "rotate=10*PI/180"]),
    ("scale 0.5 (320x180)", ["-vf", "scale=320:180"]),
    ("frame rate 15 fps", ["-vf", "fps=15"]),
]
KEYS = ["blink_count", "opendbm_blink_count", "blink_amplitude_mean", "asymmetry_mouth_mean",
        "asymmetry_eyes_mean", "expressivity_score", "active_fraction"]


def main():
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, args in CASES:
            v = os.path.join(d, "v.mp4")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", VIDEO, "-an", *args, "-c:v", "libx264",
                            *([] if "-crf" in args else ["-crf", "18"]), v], check=True)
            out = os.path.join(d, "o")
            subprocess.run([MEX, "analyze", v, "--out", out, "--quiet"], check=True, capture_output=True)
            j = json.load(open(os.path.join(out, "analysis.json")))
            ind = j["indicators"]
            closure = [b["closure_frame"] for b in (j.get("indicator_details") or {}).get("blinks", [])]
            rows.append((name, j["frames_with_face"], j["n_frames"], closure, [ind.get(k) for k in KEYS]))
    print("| degradation | frames with a face | blink closures (frame) | " + " | ".join(KEYS) + " |")
    print("|---" * (3 + len(KEYS)) + "|")
    for name, f, n, closure, vals in rows:
        cells = ["-" if v is None else f"{v:.3g}" for v in vals]
        print(f"| {name} | {f}/{n} | {closure} | " + " | ".join(cells) + " |")


main()
