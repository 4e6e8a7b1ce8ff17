#!/usr/bin/env python3
"""Optical-flow test set with ground truth, from real photographs.

    scripts/make_flow_set.py OUT [--frames K] [--size 640x480] [--seed S]

Writes
  OUT/seq/NNNNN.png   a 640x480 frame sequence: for each photo of ../shared/media/photos
                      (ROTOGRAPH_SHARED overrides where shared/ is), K frames of the photo seen
                      through a known smooth motion (affine + smooth random deformation);
  OUT/gt/NNNNN.flo    Middlebury ground-truth flow from frame NNNNN to the next one, for every
                      pair within one photo (pairs across photos have none); unknown pixels
                      (whose content comes from outside the photo) hold 1e10;
  OUT/motorcycle/     the Middlebury motorcycle stereo pair that scikit-image ships
                      (skimage.data.stereo_motorcycle(), native 741x500): left.png, right.png
                      and gt.flo (u = -disparity, v = 0; unknown disparity -> 1e10), when
                      scikit-image is installed.

Frame k of a photo P is P(x + G_k(x)) (bilinear), G_0 = 0 and G_k random. The flow from frame k
to k+1 at x is y - x where y + G_{k+1}(y) = x + G_k(x), solved by fixed-point iteration (the
fields are smooth contractions, so it converges to float precision). Deterministic per seed.
"""
import argparse
import os
import sys

import cv2
import numpy as np

UNKNOWN = 1e10


def write_flo(path, u, v):
    h, w = u.shape
    with open(path + ".tmp", "wb") as f:
        np.array([202021.25], "<f4").tofile(f)
        np.array([w, h], "<i4").tofile(f)
        np.stack([u, v], axis=-1).astype("<f4").tofile(f)
    os.replace(path + ".tmp", path)


def cover(img, w, h):
    """Resize to cover w x h, then centre-crop."""
    ih, iw = img.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return img[y0:y0 + h, x0:x0 + w]


def random_field(rng, w, h):
    """Affine (rotation, scale, shear, translation) + smooth random deformation, in pixels."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ang = np.deg2rad(rng.uniform(-3, 3))
    sc = rng.uniform(0.96, 1.04)
    sh = rng.uniform(-0.02, 0.02)
    tx, ty = rng.uniform(-8, 8, size=2)
    a = np.array([[sc * np.cos(ang), -sc * np.sin(ang) + sh], [sc * np.sin(ang), sc * np.cos(ang)]])
    dx, dy = xs - cx, ys - cy
    gx = a[0, 0] * dx + a[0, 1] * dy + cx - xs + tx
    gy = a[1, 0] * dx + a[1, 1] * dy + cy - ys + ty
    for comp in (gx, gy):
        coarse = rng.normal(0, 1, size=(5, 7))
        smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        comp += smooth / (np.abs(smooth).max() + 1e-9) * rng.uniform(1.0, 3.0)
    return gx, gy


def sample(f, x, y):
    return cv2.remap(f.astype(np.float32), x.astype(np.float32), y.astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=4, help="frames per photo (default 4)")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    w, h = (int(s) for s in args.size.lower().split("x"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = os.environ.get("ROTOGRAPH_SHARED", os.path.join(root, "..", "shared"))
    photos_dir = os.path.join(shared, "media", "photos")
    names = sorted(n for n in os.listdir(photos_dir)
                   if n.endswith((".png", ".jpg")) and not n.endswith(("2.png", "_right.png")))
    if not names:
        sys.exit(f"no photos in {photos_dir}")
    rng = np.random.default_rng(args.seed)
    seq = os.path.join(args.out, "seq")
    gtd = os.path.join(args.out, "gt")
    os.makedirs(seq, exist_ok=True)
    os.makedirs(gtd, exist_ok=True)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    idx = 0
    pairs = 0
    for name in names:
        photo = cover(cv2.imread(os.path.join(photos_dir, name), cv2.IMREAD_COLOR), w, h)
        fields = [(np.zeros((h, w)), np.zeros((h, w)))]
        fields += [random_field(rng, w, h) for _ in range(args.frames - 1)]
        for k, (gx, gy) in enumerate(fields):
            mx, my = xs + gx, ys + gy
            frame = np.clip(cv2.remap(photo.astype(np.float32), mx.astype(np.float32),
                                      my.astype(np.float32), cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT) + 0.5, 0, 255)
            cv2.imwrite(os.path.join(seq, f"{idx:05d}.png"), frame.astype(np.uint8))
            if k + 1 < len(fields):
                nx, ny = fields[k + 1]
                qx, qy = xs + gx, ys + gy
                yx, yy = xs.copy(), ys.copy()
                for _ in range(60):
                    yx = qx - sample(nx, yx, yy)
                    yy = qy - sample(ny, yx, yy)
                resid = np.hypot(yx + sample(nx, yx, yy) - qx, yy + sample(ny, yx, yy) - qy)
                u, v = yx - xs, yy - ys
                bad = ((qx < 0) | (qy < 0) | (qx > w - 1) | (qy > h - 1) |
                       (yx < 0) | (yy < 0) | (yx > w - 1) | (yy > h - 1) | (resid > 0.01))
                u[bad] = UNKNOWN
                v[bad] = UNKNOWN
                write_flo(os.path.join(gtd, f"{idx:05d}.flo"), u, v)
                pairs += 1
            idx += 1
    print(f"{idx} frames, {pairs} ground-truth pairs from {len(names)} photos in {seq}")
    try:
        import skimage.data
    except ImportError:
        print("scikit-image not installed: no motorcycle stereo pair (pip install scikit-image)")
        return
    left, right, disp = skimage.data.stereo_motorcycle()
    md = os.path.join(args.out, "motorcycle")
    os.makedirs(md, exist_ok=True)
    cv2.imwrite(os.path.join(md, "left.png"), cv2.cvtColor(left, cv2.COLOR_RGB2BGR))
    cv2.imwrite(os.path.join(md, "right.png"), cv2.cvtColor(right, cv2.COLOR_RGB2BGR))
    u = -disp.astype(np.float64)
    v = np.zeros_like(u)
    bad = ~np.isfinite(u)
    u[bad] = UNKNOWN
    v[bad] = UNKNOWN
    write_flo(os.path.join(md, "gt.flo"), u, v)
    print(f"motorcycle stereo pair {left.shape[1]}x{left.shape[0]} in {md}")


if __name__ == "__main__":
    main()
