#!/usr/bin/env bash
# Optical-flow accuracy and speed: builds rotograph (release), generates the flow test set
# (scripts/make_flow_set.py) and runs scripts/bench_flow.py: rotograph flow vs OpenCV DIS
# MEDIUM/FAST and Farneback, as whole processes over the same 640x480 frames, 2 threads each.
#
#   scripts/bench_flow.sh [ROUNDS] [PRESETS] [BENCH_FLOW_ARGS...]   # defaults: 3 medium,fast
#
# CARGO_FLAGS adds cargo build flags (CARGO_FLAGS=--no-default-features builds the lean CLI,
# without candle; the flow code is the same); further arguments go to bench_flow.py (e.g.
# --also before=PATH to time another build in the same rounds).
#
# Needs: cargo, python3 with opencv-python(-headless) and numpy; scikit-image for the
# motorcycle stereo pair; ../shared/media/photos (ROTOGRAPH_SHARED overrides).
set -euo pipefail
ROUNDS=${1:-3}
PRESETS=${2:-medium,fast}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -p rotograph-cli ${CARGO_FLAGS:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/make_flow_set.py "$work/set"
python3 scripts/bench_flow.py "$work/set" --rounds "$ROUNDS" --presets "$PRESETS" "${@:3}"
