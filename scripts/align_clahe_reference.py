#!/usr/bin/env python3
"""OpenCV references for mex-align's illumination normalisation.

Writes, for two gray test images (odd sizes that need CLAHE's border padding), the input and
OpenCV's outputs as PNG to crates/mex-align/tests/fixtures/illum/:
cv2.equalizeHist and cv2.createCLAHE(clipLimit=40, tileGridSize=(8, 8)) and (2.0, (4, 4)).

    pip install opencv-python-headless
    python3 scripts/align_clahe_reference.py
"""
import os

import cv2
import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "mex-align", "tests")
OUT = os.path.join(ROOT, "fixtures", "illum")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, crop in [("noface.png", None), ("rotated20.png", (20, 30, 221, 187))]:
        rgb = np.asarray(Image.open(os.path.join(ROOT, "data", name)).convert("RGB")).astype(np.int64)
        g = ((299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000).astype(np.uint8)
        if crop:
            x0, y0, x1, y1 = crop
            g = np.ascontiguousarray(g[y0:y1, x0:x1])
        stem = os.path.splitext(name)[0]
        cv2.imwrite(os.path.join(OUT, f"{stem}_in.png"), g)
        cv2.imwrite(os.path.join(OUT, f"{stem}_eq.png"), cv2.equalizeHist(g))
        cv2.imwrite(os.path.join(OUT, f"{stem}_clahe40_8.png"), cv2.createCLAHE(40.0, (8, 8)).apply(g))
        cv2.imwrite(os.path.join(OUT, f"{stem}_clahe2_4.png"), cv2.createCLAHE(2.0, (4, 4)).apply(g))
        print(stem, g.shape, cv2.__version__)


if __name__ == "__main__":
    main()
