#!/usr/bin/env bash
# Makes the built-in default model from nothing but Debian packages, start to end (about an hour on 2 cores):
#   tools/train/train.sh [BUILD_DIR]      (default build/train; needs root for apt-get, or the packages installed)
# then installs it into default-model/ (tools/train/install.sh). Seeded: the same packages give the same corpus,
# tokenizer and initial weights (training itself is deterministic up to floating-point summation order).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build/train}"
py=/usr/bin/python3   # Debian's interpreter: its torch, numpy and regex come from the packages below
if ! "$py" -c 'import torch, numpy, regex' 2>/dev/null || [ ! -d /usr/share/dictd ]; then
  apt-get install -y -q python3-torch python3-numpy python3-regex libopenblas0-pthread \
    fortunes fortunes-min dict-gcide dict-foldoc dict-jargon dict-devil wordnet-base
fi
"$py" "$here/corpus.py" --out "$build/corpus"
"$py" "$here/bpe.py" --corpus "$build/corpus/train.txt" --vocab 8192 --out "$build/tokenizer"
"$py" "$here/train.py" --corpus "$build/corpus" --tokenizer "$build/tokenizer" --out "$build/model" --steps 1500
"$here/install.sh" "$build/model"
