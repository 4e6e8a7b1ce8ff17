#!/usr/bin/env bash
# Deflicker acceptance benchmark: for each clip, takes FRAMES frames at 640 px wide, stylizes
# them with toon, makes a seeded flickering copy (per-frame colour offset ±24, per-pixel noise
# ±12) and compares rotograph's deflicker with a plain flow-guided blend (0.3) and ffmpeg's
# `deflicker` and `tmix` filters: E_warp (temporal::consistency) and PSNR to the un-jittered
# stylization, time per frame. One run of examples/bench_deflicker.rs per clip.
#
#   scripts/bench_deflicker.sh [FRAMES] [CLIP...]   # defaults: 36 bikes.mp4 bigbuckbunny.mp4
#
# Needs: cargo, ffmpeg; ../shared/media/video (ROTOGRAPH_SHARED overrides).
set -euo pipefail
FRAMES=${1:-36}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${ROTOGRAPH_SHARED:-$root/../shared}
clips=("$@")
if [ ${#clips[@]} -eq 0 ]; then
    clips=("$shared/media/video/bikes.mp4" "$shared/media/video/bigbuckbunny.mp4")
fi
cd "$root"
cargo build --release --locked -p rotograph --example bench_deflicker
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for clip in "${clips[@]}"; do
    name=$(basename "$clip")
    mkdir -p "$work/$name/src"
    ffmpeg -hide_banner -loglevel error -y -i "$clip" -vf "scale=640:-2" -frames:v "$FRAMES" \
        "$work/$name/src/%05d.png"
    echo "## $name"
    RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} \
        target/release/examples/bench_deflicker "$work/$name/src" "$work/$name/work"
done
