#!/usr/bin/env bash
# Nightly batch job: score every CSV export in a folder and keep the top anomalies.
#
# Usage:
#   recipes/nightly_scoring.sh EXPORT_DIR MODEL OUT_DIR [TOP]
#
#   EXPORT_DIR  folder of CSV exports (*.csv and *.csv.gz), all with the model's columns
#   MODEL       model file from `vaekit fit` (train it once, e.g. on last month's data:
#               vaekit fit history/*.csv --id-column row_id -o model.vaekit)
#   OUT_DIR     where the results go (created if missing)
#   TOP         how many anomalies to keep (default 100)
#
# Environment: ID_COLUMN (default row_id), EXPLAIN (columns to explain per row,
# default 3), VAEKIT (the command to run, default `vaekit`; e.g. "python -m vaekit").
#
# Writes OUT_DIR/top-anomalies-YYYY-MM-DD.csv (rank, id, score in nats, is_anomaly,
# the columns that contribute most) and, when some export rows are unusable,
# OUT_DIR/bad-rows-YYYY-MM-DD.csv listing file, line, column and reason for each.
# Bad rows are skipped, never silently dropped: the count goes to stderr.
# Outputs appear atomically, so a downstream job never reads a half-written file.
#
# Exit codes are vaekit's: 0 success, 2 usage, 3 bad data, 4 bad model file; cron
# can alert on anything non-zero. Schedule it with e.g.
#   30 2 * * *  /opt/vaekit/recipes/nightly_scoring.sh /data/exports /opt/model.vaekit /data/anomalies
set -euo pipefail

if [ "$#" -lt 3 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
export_dir=$1
model=$2
out_dir=$3
top=${4:-100}
id_column=${ID_COLUMN:-row_id}
explain=${EXPLAIN:-3}
read -r -a vaekit <<< "${VAEKIT:-vaekit}"

shopt -s nullglob
inputs=("$export_dir"/*.csv "$export_dir"/*.csv.gz)
if [ "${#inputs[@]}" -eq 0 ]; then
    echo "nightly_scoring: no CSV exports in $export_dir" >&2
    exit 3
fi

mkdir -p "$out_dir"
day=$(date +%F)
"${vaekit[@]}" score "${inputs[@]}" -m "$model" \
    --id-column "$id_column" --top "$top" --explain "$explain" \
    --on-bad-rows skip --bad-rows "$out_dir/bad-rows-$day.csv" \
    -o "$out_dir/top-anomalies-$day.csv"

echo "nightly_scoring: ${#inputs[@]} file(s) scored; top $top in $out_dir/top-anomalies-$day.csv" >&2
