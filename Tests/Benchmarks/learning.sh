#!/usr/bin/env bash
# Does pretraining learn tissue? Pretrains each recipe for the same number of steps on unlabelled
# patches (the shared slides' tiles plus the LC25000 and Kather 2016 pictures, labels ignored),
# then evaluates every recipe's features with grouped cross-validation on the labelled sets, next
# to a randomly initialised network and a colour histogram, and prints one table of all of them
# and each recipe's accuracy against its pretraining minutes.
#
#   Tests/Benchmarks/learning.sh OUT [EPOCHS] [RECIPE...]
#
# A recipe is a name and 'wsi pretrain' options, e.g.  "mae:--p 0"  "sdmae:--p 0.2"  "s1:--seed 1".
# Default recipes: the default options and SD-MAE (--p 0.2). BATCH=N sets the batch (default 32; the
# learning rate scales with it); TILE="OPTIONS" tiles the slides otherwise (default "--size 96",
# e.g. TILE="--size 192": twice the field of view, each random crop resized to the model's 96).
# Release build; ../shared/data beside the repository. Kather 2016 is grouped by source image (24 pictures: a few points are noise).
# LC25000 is grouped by near-duplicate family (lc25000-near-duplicate-groups.csv, made by
# near_duplicate_groups.py: upstream augmented each field of view into ~20 rotated copies).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: learning.sh OUT [EPOCHS] [RECIPE...]}
epochs=${2:-10}
shift $(( $# >= 2 ? 2 : 1 ))
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=("default:" "sdmae:--p 0.2")
shared=../shared/data
lc_groups=Tests/Benchmarks/lc25000-near-duplicate-groups.csv
# WSI=path runs a given build (a copy, so that editing the sources cannot change a long run).
wsi=${WSI:-.build/release/wsi}
[ -n "${WSI:-}" ] || swift build -c release >/dev/null
mkdir -p "$out"
batch=${BATCH:-32}
tile_options=${TILE:---size 96}

for slides in tcga-cr-7395-svs cmu1-small-region-svs; do
    # shellcheck disable=SC2086
    "$wsi" tile "$shared/$slides" --out "$out/data" $tile_options --format shard --quiet >/dev/null
done
# Five points on each curve. An epoch is every tile plus every labelled picture (3,337 patches, 104
# steps of 32, with the default tiling).
tiles=$(cat "$out"/data/tile/*/tiles.csv | grep -vc '^x,')
pictures=$(find "$shared/labelled-lc25000" "$shared/labelled-kather2016" -type f \( -iname '*.jp*g' -o -iname '*.png' -o -iname '*.tif*' \) | wc -l)
every=$(( (epochs + 4) / 5 * ((tiles + pictures) / batch) ))

# evaluate CHECKPOINT NAME: both labelled sets; prints "kather-kNN kather-linear lc-kNN lc-linear".
evaluate() {
    "$wsi" evaluate --checkpoint "$1" --labelled "$shared/labelled-kather2016" --group-pattern 'CRC-Prim-HE-[0-9_]+' \
        --out "$out/eval/$2-kather" --quiet >/dev/null 2>&1
    "$wsi" evaluate --checkpoint "$1" --labelled "$shared/labelled-lc25000" --no-crops --groups "$lc_groups" \
        --out "$out/eval/$2-lc25000" --quiet >/dev/null 2>&1
    awk '/^checkpoint/ { printf "%s %s ", $2, $5 }' "$out/eval/$2-kather/evaluate/evaluation.txt" "$out/eval/$2-lc25000/evaluate/evaluation.txt"
    echo
}

table="$out/table.txt"
printf '%-28s %6s %6s | %-6s %-6s | %-6s %-6s\n' recipe steps min "K kNN" "K lin" "LC kNN" "LC lin" >"$table"
for entry in "${recipes[@]}"; do
    name=${entry%%:*}
    options=${entry#*:}
    # shellcheck disable=SC2086
    "$wsi" pretrain --patches "$out/data/tile" --patches "$shared/labelled-lc25000" --patches "$shared/labelled-kather2016" \
        --out "$out/$name" --preset tiny96 --batch "$batch" --epochs "$epochs" --checkpoint-every "$every" --keep-checkpoints \
        --quiet $options >"$out/$name.log" 2>&1
    metrics="$out/$name/pretrain/metrics.csv"
    echo "== $name ($options): last metrics: $(tail -n 1 "$metrics")"
    echo "-- curve: step, pretraining minutes (from the logged img/s), Kather kNN/linear, LC25000 kNN/linear"
    for checkpoint in "$out/$name"/pretrain/checkpoints/step-*[0-9].safetensors; do
        step=$(basename "$checkpoint" .safetensors | sed 's/step-0*//')
        minutes=$(awk -F, -v s="$step" -v b="$batch" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "img_per_s") c = i }
            NR > 1 && $1 <= s { t += b / $c } END { printf "%.1f", t / 60 }' "$metrics")
        read -r kk kl lk ll <<<"$(evaluate "$checkpoint" "$name-$step")"
        echo "   step $step, $minutes min: Kather $kk / $kl, LC25000 $lk / $ll"
        printf '%-28s %6s %6s | %-6s %-6s | %-6s %-6s\n' "$name" "$step" "$minutes" "$kk" "$kl" "$lk" "$ll" >>"$table"
    done
    echo "-- Kather 2016 at the end, grouped by source image"
    cat "$out/eval/$name-$step-kather/evaluate/evaluation.txt"
    echo "-- LC25000 at the end, grouped by near-duplicate family"
    cat "$out/eval/$name-$step-lc25000/evaluate/evaluation.txt"
done
# The baselines are the same on every run (same folds, same seed): take them from the last one.
for baseline in "random init" "colour histogram"; do
    kather=$(awk -v b="$baseline" 'index($0, b) == 1 { n = split(b, w, " "); printf "%s %s", $(n + 1), $(n + 4) }' "$out/eval/$name-$step-kather/evaluate/evaluation.txt")
    lc=$(awk -v b="$baseline" 'index($0, b) == 1 { n = split(b, w, " "); printf "%s %s", $(n + 1), $(n + 4) }' "$out/eval/$name-$step-lc25000/evaluate/evaluation.txt")
    read -r kk kl <<<"$kather"; read -r lk ll <<<"$lc"
    printf '%-28s %6s %6s | %-6s %-6s | %-6s %-6s\n' "$baseline" - - "$kk" "$kl" "$lk" "$ll" >>"$table"
done
echo "== all recipes (balanced accuracy; Kather ± ~0.1 over folds, LC25000 ± ~0.02)"
cat "$table"
