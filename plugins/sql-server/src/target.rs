//! The instance a restore goes to when `server=` does not name one: the asset's own; when
//! that instance cannot be reached (as after a failover) and `replicas=` names the other
//! replicas of the database's availability group, the one that holds the database in the
//! chain's group, its primary first. The plan says which and why, or, when none does, what
//! each answered.

use rehydra_plugin_sdk::prelude::*;

use crate::backup::state_on;
use crate::model::ChainDoc;
use crate::tsql;

/// The default target of a restore of `doc`'s database (see above), said in `p`.
pub fn default_target(doc: &ChainDoc, others: &[String], p: &mut RestorePlan) -> String {
    let home = doc.server.to_ascii_lowercase();
    let Some(group) = doc.group.as_deref().filter(|_| !others.is_empty()) else {
        return home;
    };
    let name = doc.database.as_str();
    let down = match tsql::database(&home, name) {
        Err(e) => e.message,
        Ok(_) => return home,
    };
    let mut said = vec![format!("{home}: {down}")];
    let mut found: Option<(&str, bool)> = None;
    for on in others {
        match state_on(on, name) {
            Ok((db, Some(role))) if db.group.as_deref() == Some(group) => {
                if role.primary() {
                    found = Some((on, true));
                    break;
                }
                found = found.or(Some((on, false)));
            }
            Ok(_) => said.push(format!(
                "{on}: its `{name}` is not in the availability group the chain was taken in"
            )),
            Err(e) => said.push(format!("{on}: {}", e.message)),
        }
    }
    match found {
        Some((on, primary)) => {
            p.steps.push(Step::new(
                "target",
                "restored on",
                format!(
                    "{on}, which holds `{name}` in the same availability group{}: the asset's instance {home} cannot be reached ({down}); name another with server=",
                    if primary { " as its primary now" } else { "" }
                ),
            ));
            on.to_string()
        }
        None => {
            p.blockers.push(format!(
                "the asset's instance cannot be reached and no replica in replicas= holds `{name}` in its availability group ({}); name the instance to restore to with server=",
                said.join("; ")
            ));
            home
        }
    }
}
