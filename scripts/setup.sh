#!/usr/bin/env bash
# Install what building and testing Rehydra needs on Debian 12 (idempotent).
# Usage: scripts/setup.sh [--bench]   (--bench adds restic, borg and the dataset tools)
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
pkgs=(build-essential pkg-config curl ca-certificates qemu-utils e2fsprogs python3 python3-venv openssh-client openssh-server libvhdi-utils python3-libvhdi ntfs-3g fdisk)
# the Kubernetes API server stand-in of the CLI's tests reads the Arc data services' CRDs (YAML)
pkgs+=(python3-yaml)
# the plugin host's HTTP tests send requests through a real forward proxy on loopback
pkgs+=(tinyproxy)
# the Active Directory plugin's tests run a real Samba AD domain controller and OpenLDAP's tools
pkgs+=(samba samba-ad-dc samba-ad-provision ldb-tools ldap-utils openssl)
# Kerberos binds to directories: MIT krb5's GSSAPI (bindgen reads its headers with libclang),
# and kinit for the tests
pkgs+=(libkrb5-dev libclang-dev krb5-user)
# the OS keychain (keyring's Secret Service client) links libdbus
pkgs+=(libdbus-1-dev)
# the desktop app (Tauri 2 on WebKitGTK) and its end-to-end tests (Xvfb, WebKitWebDriver)
pkgs+=(libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev xvfb xauth webkit2gtk-driver)
# the CLI is cross-built for Windows (MinGW-w64) and tested under Wine (scripts/windows-test.sh)
pkgs+=(gcc-mingw-w64-x86-64 wine64)
# the Windows installer (scripts/package.sh; its test runs it under Wine), and the check
# of the desktop .deb's AppStream metadata (appstreamcli)
pkgs+=(nsis appstream)
# update manifests: the packages' signatures (minisign, the format Tauri's updater checks)
pkgs+=(minisign)
# the AppImage's file system (mksquashfs)
pkgs+=(squashfs-tools)
# assessment reports: the PDF is printed by headless Chromium, its pages read back with poppler
pkgs+=(chromium poppler-utils)
# the UI is built with Vite (Node 18 or newer; Debian's nodejs unless one is installed)
command -v npm >/dev/null || pkgs+=(nodejs npm)
[ "${1:-}" = "--bench" ] && pkgs+=(restic borgbackup b3sum time valgrind)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# scripts/check-setup.sh plays a fresh machine up to here (as root and as a sudo user)
[ "${REHYDRA_SETUP_STOP:-}" = packages ] && exit 0
if ! command -v cargo >/dev/null; then
  # Debian 12's own cargo is too old for edition 2024: use rustup
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
# the app's end-to-end tests talk WebDriver to tauri-driver, which fronts WebKitWebDriver
command -v tauri-driver >/dev/null || cargo install --locked --quiet tauri-driver
# plugins are WebAssembly components
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
# the CLI and the engine also build for Windows
rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
VENV="$HOME/.cache/rehydra/venv"
# componentize-py builds the Python example plugin (the contract is language-neutral);
# libvhdi-python is the independent reader our differencing-disk tests compare against
# (Debian 12's python3-libvhdi is from 2021 and cannot open VHDX differencing chains)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import componentize_py, pyvhdi" 2>/dev/null || "$VENV/bin/pip" install -q componentize-py==0.25.1 libvhdi-python==20260901
# object-storage repositories are tested against real servers on loopback: moto's S3
# server, and Azurite (Azure Blob; azure-storage-blob creates the test containers)
{ [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import azure.storage.blob" 2>/dev/null; } || "$VENV/bin/pip" install -q "moto[server]==5.2.5" "azure-storage-blob==12.31.1"
# SQL Server cannot run here: pysqlbridge is a real TDS server with TLS that answers SELECTs
# from JSON tables; our stand-in (crates/cli/tests/cli/support/sql_standin.py) adds
# BACKUP/RESTORE with SQL Server's side effects and errors
"$VENV/bin/python" -c "import pysqlbridge" 2>/dev/null || "$VENV/bin/pip" install -q "pysqlbridge==2.1.3"
# the SQL client a stand-in PowerShell on a command target uses (python-tds) for the
# test of batches run through a target (crates/cli/tests/cli/support/sql_pwsh.py)
"$VENV/bin/python" -c "import pytds, OpenSSL" 2>/dev/null || "$VENV/bin/pip" install -q "python-tds==1.17.1" "pyOpenSSL==26.4.0"
# its Kerberos acceptor for the integrated sign-in test: MIT's GSS-API from Python (built
# from source against libkrb5-dev, about 30 s)
"$VENV/bin/python" -c "import gssapi" 2>/dev/null || "$VENV/bin/pip" install -q "gssapi==1.12.0"
# its NTLM acceptor for the Windows build's sign-in with a Windows account and password
# (scripts/windows-test.sh): pyspnego checks the NTLMv2 response against a test account
"$VENV/bin/python" -c "import spnego" 2>/dev/null || "$VENV/bin/pip" install -q "pyspnego==0.12.4"
# the mail sink of the notification tests (STARTTLS with a test CA)
"$VENV/bin/python" -c "import aiosmtpd" 2>/dev/null || "$VENV/bin/pip" install -q "aiosmtpd==1.4.6"
[ -x "$HOME/.cache/rehydra/azurite/node_modules/.bin/azurite-blob" ] || npm install --silent --no-audit --no-fund --prefix "$HOME/.cache/rehydra/azurite" azurite@3.35.0
