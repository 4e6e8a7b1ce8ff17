#!/usr/bin/env bash
# Measures (1) the overhead of `rotograph roto` beyond stylizing, against plain ffmpeg doing the
# same transcode (decode, 12 fps, H.264 CRF 25, audio), and (2) peak RSS of `roto` (toon) on a
# 5-second and a 1-minute 1080p clip. Runs the peer side by side, alternating, and prints medians.
#   scripts/bench_roto.sh [REPS]        (default 5 repetitions)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}
cargo build --release --locked -p rotograph-cli >/dev/null
BIN=$PWD/target/release/rotograph
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
CLIP=${ROTO_BENCH_CLIP:-../shared/media/video/bigbuckbunny.mp4}
[ -f "$CLIP" ] || CLIP=samples/bigbuckbunny-4s.mp4
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }

ffprobe -v error -show_entries stream=codec_name,width,height,duration -of compact "$CLIP"
echo "== transcode overhead on $CLIP, $REPS reps (seconds, wall)"
: >"$W/times"
for i in $(seq 1 "$REPS"); do
  t0=$(date +%s.%N)
  ffmpeg -nostdin -v error -y -i "$CLIP" -vf fps=12 -c:v libx264 -crf 25 -pix_fmt yuv420p \
    -c:a aac "$W/peer.mp4"
  t1=$(date +%s.%N)
  rm -rf "$W/roto.rotograph"
  "$BIN" --quiet roto "$CLIP" -o "$W/roto.mp4" --backend none
  t2=$(date +%s.%N)
  rm -rf "$W/roto.rotograph"
  "$BIN" --quiet roto "$CLIP" -o "$W/roto.mp4"
  t3=$(date +%s.%N)
  echo "$t0 $t1 $t2 $t3" | awk '{print $2-$1, $3-$2, $4-$3}' >>"$W/times"
done
python3 - "$W/times" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
peer, none, toon = (statistics.median(c) for c in zip(*rows))
print(f"| ffmpeg transcode | roto --backend none | overhead | roto (toon) |")
print(f"|---|---|---|---|")
print(f"| {peer:.2f} s | {none:.2f} s | {100*(none/peer-1):+.0f}% | {toon:.2f} s |")
PY

echo "== peak RSS of roto (toon) on 1080p testsrc2 clips"
for secs in 5 60; do
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$secs" \
    -f lavfi -i "sine=frequency=440:duration=$secs" -c:v libx264 -preset ultrafast -crf 23 \
    -pix_fmt yuv420p -c:a aac -shortest "$W/t$secs.mp4"
  rm -rf "$W/o$secs.rotograph"
  /usr/bin/time -f "%M %e" -o "$W/rss$secs" "$BIN" --quiet roto "$W/t$secs.mp4" -o "$W/o$secs.mp4"
  read -r kb wall <"$W/rss$secs"
  echo "| ${secs} s | $((kb / 1024)) MiB | ${wall} s |"
done
