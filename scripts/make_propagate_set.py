#!/usr/bin/env python3
"""Known-motion sequence for the keyframe-propagation benchmark, from one real photograph.

    scripts/make_propagate_set.py OUT [--photo skimage_astronaut.png] [--frames 10]
                                      [--size 512x512] [--seed S]

Writes OUT/frames/NNNNN.png (frame k = photo(x + G_k(x)), G_0 = 0, G_k an affine + smooth
random deformation as in make_flow_set.py) and OUT/flow/NNNNN.flo, the true backward flow from
frame k to frame 0 (= G_k): warping frame 0's stylization by it is the true-motion baseline.
Photos come from ../shared/media/photos (ROTOGRAPH_SHARED overrides). Deterministic per seed.
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_flow_set import cover, random_field, write_flo  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--photo", default="skimage_astronaut.png")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", default="512x512")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    w, h = (int(s) for s in args.size.lower().split("x"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = os.environ.get("ROTOGRAPH_SHARED", os.path.join(root, "..", "shared"))
    photo = cv2.imread(os.path.join(shared, "media", "photos", args.photo), cv2.IMREAD_COLOR)
    if photo is None:
        sys.exit(f"cannot read {args.photo} in {shared}/media/photos")
    photo = cover(photo, w, h).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    fd, gd = os.path.join(args.out, "frames"), os.path.join(args.out, "flow")
    os.makedirs(fd, exist_ok=True)
    os.makedirs(gd, exist_ok=True)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    for k in range(args.frames):
        gx, gy = (np.zeros((h, w)), np.zeros((h, w))) if k == 0 else random_field(rng, w, h)
        frame = cv2.remap(photo, (xs + gx).astype(np.float32), (ys + gy).astype(np.float32),
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cv2.imwrite(os.path.join(fd, f"{k:05d}.png"), np.clip(frame + 0.5, 0, 255).astype(np.uint8))
        write_flo(os.path.join(gd, f"{k:05d}.flo"), gx, gy)
    print(f"{args.frames} frames {w}x{h} of {args.photo} in {fd}")


if __name__ == "__main__":
    main()
