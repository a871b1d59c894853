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

/// Keep `password` for `location` (replacing what was kept for it).
///
/// # Errors
/// The password is not UTF-8 text, or no keychain is reachable.
pub fn remember(location: &str, password: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(password).map_err(|_| {
        ApiError::new(
            Code::InvalidInput,
            "the OS keychain keeps text: this password is not UTF-8",
        )
    })?;
    rehydra_azure::store_in_keychain(SERVICE, location, text).map_err(failed)
}

/// The password kept for `location`; `None` when none is kept, or no keychain is
/// reachable (then the other sources, or a prompt, are asked as before).
#[must_use]
pub fn recall(location: &str) -> Option<Zeroizing<Vec<u8>>> {
    rehydra_azure::recall_from_keychain(SERVICE, location)
        .ok()
        .flatten()
        .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
}

/// Remove the password kept for `location`; `false` when none was.
///
/// # Errors
/// No keychain is reachable.
pub fn forget(location: &str) -> Result<bool> {
    rehydra_azure::forget_in_keychain(SERVICE, location).map_err(failed)
}
