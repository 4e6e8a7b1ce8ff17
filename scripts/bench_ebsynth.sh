#!/usr/bin/env bash
# Side-by-side benchmark of `rotograph propagate` (single-image mode) and the public EbSynth
# engine's CPU backend (BENCHMARKS.md "Keyframe propagation"), in one run on the same inputs:
# the known-motion set of scripts/make_propagate_set.py (a real photo, frame k = photo under an
# affine + smooth random deformation), the toon stylizer as the style (key = toon(frame 0),
# truth of frame k = toon(frame k)), one colour guide frame 0 -> frame k, every setting at
# each engine's default. Frame 0 onto itself is the identity test (scored over the whole frame
# and without a 32 px border). Per frame and engine: CPU seconds (user + system), wall time and
# peak RSS of the process (GNU time), PSNR/SSIM against the truth (scripts/bench_ebsynth.py,
# the definitions of rotograph's imageops::quality); also the key warped by the true motion.
#
#   EBSYNTH_SRC=DIR scripts/bench_ebsynth.sh [SIZES] [FRAMES]    # "512x512 1280x720" 10
#
# EBSYNTH_SRC: a copy of https://github.com/jamriska/ebsynth (public domain; not part of this
# repository, fetch it yourself: git clone https://github.com/jamriska/ebsynth). Only
# include/ebsynth.h, src/ebsynth_cpu.h, src/ebsynth_cpu.cpp and src/jzq.h are compiled, with
# scripts/ebsynth_driver.cpp (raw RGB in and out, the engine CLI's defaults), g++ -O3 -fopenmp
# as the project's build-linux-cpu_only.sh does (its CLI, src/ebsynth.cpp, is left out: it
# needs stb_image).
#
# The copy of the engine source measured in BENCHMARKS.md has a CPU backend without the extra
# 3x3 pass (its src/ebsynth_cpu.h takes no extraPass3x3); with a newer copy the driver is built
# with it and the heavy settings add -extrapass3x3 for EbSynth too.
#
# Environment:
#   THREADS="1 2"     thread counts (OMP_NUM_THREADS for EbSynth, RAYON_NUM_THREADS for ours)
#   ENGINES="ebsynth rotograph"
#   HEAVY=1           also the heavier settings of issue 6 on 1 thread (guide weight 6, patch 7,
#                     12 search-vote and 6 PatchMatch iterations; then both with the extra
#                     3x3 pass where the EbSynth backend has it), frames 1..HEAVY_FRAMES (3)
#   RESULTS=FILE      keep the per-frame table (TSV) there
#   ROTOGRAPH_BIN, TOON_BIN, EBSYNTH_DRIVER: prebuilt binaries (skip cargo / g++)
#   ROTOGRAPH_SHARED: the shared media folder (default ../shared)
# Needs: g++ with OpenMP, cargo, python3 with opencv-python(-headless) and numpy, /usr/bin/time.
set -euo pipefail
SIZES=${1:-"512x512 1280x720"}
FRAMES=${2:-10}
THREADS=${THREADS:-"1 2"}
ENGINES=${ENGINES:-"ebsynth rotograph"}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py="python3 $root/scripts/bench_ebsynth.py"

driver=${EBSYNTH_DRIVER:-}
if [[ -z "$driver" && " $ENGINES " == *" ebsynth "* ]]; then
    src=${EBSYNTH_SRC:-}
    for f in include/ebsynth.h src/ebsynth_cpu.h src/ebsynth_cpu.cpp src/jzq.h; do
        if [[ -z "$src" || ! -f "$src/$f" ]]; then
            echo "EBSYNTH_SRC must name a copy of https://github.com/jamriska/ebsynth ($f missing)" >&2
            exit 2
        fi
    done
    driver=$root/target/bench-ebsynth/ebsynth_driver
    mkdir -p "$(dirname "$driver")"
    if [[ ! -x "$driver" || "$root/scripts/ebsynth_driver.cpp" -nt "$driver" || "$src/src/ebsynth_cpu.cpp" -nt "$driver" ]]; then
        echo "== building the EbSynth CPU engine + driver (g++ -O3 -fopenmp)"
        # jzq.h marks functions __host__ __device__ for CUDA; a host-only build defines them away.
        # Newer copies of the CPU backend take an extraPass3x3 argument; older ones do not.
        extra=()
        grep -q extraPass3x3 "$src/src/ebsynth_cpu.h" && extra=(-DEBSYNTH_CPU_EXTRA_PASS)
        g++ -O3 -fopenmp -DNDEBUG -std=c++11 -D__host__= -D__device__= "${extra[@]}" \
            -I"$src/include" -I"$src/src" "$src/src/ebsynth_cpu.cpp" scripts/ebsynth_driver.cpp \
            -o "$driver.tmp" 2> "$driver.log" || { cat "$driver.log" >&2; exit 1; }
        mv "$driver.tmp" "$driver"
    fi
fi
rbin=${ROTOGRAPH_BIN:-}
toon=${TOON_BIN:-}
if [[ -z "$rbin" || -z "$toon" ]]; then
    cargo build --release --locked -p rotograph-cli --no-default-features
    cargo build --release --locked -p rotograph --example toon_one
    rbin=${rbin:-target/release/rotograph}
    toon=${toon:-target/release/examples/toon_one}
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=${RESULTS:-$work/results.tsv}
printf 'engine\tsize\tthreads\tframe\tcpu_s\twall_s\trss_mb\tpsnr\tssim\tinner_psnr\n' > "$results"

# run ENGINE SIZE LABEL THREADS FRAME OUTDIR [engine options...]: one synthesis, timed and
# scored; LABEL names the setting in the table (the thread count, or "heavy").
run() {
    local engine=$1 size=$2 label=$3 threads=$4 k=$5 out=$6
    shift 6
    local d=$work/$size name
    name=$(printf '%05d' "$k")
    local w=${size%x*} h=${size#*x}
    mkdir -p "$out"
    case $engine in
        ebsynth)
            OMP_NUM_THREADS=$threads /usr/bin/time -f '%e %U %S %M' -o "$out/$name.time" \
                "$driver" "$w" "$h" "$d/truth/00000.rgb" "$d/frames/00000.rgb" "$d/frames/$name.rgb" \
                "$out/$name.rgb" "$@" 2> "$out/$name.log" || { cat "$out/$name.log" >&2; exit 1; }
            $py topng "$out/$name.rgb" "$w" "$h" "$out/$name.png"
            ;;
        rotograph)
            RAYON_NUM_THREADS=$threads /usr/bin/time -f '%e %U %S %M' -o "$out/$name.time" \
                "$rbin" propagate --style "$d/truth/00000.png" --guide "$d/frames/00000.png" \
                "$d/frames/$name.png" -o "$out/$name.png" "$@" > "$out/$name.log" 2>&1 \
                || { cat "$out/$name.log" >&2; exit 1; }
            ;;
    esac
    local wall user sys rss score
    read -r wall user sys rss < <(tail -n 1 "$out/$name.time")
    score=$($py score "$out/$name.png" "$d/truth/$name.png" --border 32)
    read -r p s inner <<< "$score"
    local cpu
    cpu=$(python3 -c "print(f'{$user + $sys:.2f}')")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$size" "$label" "$k" "$cpu" "$wall" \
        "$(python3 -c "print(f'{$rss / 1024:.1f}')")" "$p" "$s" "$inner" >> "$results"
    printf '%-10s %-9s %s  frame %d  %6.2f dB  SSIM %.4f  %7.2f CPU-s  %7.2f s wall  %7.1f MB\n' \
        "$engine" "$size" "$label" "$k" "$p" "$s" "$cpu" "$wall" "$(python3 -c "print($rss / 1024)")"
}

for size in $SIZES; do
    d=$work/$size
    echo "== $size: known-motion set, toon truth"
    python3 scripts/make_propagate_set.py "$d" --size "$size" --frames "$FRAMES" > /dev/null
    mkdir -p "$d/truth"
    for ((k = 0; k < FRAMES; k++)); do
        name=$(printf '%05d' "$k")
        "$toon" "$d/frames/$name.png" "$d/truth/$name.png" toon 0.75 2> /dev/null
        $py torgb "$d/frames/$name.png" "$d/frames/$name.rgb" > /dev/null
    done
    $py torgb "$d/truth/00000.png" "$d/truth/00000.rgb" > /dev/null
    warp_sum=$(for ((k = 1; k < FRAMES; k++)); do
        name=$(printf '%05d' "$k")
        $py warp "$d/truth/00000.png" "$d/flow/$name.flo" "$d/truth/$name.png" "$d/warp_$name.png"
    done | awk '{p += $1; s += $2; n++} END {printf "%.2f dB, SSIM %.4f", p / n, s / n}')
    echo "true-motion warp of the key, frames 1-$((FRAMES - 1)): mean $warp_sum"
    for threads in $THREADS; do
        for engine in $ENGINES; do
            for ((k = 0; k < FRAMES; k++)); do
                run "$engine" "$size" "$threads" "$threads" "$k" "$d/out/${engine}_t$threads"
            done
        done
    done
    if [[ "${HEAVY:-0}" == 1 ]]; then
        for ((k = 1; k <= ${HEAVY_FRAMES:-3} && k < FRAMES; k++)); do
            if [[ " $ENGINES " == *" ebsynth "* ]]; then
                run ebsynth "$size" heavy 1 "$k" "$d/out/ebsynth_heavy" \
                    -guideweight 6 -patchsize 7 -searchvoteiters 12 -patchmatchiters 6
                if "$driver" --has-extra-pass; then
                    run ebsynth "$size" heavy+3x3 1 "$k" "$d/out/ebsynth_heavy3" \
                        -guideweight 6 -patchsize 7 -searchvoteiters 12 -patchmatchiters 6 -extrapass3x3
                fi
            fi
            if [[ " $ENGINES " == *" rotograph "* ]]; then
                run rotograph "$size" heavy 1 "$k" "$d/out/rotograph_heavy" \
                    --weight 6 --patch-size 7 --search-vote-iters 12 --patchmatch-iters 6
                run rotograph "$size" heavy+3x3 1 "$k" "$d/out/rotograph_heavy3" \
                    --weight 6 --patch-size 7 --search-vote-iters 12 --patchmatch-iters 6 --extra-pass-3x3
            fi
        done
    fi
done
echo "== summary (frames >= 1; identity = frame 0 onto itself, whole frame / without a 32 px border)"
$py summary "$results"
