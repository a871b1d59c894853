//! The instance a restore (or a verify) goes to when `server=` does not name one: the
//! asset's own; when that instance cannot be used (the host's `unavailable`: it does not
//! answer, as after a failover, or refuses the sign-in; the plan shows its error, and any
//! other error is left to the plan's own check of the target) and `replicas=` names the
//! other replicas of the database's availability group, the one that holds the database
//! in the chain's group as its primary or a secondary, the primary first. The plan says
//! which and why, or, when none does, what each answered.

use rehydra_plugin_sdk::prelude::*;

use crate::backup::state_on;
use crate::model::ChainDoc;
use crate::tsql;

/// A target chosen for the asset's instance that cannot be used.
pub struct Chosen {
    pub server: String,
    /// Why, as the plan says it.
    pub why: String,
}

/// The asset's instance, or (see above) the replica chosen in its place; `Err` with what
/// each one answered when it cannot be used and no replica will do.
///
/// # Errors
/// The text of the blocker.
pub fn default_target(
    doc: &ChainDoc,
    others: &[String],
) -> std::result::Result<Option<Chosen>, String> {
    let home = doc.server.to_ascii_lowercase();
    let Some(group) = doc.group.as_deref().filter(|_| !others.is_empty()) else {
        return Ok(None);
    };
    let name = doc.database.as_str();
    let down = match tsql::database(&home, name) {
        Err(e) if e.code == ErrorCode::Unavailable => e.message,
        _ => return Ok(None),
    };
    let mut said = vec![format!("{home}: {down}")];
    let mut found: Option<(&str, &'static str)> = None;
    for on in others {
        match state_on(on, name) {
            Ok((db, Some(role)))
                if db.group.as_deref() == Some(group) && (role.primary() || role.secondary()) =>
            {
                if role.primary() {
                    found = Some((on, "its primary"));
                    break;
                }
                found = found.or(Some((on, "a secondary")));
            }
            Ok((db, Some(role))) if db.group.as_deref() == Some(group) => said.push(format!(
                "{on}: neither primary nor secondary of `{name}` now ({})",
                role.role
            )),
            Ok(_) => said.push(format!(
                "{on}: its `{name}` is not in the availability group the chain was taken in"
            )),
            Err(e) => said.push(format!("{on}: {}", e.message)),
        }
    }
    match found {
        Some((on, role)) => Ok(Some(Chosen {
            server: on.to_string(),
            why: format!(
                "{on}, which holds `{name}` in the same availability group as {role} now: the asset's instance {home} cannot be used ({down}); name another with server="
            ),
        })),
        None => Err(format!(
            "the asset's instance cannot be used and no replica in replicas= holds `{name}` in its availability group ({}); name the instance to restore to with server=",
            said.join("; ")
        )),
    }
}
