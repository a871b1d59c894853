#!/usr/bin/env bash
# The main job: set up, build the plugins, the UI and the desktop app, and start the app
# on its embedded defaults (a local repository offered under the user's data folder, the
# SQLite catalog there too; the workload plugins installed for this user). On a machine
# without a display it says so and runs the command-line demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No display here (DISPLAY/WAYLAND_DISPLAY unset): the desktop app needs one."
  echo "Everything it does, the CLI does too (rehydra --help); running the CLI demo instead."
  exec scripts/demo.sh
fi
scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
COMPONENTIZE_PY="$HOME/.cache/rehydra/venv/bin/componentize-py" cargo xtask plugins >/dev/null
npm ci --prefix ui --no-audit --no-fund --loglevel=error
npm --prefix ui run build
cargo build --locked -p rehydra-cli -p rehydra-app
cli="$CARGO_TARGET_DIR/debug/rehydra"
# the first-party plugins, signed with this machine's development key
"$cli" plugins trust rehydra-dev "$(cat "$CARGO_TARGET_DIR/rehydra-dev/publisher.pub")" >/dev/null
for p in example-files hyperv-vm tvm-keys cluster-files keyvault active-directory; do
  "$cli" plugins install --replace "$CARGO_TARGET_DIR/plugins/$p.wasm" >/dev/null
done
echo "Starting Rehydra. Create the repository under Repositories (the location is filled in)."
exec "$CARGO_TARGET_DIR/debug/rehydra-app"
