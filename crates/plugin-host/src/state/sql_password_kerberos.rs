//! A Windows account and its password, signed in with from a host that is not Windows:
//! by Kerberos, as Windows itself prefers to. The password gets the account a ticket from
//! its domain's KDC (MIT's `gss_acquire_cred_with_password`), kept in a credential cache in
//! this process's memory, never on disk, and made the default of the calling thread only
//! (`gss_krb5_ccache_name`): the driver's sign-in as "this process's account" on that
//! thread (`sql.rs` runs each call on a thread of its own) is then this account's, and no
//! other thread, nor the account's own `kinit` cache, sees it.
//!
//! The account is `user` of `DOMAIN\user` in krb5.conf's default realm (a NetBIOS domain
//! name is not a realm), or in `DOMAIN` itself when that is a realm's name (it has a dot).
//! The caches are a few per account, one per call that uses one at once, each written over
//! by the next call that takes it: memory stays bounded however many calls are made.

// one foreign call, MIT's gss_krb5_ccache_name, which no binding crate offers
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::{CString, c_char};
use std::sync::Mutex;

use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_USER_NAME, OidSet};

unsafe extern "C" {
    /// MIT krb5 (`gssapi/gssapi_krb5.h`), in libgssapi_krb5, which the driver links:
    /// sets the calling thread's default credential cache.
    fn gss_krb5_ccache_name(
        minor_status: *mut u32,
        name: *const c_char,
        out_name: *mut *const c_char,
    ) -> u32;
}

/// The memory caches in use now, by name.
static IN_USE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// A memory credential cache this call holds (others take another until it is dropped).
pub(super) struct Tickets(String);

impl Drop for Tickets {
    fn drop(&mut self) {
        IN_USE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// The Kerberos principal of `login` (`DOMAIN\user`), as a name MIT parses.
fn principal(login: &str) -> String {
    match login.split_once('\\') {
        Some((domain, user)) if domain.contains('.') => {
            format!("{user}@{}", domain.to_ascii_uppercase())
        }
        Some((_, user)) => user.to_string(),
        None => login.to_string(),
    }
}

/// Get `login` a ticket with `password` and make it this thread's default credentials,
/// for as long as the returned [`Tickets`] lives.
///
/// # Errors
/// The KDC refused the password or the account, or cannot be reached; MIT's words.
pub(super) fn sign_in(login: &str, password: &str) -> Result<Tickets, String> {
    let gss = |e: libgssapi::error::Error| e.to_string();
    let name = Name::new(principal(login).as_bytes(), Some(GSS_NT_USER_NAME)).map_err(gss)?;
    let mut mechs = OidSet::new();
    mechs.add(GSS_MECH_KRB5).map_err(gss)?;
    let cred = Cred::acquire_with_password(
        Some(&name),
        password,
        None,
        CredUsage::Initiate,
        Some(&mechs),
    )
    .map_err(gss)?;
    let tickets = take(login);
    cred.store_into(
        &tickets.0,
        true,
        false,
        CredUsage::Initiate,
        Some(GSS_MECH_KRB5),
    )
    .map_err(gss)?;
    let c_name = CString::new(tickets.0.as_str()).map_err(|e| e.to_string())?;
    let mut minor = 0u32;
    // SAFETY: both pointers are valid for the call (the name is NUL-terminated and
    // outlives it; MIT copies it); a null out_name asks for no old name back
    let major =
        unsafe { gss_krb5_ccache_name(&raw mut minor, c_name.as_ptr(), std::ptr::null_mut()) };
    if major != 0 {
        return Err(format!(
            "the ticket could not be made this connection's (GSS-API status {major:#x}, {minor})"
        ));
    }
    Ok(tickets)
}

/// A memory cache for `login` that no other call holds now.
fn take(login: &str) -> Tickets {
    let key = blake3::hash(login.to_lowercase().as_bytes()).to_hex();
    let mut in_use = IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let name = (0..)
        .map(|i| format!("MEMORY:rehydra-sql-{}-{i}", &key[..16]))
        .find(|n| !in_use.contains(n))
        .unwrap_or_default();
    in_use.insert(name.clone());
    Tickets(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_and_caches() {
        assert_eq!(principal("TEST\\alice"), "alice");
        assert_eq!(principal("test.lan\\alice"), "alice@TEST.LAN");
        // one cache per call at once, the first free one again once a call is done
        let (a, b) = (take("TEST\\alice"), take("test\\ALICE"));
        assert_ne!(a.0, b.0);
        assert!(a.0.starts_with("MEMORY:rehydra-sql-") && a.0.ends_with("-0"));
        let first = a.0.clone();
        drop(a);
        assert_eq!(take("TEST\\alice").0, first);
        assert_ne!(take("TEST\\bob").0, first);
    }
}
