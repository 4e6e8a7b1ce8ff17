#!/usr/bin/env python3
"""Flow accuracy and speed: rotograph flow vs OpenCV DIS (MEDIUM, FAST) and Farneback, in one run.

    scripts/bench_flow.py SET [--rounds N] [--bin PATH] [--presets medium,fast]
                          [--also LABEL=PATH ...] [--no-opencv] [--extra "FLAGS"]

SET comes from scripts/make_flow_set.py. Every method runs as a whole process over SET/seq (a
folder of 640x480 frames; flow between each consecutive pair, .flo files written), in ROUNDS
alternating rounds; time per pair = wall time / pairs, CPU-seconds from getrusage of the child.
Mean endpoint error (EPE) over the pairs with ground truth (SET/gt), unknown pixels skipped, and
on the motorcycle stereo pair (SET/motorcycle). Both sides use THREADS (default 2) threads:
RAYON_NUM_THREADS for rotograph, cv2.setNumThreads for OpenCV. Prints medians and ratios to
DIS MEDIUM, as a Markdown table. `--also LABEL=PATH` adds the presets of another rotograph
binary (e.g. one built from an earlier commit) to the same alternating rounds, for before/after
comparisons under the same load.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_flo(path):
    with open(path, "rb") as f:
        magic = np.fromfile(f, "<f4", 1)[0]
        assert magic == np.float32(202021.25), path
        w, h = np.fromfile(f, "<i4", 2)
        data = np.fromfile(f, "<f4", 2 * w * h).reshape(h, w, 2)
    return data


def epe(est, gt):
    ok = (np.abs(gt[..., 0]) < 1e9) & (np.abs(gt[..., 1]) < 1e9) & np.isfinite(gt).all(-1)
    d = np.hypot(est[..., 0] - gt[..., 0], est[..., 1] - gt[..., 1])
    return float(d[ok].mean())


def run(cmd, env):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default=None, help="rotograph binary (default target/release/rotograph)")
    ap.add_argument("--presets", default="medium,fast", help="rotograph presets to run")
    ap.add_argument("--no-opencv", action="store_true")
    ap.add_argument("--extra", default="", help="extra flags for rotograph flow")
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=PATH",
                    help="another rotograph binary to run the presets with (repeatable)")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.bin or os.path.join(root, "target", "release", "rotograph")
    threads = os.environ.get("THREADS", "2")
    env = dict(os.environ, RAYON_NUM_THREADS=threads, THREADS=threads)
    seq = os.path.join(args.set, "seq")
    gt_dir = os.path.join(args.set, "gt")
    moto = os.path.join(args.set, "motorcycle")
    frames = sorted(os.listdir(seq))
    pairs = len(frames) - 1
    ocv = os.path.join(root, "scripts", "flow_opencv.py")
    methods = {}
    bins = [("rotograph", binary)] + [tuple(a.split("=", 1)) for a in args.also]
    for label, path in bins:
        for p in args.presets.split(","):
            if p:
                methods[f"{label} {p}"] = lambda src, out, p=p, path=path: [
                    path, "--quiet", "flow", src, "-o", out, "--preset", p] + args.extra.split()
    if not args.no_opencv:
        for m in ("dis-medium", "dis-fast", "farneback"):
            methods[f"OpenCV {m}"] = lambda src, out, m=m: [sys.executable, ocv, m, src, out]
    work = tempfile.mkdtemp()
    times = {k: [] for k in methods}
    cpus = {k: [] for k in methods}
    try:
        for _ in range(args.rounds):
            for name, cmd in methods.items():
                out = os.path.join(work, name.replace(" ", "_"))
                shutil.rmtree(out, ignore_errors=True)
                wall, cpu = run(cmd(seq, out), env)
                times[name].append(wall / pairs)
                cpus[name].append(cpu / pairs)
        rows = []
        for name, cmd in methods.items():
            out = os.path.join(work, name.replace(" ", "_"))
            errs = [epe(read_flo(os.path.join(out, g)), read_flo(os.path.join(gt_dir, g)))
                    for g in sorted(os.listdir(gt_dir))]
            moto_epe = float("nan")
            if os.path.isdir(moto):
                mdir = os.path.join(work, "moto_" + name.replace(" ", "_"))
                src = os.path.join(work, "moto_src")
                if not os.path.isdir(src):
                    os.makedirs(src)
                    shutil.copy(os.path.join(moto, "left.png"), os.path.join(src, "a.png"))
                    shutil.copy(os.path.join(moto, "right.png"), os.path.join(src, "b.png"))
                subprocess.run(cmd(src, mdir), check=True, env=env, stdout=subprocess.DEVNULL)
                moto_epe = epe(read_flo(os.path.join(mdir, "a.flo")), read_flo(os.path.join(moto, "gt.flo")))
            rows.append((name, float(np.mean(errs)), moto_epe, statistics.median(times[name]),
                         statistics.median(cpus[name])))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ref = next((r for r in rows if r[0] == "OpenCV dis-medium"), rows[0])
    print(f"{pairs} pairs ({len(os.listdir(gt_dir))} with ground truth), {args.rounds} rounds, "
          f"{threads} threads; medians")
    print("| method | mean EPE, warped photos (px) | EPE ratio | EPE motorcycle (px) | "
          "ms per pair (wall) | time ratio | CPU-ms per pair |")
    print("|---|---|---|---|---|---|---|")
    for name, e, m, t, c in rows:
        print(f"| {name} | {e:.3f} | {e / ref[1]:.2f} | {m:.2f} | {t * 1000:.1f} | "
              f"{t / ref[3]:.2f} | {c * 1000:.1f} |")


if __name__ == "__main__":
    main()
