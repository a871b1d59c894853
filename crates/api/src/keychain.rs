//! Repository passwords kept in the OS keychain when the admin chooses to (`rehydra key
//! remember`, the app's "keep the password" box): the Windows Credential Manager, the
//! macOS Keychain, the Secret Service on Linux. One entry per repository, service
//! [`SERVICE`] and the location as the admin gives it, read back only for that location
//! and only when no other password source was given. A service on Linux has no keychain
//! session: it keeps using a password file.

use zeroize::Zeroizing;

use crate::error::{ApiError, Code, Result};

/// The keychain service the entries are kept under.
pub const SERVICE: &str = "rehydra-repository";

fn failed(e: rehydra_azure::IdentityError) -> ApiError {
    ApiError::new(Code::Io, e.to_string())
}

/// How long a keychain read may take before the other sources are asked (a locked
/// keyring on a desktop nobody watches would wait for its unlock prompt).
const RECALL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether passwords are kept for `location`: a URL or an absolute path (a relative one
/// names another repository in another folder).
///
/// # Errors
/// A relative path.
pub fn check(location: &str) -> Result<()> {
    keyed(location).map(|_| ())
}

fn keyed(location: &str) -> Result<&str> {
    if location.contains("://") || std::path::Path::new(location).is_absolute() {
        Ok(location)
    } else {
        Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "{location} is a relative path: the keychain keeps passwords for absolute paths and URLs only"
            ),
        ))
    }
}

/// Keep `password` for `location` (replacing what was kept for it).
///
/// # Errors
/// A relative location, a password that is not UTF-8 text, or no keychain reachable.
pub fn remember(location: &str, password: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(password).map_err(|_| {
        ApiError::new(
            Code::InvalidInput,
            "the OS keychain keeps text: this password is not UTF-8",
        )
    })?;
    rehydra_azure::store_in_keychain(SERVICE, keyed(location)?, text).map_err(failed)
}

/// The password kept for `location`; `None` when none is kept, the location is relative,
/// or no keychain answers within a few seconds (then the other sources, or a prompt, are
/// asked as before).
#[must_use]
pub fn recall(location: &str) -> Option<Zeroizing<Vec<u8>>> {
    read(keyed(location).ok()?).ok().flatten()
}

/// The password kept for `location`, the keychain given [`RECALL_WAIT`] to answer (a read
/// that never answers is left behind on its thread).
fn read(location: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = location.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(rehydra_azure::recall_from_keychain(SERVICE, &owned));
    });
    let kept = rx
        .recv_timeout(RECALL_WAIT)
        .map_err(|_| {
            ApiError::new(
                Code::Io,
                format!(
                    "the OS keychain did not answer within {} s (locked?)",
                    RECALL_WAIT.as_secs()
                ),
            )
        })?
        .map_err(failed)?;
    Ok(kept.map(|s| Zeroizing::new(s.as_bytes().to_vec())))
}

/// After a password change: keep `password` for `location` if a password was kept for
/// it; `false` when none was.
///
/// # Errors
/// The keychain cannot be read or written.
pub fn replace(location: &str, password: &[u8]) -> Result<bool> {
    let Ok(location) = keyed(location) else {
        return Ok(false);
    };
    if read(location)?.is_none() {
        return Ok(false);
    }
    remember(location, password).map(|()| true)
}

/// Remove the password kept for `location`; `false` when none was.
///
/// # Errors
/// No keychain is reachable.
pub fn forget(location: &str) -> Result<bool> {
    rehydra_azure::forget_in_keychain(SERVICE, keyed(location)?).map_err(failed)
}
