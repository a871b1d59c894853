#!/usr/bin/env bash
# Builds the packages from the debug binaries (scripts/package.sh) and checks them: the
# .deb's metadata and contents, its binary and man pages and completions for every
# command; the desktop .deb (rehydra-desktop: dependencies, every library found, menu
# entry, icons, AppStream metadata); the AppImage (the command line through a link named
# rehydra finding the plugins inside it, its contents, and its app updating itself end to
# end: ui/e2e/appimage.e2e.mjs); the Windows installer run silently under Wine, the installed rehydra.exe
# finding the installed plugins in %ProgramData%, the PATH entry, then the uninstaller
# removing what it installed (and a service the installed CLI registered) and nothing else,
# an upgrade over the running service stopping it for the copy and starting it again;
# the desktop app and its Start menu shortcuts when the installer holds it. Exits non-zero
# naming the step.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}"
fail() { echo "packages: FAILED: $*" >&2; exit 1; }

work="$(mktemp -d /tmp/rehydra-pkgtest.XXXXXX)"
trap 'wineserver -k >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# signed for updates with a key made for this test (a release's is the build's secret)
minisign -G -W -p "$work/update.pub" -s "$work/update.key" >/dev/null
# (`--with-app`: with the desktop app built for Windows, as the test command does)
packaged="$(REHYDRA_UPDATE_KEY="$work/update.key" REHYDRA_UPDATE_BASE_URL=https://updates.example/rehydra/ scripts/package.sh "$@")" ||
    { printf '%s\n' "$packaged"; fail "scripts/package.sh"; }
echo "$packaged"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
deb="dist/rehydra_${version}_amd64.deb"
setup="dist/rehydra-${version}-setup.exe"

echo "== packages: the .deb"
info="$(dpkg-deb --info "$deb")"
grep -q "Package: rehydra" <<<"$info" || fail ".deb has no Package: rehydra"
grep -q "Version: $version" <<<"$info" || fail ".deb version is not $version"
# every library the binary needs comes from a package it depends on
for so in $(readelf -d "$CARGO_TARGET_DIR/debug/rehydra" | sed -n 's/.*Shared library: \[\(libssl\|libdbus\|libgcc_s\)[^]]*\]/\1/p'); do
    case "$so" in
        libssl) want=libssl3 ;; libdbus) want=libdbus-1-3 ;; libgcc_s) want=libgcc-s1 ;;
    esac
    grep -q "^ Depends:.*$want" <<<"$info" || fail ".deb does not depend on $want: $(grep Depends <<<"$info")"
done
contents="$(dpkg-deb --contents "$deb")"
grep -q ' root/root .* ./usr/bin/rehydra$' <<<"$contents" || fail "/usr/bin/rehydra not owned by root"
dpkg-deb -x "$deb" "$work/deb"
"$work/deb/usr/bin/rehydra" --version | grep -q "$version" || fail "the packaged binary does not run"
for p in hyperv-vm tvm-keys cluster-files keyvault active-directory sql-server arc-sql-mi kubernetes; do
    [ -f "$work/deb/usr/lib/rehydra/plugins/$p.wasm" ] || fail "plugin $p missing from the .deb"
done
[ -z "$(find "$work/deb/usr/lib/rehydra/plugins" -name 'fixture.wasm' -o -name 'hello-python.wasm' -o -name 'example-files.wasm')" ] \
    || fail "test plugins were packaged"
[ -f "$work/deb/lib/systemd/system/rehydra.service" ] || fail "no systemd unit"
grep -q '^ExecStart=/usr/bin/rehydra service' "$work/deb/lib/systemd/system/rehydra.service" || fail "the unit does not start the service"
[ -f "$work/deb/usr/share/man/man1/rehydra-service.1.gz" ] || fail "no man page for rehydra service"
grep -q 'service' "$work/deb/usr/share/bash-completion/completions/rehydra" || fail "bash completion lacks service"
dpkg-deb -e "$deb" "$work/control"
for m in postinst prerm postrm; do sh -n "$work/control/$m" || fail "maintainer script $m does not parse"; done
# the packaged binary loads the packaged plugins
listed="$(REHYDRA_CATALOG="$work/catalog.db" "$work/deb/usr/bin/rehydra" --plugin-dir "$work/deb/usr/lib/rehydra/plugins" plugins list 2>&1)" || true
for p in hyperv-vm keyvault arc-sql-mi; do grep -q "$p" <<<"$listed" || fail "the packaged CLI does not list $p: $listed"; done

echo "== packages: the desktop .deb"
app_deb="dist/rehydra-desktop_${version}_amd64.deb"
[ -f "$app_deb" ] || fail "no desktop .deb (the test command builds the app first: cargo build -p rehydra-app)"
app_info="$(dpkg-deb --info "$app_deb")"
grep -q "Package: rehydra-desktop" <<<"$app_info" || fail "the desktop .deb has no Package: rehydra-desktop"
grep -q "^ Depends:.*rehydra (= $version)" <<<"$app_info" || fail "the desktop .deb does not depend on rehydra $version"
# (the tray's AppIndicator library is loaded at run time, so it is named by hand)
for want in libwebkit2gtk-4.1-0 libgtk-3-0 libayatana-appindicator3-1; do
    grep -q "^ Depends:.*$want" <<<"$app_info" || fail "the desktop .deb does not depend on $want: $(grep Depends <<<"$app_info")"
done
dpkg-deb -x "$app_deb" "$work/desktop"
app="$work/desktop/usr/bin/rehydra-app"
[ -x "$app" ] || fail "no /usr/bin/rehydra-app"
missing="$(ldd "$app" | grep 'not found' || true)"
[ -z "$missing" ] || fail "libraries the app needs are missing: $missing"
desktop="$work/desktop/usr/share/applications/dev.rehydra.app.desktop"
grep -q '^Exec=rehydra-app$' "$desktop" || fail "the menu entry does not start rehydra-app"
icon="$(sed -n 's/^Icon=//p' "$desktop")"
for size in 32 128 256; do
    png="$work/desktop/usr/share/icons/hicolor/${size}x${size}/apps/$icon.png"
    [ -f "$png" ] || fail "no ${size}x${size} icon $icon"
    # a PNG's IHDR holds its width and height
    dims="$(od -An -tu1 -j16 -N8 "$png" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }')"
    [ "$dims" = "${size}x${size}" ] || fail "the ${size}x${size} icon is $dims"
done
appstreamcli validate --no-net "$work/desktop/usr/share/metainfo/dev.rehydra.app.metainfo.xml" >/dev/null \
    || fail "the AppStream metadata does not validate"
grep -q "release version=\"$version\"" "$work/desktop/usr/share/metainfo/dev.rehydra.app.metainfo.xml" \
    || fail "the AppStream metadata does not name release $version"

echo "== packages: the AppImage"
appimage="dist/Rehydra-${version}-x86_64.AppImage"
[ -x "$appimage" ] || fail "no AppImage (the test command builds the app first: cargo build -p rehydra-app)"
[ "$(od -An -tx1 -j8 -N3 "$appimage" | tr -d ' ')" = 414902 ] || fail "$appimage is not a type-2 AppImage"
mkdir "$work/ai"
cp "$appimage" "$work/ai/Rehydra.AppImage"
ln -s Rehydra.AppImage "$work/ai/rehydra"
# started through a link named rehydra it is the command line, with the plugins inside it;
# mounted with FUSE where this machine lets it, else extracted and run as the runtime
# offers (said which)
ai_env=(env REHYDRA_CATALOG="$work/ai-catalog.db" TMPDIR="$work")
if ! timeout 60 "${ai_env[@]}" "$work/ai/rehydra" --version >/dev/null 2>&1; then
    echo "packages: note: the AppImage cannot be mounted here (no FUSE); it is extracted and run instead" >&2
    ai_env+=(APPIMAGE_EXTRACT_AND_RUN=1)
fi
timeout 60 "${ai_env[@]}" "$work/ai/rehydra" --version | grep -q "^rehydra $version" || fail "the AppImage started as rehydra is not the command line"
listed="$(timeout 60 "${ai_env[@]}" "$work/ai/rehydra" plugins list 2>&1)" || true
for p in hyperv-vm keyvault sql-server arc-sql-mi kubernetes; do
    grep -q "^$p " <<<"$listed" || fail "the AppImage's command line does not find its plugin $p: $listed"
done
(cd "$work/ai" && ./Rehydra.AppImage --appimage-extract >/dev/null) || fail "the AppImage does not extract"
root_ai="$work/ai/squashfs-root"
[ -x "$root_ai/AppRun" ] || fail "the AppImage has no AppRun"
grep -q '^Exec=rehydra-app$' "$root_ai/dev.rehydra.app.desktop" || fail "the AppImage's menu entry does not start rehydra-app"
[ "$(readlink "$root_ai/.DirIcon")" = dev.rehydra.app.png ] && [ -f "$root_ai/dev.rehydra.app.png" ] || fail "the AppImage has no icon"
appstreamcli validate --no-net "$root_ai/usr/share/metainfo/dev.rehydra.app.appdata.xml" >/dev/null \
    || fail "the AppImage's AppStream metadata does not validate"
grep -qa __TAURI_BUNDLE_TYPE_VAR_APP "$root_ai/usr/bin/rehydra-app" && ! grep -qa __TAURI_BUNDLE_TYPE_VAR_UNK "$root_ai/usr/bin/rehydra-app" \
    || fail "the AppImage's app is not marked as an AppImage's (it would not update itself)"
[ -z "$(find "$root_ai" -name 'fixture.wasm' -o -name 'example-files.wasm')" ] || fail "test plugins went into the AppImage"
# the app in it, started as the AppImage starts it, updates itself from a signed AppImage
# (and refuses one signed with another key)
xvfb-run -a node ui/e2e/appimage.e2e.mjs "$appimage" || fail "the AppImage's app and its update (ui/e2e/appimage.e2e.mjs)"

echo "== packages: the update manifest and the signatures"
# the app in the .deb is marked as a .deb's (so it leaves its updates to the package manager)
grep -qa __TAURI_BUNDLE_TYPE_VAR_DEB "$app" && ! grep -qa __TAURI_BUNDLE_TYPE_VAR_UNK "$app" || fail "the packaged app is not marked as a .deb's"
# the manifest names the .deb at the published address with the signature minisign checks,
# for this version (in its trusted comment), and a changed byte fails that check
with_app=no
grep -q 'with the desktop app' <<<"$packaged" && with_app=yes
said="$(python3 - "$version" "$with_app" <<'PY'
import base64, json, sys
m = json.load(open("dist/latest.json"))
assert m["version"] == sys.argv[1], m
deb = m["platforms"]["linux-x86_64-deb"]
assert deb["url"] == f"https://updates.example/rehydra/rehydra-desktop_{sys.argv[1]}_amd64.deb", deb
assert base64.b64decode(deb["signature"]) == open(f"dist/rehydra-desktop_{sys.argv[1]}_amd64.deb.minisig", "rb").read()
image = m["platforms"]["linux-x86_64-appimage"]
assert image["url"] == f"https://updates.example/rehydra/Rehydra-{sys.argv[1]}-x86_64.AppImage", image
assert base64.b64decode(image["signature"]) == open(f"dist/Rehydra-{sys.argv[1]}-x86_64.AppImage.minisig", "rb").read()
# the Windows installer, when it holds the app (the updater runs it)
if sys.argv[2] == "yes":
    nsis = m["platforms"]["windows-x86_64-nsis"]
    assert nsis["url"] == f"https://updates.example/rehydra/rehydra-{sys.argv[1]}-setup.exe", nsis
    assert base64.b64decode(nsis["signature"]) == open(f"dist/rehydra-{sys.argv[1]}-setup.exe.minisig", "rb").read()
else:
    assert "windows-x86_64-nsis" not in m["platforms"], m["platforms"]
print("ok")
PY
)" || fail "dist/latest.json: $said"
verified="$(minisign -V -p "$work/update.pub" -m "$app_deb" -x "$app_deb.minisig" 2>&1)" || fail "the desktop .deb's signature: $verified"
grep -q "version:$version" <<<"$verified" || fail "the signature does not name version $version: $verified"
verified="$(minisign -V -p "$work/update.pub" -m "$appimage" -x "$appimage.minisig" 2>&1)" || fail "the AppImage's signature: $verified"
grep -q "version:$version" <<<"$verified" || fail "the AppImage's signature does not name version $version: $verified"
if [ "$with_app" = yes ]; then
    verified="$(minisign -V -p "$work/update.pub" -m "$setup" -x "$setup.minisig" 2>&1)" || fail "the Windows installer's signature: $verified"
fi
cp "$app_deb" "$work/changed.deb"
printf '\0' >>"$work/changed.deb"
! minisign -V -q -p "$work/update.pub" -m "$work/changed.deb" -x "$app_deb.minisig" 2>/dev/null || fail "a changed .deb passed the signature check"

echo "== packages: the Windows installer under Wine"
# (no winemenubuilder: the installer's shortcuts must not reach this machine's menus)
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
wineboot --init >/dev/null 2>&1 || fail "wineboot"
# (a fresh prefix's wineboot leaves two service control managers answering in turn: the
# session is started afresh)
wineserver -k
wineserver -w
drive_c="$WINEPREFIX/drive_c"
wine "$setup" /S >/dev/null 2>&1 || fail "the installer exited non-zero"
wineserver -w
inst="$drive_c/Program Files/Rehydra"
[ -f "$inst/rehydra.exe" ] || fail "rehydra.exe not installed in Program Files\\Rehydra"
# the desktop app, when the installer holds it (scripts/package.sh says which): beside the
# CLI, with its WebView2 loader and the two Start menu shortcuts (Wine has no WebView2
# runtime: the app itself is not started here)
if [ "$with_app" = yes ]; then
    [ -f "$inst/rehydra-app.exe" ] && [ -f "$inst/WebView2Loader.dll" ] || fail "the desktop app was not installed"
    menu="$drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/Rehydra"
    [ -f "$menu/Rehydra.lnk" ] && [ -f "$menu/Rehydra (service).lnk" ] || fail "no Start menu shortcuts: $(ls -R "$drive_c/ProgramData/Microsoft/Windows/Start Menu" 2>&1 | head -20)"
    # (a shortcut keeps its arguments in UTF-16)
    tr -d '\0' <"$menu/Rehydra (service).lnk" | grep -aq -- '--catalog "C:\\ProgramData\\Rehydra\\service\\catalog.db"' || fail "the service shortcut does not open the service catalog"
    # the "run as administrator" bit of the link flags (byte 0x15, 0x20)
    flags="$(od -An -tu1 -j21 -N1 "$menu/Rehydra (service).lnk" | tr -d ' ')"
    (( (flags & 32) != 0 )) || fail "the service shortcut does not ask for elevation (flags byte $flags)"
else
    [ ! -e "$inst/rehydra-app.exe" ] || fail "an installer without the app installed rehydra-app.exe"
fi
[ -f "$inst/uninstall.exe" ] || fail "no uninstaller"
for p in hyperv-vm keyvault sql-server; do
    [ -f "$drive_c/ProgramData/Rehydra/plugins/$p.wasm" ] || fail "plugin $p not in %ProgramData%\\Rehydra\\plugins"
done
path_value="$(wine reg query 'HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment' /v Path 2>/dev/null | tr -d '\r')"
grep -qi 'C:\\Program Files\\Rehydra' <<<"$path_value" || fail "Program Files\\Rehydra is not on the system PATH: $path_value"
wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Rehydra' /v DisplayVersion 2>/dev/null | grep -q "$version" \
    || fail "no Add/Remove Programs entry"
# the installed CLI (with Wine's ProcessPrng shim beside it, for this test only) lists
# the plugins from the system folder
x86_64-w64-mingw32-gcc -shared -O2 -o "$inst/bcryptprimitives.dll" tests/windows/bcryptprimitives.c -ladvapi32
list_plugins() { wine "C:\\Program Files\\Rehydra\\rehydra.exe" --catalog "C:\\rehydra-test\\catalog.db" plugins list 2>&1 | tr -d '\r'; }
listed="$(list_plugins)" || true
# a command that says nothing at all was killed under Wine (the SIGKILL of a process whose
# Unix side outlives its last thread: see `again` in windows-test.sh), seen once in a full
# run and never alone: it is said, and asked once more
if [ -z "$listed" ]; then
    echo "packages: note: plugins list said nothing under Wine; run once more" >&2
    listed="$(list_plugins)" || true
fi
grep -q 'hyperv-vm' <<<"$listed" || fail "the installed CLI does not find the installed plugins: $listed"
# a second install does not add PATH twice; it is run as the app's updater runs a newer
# version's installer (/P /UPDATE: passive), which must ask nothing (a question would
# wait here until the timeout)
timeout 300 wine "$setup" /P /UPDATE >/dev/null 2>&1 || fail "the installer run as the updater runs it (/P /UPDATE) did not finish"
wineserver -w
n="$(wine reg query 'HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment' /v Path 2>/dev/null | tr -d '\r' | grep -oi 'Program Files\\Rehydra' | wc -l)"
[ "$n" = 1 ] || fail "PATH holds Program Files\\Rehydra $n times after a reinstall"
# a service registered with the installed CLI is stopped and removed by the uninstaller
mkdir -p "$drive_c/rehydra-test"
printf 'pkg-test-password\n' >"$drive_c/rehydra-test/password"
installed() { wine "C:\\Program Files\\Rehydra\\rehydra.exe" --catalog 'C:\ProgramData\Rehydra\service\catalog.db' -r 'C:\rehydra-test\repo' --password-file 'C:\rehydra-test\password' "$@"; }
installed init --kdf-memory-kib 1024 --kdf-iterations 1 >/dev/null 2>&1 || fail "init with the installed CLI"
installed service install --no-start >/dev/null 2>&1 || fail "service install with the installed CLI"
wine reg query 'HKLM\System\CurrentControlSet\Services\Rehydra' >/dev/null 2>&1 || fail "the service was not registered"
# an upgrade over the running service: the installer stops it for the copy and starts it
# again (Wine's boot services hold the service database for a while: "database locked")
state() { installed service --status 2>/dev/null | tr -d '\r' | sed -n 's/^the Windows service Rehydra is //p'; }
becomes() { for _ in $(seq 1 60); do [ "$(state)" = "$1" ] && return 0; sleep 1; done; return 1; }
for _ in $(seq 1 120); do wine net start Rehydra >/dev/null 2>&1 && break; sleep 1; done
becomes Running || fail "the installed CLI's service does not run: $(state)"
# (no `wineserver -w` here: it would wait for the service, which runs on)
timeout 300 wine "$setup" /S >/dev/null 2>&1 || fail "the installer over a running service"
becomes Running || fail "the service is not running again after an upgrade: $(state)"
service_log="$(cat "$drive_c"/ProgramData/Rehydra/service/logs/*.jsonl 2>/dev/null)"
[ "$(grep -c 'service started' <<<"$service_log")" -ge 2 ] && grep -q 'service stopped' <<<"$service_log" ||
    fail "the upgrade did not stop the service and start it again: $(grep -o '"message":"[^"]*"' <<<"$service_log" | tail -5)"
# an admin's own plugin stays through the uninstall
echo "mine" >"$drive_c/ProgramData/Rehydra/plugins/partner.wasm"
wine "$inst/uninstall.exe" /S "_?=C:\\Program Files\\Rehydra" >/dev/null 2>&1 || fail "the uninstaller exited non-zero"
wineserver -w
[ ! -f "$inst/rehydra.exe" ] || fail "the uninstaller left rehydra.exe"
[ ! -f "$inst/rehydra-app.exe" ] || fail "the uninstaller left rehydra-app.exe"
[ ! -d "$drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/Rehydra" ] || fail "the uninstaller left the Start menu folder"
! wine reg query 'HKLM\System\CurrentControlSet\Services\Rehydra' >/dev/null 2>&1 || fail "the uninstaller left the service registered"
[ ! -f "$drive_c/ProgramData/Rehydra/plugins/hyperv-vm.wasm" ] || fail "the uninstaller left its plugins"
[ -f "$drive_c/ProgramData/Rehydra/plugins/partner.wasm" ] || fail "the uninstaller removed a plugin it did not install"
path_after="$(wine reg query 'HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment' /v Path 2>/dev/null | tr -d '\r')"
! grep -qi 'Program Files\\Rehydra' <<<"$path_after" || fail "the PATH entry stayed: $path_after"
# a PATH longer than NSIS' 1024-character strings is never rewritten (it would be cut)
env_key='HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
read_path() { wine reg query "$env_key" /v Path 2>/dev/null | tr -d '\r' | sed -n 's/^ *Path *REG_[A-Z_]* *//p'; }
long="$(read_path);$(for i in $(seq 1 130); do printf 'C:\\tools\\t%03d;' "$i"; done)C:\\end"
wine reg add "$env_key" /v Path /t REG_EXPAND_SZ /d "$long" /f >/dev/null 2>&1 || fail "setting a long PATH"
[ "$(read_path)" = "$long" ] || fail "the long PATH did not round-trip through reg"
[ "${#long}" -gt 1100 ] || fail "the long PATH is only ${#long} characters"
wine "$setup" /S >/dev/null 2>&1 || fail "the installer failed with a long PATH"
wineserver -w
[ -f "$inst/rehydra.exe" ] || fail "not installed with a long PATH"
[ "$(read_path)" = "$long" ] || fail "the installer changed a PATH it cannot hold whole"
wine "$inst/uninstall.exe" /S "_?=C:\\Program Files\\Rehydra" >/dev/null 2>&1 || fail "uninstall with a long PATH"
wineserver -w
[ "$(read_path)" = "$long" ] || fail "the uninstaller changed a PATH it cannot hold whole"
echo "packages: ok (.deb contents, dependencies and binary; AppImage and its update; installer, PATH (a long one left alone), plugins found, uninstaller)"
