#!/usr/bin/env bash
# The device tool sends the checkout's tracked files plus the carried pack, at most 64 MiB together. The default
# model's weights (36 MB, tracked so that a fresh clone runs without a download) are not needed on the device: the
# GPU checks run on the test fixtures. This script moves the checkout to a local branch that is HEAD without those
# weights, so the tree that travels is about 10 MiB, and back again.
#
#   deploy/gpu/device-checkout.sh slim      # before the device calls: switch to 'device-slim' (HEAD minus weights)
#   deploy/gpu/device-checkout.sh restore   # after them: back to the branch you were on
#   deploy/gpu/device-checkout.sh size      # bytes the device tool would send now (tracked files + untracked, not ignored)
#
# 'slim' refuses uncommitted changes to tracked files (commit first), so nothing is carried across by accident.
# The slim branch is rebuilt from HEAD each time; never commit on it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
weights=default-model/src/main/resources/io/expertmesh/defaultmodel/model.safetensors
slim=device-slim
saved="$(git rev-parse --git-dir)/device-checkout-from"

tree_bytes() {
  { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s -- 2>/dev/null \
    | awk '{ s += $1 } END { print s + 0 }'
}

case "${1:-}" in
  slim)
    if [ "$(git rev-parse --abbrev-ref HEAD)" = "$slim" ]; then
      echo "device-checkout: already on $slim" >&2
    else
      git diff --quiet HEAD -- || { echo "device-checkout: uncommitted changes; commit them first" >&2; exit 2; }
      from="$(git rev-parse --abbrev-ref HEAD)"
      index="$(mktemp)"
      trap 'rm -f "$index"' EXIT
      GIT_INDEX_FILE="$index" git read-tree HEAD
      GIT_INDEX_FILE="$index" git rm -q --cached --ignore-unmatch -- "$weights"
      tree="$(GIT_INDEX_FILE="$index" git write-tree)"
      commit="$(git commit-tree "$tree" -p HEAD -m "device-slim: HEAD without the default model's weights (for the device tool; never commit here)")"
      git update-ref "refs/heads/$slim" "$commit"
      echo "$from" > "$saved"
      git switch -q "$slim"
    fi
    echo "device-checkout: on $slim; tree that travels: $(( $(tree_bytes) / 1024 / 1024 )) MiB" >&2
    ;;
  restore)
    from="$(cat "$saved" 2>/dev/null || echo main)"
    git switch -q "$from"
    rm -f "$saved"
    echo "device-checkout: back on $from; tree: $(( $(tree_bytes) / 1024 / 1024 )) MiB" >&2
    ;;
  size)
    tree_bytes
    ;;
  *)
    echo "usage: deploy/gpu/device-checkout.sh slim|restore|size" >&2
    exit 2
    ;;
esac
