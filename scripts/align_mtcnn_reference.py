#!/usr/bin/env python3
"""Reference MTCNN detections from facenet-pytorch 2.6.0 for mex-align's tests.

Builds a few test images from astronaut.png (the original, a 640x480 frame, an in-plane rotation,
a two-face composite, a face-free crop), writes them as PNG to crates/mex-align/tests/data/ (so the
Rust test reads exactly the same pixels) and writes facenet-pytorch's `MTCNN().detect(img,
landmarks=True)` output (default parameters: min_face_size 20, thresholds [0.6, 0.7, 0.7], factor
0.709, select_largest=True) to crates/mex-align/tests/fixtures/mtcnn_reference.json.

    pip install torch torchvision && pip install --no-deps facenet-pytorch==2.6.0
    python3 scripts/align_mtcnn_reference.py
"""
import json
import os

import numpy as np
import torch
from PIL import Image
import facenet_pytorch
from facenet_pytorch import MTCNN

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "mex-align", "tests")
DATA = os.path.join(ROOT, "data")
FIX = os.path.join(ROOT, "fixtures")


def make_images():
    src = Image.open(os.path.join(DATA, "astronaut.png")).convert("RGB")
    imgs = {"astronaut.png": src}
    # A 640x480 frame: the portrait at 360x360 on a mid-gray canvas.
    frame = Image.new("RGB", (640, 480), (118, 118, 118))
    frame.paste(src.resize((360, 360), Image.BILINEAR), (150, 70))
    imgs["frame640x480.png"] = frame
    # In-plane rotation by 20 degrees (counter-clockwise on screen) of a 256x256 version.
    small = src.resize((256, 256), Image.BILINEAR)
    imgs["rotated20.png"] = small.rotate(20, resample=Image.BILINEAR, fillcolor=(0, 0, 0))
    # Two faces: the portrait at two sizes, the second mirrored.
    group = Image.new("RGB", (480, 240), (40, 60, 80))
    group.paste(src.resize((220, 220), Image.BILINEAR), (10, 10))
    group.paste(src.resize((160, 160), Image.BILINEAR).transpose(Image.FLIP_LEFT_RIGHT), (300, 60))
    imgs["group2.png"] = group
    # No face: the lower-right part (suit, flag).
    imgs["noface.png"] = src.crop((352, 352, 512, 472)).convert("RGB")
    return imgs


def main():
    torch.set_num_threads(1)
    mtcnn = MTCNN(device="cpu")  # keep_all only matters for forward(); detect() returns all faces
    out = {
        "generator": "scripts/align_mtcnn_reference.py",
        "facenet_pytorch": facenet_pytorch.__version__ if hasattr(facenet_pytorch, "__version__") else "2.6.0",
        "torch": torch.__version__,
        "images": {},
    }
    for name, img in make_images().items():
        if name != "astronaut.png":
            img.save(os.path.join(DATA, name), optimize=True)
        boxes, probs, points = mtcnn.detect(img, landmarks=True)
        faces = []
        if boxes is not None:
            for b, p, lm in zip(boxes, probs, points):
                faces.append({
                    "bbox": [float(v) for v in b],
                    "score": float(p),
                    "landmarks": [[float(x), float(y)] for x, y in lm],
                })
        out["images"][name] = {"width": img.width, "height": img.height, "faces": faces}
        print(name, img.size, len(faces), [f["bbox"] for f in faces])
    os.makedirs(FIX, exist_ok=True)
    with open(os.path.join(FIX, "mtcnn_reference.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
