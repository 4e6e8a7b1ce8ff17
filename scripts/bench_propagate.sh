#!/usr/bin/env bash
# Keyframe propagation, known-style benchmark (BENCHMARKS.md "Keyframe propagation"): a real
# photo (scikit-image's astronaut) under known motion (scripts/make_propagate_set.py), the toon
# stylizer as the style, key = toon(frame 0), one colour guide frame 0 -> frame k; PSNR/SSIM of
# frames 1..FRAMES-1 against toon(frame k), next to the key warped by the true motion; CPU
# seconds per frame; peak RSS (GNU time) of the engine alone (--engine-only: one frame, no
# stylizer or scoring in the process).
#
#   scripts/bench_propagate.sh [SIZES] [FRAMES]     # defaults: "512x512 1280x720" 10
#
# Per size: default settings on 1 and 2 threads (identical output: the engine is deterministic),
# the heavy settings of issue 6 (guide weight 6, patch 7, 12 search-vote and 6 PatchMatch
# iterations, extra 3x3 pass) on 1 thread, and the video mode (one key at frame 0, flow-based
# guides) on 1 thread.
# Needs: cargo, python3 with opencv-python(-headless) and numpy, /usr/bin/time,
# ../shared/media/photos (ROTOGRAPH_SHARED overrides).
set -euo pipefail
SIZES=${1:-"512x512 1280x720"}
FRAMES=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -p rotograph --example propagate_bench
bin=target/release/examples/propagate_bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timed() { /usr/bin/time -f "peak RSS %M KB, wall %e s" "$@"; }
for size in $SIZES; do
    set_dir="$work/$size"
    python3 scripts/make_propagate_set.py "$set_dir" --size "$size" --frames "$FRAMES" >/dev/null
    for threads in 1 2; do
        echo "== $size, default settings, $threads thread(s)"
        RAYON_NUM_THREADS=$threads timed "$bin" "$set_dir" --frames "$FRAMES" --identity
    done
    echo "== $size, engine alone (frame 1), default settings, 1 thread"
    RAYON_NUM_THREADS=1 timed "$bin" "$set_dir" --engine-only
    echo "== $size, heavy settings, 1 thread"
    RAYON_NUM_THREADS=1 timed "$bin" "$set_dir" --frames "$FRAMES" \
        --weight 6 --patch 7 --sv 12 --pm 6 --extra
    echo "== $size, video mode (one key at frame 0), 1 thread"
    RAYON_NUM_THREADS=1 timed "$bin" "$set_dir" --frames "$FRAMES" --video
done
