//! Updates of the app through Tauri's updater: a manifest (`latest.json`, written by
//! `scripts/package.sh`) names the newest version and, per platform, its installer and a
//! minisign signature of it; the installer is downloaded and checked against the public
//! key this build was made with before anything runs. The key and the manifest's address
//! come from the build's configuration (`REHYDRA_UPDATE_PUBKEY`, `REHYDRA_UPDATE_URL` when
//! it is compiled; the private key never enters the repository or the app). A build made
//! without them looks for no updates and says so. The signature must also name the
//! version the manifest announces, so an older signed installer cannot be offered as a
//! newer one. Only a copy the Windows installer or the AppImage holds (each marks the
//! binary as its own) installs an update itself (the AppImage's replaces the AppImage
//! file); for the .debs the package manager updates both packages, and a binary built
//! here is never replaced.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;
use tauri::AppHandle;
use tauri::utils::config::BundleType;
use tauri::utils::platform::bundle_type;
use tauri_plugin_updater::{Update, UpdaterExt as _};

use rehydra_api::Code;

use crate::state::{Res, UiError};

/// Where this build looks for updates and the key their installers are signed with.
struct Source {
    url: tauri::Url,
    pubkey: String,
}

/// What the build was made with; a debug build (the tests') may also be given both when
/// it starts, a release never.
fn source() -> Res<Option<Source>> {
    let from_build = (
        option_env!("REHYDRA_UPDATE_URL"),
        option_env!("REHYDRA_UPDATE_PUBKEY"),
    );
    let (url, pubkey) = match from_build {
        (Some(u), Some(k)) => (u.to_string(), k.to_string()),
        _ if cfg!(debug_assertions) => {
            match (
                std::env::var("REHYDRA_UPDATE_URL"),
                std::env::var("REHYDRA_UPDATE_PUBKEY"),
            ) {
                (Ok(u), Ok(k)) => (u, k),
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let url = tauri::Url::parse(&url).map_err(|e| {
        UiError::new(
            Code::InvalidInput,
            format!("this build's update address {url} is not a URL ({e})"),
        )
    })?;
    Ok(Some(Source { url, pubkey }))
}

/// The key's id as minisign prints it (`minisign public key 5B3C…`), for an admin to
/// compare with the one the release was signed with.
fn key_id(pubkey: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(pubkey.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.rsplit(' ').next().map(str::to_string))
        })
        .unwrap_or_else(|| "(unreadable key)".into())
}

/// What the Settings screen shows about updates.
#[derive(Serialize, ts_rs::TS)]
pub struct UpdateView {
    /// This build's version.
    pub current: String,
    /// The manifest's address, when the build has one.
    pub source: Option<String>,
    /// The id of the key installers must be signed with.
    pub key_id: Option<String>,
    /// A newer version, when the manifest names one.
    pub available: Option<Available>,
    /// Why this copy cannot install an update itself, when it cannot.
    pub not_installable: Option<String>,
}

/// A newer version the manifest names.
#[derive(Serialize, ts_rs::TS)]
pub struct Available {
    /// Its version.
    pub version: String,
    /// Its release notes.
    pub notes: Option<String>,
    /// When it was published (RFC 3339).
    pub date: Option<String>,
}

/// Whether `e` says an installer's signature is not the key's, or not for its version.
fn unsigned(e: &tauri_plugin_updater::Error) -> bool {
    matches!(
        e,
        tauri_plugin_updater::Error::Minisign(_)
            | tauri_plugin_updater::Error::Base64(_)
            | tauri_plugin_updater::Error::SignatureUtf8(_)
            | tauri_plugin_updater::Error::MissingSignedVersion
            | tauri_plugin_updater::Error::SignedVersionMismatch { .. }
    )
}

fn failed(what: &str, e: &tauri_plugin_updater::Error) -> UiError {
    let code = if unsigned(e) { Code::Corrupt } else { Code::Io };
    UiError::new(code, format!("{what}: {e}"))
}

/// Why this copy cannot install an update itself, if it cannot: the Windows installer's
/// copy and the AppImage's do. The .deb's package manager updates Rehydra's two packages
/// together (the desktop one depends on the command line's of the same version, which
/// `dpkg -i` of the app's alone would leave broken).
fn not_installable() -> Option<String> {
    match bundle_type() {
        Some(BundleType::Nsis) => None,
        Some(BundleType::AppImage) => appimage().err(),
        Some(BundleType::Deb) => Some(
            "on Linux Rehydra's packages are updated together by the package manager: apt, or dpkg -i with both new .debs (rehydra and rehydra-desktop)"
                .into(),
        ),
        _ => Some(
            "this copy was not installed from Rehydra's packages (the desktop .deb, the AppImage or the Windows installer), so it does not replace itself: install the new package by hand"
                .into(),
        ),
    }
}

/// The AppImage this copy runs from, which the updater replaces: `APPIMAGE`, as the
/// AppImage's runtime sets it, only when this binary is the image's own app
/// (`APPDIR/usr/bin/rehydra-app`, as `scripts/package.sh` lays it out) and the file is a
/// type-2 AppImage. A variable inherited from another
/// AppImage (a terminal one started, say) would otherwise name another program's file.
fn appimage() -> Result<PathBuf, String> {
    appimage_of(
        std::env::var_os("APPIMAGE"),
        std::env::var_os("APPDIR"),
        std::env::current_exe().ok(),
    )
}

/// [`appimage`] of the runtime's two variables and the running binary.
fn appimage_of(
    image: Option<OsString>,
    dir: Option<OsString>,
    exe: Option<PathBuf>,
) -> Result<PathBuf, String> {
    use std::io::Read as _;
    let not = |why: &str| {
        format!("{why}: start the AppImage itself to update it, or download the new one by hand")
    };
    let (Some(image), Some(dir)) = (image, dir) else {
        return Err(not(
            "this copy of the AppImage's app was started outside its AppImage",
        ));
    };
    let image = PathBuf::from(image);
    // exactly the image's app: a folder above it (`APPDIR=/`) would hold any binary
    let inside = exe
        .zip(std::fs::canonicalize(&dir).ok())
        .is_some_and(|(exe, dir)| exe == dir.join("usr/bin/rehydra-app"));
    if !inside {
        return Err(not(&format!(
            "APPIMAGE names {} but this app does not run from inside it",
            image.display()
        )));
    }
    // an ELF whose header carries "AI" 2 at byte 8: a type-2 AppImage
    let mut head = [0u8; 11];
    let magic = std::fs::File::open(&image)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head[..4] == *b"\x7fELF" && head[8..] == *b"AI\x02");
    if !magic {
        return Err(not(&format!("{} is not an AppImage", image.display())));
    }
    Ok(image)
}

/// How long a check or a download may take in all.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

async fn check(app: &AppHandle, s: &Source) -> Res<Option<Update>> {
    let mut builder = app.updater_builder();
    // the file an AppImage's update replaces is the one checked above (the updater's own
    // default is `APPIMAGE` unchecked: `update_install` installs only when
    // `not_installable` passes, which is this check)
    if let (Some(BundleType::AppImage), Ok(image)) = (bundle_type(), appimage()) {
        builder = builder.executable_path(image);
    }
    builder
        .timeout(TIMEOUT)
        .pubkey(s.pubkey.clone())
        .endpoints(vec![s.url.clone()])
        .and_then(|b| b.build())
        .map_err(|e| failed("the updater", &e))?
        .check()
        .await
        .map_err(|e| failed(&format!("asking {} for updates", s.url), &e))
}

/// Ask the manifest whether a newer version is out.
#[tauri::command]
pub async fn update_check(app: AppHandle) -> Res<UpdateView> {
    let current = app.package_info().version.to_string();
    let Some(s) = source()? else {
        return Ok(UpdateView {
            current,
            source: None,
            key_id: None,
            available: None,
            not_installable: None,
        });
    };
    let available = check(&app, &s).await?.map(|u| Available {
        version: u.version.clone(),
        notes: u.body.clone(),
        date: u.date.map(|d| d.to_string()),
    });
    Ok(UpdateView {
        current,
        source: Some(s.url.to_string()),
        key_id: Some(key_id(&s.pubkey)),
        available,
        not_installable: not_installable(),
    })
}

/// Download `version`'s installer, check its signature, and install it: on Windows the
/// installer then takes over and the app closes; an AppImage is replaced by the new one.
#[tauri::command]
pub async fn update_install(app: AppHandle, version: String) -> Res<String> {
    let s = source()?.ok_or_else(|| {
        UiError::new(
            Code::InvalidInput,
            "this build looks for no updates (it was made without an update key)",
        )
    })?;
    let update = check(&app, &s).await?.ok_or_else(|| {
        UiError::new(
            Code::InvalidInput,
            format!("{} no longer offers a newer version", s.url),
        )
    })?;
    if update.version != version {
        return Err(UiError::new(
            Code::InvalidInput,
            format!(
                "{} now offers {} instead of {version}: check again",
                s.url, update.version
            ),
        ));
    }
    let refused = |e: tauri_plugin_updater::Error| {
        if unsigned(&e) {
            failed(
                &format!(
                    "the installer of {version} is not signed with this build's key for that version"
                ),
                &e,
            )
        } else {
            failed(&format!("downloading {version}"), &e)
        }
    };
    // the download checks the signature, and so does this, before anything else (also
    // where this copy installs nothing)
    let bytes = update.download(|_, _| {}, || {}).await.map_err(refused)?;
    update.verify(&bytes).map_err(refused)?;
    if let Some(why) = not_installable() {
        return Err(UiError::new(Code::InvalidInput, why));
    }
    tracing::info!(version = %version, "installing an update");
    update
        .install(&bytes)
        .map_err(|e| failed(&format!("installing {version}"), &e))?;
    Ok(format!(
        "{version} is installed: close Rehydra and start it again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AppImage's file, the folder its runtime made of it, and a binary inside.
    fn image(dir: &std::path::Path, head: &[u8]) -> (OsString, OsString, PathBuf) {
        let file = dir.join("Rehydra.AppImage");
        let mut bytes = head.to_vec();
        bytes.resize(4096, 0);
        std::fs::write(&file, bytes).unwrap();
        let mount = dir.join(".mount_Rehydra");
        std::fs::create_dir_all(mount.join("usr/bin")).unwrap();
        let mount = std::fs::canonicalize(mount).unwrap();
        let exe = mount.join("usr/bin/rehydra-app");
        (file.into(), mount.into(), exe)
    }

    const APPIMAGE: &[u8] = b"\x7fELF\x02\x01\x01\x00AI\x02";

    #[test]
    fn only_the_appimage_this_app_runs_from_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let (file, mount, exe) = image(d.path(), APPIMAGE);
        assert_eq!(
            appimage_of(Some(file.clone()), Some(mount.clone()), Some(exe.clone())),
            Ok(PathBuf::from(&file))
        );
        // started outside any AppImage
        let e = appimage_of(None, None, Some(exe.clone())).unwrap_err();
        assert!(e.contains("outside its AppImage"), "{e}");
        // a folder above the image's (APPDIR=/): not the image's own app
        let e = appimage_of(Some(file.clone()), Some("/".into()), Some(exe.clone())).unwrap_err();
        assert!(e.contains("does not run from inside it"), "{e}");
        // variables another AppImage left in the environment: this binary is not inside
        let e = appimage_of(
            Some(file.clone()),
            Some(mount),
            Some("/usr/bin/rehydra-app".into()),
        )
        .unwrap_err();
        assert!(e.contains("does not run from inside it"), "{e}");
        // a file that is not a type-2 AppImage (an ELF without the magic, a script)
        for head in [&b"\x7fELF\x02\x01\x01\x00\x00\x00\x00"[..], b"#!/bin/sh\n"] {
            let d = tempfile::tempdir().unwrap();
            let (file, mount, exe) = image(d.path(), head);
            let e = appimage_of(Some(file), Some(mount), Some(exe)).unwrap_err();
            assert!(e.contains("is not an AppImage"), "{e}");
        }
    }
}
