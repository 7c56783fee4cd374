#!/usr/bin/env bash
# Copies a trained model (train.py --out DIR) into the default-model module's resources and writes its MANIFEST
# (sha256, size, name per file), which names the unpacked cache directory and checks every file on unpacking.
#   tools/train/install.sh build/model
set -euo pipefail
src="${1:?usage: tools/train/install.sh MODEL_DIR}"
dst="$(cd "$(dirname "$0")/../.." && pwd)/default-model/src/main/resources/io/expertmesh/defaultmodel"
mkdir -p "$dst"
files="config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json"
{
  echo "# sha256 size name: the built-in default model (tools/train); written by tools/train/install.sh"
  for f in $files; do
    cp "$src/$f" "$dst/$f"
    echo "$(sha256sum "$dst/$f" | cut -d' ' -f1) $(stat -c %s "$dst/$f") $f"
  done
} > "$dst/MANIFEST"
cp "$src/training-log.csv" "$(dirname "$0")/training-log.csv"
cat "$dst/MANIFEST"
