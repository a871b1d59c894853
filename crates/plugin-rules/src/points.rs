//! The other restore points a plan, restore or verify may name to `find-point` and
//! `read-point-document`: an id prefix of 4 to 64 hex digits, or `latest`; at most
//! [`NAMED_MAX`] different points in one call (reading several documents of one point
//! counts once); exactly one point must match. Which points may match (those of the
//! asset, workload and plugin in hand) is each host's own listing.

use crate::error::{ErrorCode, HostError};

/// Most different restore points one call may name.
pub const NAMED_MAX: usize = 64;

/// The points one call named so far, as [`Named::name`] read them.
#[derive(Debug, Default)]
pub struct Named(Vec<String>);

impl Named {
    /// `spec` read (trimmed, lower case: `latest` or a hex prefix) and counted.
    ///
    /// # Errors
    /// `invalid-input`: neither form, or one point more than [`NAMED_MAX`].
    pub fn name(&mut self, spec: &str) -> Result<String, HostError> {
        let want = spec.trim().to_ascii_lowercase();
        if want != "latest"
            && (!(4..=64).contains(&want.len()) || !want.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(HostError::new(
                ErrorCode::InvalidInput,
                format!("`{spec}` is neither a restore point id (4 to 64 hex digits) nor `latest`"),
            ));
        }
        if !self.0.contains(&want) {
            if self.0.len() >= NAMED_MAX {
                return Err(HostError::new(
                    ErrorCode::InvalidInput,
                    format!("more than {NAMED_MAX} other restore points named in one call"),
                ));
            }
            self.0.push(want.clone());
        }
        Ok(want)
    }
}

/// Whether the point with id `id_hex` is one `want` (from [`Named::name`]) names; for
/// `latest`, every point, of which the host takes the newest.
#[must_use]
pub fn matches(want: &str, id_hex: &str) -> bool {
    want == "latest" || id_hex.starts_with(want)
}

/// The one point `found` holds for `spec` among those of `asset`.
///
/// # Errors
/// `not-found`: none, or several (a prefix too short).
pub fn the_one<T>(mut found: Vec<T>, spec: &str, asset: &str) -> Result<T, HostError> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(HostError::new(
            ErrorCode::NotFound,
            format!("asset `{asset}` has no restore point `{spec}`"),
        )),
        n => Err(HostError::new(
            ErrorCode::NotFound,
            format!("`{spec}` matches {n} restore points of asset `{asset}`; give more digits"),
        )),
    }
}
