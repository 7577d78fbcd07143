#!/usr/bin/env bash
# Data-parallel pretraining on this machine, side by side in one run: one process using every
# core, then N ranks under mpirun with one core each, on the same patches, global batch and
# steps (tiny at 224 px, batch 64, mask 0.75, the SD-MAE loss). Prints images/s (median over
# the steps after the first two), the time each step waits in collectives, and the scaling
# efficiency; then a communication model for clusters from the measured step times and the
# parameter counts of tiny and small (Tests/Benchmarks/mpi_model.py).
#
#   Tests/Benchmarks/mpi_scaling.sh [PATCHES] [RANKS]
#
# PATCHES defaults to ../shared/data/labelled-lc25000 (2,000 pictures: 31 steps of 64). Release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
patches=${1:-../shared/data/labelled-lc25000}
ranks=${2:-$(nproc)}
wsi=$PWD/.build/release/wsi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
swift build -c release >/dev/null
common=(pretrain --patches "$patches" --preset tiny --batch 64 --mask-ratio 0.75 --p 0.2 --epochs 1 --checkpoint-every 100000 --quiet)

summarise() {  # metrics.csv → "img/s sync_ms" medians over steps 3..
    python3 - "$1" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))[2:]
print(statistics.median(float(r["img_per_s"]) for r in rows), statistics.median(float(r["sync_ms"]) for r in rows), len(rows))
EOF
}

"$wsi" "${common[@]}" --out "$out/one" >/dev/null 2>&1
read -r one_rate one_sync one_steps < <(summarise "$out/one/pretrain/metrics.csv")
mpirun --allow-run-as-root --bind-to core -np "$ranks" "$wsi" "${common[@]}" --out "$out/many" >/dev/null 2>&1
read -r many_rate many_sync many_steps < <(summarise "$out/many/pretrain/metrics.csv")

printf '1 rank x %d threads: %.1f img/s (median of %d steps)\n' "$(nproc)" "$one_rate" "$one_steps"
printf '%d ranks x 1 thread: %.1f img/s, %.1f ms per step in collectives (median of %d steps)\n' "$ranks" "$many_rate" "$many_sync" "$many_steps"
python3 -c "print('scaling efficiency (%d ranks / one process): %.1f %%' % ($ranks, 100 * $many_rate / $one_rate))"

small=$("$wsi" bench train --preset small --batch 64 --steps 3)
tiny=$("$wsi" bench train --preset tiny --batch 64 --steps 3)
echo "$tiny"
echo "$small"
python3 Tests/Benchmarks/mpi_model.py --measured-ms "$many_sync" --ranks "$ranks" \
    --tiny "$(sed -E 's/.*median ([0-9.]+) img.*; ([0-9]+) parameters/\1 \2/' <<<"$tiny")" \
    --small "$(sed -E 's/.*median ([0-9.]+) img.*; ([0-9]+) parameters/\1 \2/' <<<"$small")"
