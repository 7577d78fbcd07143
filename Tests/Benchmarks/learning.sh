#!/usr/bin/env bash
# Does pretraining learn tissue? Pretrains each recipe for the same number of steps on unlabelled
# patches (the shared slides' tiles plus the LC25000 and Kather 2016 pictures, labels ignored),
# then evaluates every recipe's features with grouped cross-validation on the labelled sets, next
# to a randomly initialised network and a colour histogram (printed by 'wsi evaluate').
#
#   Tests/Benchmarks/learning.sh OUT [EPOCHS] [RECIPE...]
#
# A recipe is a name and 'wsi pretrain' options, e.g.  "mae:--p 0"  "sdmae:"  "lr3e-3:--lr 3e-3".
# Default recipes: sdmae (the default options) and mae (--p 0). Release build; ../shared/data beside
# the repository. Kather 2016 is grouped by source image; LC25000 has no source ids and holds
# augmented near-duplicates, so its figures are inflated for every feature set alike (SOURCE.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: learning.sh OUT [EPOCHS] [RECIPE...]}
epochs=${2:-10}
shift $(( $# >= 2 ? 2 : 1 ))
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=("sdmae:" "mae:--p 0")
shared=../shared/data
wsi=.build/release/wsi
swift build -c release >/dev/null
mkdir -p "$out"

"$wsi" tile "$shared/tcga-cr-7395-svs" --out "$out/data" --size 96 --format shard --quiet >/dev/null
"$wsi" tile "$shared/cmu1-small-region-svs" --out "$out/data" --size 96 --format shard --quiet >/dev/null

for entry in "${recipes[@]}"; do
    name=${entry%%:*}
    options=${entry#*:}
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$wsi" pretrain --patches "$out/data/tile" --patches "$shared/labelled-lc25000" --patches "$shared/labelled-kather2016" \
        --out "$out/$name" --preset tiny96 --batch 32 --epochs "$epochs" --checkpoint-every 208 --keep-checkpoints \
        --quiet $options >"$out/$name.log" 2>&1
    seconds=$(( $(date +%s) - start ))
    "$wsi" evaluate --checkpoint "$out/$name/pretrain" --labelled "$shared/labelled-kather2016" \
        --group-pattern 'CRC-Prim-HE-[0-9_]+' --out "$out/$name" --quiet >/dev/null 2>&1
    cp "$out/$name/evaluate/evaluation.txt" "$out/$name.kather.txt"
    "$wsi" evaluate --checkpoint "$out/$name/pretrain" --labelled "$shared/labelled-lc25000" --no-crops \
        --out "$out/$name-lc25000" --quiet >/dev/null 2>&1 || true
    echo "== $name ($options): pretraining ${seconds} s; last metrics: $(tail -n 1 "$out/$name/pretrain/metrics.csv")"
    # The learning curve: every kept checkpoint on Kather 2016, with its pretraining minutes.
    echo "-- curve (Kather, checkpoint features): step, CPU minutes, kNN and linear balanced accuracy"
    for checkpoint in "$out/$name"/pretrain/checkpoints/step-*[0-9].safetensors; do
        step=$(basename "$checkpoint" .safetensors | sed 's/step-0*//')
        minutes=$(awk -F, -v s="$step" 'NR > 1 && $1 <= s { t += 32 / $10 } END { printf "%.1f", t / 60 }' "$out/$name/pretrain/metrics.csv")
        "$wsi" evaluate --checkpoint "$checkpoint" --labelled "$shared/labelled-kather2016" --group-pattern 'CRC-Prim-HE-[0-9_]+' \
            --out "$out/$name-curve-$step" --quiet >/dev/null 2>&1
        awk -v s="$step" -v m="$minutes" '/^checkpoint/ { print "   step " s ", " m " min: kNN " $2 ", linear " $5 }' \
            "$out/$name-curve-$step/evaluate/evaluation.txt"
    done
    echo "-- Kather 2016, grouped by source image"
    cat "$out/$name/evaluate/evaluation.txt"
    echo "-- LC25000, per file (near-duplicates leak across folds)"
    cat "$out/$name-lc25000/evaluate/evaluation.txt" 2>/dev/null || echo "(failed; see $out/$name-lc25000)"
done
