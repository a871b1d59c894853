#!/usr/bin/env bash
# Rehydra vs restic vs borg on the shared VHDX dataset, in one run, same data, same method.
#
# Usage: bench/run.sh            (env: RBENCH_DIR dataset dir, default /tmp/rbench;
#                                  RBENCH_WORK work dir, default /tmp/rbench-work;
#                                  TOOLS peers, default "restic borg-lz4 borg-zstd3";
#                                  VARIANTS rehydra variants, default "rehydra-vhdx rehydra-vhdx-rct rehydra-disk rehydra-file")
# Phases per tool, each under /usr/bin/time -v after sync + warm read of the source:
#   full (vm1.vhdx), incr (vm1-changed.vhdx, 1 % rewritten in place), vm2 (70 % shared
#   content at other offsets), restore (vm1 restore point to a file, verified with cmp),
#   final repository size. Rows go to $RBENCH_WORK/peers.tsv; bench/report.py renders them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED:-$ROOT/../shared}
export RBENCH_DIR=${RBENCH_DIR:-/tmp/rbench}
export RBENCH_WORK=${RBENCH_WORK:-/tmp/rbench-work}
export RUN_LABEL=${RUN_LABEL:-$(date -u +%Y%m%dT%H%M%S)}
export OUT_TSV=${OUT_TSV:-$RBENCH_WORK/peers.tsv}
"$ROOT/scripts/setup.sh" --bench
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}
(cd "$ROOT" && cargo build --release --locked -p rehydra-cli)
BIN=$CARGO_TARGET_DIR/release/rehydra
[ -f "$RBENCH_DIR/vm2.vhdx" ] || bash "$SHARED/bench/make-dataset.sh" "$RBENCH_DIR"
mkdir -p "$RBENCH_WORK"
[ -f "$OUT_TSV" ] || printf 'run\ttool\tphase\tlogical_bytes\twall_s\tMBps\tuser_s\tsys_s\tcpu_pct\tmaxrss_kib\trepo_bytes_after\trepo_added_bytes\tpost_sync_s\tcache\tother_cpu_s\tsteal_s\tverify\n' > "$OUT_TSV"

V1=$RBENCH_DIR/vm1.vhdx; V1C=$RBENCH_DIR/vm1-changed.vhdx; V2=$RBENCH_DIR/vm2.vhdx
W=$RBENCH_WORK
export REHYDRA_PASSWORD=rbench-fixed-password-0001

# wait_idle: as shared/bench/peers.sh, wait (up to 900 s) until other processes use < 10 % of
# a core over two consecutive 3-s windows, so writeback or a build does not skew a phase
cpu_busy () { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
wait_idle () {
  local waited=0 a b ok=0
  while [ "$waited" -lt 900 ]; do
    a=$(cpu_busy); sleep 3; b=$(cpu_busy); waited=$((waited + 3))
    if [ $(( (b - a) * 100 / $(getconf CLK_TCK) / 3 )) -lt 10 ]; then ok=$((ok + 1)); [ "$ok" -ge 2 ] && return 0; else ok=0; fi
  done
  echo "WARNING: machine still busy, measuring anyway" >&2
}

# timed TOOL PHASE LOGICAL REPO -- cmd...   (one TSV row, same columns as shared/bench/peers.sh)
timed () {
  local tool=$1 phase=$2 logical=$3 repo=$4; shift 5
  local tf="$W/time.$tool.$phase.txt" log="$W/log.$RUN_LABEL.$tool.$phase.txt"
  local before; before=$(du -sb "$repo" | cut -f1)
  echo "+ $*" > "$log"
  wait_idle
  if ! /usr/bin/time -v -o "$tf" "$@" >> "$log" 2>&1; then echo "FAILED: $tool $phase" >&2; tail -20 "$log" >&2; return 1; fi
  local t0 t1; t0=$(date +%s.%N); sync; t1=$(date +%s.%N)
  local after; after=$(du -sb "$repo" | cut -f1)
  python3 "$HERE/row.py" "$tf" "$RUN_LABEL" "$tool" "$phase" "$logical" "$before" "$after" "$t0" "$t1" >> "$OUT_TSV"
  tail -1 "$OUT_TSV" | cut -f2-12
}

for variant in ${VARIANTS:-rehydra-vhdx rehydra-vhdx-rct rehydra-disk rehydra-file}; do
  echo "=== run $RUN_LABEL: $variant"
  repo=$W/repo-$variant; rst=$W/restore-$variant
  rm -rf "$repo" "$rst" "$W/cache-$variant"; mkdir -p "$rst"
  export REHYDRA_REPOSITORY=$repo REHYDRA_CACHE_DIR=$W/cache-$variant
  "$BIN" --no-catalog init > /dev/null
  # rehydra-disk: the .vhdx container as a raw disk (byte-identical restore, as the peers);
  # rehydra-file: the .vhdx as a file (FastCDC)
  # rehydra-vhdx: the VHDX parsed natively (allocated blocks by virtual offset; the restore
  # is the raw virtual disk, checked with qemu-img compare)
  # rehydra-vhdx-rct: as rehydra-vhdx, but the incremental gets changed-range hints (the
  # dataset's list of rewritten 64 KiB slots, as Hyper-V Resilient Change Tracking would
  # report them): only those ranges are read, the rest comes from the full backup
  case $variant in
    rehydra-file) mode=(--file) ;;
    rehydra-vhdx|rehydra-vhdx-rct) mode=(--disk-format vhdx --disk) ;;
    *) mode=(--disk-format raw --disk) ;;
  esac
  bk () { CMD=("$BIN" --no-catalog --quiet --json backup "${mode[@]}" "$1" --asset "$2"); }
  sync; cat "$V1" > /dev/null;  bk "$V1" vm1;  timed "$variant" full "$(stat -c %s "$V1")"  "$repo" -- "${CMD[@]}"
  sync; cat "$V1C" > /dev/null; bk "$V1C" vm1
  if [ "$variant" = rehydra-vhdx-rct ]; then
    full_id=$("$BIN" --no-catalog --json restore-points --asset vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
    awk '{print $1, 65536}' "$RBENCH_DIR/manifest/vm1-changed.offsets" > "$W/changes.txt"
    CMD+=(--changed-ranges "$W/changes.txt" --changed-since "$full_id")
  fi
  timed "$variant" incr "$(stat -c %s "$V1C")" "$repo" -- "${CMD[@]}"
  sync; cat "$V2" > /dev/null;  bk "$V2" vm2;  timed "$variant" vm2  "$(stat -c %s "$V2")"  "$repo" -- "${CMD[@]}"
  first=$("$BIN" --no-catalog --json restore-points --asset vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  sync; find "$repo" -type f -exec cat {} + > /dev/null
  timed "$variant" restore "$(stat -c %s "$V1")" "$repo" -- "$BIN" --no-catalog --quiet restore "$first" --target "$rst/vm1.vhdx"
  if [ "$variant" = rehydra-vhdx-rct ]; then
    # the hinted restore point must be the changed disk, byte for byte
    last=$("$BIN" --no-catalog --json restore-points --asset vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
    "$BIN" --no-catalog --quiet restore "$last" --target "$rst/vm1c.raw"
    qemu-img compare -q -f raw -F vhdx "$rst/vm1c.raw" "$V1C" || { echo "HINTED INCREMENTAL DIFFERS" >&2; exit 1; }
    rm -f "$rst/vm1c.raw"
  fi
  if [ "${variant%-rct}" = rehydra-vhdx ]; then
    verdict=$(qemu-img compare -q -f raw -F vhdx "$rst/vm1.vhdx" "$V1" && echo qemu-img-compare-identical || echo COMPARE-DIFFERS)
  else
    verdict=$(cmp -s "$V1" "$rst/vm1.vhdx" && echo cmp-identical || echo CMP-DIFFERS)
  fi
  python3 - "$OUT_TSV" "$verdict" <<'PY'
import sys
p, v = sys.argv[1:3]
lines = open(p).read().splitlines(); cols = lines[-1].split("\t"); cols[-1] = v; lines[-1] = "\t".join(cols)
open(p, "w").write("\n".join(lines) + "\n")
PY
  printf '%s\t%s\tfinal\t-\t-\t-\t-\t-\t-\t-\t%s\t-\t-\twarm\t-\t-\t-\n' "$RUN_LABEL" "$variant" "$(du -sb "$repo" | cut -f1)" >> "$OUT_TSV"
  rm -rf "$rst" "$repo" "$W/cache-$variant"
done

TOOLS=${TOOLS:-restic borg-lz4 borg-zstd3} bash "$SHARED/bench/peers.sh" "$RBENCH_DIR"
python3 "$HERE/report.py" "$OUT_TSV" "$RUN_LABEL"
