#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in fuzz/ under libFuzzer (cargo fuzz on stable
# via RUSTC_BOOTSTRAP), FUZZ_SECONDS each (default 60). The bodies are in crates/fuzzing;
# the test suite already runs them over seeds and mutations on every run, so this is for
# longer hunts. Crashes land in fuzz/artifacts/<target>, which the test suite replays.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
export CARGO_TERM_COLOR=never
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"

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
    cargo fuzz run "$t" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 "${extra[@]}" >/tmp/rehydra-fuzz-$t.log 2>&1 \
      || { echo "fuzz target $t failed:"; tail -40 /tmp/rehydra-fuzz-$t.log; exit 1; }
    echo "fuzz $t: $(grep -Eo 'Done [0-9]+ runs' /tmp/rehydra-fuzz-$t.log || echo ok)"
  done
)

