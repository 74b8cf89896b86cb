#!/usr/bin/env bash
# Compress a folder of images (PNG/JPEG, all the same size) into one .vkc file.
#
# Usage:
#   recipes/compress_images.sh IMAGE_DIR OUT_DIR [BYTES_PER_IMAGE]
#
# Trains a convolutional VAE compressor on the images for a budget of
# BYTES_PER_IMAGE bytes of codes per image (default 16), writes OUT_DIR/images.vkc
# with the model embedded, restores the images to OUT_DIR/images.restored.npz
# (array under key X, same shape and dtype as the input) and prints the sizes.
# Images are read in file-name order; that order is kept.
#
# Environment: EPOCHS (default: auto), VAEKIT (the command to run, default `vaekit`).
#
# Example:
#   recipes/compress_images.sh ~/scans /tmp/scans-vkc 32
set -euo pipefail

if [ "$#" -lt 2 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
image_dir=$1
out_dir=$2
budget=${3:-16}
read -r -a vaekit <<< "${VAEKIT:-vaekit}"
epochs=()
if [ -n "${EPOCHS:-}" ]; then
    epochs=(--epochs "$EPOCHS")
fi

mkdir -p "$out_dir"
"${vaekit[@]}" compress "$image_dir" --fit --bytes-per-row "$budget" "${epochs[@]}" \
    --seed 0 --embed-model -o "$out_dir/images.vkc"
"${vaekit[@]}" decompress "$out_dir/images.vkc" -o "$out_dir/images.restored.npz"

"${PYTHON:-python3}" - "$image_dir" "$out_dir/images.vkc" "$out_dir/images.restored.npz" <<'PY'
import os
import sys

import numpy as np

image_dir, vkc, restored = sys.argv[1:4]
raw = sum(os.path.getsize(os.path.join(image_dir, f)) for f in os.listdir(image_dir))
with np.load(restored) as f:
    images = f["X"]
print(f"compress_images: {len(images)} images {images.shape[1:]} {images.dtype}; "
      f"folder {raw} bytes -> {os.path.getsize(vkc)} bytes (.vkc, model embedded)",
      file=sys.stderr)
PY
