#!/usr/bin/env bash
# Folder backups, Rehydra vs restic vs borg, in one run on the same tree: many small files,
# a full backup, then an incremental after 1 % of the files changed, then an incremental
# with nothing changed, then a restore.
#
# Usage: bench/tree.sh     (env: TREE_MIB size of the tree, default 400; TREE_DIR where it
#                           is built, default /tmp/rbench-tree; RBENCH_WORK work dir,
#                           default /tmp/rbench-work; TOOLS peers, default "restic borg-lz4")
# The tree is a deterministic choice of files from /usr/share, /usr/lib and /usr/include
# (ordered by sha256(seed:path), files up to 4 MiB, first-fit to TREE_MIB), the same pool
# shared/bench/make-dataset.sh draws from. The change rewrites 4 KiB inside 1 % of the
# files (chosen by the same seed). Rows go to $RBENCH_WORK/tree.tsv, same columns as
# bench/run.sh; bench/report.py renders them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TREE_MIB=${TREE_MIB:-400}
TREE_DIR=${TREE_DIR:-/tmp/rbench-tree}
export RBENCH_WORK=${RBENCH_WORK:-/tmp/rbench-work}
export RUN_LABEL=${RUN_LABEL:-tree-$(date -u +%Y%m%dT%H%M%S)}
OUT_TSV=${OUT_TSV:-$RBENCH_WORK/tree.tsv}
SEED=${RBENCH_SEED:-424242}
"$ROOT/scripts/setup.sh" --bench
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}
(cd "$ROOT" && cargo build --release --locked -p rehydra-cli)
BIN=$CARGO_TARGET_DIR/release/rehydra
W=$RBENCH_WORK; mkdir -p "$W"
[ -f "$OUT_TSV" ] || printf 'run\ttool\tphase\tlogical_bytes\twall_s\tMBps\tuser_s\tsys_s\tcpu_pct\tmaxrss_kib\trepo_bytes_after\trepo_added_bytes\tpost_sync_s\tcache\tother_cpu_s\tsteal_s\tverify\n' > "$OUT_TSV"
export REHYDRA_PASSWORD=rbench-fixed-password-0001 RESTIC_PASSWORD=rbench-fixed-password-0001 \
  BORG_PASSPHRASE=rbench-fixed-password-0001 BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes

# the tree, and its changed files (kept aside so every tool sees the same change)
python3 - "$TREE_DIR" "$TREE_MIB" "$SEED" <<'PY'
import hashlib, os, random, shutil, sys
dst, budget, seed = sys.argv[1], int(sys.argv[2]) << 20, sys.argv[3]
if os.path.exists(os.path.join(dst, ".complete")):
    sys.exit(0)
shutil.rmtree(dst, ignore_errors=True)
pool = []
for top in ("/usr/share", "/usr/lib", "/usr/include"):
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            s = os.path.getsize(p)
            if 0 < s <= 4 << 20:
                pool.append((hashlib.sha256(f"{seed}:{p}".encode()).hexdigest(), p, s))
pool.sort()
used, chosen = 0, []
for _, p, s in pool:
    if used + s <= budget:
        chosen.append(p); used += s
for p in chosen:
    out = os.path.join(dst, "tree", p.lstrip("/"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    shutil.copyfile(p, out)
    os.utime(out, (1700000000, 1700000000))
rng = random.Random(int(seed))
changed = sorted(rng.sample(chosen, max(1, len(chosen) // 100)))
with open(os.path.join(dst, "changed.list"), "w") as f:
    f.write("\n".join(os.path.join(dst, "tree", p.lstrip("/")) for p in changed) + "\n")
print(f"tree: {len(chosen)} files, {used >> 20} MiB; {len(changed)} to change", file=sys.stderr)
open(os.path.join(dst, ".complete"), "w").close()
PY
SRC=$TREE_DIR/tree
LOGICAL=$(du -sb "$SRC" | cut -f1)
# work on a copy each tool changes the same way
apply_change () {
  python3 - "$1" "$TREE_DIR/changed.list" "$SEED" <<'PY'
import os, random, sys
root, lst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = os.path.join(os.path.dirname(lst), "tree")
for i, p in enumerate(open(lst).read().split()):
    q = os.path.join(root, os.path.relpath(p, base))
    rng = random.Random(seed + i)
    size = os.path.getsize(q)
    off = rng.randrange(0, max(1, size - 4096))
    with open(q, "r+b") as f:
        f.seek(off); f.write(rng.randbytes(min(4096, size)))
PY
}

timed () {  # timed TOOL PHASE REPO -- cmd...
  local tool=$1 phase=$2 repo=$3; shift 4
  local tf="$W/time.$tool.$phase.txt" log="$W/log.$RUN_LABEL.$tool.$phase.txt"
  local before; before=$(du -sb "$repo" | cut -f1)
  echo "+ $*" > "$log"
  if ! /usr/bin/time -v -o "$tf" "$@" >> "$log" 2>&1; then echo "FAILED: $tool $phase" >&2; tail -20 "$log" >&2; return 1; fi
  local t0 t1; t0=$(date +%s.%N); sync; t1=$(date +%s.%N)
  local after; after=$(du -sb "$repo" | cut -f1)
  python3 "$HERE/row.py" "$tf" "$RUN_LABEL" "$tool" "$phase" "$LOGICAL" "$before" "$after" "$t0" "$t1" >> "$OUT_TSV"
  tail -1 "$OUT_TSV" | cut -f2-12
}

# what earlier runs left goes first, then nothing is deleted until every tool ran: for
# minutes after a large delete, ext4 spends most of each new inode's allocation skipping
# the recently deleted ones (`recently_deleted`), which would slow whichever tool came next
for tool in rehydra ${TOOLS:-restic borg-lz4}; do
  rm -rf "$W/tree-$tool" "$W/repo-$tool" "$W/restore-$tool" "$W/cache-rehydra"
done
sync
for tool in rehydra ${TOOLS:-restic borg-lz4}; do
  echo "=== run $RUN_LABEL: $tool"
  src=$W/tree-$tool repo=$W/repo-$tool rst=$W/restore-$tool
  mkdir -p "$rst"
  cp -a "$SRC" "$src"
  case $tool in
    rehydra)
      export REHYDRA_REPOSITORY=$repo REHYDRA_CACHE_DIR=$W/cache-rehydra
      "$BIN" --no-catalog init > /dev/null
      bk=("$BIN" --no-catalog --quiet backup "$src" --asset tree)
      rs=("$BIN" --no-catalog --quiet restore latest --target "$rst") ;;
    restic)
      restic -r "$repo" init --repository-version 2 > /dev/null
      bk=(restic -r "$repo" backup -q --host bench "$src")
      rs=(restic -r "$repo" restore latest --host bench --target "$rst") ;;
    borg-lz4)
      borg init -e repokey "$repo" > /dev/null
      bk=(sh -c 'cd "$1" && borg create --compression lz4 "$2::t$(date +%s%N)" .' _ "$src" "$repo")
      rs=(sh -c 'cd "$1" && borg extract "$2::$(borg list --last 1 --short "$2")"' _ "$rst" "$repo") ;;
  esac
  sync; find "$src" -type f -exec cat {} + > /dev/null
  timed "$tool" tree-full "$repo" -- "${bk[@]}"
  apply_change "$src"
  timed "$tool" tree-incr-1pct "$repo" -- "${bk[@]}"
  timed "$tool" tree-incr-none "$repo" -- "${bk[@]}"
  timed "$tool" tree-restore "$repo" -- "${rs[@]}"
  got=$(find "$rst" -type d -name "tree-$tool" -print -quit)
  [ -n "$got" ] || got=$rst
  verdict=$(diff -rq "$src" "$got" > /dev/null && echo diff-identical || echo DIFFERS)
  python3 - "$OUT_TSV" "$verdict" <<'PY'
import sys
p, v = sys.argv[1:3]
lines = open(p).read().splitlines(); cols = lines[-1].split("\t"); cols[-1] = v; lines[-1] = "\t".join(cols)
open(p, "w").write("\n".join(lines) + "\n")
PY
  echo "restore: $verdict"
done
for tool in rehydra ${TOOLS:-restic borg-lz4}; do
  rm -rf "$W/tree-$tool" "$W/repo-$tool" "$W/restore-$tool"
done
rm -rf "$W/cache-rehydra"
