#!/usr/bin/env python3
"""The OpenCV equivalent of rotograph's `toon` preset, for benchmarking (scripts/bench_toon.sh).

Same steps and parameters as crates/rotograph/src/stylize/toon.rs at a 720-pixel short side and
strength 0.75 (the default): sRGB -> float Lab; edge-preserving smoothing; gradient-adaptive soft
luminance quantization; DoG lines with a soft tanh threshold; combine; Lab -> sRGB 8-bit.

The smoothing is where the two differ by design: rotograph uses the domain-transform recursive
filter with sigma_s = 6 px (O(1) per pixel); here it is N iterations of cv2.bilateralFilter with
d = 9 and sigmaSpace = 3, N = (6/3)^2 = 4, so that the spatial variances add up to the same
6^2 (the Winnemöller et al. 2006 recipe of iterated small bilaterals). sigmaColor is rotograph's
range sigma (20 Lab units); OpenCV's cost does not depend on it.

Usage: toon_opencv.py [--reps N] [--threads T] [--bilateral-iters N] [--save OUT.png] FRAME.png...
(--bilateral-iters 1 gives a cheaper, less smoothing variant, for reference.)
Prints one line per repetition ("rep i: X frames/s") and the median.
"""
import argparse
import statistics
import time

import cv2
import numpy as np

# rotograph's Style::Toon preset at strength 0.75, scale 1 (720p).
SIGMA_S = 8.0 * 0.75          # domain-transform spatial sigma
SIGMA_R = 20.0                # range sigma (Lab units)
BILATERAL_D = 9
BILATERAL_SIGMA_SPACE = 3.0
BILATERAL_ITERS = round((SIGMA_S / BILATERAL_SIGMA_SPACE) ** 2)  # 4
BANDS = 8.0
SHARP_FLAT, SHARP_EDGE, EDGE_GRADIENT = 2.5, 6.0, 4.0
CHROMA = 1.15
DOG_SIGMA, DOG_K, DOG_TAU, DOG_EPS, DOG_PHI = 1.5, 1.6, 1.0, 0.8, 0.4
LINE = 0.9
MIX = 1.0                     # smoothstep(0.75 / 0.75)


def gaussian(img, sigma):
    # Same kernel support as rotograph (radius ceil(3 sigma)); OpenCV's default would be 4 sigma.
    r = int(np.ceil(3.0 * sigma))
    return cv2.GaussianBlur(img, (2 * r + 1, 2 * r + 1), sigma, borderType=cv2.BORDER_REFLECT)


def toon(rgb8, iters=BILATERAL_ITERS):
    lab = cv2.cvtColor(rgb8.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)
    for _ in range(iters):
        lab = cv2.bilateralFilter(lab, BILATERAL_D, SIGMA_R, BILATERAL_SIGMA_SPACE)
    L, a, b = cv2.split(lab)

    # Gradient-adaptive soft quantization (central differences, per 720p pixel).
    gx = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=1)
    g = np.minimum(cv2.magnitude(gx, gy) * (0.5 / EDGE_GRADIENT), 1.0)
    sharp = SHARP_FLAT + g * (SHARP_EDGE - SHARP_FLAT)
    step = 100.0 / BANDS
    half = 0.5 * step
    nearest = np.round(L / step) * step
    lq = nearest + half * np.tanh(sharp / half * (L - nearest)) / np.tanh(sharp)
    lo = L + MIX * (lq - L)

    # DoG lines, soft tanh threshold.
    d = gaussian(L, DOG_SIGMA) - DOG_TAU * gaussian(L, DOG_SIGMA * DOG_K) + DOG_EPS
    e = np.where(d >= 0.0, 1.0, 1.0 + np.tanh(DOG_PHI * np.minimum(d, 0.0)))
    ink = (1.0 - MIX * LINE * (1.0 - e)).astype(np.float32)

    chroma = 1.0 + MIX * (CHROMA - 1.0)
    out = cv2.merge([lo * ink, a * (chroma * ink), b * (chroma * ink)]).astype(np.float32)
    rgb = cv2.cvtColor(out, cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frames", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bilateral-iters", type=int, default=BILATERAL_ITERS)
    ap.add_argument("--save", help="write the first frame's output here")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    frames = [cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in args.frames]
    iters = args.bilateral_iters
    out = toon(frames[0], iters)  # warm-up
    if args.save:
        cv2.imwrite(args.save, cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    fps = []
    for r in range(max(1, args.reps)):
        t = time.perf_counter()
        for f in frames:
            toon(f, iters)
        v = len(frames) / (time.perf_counter() - t)
        print(f"rep {r}: {v:.2f} frames/s", flush=True)
        fps.append(v)
    h, w = frames[0].shape[:2]
    print(f"opencv median: {statistics.median(fps):.2f} frames/s "
          f"({len(frames)} frames of {w}x{h}, {cv2.getNumThreads()} threads, "
          f"{iters} bilateral iterations, OpenCV {cv2.__version__})")


if __name__ == "__main__":
    main()
