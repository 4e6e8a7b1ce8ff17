#!/usr/bin/env bash
# Side-by-side SD benchmark: candle (rotograph-sd, example bench_sd) vs PyTorch + diffusers
# (scripts/bench_sd.py) on the same diffusers folder, run alternately, one process per
# measurement, peak RSS from /usr/bin/time. Prints a markdown table of medians and ratios and
# keeps the raw JSON lines in $OUT_DIR/results.jsonl.
#
#   python3 scripts/bench_sd.py make-weights /tmp/sd15-full        # once, ~4.1 GB
#   scripts/bench_sd.sh /tmp/sd15-full
#
# Knobs (environment): THREADS (1), REPS (3, for unet/vae-enc/vae-dec), FRAME_REPS (1, for
# img2img), OPS ("unet vae-enc vae-dec img2img"), SIZE (512), STEPS (20), DENOISE (0.5),
# SAMPLER (euler | euler_a), CFG (7; 1 = one batch-1 UNet pass, no uncond), VAE (full | taesd),
# OUT_DIR.
# SD-Turbo (weights: `bench_sd.py make-weights /tmp/sd-turbo-full --arch sd-turbo`):
#   OPS=img2img STEPS=1 DENOISE=1 CFG=1 SAMPLER=euler_a FRAME_REPS=3 scripts/bench_sd.sh /tmp/sd-turbo-full
#   OPS=img2img STEPS=2 DENOISE=1 CFG=1 SAMPLER=euler_a VAE=taesd scripts/bench_sd.sh /tmp/sd-turbo-full
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for the measured processes.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${1:?usage: scripts/bench_sd.sh MODEL_DIR}
THREADS=${THREADS:-1}
REPS=${REPS:-3}
FRAME_REPS=${FRAME_REPS:-1}
OPS=${OPS:-"unet vae-enc vae-dec img2img"}
SIZE=${SIZE:-512}
STEPS=${STEPS:-20}
DENOISE=${DENOISE:-0.5}
SAMPLER=${SAMPLER:-euler}
CFG=${CFG:-7}
VAE=${VAE:-full}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/bench_sd.XXXXXX)}
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/results.jsonl"

case "$SAMPLER" in
  euler) RS_SAMPLER="Euler" ;;
  euler_a) RS_SAMPLER="Euler a" ;;
  *) echo "SAMPLER must be euler or euler_a" >&2; exit 2 ;;
esac

cargo build --release --locked -p rotograph-sd --example bench_sd >&2
RUST_BIN=target/release/examples/bench_sd
COMMON=(--op OP --size "$SIZE" --steps "$STEPS" --denoise "$DENOISE" --cfg "$CFG" --vae "$VAE")

# measure IMPL OP: runs one measurement and appends its JSON line (with rss_kb) to $RESULTS.
measure() {
  local impl=$1 op=$2 args=("${COMMON[@]}")
  args[1]=$op
  local log="$OUT_DIR/$impl.$op.log" tm="$OUT_DIR/time.txt"
  if [ "$impl" = pytorch ]; then
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$THREADS" \
      /usr/bin/time -f '%M %U %S' -o "$tm" \
      python3 scripts/bench_sd.py run "$MODEL" "${args[@]}" --threads "$THREADS" \
      --sampler "$SAMPLER" >"$log" 2>"$log.err"
  else
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE RAYON_NUM_THREADS="$THREADS" \
      /usr/bin/time -f '%M %U %S' -o "$tm" \
      "$RUST_BIN" "$MODEL" "${args[@]}" --sampler "$RS_SAMPLER" >"$log" 2>"$log.err"
  fi
  python3 - "$log" "$tm" >>"$RESULTS" <<'EOF'
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
rss, user, sys_ = open(sys.argv[2]).read().split()[-3:]
d = json.loads(line)
d["rss_kb"] = int(rss)
d["process_cpu_s"] = round(float(user) + float(sys_), 2)
print(json.dumps(d))
EOF
  tail -n1 "$RESULTS" >&2
}

echo "# $(date -u +%FT%TZ) model=$MODEL threads=$THREADS size=$SIZE steps=$STEPS denoise=$DENOISE sampler=$SAMPLER cfg=$CFG vae=$VAE load=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
for op in $OPS; do
  n=$REPS
  [ "$op" = img2img ] && n=$FRAME_REPS
  for ((r = 0; r < n; r++)); do
    # Alternate which side goes first so drift in machine load hits both alike.
    if ((r % 2 == 0)); then order="pytorch candle"; else order="candle pytorch"; fi
    for impl in $order; do measure "$impl" "$op"; done
  done
done

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| op | threads | candle wall s | PyTorch wall s | wall ratio | candle CPU s | PyTorch CPU s | CPU ratio | candle peak RSS MB | PyTorch peak RSS MB | reps |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for op in dict.fromkeys(r["op"] for r in rows):
    med = {}
    for impl in ("candle", "pytorch"):
        rs = [r for r in rows if r["op"] == op and r["impl"] == impl]
        med[impl] = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "rss_kb")}
        med[impl]["n"] = len(rs)
        med[impl]["threads"] = rs[0]["threads"]
    c, p = med["candle"], med["pytorch"]
    print(f"| {op} | {p['threads']} | {c['wall_s']:.2f} | {p['wall_s']:.2f} | {c['wall_s'] / p['wall_s']:.2f}x "
          f"| {c['cpu_s']:.2f} | {p['cpu_s']:.2f} | {c['cpu_s'] / p['cpu_s']:.2f}x "
          f"| {c['rss_kb'] / 1024:.0f} | {p['rss_kb'] / 1024:.0f} | {c['n']}/{p['n']} |")
EOF
echo "raw results: $RESULTS" >&2
