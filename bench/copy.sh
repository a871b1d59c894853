#!/usr/bin/env bash
# Copy to a second repository (a policy's copy target): rehydra copy vs restic copy, on the
# shared VHDX dataset, same data, same method, one run.
#
# Usage: bench/copy.sh      (env: RBENCH_DIR dataset dir, default /tmp/rbench;
#                             RBENCH_WORK work dir, default /tmp/rbench-work)
# For each tool: back up vm1.vhdx into repository A (untimed), copy A -> B (timed: "copy-full"),
# back up vm1-changed.vhdx (1 % rewritten) into A (untimed), copy again (timed: "copy-incr"),
# then restore the copied incremental from B and compare it with the source disk.
# Both tools re-encrypt for the target (different keys); restic's target is initialised with
# --copy-chunker-params so its dedup holds, as its documentation advises. borg 1.2 has no
# repository-to-repository copy (borg 2's `transfer` is not in Debian 12), so it has no row.
# Rows go to $RBENCH_WORK/copy.tsv (columns as bench/row.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED:-$ROOT/../shared}
RBENCH_DIR=${RBENCH_DIR:-/tmp/rbench}
W=${RBENCH_WORK:-/tmp/rbench-work}
RUN_LABEL=${RUN_LABEL:-$(date -u +%Y%m%dT%H%M%S)}
OUT=$W/copy.tsv
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}
(cd "$ROOT" && cargo build --release --locked -p rehydra-cli)
BIN=$CARGO_TARGET_DIR/release/rehydra
[ -f "$RBENCH_DIR/vm1-changed.vhdx" ] || bash "$SHARED/bench/make-dataset.sh" "$RBENCH_DIR"
V1=$RBENCH_DIR/vm1.vhdx; V1C=$RBENCH_DIR/vm1-changed.vhdx
mkdir -p "$W"
[ -f "$OUT" ] || printf 'run\ttool\tphase\tlogical_bytes\twall_s\tMBps\tuser_s\tsys_s\tcpu_pct\tmaxrss_kib\trepo_bytes_after\trepo_added_bytes\tpost_sync_s\tcache\tother_cpu_s\tsteal_s\tverify\n' > "$OUT"

timed () { # TOOL PHASE LOGICAL REPO -- cmd...
  local tool=$1 phase=$2 logical=$3 repo=$4; shift 5
  local tf="$W/time.copy.$tool.$phase.txt"
  local before; before=$(du -sb "$repo" | cut -f1)
  sync
  /usr/bin/time -v -o "$tf" "$@" > "$W/log.copy.$tool.$phase.txt" 2>&1 || { echo "FAILED: $tool $phase" >&2; tail -20 "$W/log.copy.$tool.$phase.txt" >&2; return 1; }
  local t0 t1; t0=$(date +%s.%N); sync; t1=$(date +%s.%N)
  python3 "$HERE/row.py" "$tf" "$RUN_LABEL" "$tool" "$phase" "$logical" "$before" "$(du -sb "$repo" | cut -f1)" "$t0" "$t1" >> "$OUT"
  tail -1 "$OUT" | cut -f2-12
}

# ---- rehydra (the VHDX parsed natively, as the main benchmark's rehydra-vhdx)
A=$W/copy-rh-a; B=$W/copy-rh-b; rm -rf "$A" "$B" "$W/copy-rh-cache" "$W/copy-rh-out"
export REHYDRA_CACHE_DIR=$W/copy-rh-cache REHYDRA_PASSWORD=rbench-source-0001 REHYDRA_COPY_PASSWORD=rbench-target-0002
R () { "$BIN" --no-catalog --quiet "$@"; }
R -r "$A" init > /dev/null
REHYDRA_PASSWORD=$REHYDRA_COPY_PASSWORD R -r "$B" init > /dev/null
R -r "$A" backup --disk-format vhdx --disk "$V1" --asset vm1 > /dev/null
timed rehydra copy-full "$(stat -c %s "$V1")" "$B" -- "$BIN" --no-catalog --quiet -r "$A" copy --to "$B"
R -r "$A" backup --disk-format vhdx --disk "$V1C" --asset vm1 > /dev/null
timed rehydra copy-incr "$(stat -c %s "$V1C")" "$B" -- "$BIN" --no-catalog --quiet -r "$A" copy --to "$B"
REHYDRA_PASSWORD=$REHYDRA_COPY_PASSWORD R -r "$B" restore latest --target "$W/copy-rh-out.raw"
qemu-img compare -q -f raw -F vhdx "$W/copy-rh-out.raw" "$V1C" && v=qemu-img-compare-identical || v=COMPARE-DIFFERS
sed -i '$ s/\t[^\t]*$/\t'"$v"'/' "$OUT"
rm -rf "$A" "$B" "$W/copy-rh-cache" "$W/copy-rh-out.raw"

# ---- restic
A=$W/copy-restic-a; B=$W/copy-restic-b; rm -rf "$A" "$B" "$W/copy-restic-out"
printf 'rbench-source-0001\n' > "$W/pw-a"; printf 'rbench-target-0002\n' > "$W/pw-b"
restic -q -r "$A" --password-file "$W/pw-a" init > /dev/null
restic -q -r "$B" --password-file "$W/pw-b" init --from-repo "$A" --from-password-file "$W/pw-a" --copy-chunker-params > /dev/null
restic -q -r "$A" --password-file "$W/pw-a" backup "$V1" --tag vm1 > /dev/null
timed restic copy-full "$(stat -c %s "$V1")" "$B" -- restic -q -r "$B" --password-file "$W/pw-b" copy --from-repo "$A" --from-password-file "$W/pw-a"
restic -q -r "$A" --password-file "$W/pw-a" backup "$V1C" --tag vm1 > /dev/null
timed restic copy-incr "$(stat -c %s "$V1C")" "$B" -- restic -q -r "$B" --password-file "$W/pw-b" copy --from-repo "$A" --from-password-file "$W/pw-a"
restic -q -r "$B" --password-file "$W/pw-b" restore latest --target "$W/copy-restic-out" > /dev/null
cmp -s "$V1C" "$(find "$W/copy-restic-out" -name vm1-changed.vhdx)" && v=cmp-identical || v=CMP-DIFFERS
sed -i '$ s/\t[^\t]*$/\t'"$v"'/' "$OUT"
rm -rf "$A" "$B" "$W/copy-restic-out" "$W/pw-a" "$W/pw-b"

echo "rows in $OUT"
column -t -s $'\t' "$OUT" | cut -c1-200
