#!/usr/bin/env bash
# Frame interpolation quality and speed: builds rotograph (release, without the sd backend) and
# runs scripts/bench_interp.py on bikes.mp4 and bigbuckbunny.mp4 from ../shared/media: drop
# every other frame, rebuild with rotograph interpolate, ffmpeg minterpolate (mci) and ffmpeg
# framerate, PSNR/SSIM against the dropped frames and time per output frame, 2 threads each.
#
#   scripts/bench_interp.sh [FRAMES] [PRESETS]      # defaults: 101 fast,medium
#
# Needs: cargo, ffmpeg, python3 with numpy and scikit-image (ROTOGRAPH_SHARED overrides where
# shared/ is).
set -euo pipefail
FRAMES=${1:-101}
PRESETS=${2:-fast,medium}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shared=${ROTOGRAPH_SHARED:-$root/../shared}
cargo build --release --locked -p rotograph-cli --no-default-features
python3 scripts/bench_interp.py "$shared/media/video/bikes.mp4" \
    "$shared/media/video/bigbuckbunny.mp4" --frames "$FRAMES" --presets "$PRESETS"
