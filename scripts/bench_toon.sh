#!/usr/bin/env bash
# Benchmarks rotograph's toon stylizer against its OpenCV equivalent (scripts/toon_opencv.py) on
# the same 1280x720 frames, in one invocation, and prints medians (frames/s) and the ratio.
#
#   scripts/bench_toon.sh [FRAMES] [ROUNDS] [REPS]
#
# FRAMES (default 10) frames of ../shared/media/video/bigbuckbunny.mp4 (ROTOGRAPH_SHARED
# overrides where shared/ is; falls back to samples/bigbuckbunny-4s.mp4 upscaled to 1280x720).
# ROUNDS (default 3) alternating rounds of REPS (default 5) repetitions each; every repetition
# processes all frames. Both sides use 2 threads (RAYON_NUM_THREADS / cv2.setNumThreads).
# Needs: cargo, ffmpeg, python3 with opencv-python(-headless) and numpy.
set -euo pipefail

FRAMES=${1:-10}
ROUNDS=${2:-3}
REPS=${3:-5}
THREADS=${THREADS:-2}

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${ROTOGRAPH_SHARED:-$root/../shared}
clip=$shared/media/video/bigbuckbunny.mp4
if [[ ! -f $clip ]]; then
    echo "note: $clip not found, using the bundled sample clip upscaled to 1280x720" >&2
    clip=$root/samples/bigbuckbunny-4s.mp4
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ffmpeg -hide_banner -loglevel error -i "$clip" \
    -vf "trim=start_frame=25,setpts=PTS-STARTPTS,scale=1280:720" -frames:v "$FRAMES" "$work/f%03d.png"
frames=("$work"/f*.png)

(cd "$root" && cargo build --release -q -p rotograph --example toon_bench)
bench=$root/target/release/examples/toon_bench

export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

: > "$work/toon.txt"
: > "$work/opencv.txt"
: > "$work/opencv1.txt"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    "$bench" --reps "$REPS" "${frames[@]}" | grep '^rep' >> "$work/toon.txt"
    python3 "$root/scripts/toon_opencv.py" --threads "$THREADS" --reps "$REPS" "${frames[@]}" \
        | grep '^rep' >> "$work/opencv.txt"
    python3 "$root/scripts/toon_opencv.py" --threads "$THREADS" --reps "$REPS" \
        --bilateral-iters 1 "${frames[@]}" | grep '^rep' >> "$work/opencv1.txt"
done

python3 - "$work/toon.txt" "$work/opencv.txt" "$work/opencv1.txt" "${#frames[@]}" "$THREADS" <<'PY'
import statistics, sys, platform, os
def load(p):
    return [float(l.split(":")[1].split()[0]) for l in open(p) if l.startswith("rep")]
toon, cv, cv1 = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
mt, mc, m1 = statistics.median(toon), statistics.median(cv), statistics.median(cv1)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {cpu}, {os.cpu_count()} cores, {sys.argv[5]} threads each")
print(f"frames: {sys.argv[4]} x 1280x720, {len(toon)} repetitions each (medians; min..max)")
print(f"toon                      : {mt:7.2f} frames/s  ({min(toon):.2f}..{max(toon):.2f})")
print(f"opencv (4 bilateral, equal): {mc:7.2f} frames/s  ({min(cv):.2f}..{max(cv):.2f})")
print(f"opencv (1 bilateral, less) : {m1:7.2f} frames/s  ({min(cv1):.2f}..{max(cv1):.2f})")
print(f"ratio toon/opencv: {mt / mc:.2f}x (vs the 1-bilateral variant: {mt / m1:.2f}x)")
print()
print("| pipeline | frames/s (median) | toon ratio |")
print("|---|---:|---:|")
print(f"| toon (domain transform, σs 6) | {mt:.1f} | 1.00x |")
print(f"| OpenCV, 4 × bilateral d=9 σ 3 (equal smoothing) | {mc:.1f} | {mt / mc:.2f}x |")
print(f"| OpenCV, 1 × bilateral d=9 σ 3 (less smoothing) | {m1:.1f} | {mt / m1:.2f}x |")
PY
