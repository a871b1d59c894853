//! A Windows account and its password, signed in with from a host that is not Windows:
//! by Kerberos, as Windows itself prefers to. The password gets the account a ticket from
//! its domain's KDC (MIT's `gss_acquire_cred_with_password`), kept in a credential cache of
//! its own in this process's memory, never on disk, made the default of the calling
//! thread only (`gss_krb5_ccache_name`), and destroyed once the sign-in is done: the
//! driver's sign-in as "this process's account" on that thread (`sql.rs` runs each call
//! on a thread of its own) is then this account's, and no other thread, nor the account's
//! own `kinit` cache, sees it. (`sql.rs` then checks whom the instance signed in.)
//!
//! The account is `user` of `DOMAIN\user` in krb5.conf's default realm (a NetBIOS domain
//! name is not a realm), or in `DOMAIN` itself when that is a realm's name (it has a dot).

// MIT's gss_krb5_ccache_name and krb5_cc_destroy, which no binding crate offers
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_USER_NAME, OidSet};

#[link(name = "gssapi_krb5")]
unsafe extern "C" {
    /// MIT krb5 (`gssapi/gssapi_krb5.h`): sets the calling thread's default credential
    /// cache.
    fn gss_krb5_ccache_name(
        minor_status: *mut u32,
        name: *const c_char,
        out_name: *mut *const c_char,
    ) -> u32;
}

#[link(name = "krb5")]
unsafe extern "C" {
    // MIT krb5 (`krb5/krb5.h`); contexts and caches are opaque pointers
    fn krb5_init_context(context: *mut *mut c_void) -> i32;
    fn krb5_free_context(context: *mut c_void);
    fn krb5_cc_resolve(context: *mut c_void, name: *const c_char, cache: *mut *mut c_void) -> i32;
    fn krb5_cc_destroy(context: *mut c_void, cache: *mut c_void) -> i32;
}

/// Memory caches made so far, for names no other call has.
static MADE: AtomicU64 = AtomicU64::new(0);

/// A memory credential cache of one call's, destroyed with its tickets when dropped.
pub(super) struct Tickets(CString);

impl Drop for Tickets {
    fn drop(&mut self) {
        // SAFETY: each pointer is MIT's own, checked before use, and freed once; the
        // name is NUL-terminated and outlives the calls
        unsafe {
            let mut context = std::ptr::null_mut();
            if krb5_init_context(&raw mut context) != 0 {
                return;
            }
            let mut cache = std::ptr::null_mut();
            if krb5_cc_resolve(context, self.0.as_ptr(), &raw mut cache) == 0 {
                krb5_cc_destroy(context, cache);
            }
            krb5_free_context(context);
        }
    }
}

/// The Kerberos principal of `login` (`DOMAIN\user`), as a name MIT parses; none for a
/// user part that is not one account's name (another realm's `@`, a service's `/`).
fn principal(login: &str) -> Option<String> {
    let (domain, user) = crate::windows_account(login)?;
    Some(if domain.contains('.') {
        format!("{user}@{}", domain.to_ascii_uppercase())
    } else {
        user.to_string()
    })
}

/// Why a sign-in got no ticket.
pub(super) enum SignInError {
    /// The login is not one account's name.
    Login(String),
    /// Kerberos refused it (MIT's words).
    Kerberos(String),
}

/// Get `login` a ticket with `password` and make it this thread's default credentials,
/// for as long as the returned [`Tickets`] lives.
///
/// # Errors
/// The login is not `DOMAIN\user` of one account; the KDC refused the password or the
/// account, or cannot be reached.
pub(super) fn sign_in(login: &str, password: &str) -> Result<Tickets, SignInError> {
    let principal = principal(login).ok_or_else(|| {
        SignInError::Login(format!(
            "`{login}` is not DOMAIN\\user with one account's name (no @, / or spaces)"
        ))
    })?;
    get_ticket(&principal, password).map_err(SignInError::Kerberos)
}

/// [`sign_in`] as `principal`, in MIT's words when it fails.
fn get_ticket(principal: &str, password: &str) -> Result<Tickets, String> {
    let gss = |e: libgssapi::error::Error| e.to_string();
    let name = Name::new(principal.as_bytes(), Some(GSS_NT_USER_NAME)).map_err(gss)?;
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
    let made = MADE.fetch_add(1, Ordering::SeqCst);
    let cache = format!("MEMORY:rehydra-sql-{}-{made}", std::process::id());
    let tickets = Tickets(CString::new(cache.as_str()).map_err(|e| e.to_string())?);
    cred.store_into(
        &cache,
        true,
        false,
        CredUsage::Initiate,
        Some(GSS_MECH_KRB5),
    )
    .map_err(gss)?;
    let mut minor = 0u32;
    // SAFETY: both pointers are valid for the call (the name is NUL-terminated and
    // outlives it; MIT copies it); a null out_name asks for no old name back
    let major =
        unsafe { gss_krb5_ccache_name(&raw mut minor, tickets.0.as_ptr(), std::ptr::null_mut()) };
    if major != 0 {
        return Err(format!(
            "the ticket could not be made this connection's (GSS-API status {major:#x}, {minor})"
        ));
    }
    Ok(tickets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals() {
        assert_eq!(principal("TEST\\alice").as_deref(), Some("alice"));
        assert_eq!(
            principal("test.lan\\alice").as_deref(),
            Some("alice@TEST.LAN")
        );
        // another realm, a service, no user, spaces: not one account's name
        for bad in [
            "TEST\\alice@EVIL.ORG",
            "TEST\\svc/host",
            "TEST\\",
            "\\alice",
            "TEST\\al ice",
            "alice",
            "A\\B\\c",
        ] {
            assert_eq!(principal(bad), None, "{bad}");
        }
    }
}
