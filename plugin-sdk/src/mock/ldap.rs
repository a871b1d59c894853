//! The `ldap` import natively: not served by the mock host yet. Every call checks that a
//! verb is running and returns `unsupported`, so directory code is tested against a real
//! directory instead (a Samba domain controller, see the `active-directory` plugin).

use super::state::{err, with};
use crate::ErrorCode;
use crate::ldap::{Attribute, Change, Controls, Error, Page, Query};

fn unsupported() -> Result<(), Error> {
    with(|s| s.enter())?;
    Err(err(
        ErrorCode::Unsupported,
        "the mock host does not serve directories; test against a real one",
    ))
}

/// See the `ldap` interface of the contract.
///
/// # Errors
/// Always `unsupported` in the mock.
pub fn search(
    _directory: &str,
    _query: &Query,
    _page_size: u32,
    _cookie: &[u8],
) -> Result<Page, Error> {
    unsupported().map(|()| unreachable!("unsupported() always fails"))
}

/// See the `ldap` interface of the contract.
///
/// # Errors
/// Always `unsupported` in the mock.
pub fn add(_directory: &str, _dn: &str, _attributes: &[Attribute]) -> Result<(), Error> {
    unsupported()
}

/// See the `ldap` interface of the contract.
///
/// # Errors
/// Always `unsupported` in the mock.
pub fn modify(
    _directory: &str,
    _dn: &str,
    _changes: &[Change],
    _controls: Controls,
) -> Result<(), Error> {
    unsupported()
}

/// See the `ldap` interface of the contract.
///
/// # Errors
/// Always `unsupported` in the mock.
pub fn delete(_directory: &str, _dn: &str, _controls: Controls) -> Result<(), Error> {
    unsupported()
}

/// See the `ldap` interface of the contract.
///
/// # Errors
/// Always `unsupported` in the mock.
pub fn rename(
    _directory: &str,
    _dn: &str,
    _new_rdn: &str,
    _new_parent: Option<&str>,
) -> Result<(), Error> {
    unsupported()
}
