#!/usr/bin/env python3
"""Reference 68-point landmarks from dlib's own shape predictor for mex-align's tests.

For fixed images (from crates/mex-align/tests/data/) and fixed boxes, runs
`dlib.shape_predictor(MODEL)(gray, dlib.rectangle(l, t, r, b))` and writes the parts to
crates/mex-align/tests/fixtures/dlib_reference.json. The gray image is computed with integer
weights, gray = (299 R + 587 G + 114 B + 500) // 1000, which the Rust test reproduces exactly.

    apt-get install -y libdlib-data      # /usr/share/dlib/shape_predictor_68_face_landmarks.dat
    pip install dlib-bin
    python3 scripts/align_dlib_reference.py [MODEL]

The 5-point model (`shape_predictor_5_face_landmarks.dat`, from the PyPI sdist of
face_recognition_models 0.3.0, see .ci/run) gives crates/mex-align/tests/fixtures/dlib5_reference.json.
"""
import json
import os
import sys

import dlib
import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "mex-align", "tests")
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "MEX_DLIB_MODEL", "/usr/share/dlib/shape_predictor_68_face_landmarks.dat")

# (image, box l, t, r, b): boxes near facenet-pytorch's MTCNN boxes, plus shifted/odd ones.
CASES = [
    ("astronaut.png", (181, 62, 268, 172)),
    ("astronaut.png", (170, 70, 280, 180)),
    ("frame640x480.png", (275, 114, 338, 192)),
    ("rotated20.png", (66, 43, 112, 98)),
    ("group2.png", (376, 83, 403, 114)),
    # Box partly outside the image: features outside read 0.
    ("astronaut.png", (-20, -30, 120, 110)),
]


def gray(path):
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return ((299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000).astype(np.uint8)


def main():
    sp = dlib.shape_predictor(MODEL)
    out = {"generator": "scripts/align_dlib_reference.py", "dlib": dlib.__version__,
           "model": os.path.basename(MODEL), "gray": "(299 R + 587 G + 114 B + 500) // 1000", "cases": []}
    for name, (l, t, r, b) in CASES:
        g = gray(os.path.join(ROOT, "data", name))
        shape = sp(g, dlib.rectangle(l, t, r, b))
        parts = [[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)]
        out["cases"].append({"image": name, "rect": [l, t, r, b], "parts": parts})
        print(name, (l, t, r, b), parts[:3])
    parts = len(out["cases"][0]["parts"])
    name = "dlib_reference.json" if parts == 68 else f"dlib{parts}_reference.json"
    with open(os.path.join(ROOT, "fixtures", name), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
