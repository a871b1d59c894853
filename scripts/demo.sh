#!/usr/bin/env bash
# Set up, build, then run the main job: back up a folder and a raw disk image into a new
# local repository, list, check, and restore both, comparing them with the originals;
# then restore one file from inside the disk's restore point.
# Usage: scripts/demo.sh [FOLDER]   (default: /usr/share/doc)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
cargo build --release --locked -p rehydra-cli
BIN="$CARGO_TARGET_DIR/release/rehydra"
SRC=${1:-/usr/share/doc}
W=$(mktemp -d /tmp/rehydra-demo.XXXXXX)
export REHYDRA_REPOSITORY="$W/repo" REHYDRA_PASSWORD="demo-password-change-me"
export REHYDRA_CATALOG="$W/catalog.db" REHYDRA_CACHE_DIR="$W/cache"
echo "== demo folder: $W"
"$BIN" init
echo "== back up $SRC"
"$BIN" backup "$SRC" --tag demo
echo "== a raw disk image: 1 GiB, ext4 holding a copy of $SRC, mostly empty"
truncate -s 1G "$W/disk.raw"
mkfs.ext4 -q -F -d "$SRC" "$W/disk.raw"
"$BIN" backup --disk "$W/disk.raw"
"$BIN" restore-points
"$BIN" check --read-data
echo "== restore"
"$BIN" restore latest --asset "$(realpath "$SRC")" --target "$W/restored"
diff -r --no-dereference "$SRC" "$W/restored"
echo "folder restored identically (content, symlinks)"
"$BIN" restore latest --workload disk --target "$W/disk-restored.raw"
cmp "$W/disk.raw" "$W/disk-restored.raw"
echo "disk image restored identically"
echo "== file-level restore from inside the disk's restore point (no disk restore)"
"$BIN" files partitions latest --workload disk
"$BIN" files ls latest --workload disk --path /
one=$(cd "$SRC" && find . -type f | head -1 | cut -c3-)
"$BIN" files restore latest --workload disk --path "/$one" --target "$W/one-file"
cmp "$SRC/$one" "$W/one-file/$(basename "$one")"
echo "$one restored from inside the disk"
"$BIN" stats
echo "== done; everything is under $W (rm -rf it when finished)"
