#!/usr/bin/env python3
"""Helpers of scripts/bench_ebsynth.sh (the EbSynth side-by-side benchmark).

    bench_ebsynth.py torgb IN.png OUT.rgb          # raw 8-bit RGB; prints "W H"
    bench_ebsynth.py topng IN.rgb W H OUT.png
    bench_ebsynth.py score OUT.png TRUTH.png [--border B]
        # prints "psnr ssim": RGB PSNR (peak 255) and SSIM (Gaussian window sigma 1.5, 11 taps,
        # edge-clamped, K1 0.01, K2 0.03, mean over pixels and RGB), the definitions of
        # rotograph's imageops::quality; with --border B, also the PSNR without a B px border
    bench_ebsynth.py warp KEY.png FLOW.flo TRUTH.png OUT.png
        # the key warped by the true motion (bilinear, key(x + flow(x))), scored: "psnr ssim"
    bench_ebsynth.py summary RESULTS.tsv
        # per engine, size and thread count: mean PSNR/SSIM over frames >= 1, mean CPU-s and
        # wall per frame, peak RSS, and the identity scores (frame 0)
"""
import sys

import cv2
import numpy as np


def read_rgb(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 * 255.0 / mse)


def ssim(a, b):
    x = np.arange(11) - 5.0
    k = np.exp(-x * x / (2 * 1.5 * 1.5))
    k /= k.sum()

    def blur(v):
        return cv2.sepFilter2D(v, cv2.CV_64F, k, k, borderType=cv2.BORDER_REPLICATE)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    total = 0.0
    for c in range(3):
        u, v = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        mu, mv = blur(u), blur(v)
        vu, vv, cov = blur(u * u) - mu * mu, blur(v * v) - mv * mv, blur(u * v) - mu * mv
        s = ((2 * mu * mv + c1) * (2 * cov + c2)) / ((mu * mu + mv * mv + c1) * (vu + vv + c2))
        total += s.mean()
    return total / 3.0


def read_flo(path):
    with open(path, "rb") as f:
        if np.fromfile(f, np.float32, 1)[0] != np.float32(202021.25):
            sys.exit(f"{path}: not a .flo file")
        w, h = np.fromfile(f, np.int32, 2)
        return np.fromfile(f, np.float32, int(w) * int(h) * 2).reshape(int(h), int(w), 2)


def summary(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    head, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(head)}
    groups = {}
    for r in rows:
        groups.setdefault((r[col["engine"]], r[col["size"]], r[col["threads"]]), []).append(r)
    print("engine     size       thr  frames  PSNR_dB  SSIM    CPU-s/fr  wall/fr  peakRSS_MB  identity_dB(whole/inner)")
    for (eng, size, thr), rs in groups.items():
        f = lambda r, k: float(r[col[k]])  # noqa: E731
        moving = [r for r in rs if int(r[col["frame"]]) > 0]
        ident = [r for r in rs if int(r[col["frame"]]) == 0]
        n = max(len(moving), 1)
        ident_s = f"{f(ident[0], 'psnr'):.2f} / {f(ident[0], 'inner_psnr'):.2f}" if ident else "-"
        print(
            f"{eng:10} {size:10} {thr:>3}  {len(moving):6}  {sum(f(r, 'psnr') for r in moving) / n:7.2f}"
            f"  {sum(f(r, 'ssim') for r in moving) / n:.4f}  {sum(f(r, 'cpu_s') for r in moving) / n:8.2f}"
            f"  {sum(f(r, 'wall_s') for r in moving) / n:7.2f}  {max(f(r, 'rss_mb') for r in rs):10.1f}  {ident_s}"
        )


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "torgb":
        img = read_rgb(args[0])
        img.tofile(args[1])
        print(img.shape[1], img.shape[0])
    elif cmd == "topng":
        w, h = int(args[1]), int(args[2])
        img = np.fromfile(args[0], np.uint8)
        if img.size != w * h * 3:
            sys.exit(f"{args[0]}: {img.size} bytes, expected {w * h * 3}")
        cv2.imwrite(args[3], cv2.cvtColor(img.reshape(h, w, 3), cv2.COLOR_RGB2BGR))
    elif cmd == "score":
        a, b = read_rgb(args[0]), read_rgb(args[1])
        if a.shape != b.shape:
            sys.exit(f"{args[0]} and {args[1]} differ in size")
        out = [psnr(a, b), ssim(a, b)]
        if len(args) > 2 and args[2] == "--border":
            m = int(args[3])
            out.append(psnr(a[m:-m, m:-m], b[m:-m, m:-m]))
        print(" ".join(f"{v:.4f}" for v in out))
    elif cmd == "warp":
        key, truth = read_rgb(args[0]), read_rgb(args[2])
        flow = read_flo(args[1])
        h, w = flow.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        warped = cv2.remap(key, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(args[3], cv2.cvtColor(warped, cv2.COLOR_RGB2BGR))
        print(f"{psnr(warped, truth):.4f} {ssim(warped, truth):.4f}")
    elif cmd == "summary":
        summary(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
