//! Reading a client secret from a file, an environment variable or the OS keychain.

use std::path::Path;

use zeroize::Zeroizing;

use crate::config::SecretSource;
use crate::error::IdentityError;

/// The largest secret file we read (Entra secrets are 40 characters).
const MAX_SECRET: u64 = 64 * 1024;

/// The secret, surrounding whitespace removed.
///
/// # Errors
///
/// The source is missing, unreadable, empty, or (a file) readable by other users.
pub fn read(source: &SecretSource) -> Result<Zeroizing<String>, IdentityError> {
    let raw = match source {
        SecretSource::File(path) => from_file(path)?,
        SecretSource::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
            IdentityError::Secret(format!("the environment variable {name} is not set"))
        })?),
        SecretSource::Keyring { service, user } => from_keyring(service, user)?,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdentityError::Secret(format!(
            "{} is empty",
            describe(source)
        )));
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

fn describe(source: &SecretSource) -> String {
    match source {
        SecretSource::File(path) => format!("the file {}", path.display()),
        SecretSource::Env(name) => format!("the environment variable {name}"),
        SecretSource::Keyring { service, user } => format!("the keychain entry {service}/{user}"),
    }
}

fn from_file(path: &Path) -> Result<Zeroizing<String>, IdentityError> {
    let bytes = Zeroizing::new(read_private_file(path, MAX_SECRET).map_err(IdentityError::Secret)?);
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| IdentityError::Secret(format!("{} is not text", path.display())))
}

/// Reads a file that holds a secret: at most `max` bytes, and on Unix not readable by
/// other users (as ssh insists for private keys).
pub(crate) fn read_private_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode();
        if mode & 0o004 != 0 {
            return Err(format!(
                "{} is readable by every user (mode {:o}); run chmod o-r on it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
))]
fn from_keyring(service: &str, user: &str) -> Result<Zeroizing<String>, IdentityError> {
    let failed = |e: keyring::Error| {
        IdentityError::Secret(match e {
            keyring::Error::NoEntry => format!("there is no keychain entry {service}/{user}"),
            keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_) => format!(
                "the OS keychain is not reachable for {service}/{user} ({e}); services usually \
                 have no keychain session, use a secret file instead"
            ),
            e => format!("keychain entry {service}/{user}: {e}"),
        })
    };
    keyring::Entry::new(service, user)
        .and_then(|entry| entry.get_password())
        .map(Zeroizing::new)
        .map_err(failed)
}

/// Keep `secret` in the OS keychain as `service`/`user` (what
/// [`SecretSource::Keyring`] reads back).
///
/// # Errors
/// No keychain reachable (a service on Linux has no D-Bus session), or no keychain support
/// in this build.
#[cfg(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
))]
pub fn store_in_keychain(service: &str, user: &str, secret: &str) -> Result<(), IdentityError> {
    keyring::Entry::new(service, user)
        .and_then(|entry| entry.set_password(secret))
        .map_err(|e| {
            IdentityError::Keychain(format!(
                "keeping the secret in the OS keychain as {service}/{user} failed ({e})"
            ))
        })
}

/// Remove the OS keychain entry `service`/`user`; `false` when there was none.
///
/// # Errors
/// No keychain reachable, or no keychain support in this build.
#[cfg(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
))]
pub fn forget_in_keychain(service: &str, user: &str) -> Result<bool, IdentityError> {
    match keyring::Entry::new(service, user).and_then(|e| e.delete_credential()) {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(IdentityError::Keychain(format!(
            "removing the keychain entry {service}/{user} failed ({e})"
        ))),
    }
}

/// The secret kept in the OS keychain as `service`/`user`, `None` when there is no such
/// entry.
///
/// # Errors
/// No keychain reachable, or no keychain support in this build.
#[cfg(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
))]
pub fn recall_from_keychain(
    service: &str,
    user: &str,
) -> Result<Option<Zeroizing<String>>, IdentityError> {
    match keyring::Entry::new(service, user).and_then(|e| e.get_password()) {
        Ok(s) => Ok(Some(Zeroizing::new(s))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(IdentityError::Keychain(format!(
            "the OS keychain is not reachable for {service}/{user} ({e})"
        ))),
    }
}

/// See the keychain build: this build has none.
///
/// # Errors
/// Always.
#[cfg(not(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
)))]
pub fn forget_in_keychain(service: &str, user: &str) -> Result<bool, IdentityError> {
    Err(no_keychain(service, user))
}

/// See the keychain build: this build has none.
///
/// # Errors
/// Always.
#[cfg(not(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
)))]
pub fn recall_from_keychain(
    service: &str,
    user: &str,
) -> Result<Option<Zeroizing<String>>, IdentityError> {
    Err(no_keychain(service, user))
}

/// See the keychain build: this build has none.
///
/// # Errors
/// Always.
#[cfg(not(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
)))]
pub fn store_in_keychain(service: &str, user: &str, _secret: &str) -> Result<(), IdentityError> {
    Err(no_keychain(service, user))
}

#[cfg(not(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
)))]
fn from_keyring(service: &str, user: &str) -> Result<Zeroizing<String>, IdentityError> {
    Err(no_keychain(service, user))
}

#[cfg(not(all(
    feature = "keychain",
    any(target_os = "linux", target_os = "macos", windows)
)))]
fn no_keychain(service: &str, user: &str) -> IdentityError {
    IdentityError::Keychain(format!(
        "keychain entry {service}/{user}: this build has no OS keychain support"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  abc~def \n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(read(&SecretSource::File(path)).unwrap().as_str(), "abc~def");
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&SecretSource::File(path)).unwrap_err().to_string();
        assert!(err.contains("readable by every user"), "{err}");
        assert!(!err.contains("abc"), "{err}");
    }

    #[test]
    fn missing_sources_are_named() {
        let err = read(&SecretSource::Env("REHYDRA_TEST_NO_SUCH_VARIABLE".into())).unwrap_err();
        assert!(
            err.to_string()
                .contains("REHYDRA_TEST_NO_SUCH_VARIABLE is not set"),
            "{err}"
        );
        let err = read(&SecretSource::File("/nonexistent/secret".into())).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/secret"), "{err}");
    }
}
