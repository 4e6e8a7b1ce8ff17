#!/usr/bin/env python3
"""Frame interpolation quality and speed: rotograph interpolate vs ffmpeg minterpolate (mci) and
ffmpeg framerate, in one run.

    scripts/bench_interp.py CLIP... [--frames N] [--width W] [--presets fast,medium] [--bin PATH]

For each clip: the first N frames are decoded at width W (height scaled, even) into PNGs; every
other frame is dropped (frames 1, 3, 5, ... are kept, numbered from 1), and each method rebuilds
the full rate from the kept frames, as a whole process reading PNGs and writing PNGs:

- rotograph interpolate KEPT -o OUT --factor 2 --preset P
- ffmpeg -framerate R/2 -i KEPT/%05d.png -vf minterpolate=fps=R:mi_mode=mci OUT/%05d.png
- ffmpeg -framerate R/2 -i KEPT/%05d.png -vf framerate=fps=R OUT/%05d.png

Output frame 2k (1-based) is compared with the dropped source frame 2k (all but the last, which
minterpolate does not write): PSNR (RGB, 8-bit) and
SSIM (scikit-image, RGB), averaged over the dropped frames. Time per output frame = wall time of
the process / frames it wrote (and CPU time of the process / frames, which the load of a shared
machine affects less). RAYON_NUM_THREADS=THREADS (default 2) for rotograph; ffmpeg runs
with -threads THREADS. Prints a Markdown table.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from skimage.io import imread
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def frames_of(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".png"))


def timed(cmd, env=None):
    """(wall seconds, CPU seconds of the child)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def score(full, out, n_full):
    """Mean PSNR/SSIM of the rebuilt dropped frames (1-based even numbers) against the source;
    the last dropped frame is left out (minterpolate stops short of it)."""
    psnrs, ssims = [], []
    for k in range(2, n_full - 2, 2):
        name = f"{k:05d}.png"
        ref = imread(os.path.join(full, name))[..., :3]
        path = os.path.join(out, name)
        if not os.path.exists(path):
            raise SystemExit(f"{out}: missing {name}")
        got = imread(path)[..., :3]
        psnrs.append(peak_signal_noise_ratio(ref, got, data_range=255))
        ssims.append(structural_similarity(ref, got, channel_axis=2, data_range=255))
    return float(np.mean(psnrs)), float(np.mean(ssims)), len(psnrs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--frames", type=int, default=101, help="source frames per clip (odd)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--presets", default="fast,medium")
    ap.add_argument("--bin", default=None, help="rotograph binary (default target/release/rotograph)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.bin or os.path.join(root, "target", "release", "rotograph")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    th = str(args.threads)
    work = tempfile.mkdtemp(prefix="bench_interp_")
    rows = []
    try:
        for clip in args.clips:
            name = os.path.splitext(os.path.basename(clip))[0]
            full = os.path.join(work, name, "full")
            kept = os.path.join(work, name, "kept")
            os.makedirs(full)
            os.makedirs(kept)
            rate = subprocess.run(
                ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                 "stream=r_frame_rate", "-of", "csv=p=0", clip],
                check=True, capture_output=True, text=True).stdout.strip()
            num, den = (rate.split("/") + ["1"])[:2]
            fps = float(num) / float(den)
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", clip, "-vf", f"scale={args.width}:-2",
                 "-frames:v", str(args.frames), "-start_number", "1",
                 os.path.join(full, "%05d.png")], check=True)
            n_full = len(frames_of(full))
            if n_full % 2 == 0:
                os.remove(os.path.join(full, f"{n_full:05d}.png"))
                n_full -= 1
            for i, k in enumerate(range(1, n_full + 1, 2)):
                shutil.copy(os.path.join(full, f"{k:05d}.png"), os.path.join(kept, f"{i + 1:05d}.png"))
            h, w = imread(os.path.join(full, "00001.png")).shape[:2]
            half = f"{fps / 2:.6g}"
            methods = [(f"rotograph interpolate --preset {p}",
                        lambda out, p=p: timed([binary, "--quiet", "interpolate", kept, "-o", out,
                                                "--factor", "2", "--preset", p], env))
                       for p in args.presets.split(",") if p]
            for label, vf in [("ffmpeg minterpolate mci", f"minterpolate=fps={fps:.6g}:mi_mode=mci"),
                              ("ffmpeg framerate", f"framerate=fps={fps:.6g}")]:
                methods.append((label, lambda out, vf=vf: timed(
                    ["ffmpeg", "-v", "error", "-y", "-threads", th, "-framerate", half, "-i",
                     os.path.join(kept, "%05d.png"), "-vf", vf, "-threads", th, "-start_number", "1",
                     os.path.join(out, "%05d.png")])))
            for i, (label, fn) in enumerate(methods):
                out = os.path.join(work, name, f"out{i}")
                os.makedirs(out)
                wall, cpu = fn(out)
                written = max(len(frames_of(out)), 1)
                p, s, n = score(full, out, n_full)
                rows.append((f"{name} {w}x{h}", label, p, s, n, 1000 * wall / written,
                             1000 * cpu / written, written))
                print(f"{name}: {label}: {p:.2f} dB, SSIM {s:.4f}, {1000 * wall / written:.1f} ms/frame, "
                      f"{1000 * cpu / written:.1f} CPU-ms/frame", file=sys.stderr)
                shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| clip | method | PSNR dB | SSIM | dropped frames scored | ms per output frame (wall) "
          "| CPU-ms per output frame | frames written |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for clip, label, p, s, n, ms, cpu, written in rows:
        print(f"| {clip} | {label} | {p:.2f} | {s:.4f} | {n} | {ms:.0f} | {cpu:.0f} | {written} |")


if __name__ == "__main__":
    main()
