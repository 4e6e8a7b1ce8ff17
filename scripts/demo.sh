#!/usr/bin/env bash
# The main job on the bundled sample clip: installs ffmpeg if missing, builds rotograph and
# turns samples/bigbuckbunny-4s.mp4 into a toon-stylized video with its audio.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p rotograph-cli
mkdir -p out
target/release/rotograph roto samples/bigbuckbunny-4s.mp4 -o out/bigbuckbunny-toon.mp4 "$@"
echo "done: out/bigbuckbunny-toon.mp4 (frames in out/bigbuckbunny-toon.rotograph/)"
