//! The `sql` import, answered by the test's stand-in (`MockHost::on_sql`) under the real
//! host's checks (`state/sql.rs`): `sql:<server>` granted, a batch of 1 byte to 1 MiB
//! with at most 256 parameters, a timeout of 1 to 86400 s.

use rehydra_plugin_rules::CapabilityKind;

use super::SqlBatch;
use super::state::{err, with};
use crate::ErrorCode;
use crate::sql::{Error, ResultSet};

/// Run `batch` on `server` with `params` bound as `@P1`, `@P2`, …; needs `sql:<server>`.
/// The test's stand-in answers.
///
/// # Errors
/// `denied` (not granted), `invalid-input` (limits), `unavailable` (no stand-in), or
/// what the stand-in returns.
pub fn query(
    server: &str,
    batch: &str,
    params: &[String],
    timeout_secs: u32,
) -> Result<Vec<ResultSet>, Error> {
    let server = server.to_ascii_lowercase();
    let call = SqlBatch {
        server: server.clone(),
        batch: batch.into(),
        params: params.to_vec(),
    };
    let handler = with(|s| {
        s.enter()?;
        if !s.grants.sql_server(&server) {
            let reason = format!(
                "SQL Server `{server}` is not granted (rehydra plugins grant <plugin> sql:{server})"
            );
            return Err(s.deny(CapabilityKind::Sql, &server, &reason));
        }
        if !(1..=86_400).contains(&timeout_secs)
            || batch.trim().is_empty()
            || batch.len() > 1 << 20
            || params.len() > 256
            || params.iter().any(|p| p.len() > 1 << 20)
        {
            return Err(err(
                ErrorCode::InvalidInput,
                "a batch is 1 byte to 1 MiB with at most 256 parameters, and timeout-secs 1 to 86400",
            ));
        }
        let first = batch
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        s.audit(CapabilityKind::Sql, &server, true, first);
        s.record.sql.push(call.clone());
        Ok(s.sql.clone())
    })?;
    let Some(handler) = handler else {
        return Err(err(
            ErrorCode::Unavailable,
            format!("SQL Server `{server}` is not configured (in a test: MockHost::on_sql)"),
        ));
    };
    (handler.borrow_mut())(&call)
}
