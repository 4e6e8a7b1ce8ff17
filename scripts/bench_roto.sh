#!/usr/bin/env bash
# Measures (1) the overhead of `rotograph roto` beyond stylizing, against plain ffmpeg doing the
# same transcode (decode, 12 fps, H.264 CRF 25, audio) -- and against ffmpeg doing that transcode
# and also writing the PNG sequence that roto keeps for resume (its fastest compressing PNG
# setting, `-compression_level 1 -pred up`) -- and (2) peak RSS of `roto` (toon) on a
# 5-second and a 1-minute 1080p clip. Runs the peer side by side, alternating, and prints medians.
#   scripts/bench_roto.sh [REPS] [overhead|rss]   (default 5 repetitions; `overhead` or `rss`:
#   only that part; ROTO_BENCH_BIN=PATH uses that binary instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}
# ROTO_BENCH_BIN: an already built binary (e.g. a `--no-default-features` build: `roto` with
# the toon and none backends needs no Stable Diffusion); else build the default one.
if [ -n "${ROTO_BENCH_BIN:-}" ]; then
  BIN=$(realpath "$ROTO_BENCH_BIN")
else
  cargo build --release --locked -p rotograph-cli >/dev/null
  BIN=$PWD/target/release/rotograph
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
CLIP=${ROTO_BENCH_CLIP:-../shared/media/video/bigbuckbunny.mp4}
[ -f "$CLIP" ] || CLIP=samples/bigbuckbunny-4s.mp4
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }

if [ "${2:-}" != rss ]; then
ffprobe -v error -show_entries stream=codec_name,width,height,duration -of compact "$CLIP"
echo "== transcode overhead on $CLIP, $REPS reps (wall s; CPU s = user+sys of all processes)"
: >"$W/times"
t() { /usr/bin/time -f "%e %U %S" -o "$W/t1" "$@"; awk '{printf "%s %s ", $1, $2+$3}' "$W/t1" >>"$W/times"; }
for i in $(seq 1 "$REPS"); do
  t ffmpeg -nostdin -v error -y -i "$CLIP" -vf fps=12 -c:v libx264 -crf 25 -pix_fmt yuv420p \
    -c:a aac "$W/peer.mp4"
  rm -rf "$W/frames" && mkdir "$W/frames"
  t ffmpeg -nostdin -v error -y -i "$CLIP" -vf fps=12 -c:v libx264 -crf 25 -pix_fmt yuv420p \
    -c:a aac "$W/peer.mp4" -vf fps=12 -compression_level 1 -pred up "$W/frames/%05d.png"
  rm -rf "$W/roto.rotograph"
  t "$BIN" --quiet roto "$CLIP" -o "$W/roto.mp4" --backend none
  rm -rf "$W/roto.rotograph"
  t "$BIN" --quiet roto "$CLIP" -o "$W/roto.mp4" --backend none --no-keep-frames
  rm -rf "$W/roto.rotograph"
  t "$BIN" --quiet roto "$CLIP" -o "$W/roto.mp4"
  echo >>"$W/times"
done
rm -rf "$W/roto.rotograph"
"$BIN" --quiet roto "$CLIP" -o "$W/roto.mp4" --backend none
echo "kept frames: peer 2 $(du -sm "$W/frames" | cut -f1) MB, roto $(du -sm "$W/roto.rotograph" | cut -f1) MB"
python3 - "$W/times" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
m = [statistics.median(c) for c in zip(*rows)]
pw, pc, fw, fc, nw, nc, sw, sc, tw, tc = m
print("| run | wall (median) | CPU-s (median) | wall vs ffmpeg | CPU vs ffmpeg |")
print("|---|---:|---:|---:|---:|")
print(f"| ffmpeg transcode (peer) | {pw:.2f} s | {pc:.2f} | 1.00x | 1.00x |")
print(f"| ffmpeg transcode + PNG frames (peer 2) | {fw:.2f} s | {fc:.2f} | {fw/pw:.2f}x | {fc/pc:.2f}x |")
print(f"| roto --backend none | {nw:.2f} s | {nc:.2f} | {nw/pw:.2f}x | {nc/pc:.2f}x |")
print(f"| roto --backend none vs peer 2 | | | {nw/fw:.2f}x | {nc/fc:.2f}x |")
print(f"| roto --backend none --no-keep-frames | {sw:.2f} s | {sc:.2f} | {sw/pw:.2f}x | {sc/pc:.2f}x |")
print(f"| roto (toon) | {tw:.2f} s | {tc:.2f} | {tw/pw:.2f}x | {tc/pc:.2f}x |")
PY

fi
[ "${2:-}" = overhead ] && exit 0
echo "== peak RSS of roto (toon) on 1080p testsrc2 clips"
echo "| clip | frames | rotograph process peak RSS | largest process (ffmpeg/x264 included) | wall |"
echo "|---|---:|---:|---:|---:|"
for secs in 5 60; do
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$secs" \
    -f lavfi -i "sine=frequency=440:duration=$secs" -c:v libx264 -preset ultrafast -crf 23 \
    -pix_fmt yuv420p -c:a aac -shortest "$W/t$secs.mp4"
  rm -rf "$W/o$secs.rotograph"
  /usr/bin/time -f "%M %e" -o "$W/rss$secs" "$BIN" --quiet roto "$W/t$secs.mp4" -o "$W/o$secs.mp4" &
  sleep 0.2
  pid=$(pgrep -n -f "rotograph --quiet roto $W/t$secs.mp4" || true)
  hwm=0
  while [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
    sleep 0.2
  done
  wait
  read -r kb wall <"$W/rss$secs"
  n=$(ls "$W/o$secs.rotograph" | grep -c png)
  echo "| ${secs} s | $n | $((hwm / 1024)) MiB | $((kb / 1024)) MiB | ${wall} s |"
done
