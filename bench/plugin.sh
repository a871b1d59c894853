#!/usr/bin/env bash
# Plugin overhead: the bench VHDX backed up through the example-files plugin vs the
# engine's direct path, same data, same chunking (a folder holding vm1.vhdx), alternating
# order, fresh repositories per trial. Also records plugin load time (cold and cached).
#
# Usage: bench/plugin.sh [trials]   (env: RBENCH_DIR dataset dir, default /tmp/rbench)
# Output: a Markdown table on stdout and rows in $RBENCH_WORK/plugin.tsv.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
TRIALS=${1:-3}
export RBENCH_DIR=${RBENCH_DIR:-/tmp/rbench} RBENCH_WORK=${RBENCH_WORK:-/tmp/rbench-work}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}
[ -f "$RBENCH_DIR/vm1.vhdx" ] || bash "$ROOT/../shared/bench/make-dataset.sh" "$RBENCH_DIR"
(cd "$ROOT" && cargo build -q --release --locked -p rehydra-cli && cargo xtask plugins example-files >/dev/null)
BIN=$CARGO_TARGET_DIR/release/rehydra
W=$RBENCH_WORK/plugin; rm -rf "$W"; mkdir -p "$W/src"
ln "$RBENCH_DIR/vm1.vhdx" "$W/src/vm1.vhdx" 2>/dev/null || cp "$RBENCH_DIR/vm1.vhdx" "$W/src/vm1.vhdx"
export REHYDRA_PASSWORD=bench REHYDRA_CATALOG=$W/catalog.db REHYDRA_CACHE_DIR=$W/cache REHYDRA_PLUGIN_PATH=$W/plugins
mkdir -p "$W/plugins"; cp "$CARGO_TARGET_DIR/plugins/example-files.wasm" "$W/plugins/"
"$BIN" -q plugins trust rehydra-dev "$(cat "$CARGO_TARGET_DIR/rehydra-dev/publisher.pub")"
"$BIN" -q plugins grant example-files engine "files:$W/src" >/dev/null
rm -rf "$W/cache/plugins"
cold=$("$BIN" --json plugins info example-files | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["load"]["millis"]))')
warm=$("$BIN" --json plugins info example-files | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["load"]["millis"]))')
TSV=$RBENCH_WORK/plugin.tsv; printf 'trial\tpath\tphase\twall_s\n' > "$TSV"
t () { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"; }
direct () { t "$BIN" -q -r "$1" backup "$W/src" --asset "$W/src"; }
plugin () { t "$BIN" -q -r "$1" plugins run example-files backup --asset "$W/src"; }
for i in $(seq 1 "$TRIALS"); do
  for p in direct plugin; do rm -rf "$W/repo-$p"; "$BIN" -q -r "$W/repo-$p" init --kdf-memory-kib 8192 --kdf-iterations 1 >/dev/null; done
  order="direct plugin"; [ $((i % 2)) = 0 ] && order="plugin direct"
  for phase in full incremental; do
    for p in $order; do sync; printf '%s\t%s\t%s\t%s\n' "$i" "$p" "$phase" "$($p "$W/repo-$p")" >> "$TSV"; done
  done
done
python3 - "$TSV" "$cold" "$warm" <<'PY'
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
print(f"plugin load (example-files, 98 KiB): cold {sys.argv[2]} ms, cached {sys.argv[3]} ms\n")
print("| phase | direct (median s) | example-files plugin (median s) | overhead of medians | paired mean (plugin - direct) / direct | spread of direct runs |")
print("|---|---|---|---|---|---|")
for ph in ("full", "incremental"):
    dv = {r["trial"]: float(r["wall_s"]) for r in rows if r["phase"] == ph and r["path"] == "direct"}
    pv = {r["trial"]: float(r["wall_s"]) for r in rows if r["phase"] == ph and r["path"] == "plugin"}
    d, p = st.median(dv.values()), st.median(pv.values())
    paired = st.mean((pv[t] - dv[t]) / dv[t] for t in dv)
    spread = (max(dv.values()) - min(dv.values())) / d
    print(f"| {ph} | {d:.2f} | {p:.2f} | {100*(p-d)/d:+.1f} % | {100*paired:+.1f} % | {100*spread:.0f} % |")
PY
