#!/usr/bin/env bash
# Plugin overhead in CPU instructions (valgrind callgrind), which unlike wall time does not
# move with the machine's load: the same data backed up directly and through the
# example-files plugin, into fresh repositories, with the plugin's compiled code already
# cached (as on every run after the first).
#
# Usage: bench/plugin-instructions.sh [MiB]   (default 256; the first MiB of vm1.vhdx)
# Output: a Markdown table on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
MIB=${1:-256}
export RBENCH_DIR=${RBENCH_DIR:-/tmp/rbench} RBENCH_WORK=${RBENCH_WORK:-/tmp/rbench-work}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
[ -f "$RBENCH_DIR/vm1.vhdx" ] || bash "$ROOT/../shared/bench/make-dataset.sh" "$RBENCH_DIR"
(cd "$ROOT" && cargo build -q --release --locked -p rehydra-cli && cargo xtask plugins example-files >/dev/null)
BIN=$CARGO_TARGET_DIR/release/rehydra
W=$RBENCH_WORK/plugin-ir; rm -rf "$W"; mkdir -p "$W/src" "$W/plugins"
head -c "$((MIB << 20))" "$RBENCH_DIR/vm1.vhdx" > "$W/src/vm1.part"
export REHYDRA_PASSWORD=bench REHYDRA_CATALOG=$W/catalog.db REHYDRA_CACHE_DIR=$W/cache REHYDRA_PLUGIN_PATH=$W/plugins
cp "$CARGO_TARGET_DIR/plugins/example-files.wasm" "$W/plugins/"
"$BIN" -q plugins trust rehydra-dev "$(cat "$CARGO_TARGET_DIR/rehydra-dev/publisher.pub")"
"$BIN" -q plugins grant example-files engine "files:$W/src" >/dev/null
# compile once into the cache, under valgrind: its emulated CPU has other features than
# the real one, so a cache entry made outside it does not match (and would be recompiled)
valgrind --tool=none --smc-check=all-non-file "$BIN" -q plugins info example-files >/dev/null 2>&1
for p in direct plugin; do "$BIN" -q -r "$W/repo-$p" init --kdf-memory-kib 8192 --kdf-iterations 1 >/dev/null; done
ir () {  # total instructions of a command, all threads
  local out=$W/cg.$1; shift
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$out" "$@" >/dev/null 2>"$out.log"
  awk '/^summary:/ {print $2}' "$out"
}
d=$(ir direct "$BIN" -q -r "$W/repo-direct" backup "$W/src" --asset "$W/src")
p=$(ir plugin "$BIN" -q -r "$W/repo-plugin" plugins run example-files backup --asset "$W/src")
python3 - "$MIB" "$d" "$p" <<'PY'
import sys
mib, d, p = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"| data | direct (instructions) | example-files plugin (instructions) | overhead |")
print("|---|---|---|---|")
print(f"| {mib} MiB of vm1.vhdx, full backup | {d/1e9:.3f} G | {p/1e9:.3f} G | {100*(p-d)/d:+.2f} % |")
PY
