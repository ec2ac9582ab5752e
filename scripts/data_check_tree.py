#!/usr/bin/env python3
"""Writes a CASME II-sized frame tree for timing `mex data index` and `mex data check`:
255 clips x 70 frames of 170x140 gray JPEG (the cropped release's scale; noise content, no face)
under OUT/frames, and the matching coding table OUT/coding.csv. Needs Pillow.

    python3 scripts/data_check_tree.py /tmp/tree
    mex data index casme2 --coding /tmp/tree/coding.csv --frames /tmp/tree/frames --out /tmp/tree/m.json
    time mex data check /tmp/tree/m.json --quiet
"""
import os
import sys

from PIL import Image

out = sys.argv[1] if len(sys.argv) > 1 else "tree"
frame = Image.effect_noise((170, 140), 40).convert("L")
emotions = ["happiness", "disgust", "repression", "surprise", "others"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "coding.csv"), "w") as f:
    f.write("Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\n")
    for c in range(255):
        sub = c % 26 + 1
        clip = f"EP{c:03d}_01"
        d = os.path.join(out, "frames", f"sub{sub:02d}", clip)
        os.makedirs(d, exist_ok=True)
        for n in range(1, 71):
            frame.save(os.path.join(d, f"img{n}.jpg"), quality=90)
        f.write(f"{sub},{clip},,1,35,70,,4,{emotions[c % 5]}\n")
