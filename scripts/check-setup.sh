#!/usr/bin/env bash
# The set-up path as a fresh Debian 12 machine takes it, as root and as a sudo user: every
# package reported missing, `apt-get` and `sudo` recorded instead of run. A machine that
# already has the packages (CI's) never takes this path, so it is played here.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for uid in 0 1000; do
  bin="$work/bin-$uid" log="$work/log-$uid"
  mkdir -p "$bin"
  printf '#!/bin/sh\n[ "$1" = -u ] && echo %s || exec /usr/bin/id "$@"\n' "$uid" > "$bin/id"
  printf '#!/bin/sh\nexit 1\n' > "$bin/dpkg"                       # nothing installed
  printf '#!/bin/sh\necho "apt-get $*" >> %s\n' "$log" > "$bin/apt-get"
  printf '#!/bin/sh\necho "sudo $1" >> %s\nexec "$@"\n' "$log" > "$bin/sudo"
  chmod +x "$bin"/*
  PATH="$bin:$PATH" REHYDRA_SETUP_STOP=packages scripts/setup.sh \
    || { echo "setup.sh failed as uid $uid on a fresh machine"; exit 1; }
  grep -q "apt-get install -y -qq build-essential" "$log" \
    || { echo "setup.sh as uid $uid did not install the packages:"; cat "$log"; exit 1; }
  if [ "$uid" = 0 ]; then
    ! grep -q '^sudo' "$log" || { echo "setup.sh as root used sudo:"; cat "$log"; exit 1; }
  else
    [ "$(grep -c '^sudo' "$log")" = 2 ] || { echo "setup.sh as a user did not use sudo for apt-get:"; cat "$log"; exit 1; }
  fi
done
echo "setup.sh on a fresh machine: root and sudo user both install the packages"
