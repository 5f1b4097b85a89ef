#!/usr/bin/env bash
# Measures how the average chunk size trades repository growth after small edits against the
# number of blobs, on real data from this machine. The defaults in docs/format.md ("Choice of
# chunk sizes") were chosen from its output.
#
#   bash benches/chunk-sizes.sh [--update-doc]     (CAIRN_BIN overrides the binary)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cairn="${CAIRN_BIN:-${CARGO_TARGET_DIR:-/var/tmp/cairn-target}/release/cairn}"
work=$(mktemp -d /var/tmp/cairn-chunks.XXXXXX)
trap 'rm -rf "$work"' EXIT
export CAIRN_PASSWORD=bench CAIRN_CACHE_DIR="$work/cache"

# A 256 MiB "disk image" of real files (libraries, documentation) laid end to end.
mkdir -p "$work/data"
find /usr/lib /usr/share -type f -size +4k 2>/dev/null | sort | head -n 20000 \
  | xargs cat 2>/dev/null | head -c $((256 << 20)) > "$work/original" || true

edit() {
  # 200 scattered 4 KiB overwrites (about 0.3%) and one 100-byte insertion in the middle.
  python3 - "$1" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
x = 88172645463325252
for _ in range(200):
    x ^= (x << 13) & (2**64 - 1); x ^= x >> 7; x ^= (x << 17) & (2**64 - 1)
    at = (x % (len(data) // 4096)) * 4096
    data[at:at + 4096] = bytes((at + i) % 251 for i in range(4096))
mid = len(data) // 2
data[mid:mid] = b"inserted" * 12 + b"four"
open(path, "wb").write(data)
PY
}

size_of() { du -sb "$1" | cut -f1; }
# `snapshots --json` prints one snapshot per line (docs/json.md).
blobs() { "$cairn" --json snapshots | python3 -c "import json,sys; print([json.loads(l) for l in sys.stdin][$1]['summary']['data_blobs'])"; }

measure() {
  echo "\`bash benches/chunk-sizes.sh\` on $(date +%F): a 256 MiB file made of real files from"
  echo "/usr/lib and /usr/share laid end to end, backed up at zstd level 3; then 200 scattered 4 KiB"
  echo "overwrites (0.3% of the bytes) and one 100-byte insertion in the middle, and a second backup."
  echo
  echo "| avg chunk | first backup (repository) | data blobs | growth after the edits | blobs added |"
  echo "|---:|---:|---:|---:|---:|"
  for avg in 128 256 512 1024 2048; do
    export CAIRN_REPOSITORY="$work/repo-$avg"
    cp "$work/original" "$work/data/image"
    "$cairn" -q init --chunk-size "$avg" --argon2-memory 1024 --argon2-iterations 1 >/dev/null
    "$cairn" -q backup "$work/data"
    size1=$(size_of "$CAIRN_REPOSITORY")
    edit "$work/data/image"
    "$cairn" -q backup "$work/data"
    size2=$(size_of "$CAIRN_REPOSITORY")
    echo "| $avg KiB | $((size1 >> 20)) MiB | $(blobs 0) | $(((size2 - size1) >> 10)) KiB | $(blobs -1) |"
  done
}

if [ "${1:-}" = "--update-doc" ]; then
  measure | tee /dev/stderr | python3 "$here/doc_section.py" chunks
else
  measure
fi
