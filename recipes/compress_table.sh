#!/usr/bin/env bash
# Compress a table with an id column into a .vkc file and restore it.
#
# Usage:
#   recipes/compress_table.sh INPUT.csv OUT_DIR [BYTES_PER_ROW]
#
# Trains a compressor tuned for BYTES_PER_ROW bytes of codes per row (default 4),
# compresses INPUT.csv with the model embedded (so the .vkc file is self-contained),
# shows what the container holds, restores it, and checks that the ids came back
# exactly and in order. The other columns are lossy reconstructions.
#
# Environment: ID_COLUMN (default row_id), EPOCHS (default: auto), PYTHON (for the
# final check, default python3), VAEKIT (the
# command to run, default `vaekit`).
#
# Example:
#   recipes/compress_table.sh datasets/demo.csv /tmp/demo-vkc 4
set -euo pipefail

if [ "$#" -lt 2 ]; then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
input=$1
out_dir=$2
budget=${3:-4}
id_column=${ID_COLUMN:-row_id}
read -r -a vaekit <<< "${VAEKIT:-vaekit}"
epochs=()
if [ -n "${EPOCHS:-}" ]; then
    epochs=(--epochs "$EPOCHS")
fi

mkdir -p "$out_dir"
name=$(basename "$input")
name=${name%%.*}

# 1. Train and compress in one go; keep the model for later files of the same kind.
"${vaekit[@]}" compress "$input" --fit --bytes-per-row "$budget" --id-column "$id_column" \
    "${epochs[@]}" --seed 0 --embed-model --save-model "$out_dir/$name.vaekit" \
    -o "$out_dir/$name.vkc"

# 2. What is in the container (rows, bytes per row, model fingerprint), checking every chunk.
"${vaekit[@]}" info "$out_dir/$name.vkc" --verify

# 3. Restore: the embedded model decodes it, no -m needed.
"${vaekit[@]}" decompress "$out_dir/$name.vkc" -o "$out_dir/$name.restored.csv"

# 4. The ids are exact and in the original order.
"${PYTHON:-python3}" - "$input" "$out_dir/$name.restored.csv" "$id_column" <<'PY'
import sys

import pandas as pd

original, restored, id_column = sys.argv[1:4]
a = pd.read_csv(original, dtype={id_column: str})
b = pd.read_csv(restored, dtype={id_column: str})
assert list(a.columns) == list(b.columns), (list(a.columns), list(b.columns))
assert a[id_column].tolist() == b[id_column].tolist(), "ids differ"
print(f"compress_table: {len(b)} rows restored; ids exact; columns {list(b.columns)}",
      file=sys.stderr)
PY
ls -l "$input" "$out_dir/$name.vkc" >&2
