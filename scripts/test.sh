#!/usr/bin/env bash
# Set up, then run the whole test suite: unit, integration and CLI tests, plus the fuzz
# targets (built, then each run briefly).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
export CARGO_TERM_COLOR=never

echo "== plugins (wasm32-wasip2 components, signed with the development key)"
COMPONENTIZE_PY="$HOME/.cache/rehydra/venv/bin/componentize-py" cargo xtask plugins

echo "== cargo test (host crates; plugins are tested through the host)"
cargo test --locked 2>&1 | tee /tmp/rehydra-test.log
echo "== plugin and SDK unit tests (built for this machine; verbs run under the SDK's mock host)"
cargo test --locked -p rehydra-plugin-sdk -p example-files -p hyperv-vm -p tvm-keys -p cluster-files 2>&1 | tee -a /tmp/rehydra-test.log

echo "== desktop app: UI (Vite + TypeScript), the Tauri binary, end-to-end under Xvfb"
npm ci --prefix ui --no-audit --no-fund --loglevel=error
npm --prefix ui run build
cargo build --locked -p rehydra-app
# the UI's TypeScript types are generated from the Rust ones; this fails when they drifted
cargo test --locked -p rehydra-app 2>&1 | tee -a /tmp/rehydra-test.log
xvfb-run -a node ui/e2e/app.e2e.mjs 2>&1 | tee /tmp/rehydra-e2e.log

echo "== fuzz targets (cargo fuzz on stable via RUSTC_BOOTSTRAP)"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
(
  cd fuzz
  export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR-fuzz"
  cargo fuzz build
  # seed the VHDX target with a real image (its CRCs are re-sealed after each mutation)
  mkdir -p corpus/vhdx
  [ -f corpus/vhdx/seed-qemu.vhdx ] || { qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M corpus/vhdx/seed-qemu.vhdx 8M \
    && qemu-io -f vhdx -c "write -q -P 0x5a 2M 1M" corpus/vhdx/seed-qemu.vhdx; }
  mkdir -p corpus/vhd
  [ -f corpus/vhd/seed-qemu.vhd ] || { qemu-img create -q -f vpc corpus/vhd/seed-qemu.vhd 4M \
    && qemu-io -f vpc -c "write -q -P 0x5a 0 64k" corpus/vhd/seed-qemu.vhd; }
  mkdir -p corpus/qcow2
  [ -f corpus/qcow2/seed.qcow2 ] || { qemu-img create -q -f qcow2 -o cluster_size=512 corpus/qcow2/seed.qcow2 64k \
    && qemu-io -f qcow2 -c "write -q -P 0x5a 1k 2k" -c "write -q -z 8k 1k" corpus/qcow2/seed.qcow2 \
    && head -c 32768 /dev/zero | tr '\0' 'q' > corpus/qcow2.raw \
    && qemu-img convert -c -f raw -O qcow2 -o cluster_size=512 corpus/qcow2.raw corpus/qcow2/seed-compressed.qcow2; }
  mkdir -p corpus/partitions
  [ -f corpus/partitions/gpt ] || { truncate -s 1M corpus/partitions/gpt \
    && printf 'label: gpt\nstart=64, size=256\nstart=512, size=128\n' | sfdisk -q corpus/partitions/gpt >/dev/null; }
  [ -f corpus/partitions/mbr ] || { truncate -s 256K corpus/partitions/mbr \
    && printf 'label: dos\nstart=8, size=64, type=83\nstart=100, size=300, type=5\nstart=120, size=50, type=7\n' | sfdisk -q corpus/partitions/mbr >/dev/null; }
  # hostile content maps: a link then a path through it, `..` and absolute paths
  mkdir -p corpus/restore_map
  printf 'd a\nf a/x\nl b>@\nd b/c\nf b/c/x\n' > corpus/restore_map/seed-link
  printf 'd ..\nf ../x\nf /etc/x\nd a\nd a\nf a/y\n' > corpus/restore_map/seed-dots
  printf 'l a>@\nf a/x\nl c>../../outside\nf c\n' > corpus/restore_map/seed-through
  for t in $(cargo fuzz list); do
    extra=(); [ "$t" = vhdx ] && extra=(-max_len=12582912)  # the seed images are 9 MiB …
    [ "$t" = vhd ] && extra=(-max_len=4194304)               # … and 2 MiB
    [ "$t" = partitions ] && extra=(-max_len=1048576)
    cargo fuzz run "$t" -- -max_total_time="${FUZZ_SECONDS:-10}" -rss_limit_mb=4096 "${extra[@]}" >/tmp/rehydra-fuzz-$t.log 2>&1 \
      || { echo "fuzz target $t failed:"; tail -40 /tmp/rehydra-fuzz-$t.log; exit 1; }
    echo "fuzz $t: $(grep -Eo 'Done [0-9]+ runs' /tmp/rehydra-fuzz-$t.log || echo ok)"
  done
)

echo "app end-to-end: $(grep -c '^ok - ' /tmp/rehydra-e2e.log) checks passed"
# one closing line summing every cargo test result
awk '/^test result:/ { for (i=1;i<=NF;i++) { if ($i ~ /^passed;?$/) p+=$(i-1); if ($i ~ /^failed;?$/) f+=$(i-1) } } END { printf "%d passed, %d failed\n", p, f }' /tmp/rehydra-test.log
