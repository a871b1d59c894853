//! `find=<text>`: the objects of a restore point whose DN or sAMAccountName holds the
//! text, as the plan steps (`pick:<DN>`) the restore wizard offers for `object`, each
//! said to be in the live directory, deleted there, or gone. It restores nothing: the
//! restore refuses it, as it does a comparison.

use std::collections::BTreeMap;

use rehydra_plugin_sdk::found::{self, Found};
use rehydra_plugin_sdk::prelude::*;

use crate::dir;
use crate::ldif::Obj;

/// Whether the live directory holds an object, by its GUID, and whether it is deleted
/// there: `None` when it holds nothing.
pub type Live<'a> = &'a dyn Fn(&[u8]) -> Result<Option<bool>>;

/// The text of `find`, if given. A listing goes alone: with `whole-dc` or `compare` it
/// is refused rather than one of them quietly winning.
///
/// # Errors
/// `find` given with `whole-dc` or a comparison.
pub fn requested(o: &[Property]) -> Result<Option<&str>> {
    let Some(text) = setting(o, "find") else {
        return Ok(None);
    };
    if flag(o, "whole-dc") || crate::restore::comparing(o).is_some() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "find lists objects and goes alone: give it without whole-dc or compare",
        ));
    }
    Ok(Some(text))
}

/// A restore given `find` is refused before anything is read: it only lists.
///
/// # Errors
/// `find` is given (alone, or with what it may not go with).
pub fn refuse_in_restore(o: &[Property]) -> Result<()> {
    requested(o)?;
    found::refuse_in_restore(o, "find", "object")
}

/// The objects of `point` matching `text` (case-insensitive), shallowest first, at most
/// [`found::MAX`], with what `live` says of each.
pub fn plan(point: &BTreeMap<Vec<u8>, Obj>, text: &str, live: Live<'_>) -> Result<RestorePlan> {
    let needle = found::needle(text, "a name, a DN or a sAMAccountName")?;
    let holds = |v: &str| v.to_lowercase().contains(&needle);
    let mut hits: Vec<(&Vec<u8>, &Obj)> = point
        .iter()
        .filter(|(_, o)| holds(&o.dn) || o.text("sAMAccountName").is_some_and(|s| holds(&s)))
        .collect();
    hits.sort_by_cached_key(|(_, o)| (dir::depth(&o.dn), o.dn.to_lowercase()));
    found::listing(&hits, text, |(guid, o)| {
        let kind = o
            .texts("objectClass")
            .pop()
            .unwrap_or_else(|| "object".into());
        let below = point
            .values()
            .filter(|c| c.dn != o.dn && dir::within(&c.dn, &o.dn))
            .count();
        let state = match live(guid)? {
            Some(true) => "deleted in the directory",
            Some(false) => "in the directory",
            None => "not in the directory (gone past its tombstone lifetime)",
        };
        let mut detail = format!("{kind}, {state}");
        if let Some(sam) = o.text("sAMAccountName") {
            detail.push_str(&format!("; sAMAccountName {sam}"));
        }
        if below > 0 {
            detail.push_str(&format!(
                "; {below} object(s) below it in the restore point (subtree=true restores them too)"
            ));
        }
        Ok(Found {
            value: o.dn.clone(),
            title: format!("{} ({kind}, {state})", o.dn),
            detail,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(dn: &str, class: &str, sam: Option<&str>) -> Obj {
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "objectClass".to_string(),
            vec![b"top".to_vec(), class.as_bytes().to_vec()],
        );
        if let Some(s) = sam {
            attrs.insert("sAMAccountName".to_string(), vec![s.as_bytes().to_vec()]);
        }
        Obj {
            dn: dn.into(),
            attrs,
        }
    }

    #[test]
    fn objects_are_found_by_dn_or_account_name_with_their_live_state() {
        let mut point = BTreeMap::new();
        point.insert(
            vec![1],
            obj("OU=Staff,DC=t,DC=lan", "organizationalUnit", None),
        );
        point.insert(
            vec![2],
            obj("CN=Alice Smith,OU=Staff,DC=t,DC=lan", "user", Some("alice")),
        );
        point.insert(
            vec![3],
            obj("CN=Bob,CN=Users,DC=t,DC=lan", "user", Some("bob")),
        );
        let live = |g: &[u8]| {
            Ok(match g {
                [1] => Some(true),
                [2] => None,
                _ => Some(false),
            })
        };
        let plan = plan(&point, " STAFF ", &live).unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        // shallowest first; bob's DN and name do not hold "staff"
        assert_eq!(
            ids,
            [
                "pick:OU=Staff,DC=t,DC=lan",
                "pick:CN=Alice Smith,OU=Staff,DC=t,DC=lan"
            ]
        );
        assert!(
            plan.steps[0]
                .title
                .contains("organizationalUnit, deleted in the directory")
        );
        assert!(plan.steps[0].detail.contains("1 object(s) below it"));
        assert!(plan.steps[1].title.contains("not in the directory"));
        assert!(
            plan.blockers.is_empty(),
            "a listing, which the restore refuses"
        );
        // by account name, any case
        let by_name = super::plan(&point, "BOB", &live).unwrap();
        assert_eq!(by_name.steps.len(), 1);
        assert!(by_name.steps[0].title.contains("(user, in the directory)"));
        assert!(super::plan(&point, "  ", &live).is_err());
        // a listing goes alone, and a restore refuses it before reading anything
        let o = |pairs: &[(&str, &str)]| rehydra_plugin_sdk::mock::props(pairs);
        assert_eq!(requested(&o(&[("find", "x")])).unwrap(), Some("x"));
        assert!(requested(&o(&[("find", "x"), ("whole-dc", "true")])).is_err());
        assert!(requested(&o(&[("find", "x"), ("compare", "live")])).is_err());
        assert!(requested(&o(&[("find", "x"), ("compare", "none")])).is_ok());
        assert!(refuse_in_restore(&o(&[("find", "x")])).is_err());
        assert!(refuse_in_restore(&o(&[("object", "x")])).is_ok());
        let none = super::plan(&point, "carol", &live).unwrap();
        assert!(
            none.steps.is_empty() && none.warnings[0].starts_with("nothing in the restore point")
        );
    }

    #[test]
    fn a_search_lists_at_most_the_cap_and_says_how_many_more() {
        let point: BTreeMap<Vec<u8>, Obj> = (0..found::MAX + 7)
            .map(|i| {
                (
                    vec![i as u8],
                    obj(&format!("CN=u{i},DC=t,DC=lan"), "user", None),
                )
            })
            .collect();
        let plan = plan(&point, "cn=u", &|_| Ok(None)).unwrap();
        assert_eq!(plan.steps.len(), found::MAX);
        assert!(
            plan.warnings[0].starts_with("7 more hold"),
            "{:?}",
            plan.warnings
        );
    }
}
