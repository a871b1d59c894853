#!/usr/bin/env bash
# Packages: a .deb of the command line (with the systemd unit, the first-party plugins,
# man pages and shell completions), a .deb of the desktop app (rehydra-desktop, when the
# app is built for Linux: its menu entry, icons and AppStream metadata), an AppImage of
# both with the plugins (when the app is built) and a Windows installer of the command
# line (NSIS, with the plugins), into dist/. Uses what is built: `--release` builds release binaries
# first; without it the debug ones (as the test command does, to check the packages).
#   scripts/package.sh [--release] [--with-app]
# Needs dpkg-deb, makensis (Debian's nsis) and the x86_64-pc-windows-gnu target
# (scripts/setup.sh installs them); the plugins come from `cargo xtask plugins`.
# The desktop app joins the Windows installer with `--release` (which builds it) or
# `--with-app` (the debug one, built before with `cargo build --target
# x86_64-pc-windows-gnu -p rehydra-app`); the test command does not build it, for time:
# the app's Windows build is another cold build of its whole tree. Needs node and npm for
# the app's UI then. The Linux app is packaged when it is built (`cargo build -p
# rehydra-app`, which the test command does; `--release` builds it).
# The AppImage is the runtime (the small ELF that mounts the image with FUSE, or extracts
# it, and starts AppRun) followed by a SquashFS of the AppDir (mksquashfs, Debian's
# squashfs-tools). AppImage's own tools and runtime are published on GitHub only, which
# this build does not reach: the runtime is AppImageKit's (MIT) as the `appimage` crate on
# crates.io carries it, fetched from the crate registry and checked against pinned
# digests (the crate's copy: it could not be compared with AppImageKit's own release
# here); REHYDRA_APPIMAGE_RUNTIME names another runtime file (AppImage's static
# type2-runtime, say, where GitHub is reachable), with REHYDRA_APPIMAGE_RUNTIME_SHA256 its
# expected digest.
# Updates of the app: with REHYDRA_UPDATE_KEY (a minisign secret key file, made once with
# `minisign -G -W -p rehydra-update.pub -s rehydra-update.key` and kept out of the
# repository, in the build's secrets) and REHYDRA_UPDATE_BASE_URL (where dist/ will be
# published), the desktop .deb and the Windows installer are signed (FILE.minisig, for
# `minisign -V`) and dist/latest.json names them with their signatures for Tauri's
# updater; a --release build then compiles the key's public half and the manifest's
# address into the app (REHYDRA_UPDATE_PUBKEY, REHYDRA_UPDATE_URL). Each signature's
# trusted comment names the version, which the app requires.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
work="$(mktemp -d /tmp/rehydra-package.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [ -n "${REHYDRA_UPDATE_KEY:-}" ]; then
    [ -n "${REHYDRA_UPDATE_BASE_URL:-}" ] || { echo "package: REHYDRA_UPDATE_KEY needs REHYDRA_UPDATE_BASE_URL (where dist/ will be published)" >&2; exit 2; }
    command -v minisign >/dev/null || { echo "package: signing updates needs minisign (apt-get install minisign)" >&2; exit 1; }
    minisign -R -f -s "$REHYDRA_UPDATE_KEY" -p "$work/update.pub" >/dev/null || { echo "package: $REHYDRA_UPDATE_KEY is not a minisign secret key" >&2; exit 2; }
    REHYDRA_UPDATE_URL="${REHYDRA_UPDATE_BASE_URL%/}/latest.json"
    REHYDRA_UPDATE_PUBKEY="$(base64 -w0 "$work/update.pub")"
    export REHYDRA_UPDATE_URL REHYDRA_UPDATE_PUBKEY
fi
profile=debug
with_app=false
for a in "$@"; do
    case "$a" in
        --release) ;;
        --with-app) with_app=true ;;
        *) echo "package: unknown argument $a (--release, --with-app)" >&2; exit 2 ;;
    esac
done
# debug packages are for checking the layout: quick compression
deb_z=(-Zgzip -z1)
sqfs_z=(-comp gzip -Xcompression-level 1)
nsis_fast=(-DFAST)
if [[ " $* " == *" --release "* ]]; then
    profile=release
    deb_z=(-Zxz)
    sqfs_z=(-comp xz)
    nsis_fast=()
    cargo build --locked --release -p rehydra-cli
    cargo build --locked --release --target x86_64-pc-windows-gnu -p rehydra-cli
    with_app=true
    npm ci --prefix ui --no-audit --no-fund --loglevel=error
    npm --prefix ui run build >/dev/null
    cargo build --locked --release -p rehydra-app
    cargo build --locked --release --target x86_64-pc-windows-gnu -p rehydra-app
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
linux_exe="$CARGO_TARGET_DIR/$profile/rehydra"
linux_app="$CARGO_TARGET_DIR/$profile/rehydra-app"
win_exe="$CARGO_TARGET_DIR/x86_64-pc-windows-gnu/$profile/rehydra.exe"
win_app="$CARGO_TARGET_DIR/x86_64-pc-windows-gnu/$profile/rehydra-app.exe"
plugins="$CARGO_TARGET_DIR/plugins"
for f in "$linux_exe" "$win_exe"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "package: $f is not built (cargo build -p rehydra-cli, with --target x86_64-pc-windows-gnu for the .exe)" >&2; exit 1; }
done
# the first-party workload plugins (not the examples and test fixtures built beside them)
shipped=(hyperv-vm tvm-keys cluster-files keyvault active-directory sql-server arc-sql-mi kubernetes)
for p in "${shipped[@]}"; do
    [ -f "$plugins/$p.wasm" ] || { echo "package: $plugins/$p.wasm is not built (cargo xtask plugins)" >&2; exit 1; }
done
dist="$PWD/dist"
mkdir -p "$dist"
# the kind of package an app binary is in, as Tauri's bundler marks it in the binary (a
# fixed-length string the updater reads): the Windows installer's copy installs its
# updates itself, the .deb's leaves them to the package manager
mark_bundle() {
    grep -qa __TAURI_BUNDLE_TYPE_VAR_UNK "$1" || { echo "package: $1 has no unmarked bundle type (a Tauri 2 binary has one)" >&2; exit 1; }
    perl -0777 -pi -e "s/__TAURI_BUNDLE_TYPE_VAR_UNK/__TAURI_BUNDLE_TYPE_VAR_$2/g" "$1"
}

echo "== package: rehydra_${version}_amd64.deb"
root="$work/deb"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/rehydra/plugins" "$root/lib/systemd/system" \
    "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" \
    "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d" \
    "$root/usr/share/doc/rehydra"
install -m 0755 "$linux_exe" "$root/usr/bin/rehydra"
for p in "${shipped[@]}"; do install -m 0644 "$plugins/$p.wasm" "$root/usr/lib/rehydra/plugins/"; done
install -m 0644 packaging/systemd/rehydra.service "$root/lib/systemd/system/"
"$linux_exe" man --dir "$root/usr/share/man/man1" >/dev/null
gzip -9n "$root"/usr/share/man/man1/*.1
"$linux_exe" completions bash >"$root/usr/share/bash-completion/completions/rehydra"
"$linux_exe" completions zsh >"$root/usr/share/zsh/vendor-completions/_rehydra"
"$linux_exe" completions fish >"$root/usr/share/fish/vendor_completions.d/rehydra.fish"
install -m 0644 README.md "$root/usr/share/doc/rehydra/"
size="$(du -sk "$root" | cut -f1)"
# Depends: the package of every shared library a binary needs, as this Debian has them
depends_of() {
    readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | while read -r so; do
        p="$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ { print $NF; exit }')"
        [ -n "$p" ] || { echo "package: $so (needed by $1) is not installed here" >&2; exit 1; }
        for c in "$p" "/usr$p" "${p#/usr}" "$(readlink -f "$p")"; do
            dpkg -S "$c" 2>/dev/null | head -1 | cut -d: -f1 && break
        done
    done | sort -u | grep -v '^libc6$' | paste -sd, | sed 's/,/, /g'
}
depends="$(depends_of "$linux_exe")"
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/${depends:+, $depends}/" \
    packaging/deb/control >"$root/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
deb="$dist/rehydra_${version}_amd64.deb"
dpkg-deb --root-owner-group "${deb_z[@]}" --build "$root" "$deb" >/dev/null
echo "   $deb"

if [ -x "$linux_app" ]; then
    echo "== package: rehydra-desktop_${version}_amd64.deb"
    app_root="$work/desktop"
    install -d "$app_root/DEBIAN" "$app_root/usr/bin" "$app_root/usr/share/applications" \
        "$app_root/usr/share/metainfo" "$app_root/usr/share/doc/rehydra-desktop"
    install -m 0755 "$linux_app" "$app_root/usr/bin/rehydra-app"
    mark_bundle "$app_root/usr/bin/rehydra-app" DEB
    install -m 0644 packaging/desktop/dev.rehydra.app.desktop "$app_root/usr/share/applications/"
    sed "s/@VERSION@/$version/" packaging/desktop/dev.rehydra.app.metainfo.xml \
        >"$app_root/usr/share/metainfo/dev.rehydra.app.metainfo.xml"
    chmod 0644 "$app_root/usr/share/metainfo/dev.rehydra.app.metainfo.xml"
    for icon in 32x32:32x32.png 128x128:128x128.png 256x256:128x128@2x.png; do
        install -D -m 0644 "icons/${icon#*:}" "$app_root/usr/share/icons/hicolor/${icon%%:*}/apps/dev.rehydra.app.png"
    done
    install -m 0644 README.md "$app_root/usr/share/doc/rehydra-desktop/"
    app_size="$(du -sk "$app_root" | cut -f1)"
    app_depends="$(depends_of "$linux_app")"
    sed -e "s/@VERSION@/$version/g" -e "s/@SIZE@/$app_size/" -e "s/@DEPENDS@/${app_depends:+, $app_depends}/" \
        packaging/deb/desktop.control >"$app_root/DEBIAN/control"
    app_deb="$dist/rehydra-desktop_${version}_amd64.deb"
    dpkg-deb --root-owner-group "${deb_z[@]}" --build "$app_root" "$app_deb" >/dev/null
    echo "   $app_deb"
else
    echo "   (no desktop .deb: $linux_app is not built; cargo build -p rehydra-app)"
fi

if [ -x "$linux_app" ]; then
    echo "== package: Rehydra-${version}-x86_64.AppImage"
    # the runtime, checked each time: the crate's digest when it is fetched, then the
    # digest of the copy this build uses (pinned, or REHYDRA_APPIMAGE_RUNTIME_SHA256 for
    # another runtime) and the type-2 AppImage magic ("AI" 2 at byte 8)
    cached="${XDG_CACHE_HOME:-$HOME/.cache}/rehydra/appimage-runtime-x86_64"
    runtime_sha256=328e0d745c5c6817048c27bc3e8314871703f8f47ffa81a37cb06cd95a94b323
    if [ -n "${REHYDRA_APPIMAGE_RUNTIME:-}" ]; then
        runtime_sha256="${REHYDRA_APPIMAGE_RUNTIME_SHA256:?package: REHYDRA_APPIMAGE_RUNTIME needs REHYDRA_APPIMAGE_RUNTIME_SHA256, the expected sha256 of that file}"
        cached="$REHYDRA_APPIMAGE_RUNTIME"
    elif [ ! -f "$cached" ]; then
        curl -fsSL --retry 3 -o "$work/appimage.crate" https://static.crates.io/crates/appimage/appimage-0.4.0.crate \
            || { echo "package: the AppImage runtime could not be fetched from crates.io (or set REHYDRA_APPIMAGE_RUNTIME)" >&2; exit 1; }
        echo "567a4da6b94a2ac20a27620933c80fc14cf475b5fe7d7b137d20eb237d6b1920  $work/appimage.crate" | sha256sum -c --quiet \
            || { echo "package: the appimage crate fetched from crates.io is not the one pinned here" >&2; exit 1; }
        tar -xzf "$work/appimage.crate" -C "$work" appimage-0.4.0/assets/runtime-x86_64
        mkdir -p "$(dirname "$cached")"
        install -m 0644 "$work/appimage-0.4.0/assets/runtime-x86_64" "$cached.tmp"
        mv "$cached.tmp" "$cached"
    fi
    # (checked and used as one private copy: the file is not read again after its check)
    runtime="$work/runtime"
    cp "$cached" "$runtime"
    echo "$runtime_sha256  $runtime" | sha256sum -c --quiet \
        || { echo "package: $cached is not the AppImage runtime expected (sha256 $runtime_sha256): remove it to fetch it again, or fix REHYDRA_APPIMAGE_RUNTIME_SHA256" >&2; exit 1; }
    [ "$(od -An -tx1 -j8 -N3 "$runtime" | tr -d ' ')" = 414902 ] \
        || { echo "package: $runtime is not a type-2 AppImage runtime" >&2; exit 1; }
    appdir="$work/AppDir"
    install -d "$appdir/usr/bin" "$appdir/usr/lib/rehydra/plugins" "$appdir/usr/share/applications" \
        "$appdir/usr/share/metainfo"
    install -m 0755 packaging/appimage/AppRun "$appdir/AppRun"
    install -m 0755 "$linux_app" "$appdir/usr/bin/rehydra-app"
    mark_bundle "$appdir/usr/bin/rehydra-app" APP
    install -m 0755 "$linux_exe" "$appdir/usr/bin/rehydra"
    for p in "${shipped[@]}"; do install -m 0644 "$plugins/$p.wasm" "$appdir/usr/lib/rehydra/plugins/"; done
    # the menu entry and icon at the top, as AppImage's desktop integration looks for them
    install -m 0644 packaging/desktop/dev.rehydra.app.desktop "$appdir/"
    install -m 0644 packaging/desktop/dev.rehydra.app.desktop "$appdir/usr/share/applications/"
    install -m 0644 icons/128x128@2x.png "$appdir/dev.rehydra.app.png"
    ln -s dev.rehydra.app.png "$appdir/.DirIcon"
    sed "s/@VERSION@/$version/" packaging/desktop/dev.rehydra.app.metainfo.xml \
        >"$appdir/usr/share/metainfo/dev.rehydra.app.appdata.xml"
    install -D -m 0644 README.md "$appdir/usr/share/doc/rehydra/README.md"
    mksquashfs "$appdir" "$work/appdir.squashfs" -root-owned -noappend -no-progress -quiet "${sqfs_z[@]}" >/dev/null
    appimage="$dist/Rehydra-${version}-x86_64.AppImage"
    cat "$runtime" "$work/appdir.squashfs" >"$appimage.tmp"
    chmod 0755 "$appimage.tmp"
    mv "$appimage.tmp" "$appimage"
    echo "   $appimage"
else
    echo "   (no AppImage: $linux_app is not built; cargo build -p rehydra-app)"
fi

echo "== package: rehydra-${version}-setup.exe (Windows, NSIS)"
src="$work/win"
mkdir -p "$src/plugins"
cp "$win_exe" "$src/rehydra.exe"
for p in "${shipped[@]}"; do cp "$plugins/$p.wasm" "$src/plugins/"; done
sed 's/$/\r/' packaging/windows/README.txt >"$src/README.txt"
app_define=()
if $with_app; then
    for f in "$win_app" "$(dirname "$win_app")/WebView2Loader.dll"; do
        [ -f "$f" ] || { echo "package: $f is not built (cargo build --target x86_64-pc-windows-gnu -p rehydra-app)" >&2; exit 1; }
    done
    cp "$win_app" "$(dirname "$win_app")/WebView2Loader.dll" "$src/"
    mark_bundle "$src/rehydra-app.exe" NSS
    app_define=(-DAPP)
    echo "   with the desktop app"
else
    echo "   the command line only (the desktop app with --release or --with-app)"
fi
for p in "$src"/plugins/*.wasm; do
    printf 'Delete "$APPDATA\\Rehydra\\plugins\\%s"\n' "$(basename "$p")"
done >"$src/uninstall-plugins.nsh"
exe="$dist/rehydra-${version}-setup.exe"
makensis -V2 "${nsis_fast[@]}" "${app_define[@]}" -DVERSION="$version" -DSRC="$src" -DOUTFILE="$exe" packaging/windows/rehydra.nsi >/dev/null
echo "   $exe"

if [ -n "${REHYDRA_UPDATE_KEY:-}" ]; then
    echo "== package: latest.json (the update manifest) and the installers' signatures"
    # base64 of the minisign signature, as the manifest carries it; FILE.minisig stays
    sign() {
        minisign -S -s "$REHYDRA_UPDATE_KEY" -m "$1" -x "$1.minisig" \
            -t "$(printf 'timestamp:%s\tfile:%s\tversion:%s' "$(date +%s)" "$(basename "$1")" "$version")" >/dev/null </dev/null
        base64 -w0 "$1.minisig"
    }
    entries=()
    [ -n "${app_deb:-}" ] && [ -f "$app_deb" ] && entries+=("linux-x86_64-deb=$app_deb=$(sign "$app_deb")")
    [ -n "${appimage:-}" ] && [ -f "$appimage" ] && entries+=("linux-x86_64-appimage=$appimage=$(sign "$appimage")")
    $with_app && entries+=("windows-x86_64-nsis=$exe=$(sign "$exe")")
    [ ${#entries[@]} -gt 0 ] || { echo "package: no app package to offer as an update (build the app)" >&2; exit 1; }
    python3 - "$dist/latest.json" "$version" "${REHYDRA_UPDATE_BASE_URL%/}" "${REHYDRA_UPDATE_NOTES:-Rehydra $version}" "${entries[@]}" <<'PY'
import json, os, sys, datetime
out, version, base, notes, *entries = sys.argv[1:]
platforms = {}
for e in entries:
    target, path, signature = e.split("=", 2)
    platforms[target] = {"signature": signature, "url": f"{base}/{os.path.basename(path)}"}
manifest = {"version": version, "notes": notes,
            "pub_date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platforms": platforms}
with open(out + ".tmp", "w") as f:
    json.dump(manifest, f, indent=2)
os.replace(out + ".tmp", out)
PY
    echo "   $dist/latest.json (${#entries[@]} platform(s)); publish dist/ at ${REHYDRA_UPDATE_BASE_URL%/}/"
fi
