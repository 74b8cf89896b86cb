#!/usr/bin/env bash
# Build the documentation into site/ with warnings as errors (CI runs this).
#   docs/build.sh [VENV]     VENV: a venv with vaekit[report] installed (default .venv)
# The gallery's report is made here from the demo table (nothing is downloaded);
# the docs tools go into VENV from docs/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
"$venv/bin/pip" install -q -c constraints.txt -r docs/requirements.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" - "$tmp/demo.csv" <<'PY'
import sys
import pandas as pd
rows = pd.read_csv("datasets/demo.csv")
labels = pd.read_csv("datasets/demo_labels.csv")
rows.merge(labels[["row_id", "is_anomaly"]], on="row_id").to_csv(sys.argv[1], index=False)
PY
"$venv/bin/vaekit" fit "$tmp/demo.csv" --id-column row_id --exclude is_anomaly \
  -o "$tmp/demo.vaekit" --quiet
"$venv/bin/vaekit" report "$tmp/demo.vaekit" "$tmp/demo.csv" --id-column row_id \
  --labels is_anomaly -o docs/report.html
"$venv/bin/mkdocs" build --strict --quiet
echo "docs built in site/ ($(find site -name '*.html' | wc -l) pages)"
