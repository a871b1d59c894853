#!/usr/bin/env bash
# Set up, then run the whole test suite: unit, integration and CLI tests, the plugins and
# the SDK, the desktop app end to end, and every fuzz target's body over its seeds and
# mutations of them (crates/fuzzing/tests/corpus.rs). Coverage-guided fuzzing under
# libFuzzer, an instrumented second build, is scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# the set-up path a fresh machine takes (this one already has the packages), as root and user
scripts/check-setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
export CARGO_TERM_COLOR=never
# one build, never rebuilt in place: incremental state would only take disk space (and
# what an earlier incremental build left is removed)
export CARGO_INCREMENTAL=0
rm -rf "$CARGO_TARGET_DIR/debug/incremental"
mkdir -p "$CARGO_TARGET_DIR"
free_gib=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print int($4 / 1048576) }')
echo "disk before the build: ${free_gib} GiB free"
# a build cache grown past what the disk holds would fail a link halfway: start afresh
if [ "$free_gib" -lt 20 ]; then
  echo "less than 20 GiB free: removing the build cache $CARGO_TARGET_DIR ($(du -sh "$CARGO_TARGET_DIR" | cut -f1)) for a clean build"
  rm -rf "$CARGO_TARGET_DIR"
  mkdir -p "$CARGO_TARGET_DIR"
fi

echo "== plugins (wasm32-wasip2 components, signed with the development key)"
COMPONENTIZE_PY="$HOME/.cache/rehydra/venv/bin/componentize-py" cargo xtask plugins

# the UI first: the desktop app is compiled with the rest of the workspace below, and Tauri
# embeds the built UI
echo "== desktop app UI (Vite + TypeScript)"
npm ci --prefix ui --no-audit --no-fund --loglevel=error
npm --prefix ui run build

# One selection, the whole workspace, for every build below: Cargo resolves features per
# selection, and a second selection with other features (the app alone, the plugins
# alone) would compile wasmtime and most shared crates again (about 10 min of a cold run)
echo "== cargo test (host crates, the desktop app and its generated UI types, and the plugins and the SDK, built for this machine: verbs run under the SDK's mock host; plugins run as components through the host)"
cargo test --locked --workspace 2>&1 | tee /tmp/rehydra-test.log
# the binaries the end-to-end tests and the packages use (the app's is linked only here);
# --tests keeps the selection's features the same, so nothing else is compiled again
cargo build --locked --workspace --bins --tests

# the CLI and the desktop app built for Windows, the CLI run under Wine: C:\ and \\?\
# paths, names NTFS refuses, one repository shared with the Linux build
scripts/windows-test.sh

echo "== desktop app end to end under Xvfb"
xvfb-run -a node ui/e2e/app.e2e.mjs 2>&1 | tee /tmp/rehydra-e2e.log
# the .debs (the command line's and the desktop app's), the AppImage and the Windows
# installer with the desktop app, built from the debug binaries and checked (the
# installer is run, used and uninstalled under Wine)
scripts/package-test.sh --with-app

du -sh "$CARGO_TARGET_DIR" 2>/dev/null | awk '{ print "build directory: " $1 }' || true
echo "app end-to-end: $(grep -c '^ok - ' /tmp/rehydra-e2e.log) checks passed"
# one closing line summing every cargo test result
awk '/^test result:/ { for (i=1;i<=NF;i++) { if ($i ~ /^passed;?$/) p+=$(i-1); if ($i ~ /^failed;?$/) f+=$(i-1) } } END { printf "%d passed, %d failed\n", p, f }' /tmp/rehydra-test.log
