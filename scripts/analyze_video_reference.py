#!/usr/bin/env python3
"""Independent references for `mex analyze` on the real test videos (MEX_TEST_DATA/videos).

For each video it writes, to tests/fixtures/video_reference.json:
  * the presentation time of every frame as ffprobe reports it (`frame=pts_time`), relative to the
    first frame, and the frame count;
  * for single_face.mp4, the eye aspect ratio (Soukupova & Cech 2016) of every frame from dlib's own
    pipeline: its HOG face detector (`get_frontal_face_detector`, one upsampling), the largest face,
    dlib's 68-point shape predictor on that box, EAR of the points 36-41 and 42-47 computed with
    numpy. Frames are decoded by the ffmpeg executable to RGB24; gray = (299 R + 587 G + 114 B + 500)
    // 1000.

    apt-get install -y ffmpeg libdlib-data
    pip install dlib-bin numpy
    python3 scripts/analyze_video_reference.py /path/to/videos [MODEL]
"""
import json
import os
import subprocess
import sys

import dlib
import numpy as np

VIDEOS = sys.argv[1]
MODEL = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "video_reference.json")


def probe_times(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "csv=p=0", path], check=True, capture_output=True, text=True).stdout
    t = [float(l.strip().rstrip(",")) for l in out.splitlines() if l.strip().rstrip(",")]
    return [round(x - t[0], 6) for x in t]


def frames(path):
    info = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", path], check=True, capture_output=True, text=True).stdout.strip().split(",")
    w, h = int(info[0]), int(info[1])
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-map", "0:v:0", "-vsync", "passthrough",
         "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"], check=True, capture_output=True).stdout
    n = len(raw) // (w * h * 3)
    return np.frombuffer(raw, np.uint8)[: n * w * h * 3].reshape(n, h, w, 3)


def ear(p):
    a = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(a / (2.0 * np.linalg.norm(p[0] - p[3])))


def main():
    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(MODEL)
    ref = {"videos": {}}
    for name in ["single_face.mp4", "face_noface.mov"]:
        path = os.path.join(VIDEOS, name)
        ref["videos"][name] = {"pts_time": probe_times(path)}
    rgb = frames(os.path.join(VIDEOS, "single_face.mp4"))
    rows = []
    for i, f in enumerate(rgb):
        f = f.astype(np.uint32)
        gray = ((299 * f[..., 0] + 587 * f[..., 1] + 114 * f[..., 2] + 500) // 1000).astype(np.uint8)
        dets = det(gray, 1)
        if len(dets) == 0:
            rows.append(None)
            continue
        r = max(dets, key=lambda d: d.width() * d.height())
        s = pred(gray, r)
        pts = np.array([[s.part(k).x, s.part(k).y] for k in range(68)], dtype=np.float64)
        el, er = ear(pts[36:42]), ear(pts[42:48])
        rows.append({"frame": i, "ear_left": round(el, 6), "ear_right": round(er, 6),
                     "ear_mean": round((el + er) / 2, 6),
                     "box": [r.left(), r.top(), r.right(), r.bottom()]})
    ref["single_face_dlib_ear"] = rows
    ref["tool"] = {"dlib": dlib.__version__, "numpy": np.__version__}
    with open(OUT, "w") as fh:
        json.dump(ref, fh, indent=1)
    print("wrote", OUT, len(rows), "frames; min EAR frame",
          int(np.argmin([r["ear_mean"] if r else 9 for r in rows])))


main()
