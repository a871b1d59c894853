//! `plan-restore`, `restore` and `verify` of directory objects.
//!
//! The plan is computed against the live directory first and names every write:
//! - a deleted object whose tombstone (or Recycle Bin copy) is still there is
//!   **reanimated**: same objectGUID and SID, back at its DN, with the attributes the
//!   deletion stripped put back from the restore point (refused on a Samba DC for an
//!   object deleted with the Recycle Bin on, which Samba cannot undelete over LDAP);
//! - an object the directory no longer knows is **re-created** from the restore point
//!   (a new SID; a user comes back disabled, as passwords are never readable);
//! - an existing object is left alone unless `attributes` names what to roll back
//!   (`*`: every attribute that differs), shown as old → new; a security descriptor
//!   only when named, shown as the DACL entries it removes and adds (see `security`);
//! - with `memberships` (default on), group memberships of the point are linked again
//!   (both ways: the object's groups, and a group's members).
//!
//! `object` picks the object by DN, GUID or sAMAccountName; `subtree` adds everything
//! below it (an OU with its users), parents first. Nothing is written by planning.

use std::collections::{BTreeMap, BTreeSet};

use rehydra_plugin_sdk::ldap::{self, Attribute, Change, ChangeOp, Controls};
use rehydra_plugin_sdk::{engine, host, prelude::*};

use crate::backup::{self, META, Meta};
use crate::changes::show_change;
use crate::inventory::directory_of;
use crate::rules::{
    ACCOUNT_DISABLE, NORMAL_ACCOUNT, WORKSTATION_TRUST_ACCOUNT, privileged, same_identity,
    writable, writable_by_name,
};
use crate::{compare, dir, find, ldif::Obj, security, system_state, sysvol};

/// One write of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reanimate {
        tombstone: String,
        dn: String,
        put_back: Vec<(String, Vec<Vec<u8>>)>,
    },
    Recreate {
        dn: String,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Rollback {
        dn: String,
        set: Vec<(String, Vec<Vec<u8>>)>,
    },
    AddMember {
        group: String,
        member: String,
    },
    /// A GPO's SYSVOL folder put back where there is none.
    Folder {
        item: String,
        to: String,
    },
}

/// A checked plan and the writes it stands for.
pub struct Planned {
    pub plan: RestorePlan,
    pub directory: String,
    pub actions: Vec<Action>,
}

impl From<Planned> for RestorePlan {
    fn from(p: Planned) -> Self {
        p.plan
    }
}

struct Ctx<'a> {
    directory: String,
    nc: String,
    point: &'a BTreeMap<Vec<u8>, Obj>,
    by_dn: BTreeMap<String, Vec<u8>>,
    live: BTreeMap<Vec<u8>, Option<Obj>>,
    /// DN each selected object will have once restored.
    restored: BTreeMap<Vec<u8>, String>,
}

impl Ctx<'_> {
    fn live(&mut self, guid: &[u8]) -> Result<Option<Obj>> {
        if let Some(v) = self.live.get(guid) {
            return Ok(v.clone());
        }
        let v = dir::by_guid(&self.directory, &self.nc, guid)?;
        self.live.insert(guid.to_vec(), v.clone());
        Ok(v)
    }

    /// The DN an object of the point has in the directory after the restore, if any.
    fn dn_after(&mut self, guid: &[u8]) -> Result<Option<String>> {
        if let Some(dn) = self.restored.get(guid) {
            return Ok(Some(dn.clone()));
        }
        Ok(self.live(guid)?.filter(|o| !deleted(o)).map(|o| o.dn))
    }

    fn guid_of_dn(&self, dn: &str) -> Option<Vec<u8>> {
        self.by_dn.get(&dn.to_ascii_lowercase()).cloned()
    }
}

fn deleted(o: &Obj) -> bool {
    o.text("isDeleted")
        .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
}

/// A tombstone (stripped), as opposed to an object the Recycle Bin keeps whole.
fn recycled(o: &Obj) -> bool {
    o.text("isRecycled")
        .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
}

fn err(code: ErrorCode, m: impl Into<String>) -> Error {
    Error::new(code, m.into())
}

/// Pick the objects `object` (and `subtree`) name in the restore point.
fn select(point: &BTreeMap<Vec<u8>, Obj>, object: &str, subtree: bool) -> Result<Vec<Vec<u8>>> {
    let hits: Vec<(&Vec<u8>, &Obj)> = point
        .iter()
        .filter(|(g, o)| {
            o.dn.eq_ignore_ascii_case(object)
                || dir::guid_text(g).is_some_and(|t| t.eq_ignore_ascii_case(object))
                || o.text("sAMAccountName")
                    .is_some_and(|s| s.eq_ignore_ascii_case(object))
        })
        .collect();
    if hits.len() > 1 {
        return Err(err(
            ErrorCode::InvalidInput,
            format!(
                "`{object}` names {} objects of this restore point; give the DN or GUID",
                hits.len()
            ),
        ));
    }
    let Some(&(g, o)) = hits.first() else {
        return Err(err(
            ErrorCode::NotFound,
            format!(
                "`{object}` is not in this restore point (give a DN, a GUID or a sAMAccountName)"
            ),
        ));
    };
    let mut out = vec![g.clone()];
    if subtree {
        let base = o.dn.clone();
        let mut below: Vec<(&Vec<u8>, &Obj)> = point
            .iter()
            .filter(|(x, c)| *x != g && dir::within(&c.dn, &base))
            .collect();
        below.sort_by_key(|(_, c)| dir::depth(&c.dn));
        out.extend(below.into_iter().map(|(x, _)| x.clone()));
    }
    Ok(out)
}

fn step(n: usize, title: String, detail: String) -> Step {
    Step {
        id: format!("s{n}"),
        title,
        detail,
        depends_on: if n > 1 {
            vec![format!("s{}", n - 1)]
        } else {
            vec![]
        },
    }
}

/// What `compare` asks for: `live`, or another restore point; `none` (or nothing) for a
/// restore.
pub(crate) fn comparing(o: &[Property]) -> Option<&str> {
    setting(o, "compare")
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("none"))
}

/// Plan a restore (reads the restore point and the live directory; writes nothing).
pub fn plan(req: &RestoreRequest) -> Result<Planned> {
    let o = &req.options;
    let finding = find::requested(o)?;
    if flag(o, "whole-dc") {
        let now = rehydra_plugin_sdk::time::now();
        let when = parse_time(&req.restore_point.time);
        let live = live_tombstone(req);
        return Ok(Planned {
            plan: system_state::plan(o, &req.target, when, now, live)?,
            directory: String::new(),
            actions: Vec::new(),
        });
    }
    let meta = Meta::parse(&engine::read_document(META)?)?;
    // two restore points are compared without the directory
    if let Some(other) = comparing(o).filter(|c| !c.eq_ignore_ascii_case("live")) {
        return Ok(Planned {
            plan: compare::with_point(&req.restore_point, &meta, other)?,
            directory: String::new(),
            actions: Vec::new(),
        });
    }
    let (directory, live_nc, samba) = live_directory(req, &meta)?;
    if comparing(o).is_some_and(|c| c.eq_ignore_ascii_case("live")) {
        return Ok(Planned {
            plan: compare::with_live(&directory, &meta, &req.restore_point.time)?,
            directory,
            actions: Vec::new(),
        });
    }
    if let Some(text) = finding {
        let point = backup::objects(engine::read_document, &meta)?;
        let live = |g: &[u8]| dir::deleted_by_guid(&directory, &live_nc, g);
        return Ok(Planned {
            plan: find::plan(&point, text, &live)?,
            directory,
            actions: Vec::new(),
        });
    }
    let object = require(
        o,
        "object",
        "the object to restore: its DN, GUID or sAMAccountName",
    )?;
    let subtree = flag(o, "subtree");
    let memberships = flag(o, "memberships");
    let roll: Option<BTreeSet<String>> =
        setting(o, "attributes").filter(|v| !v.is_empty()).map(|v| {
            v.split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect()
        });
    let point = backup::objects(engine::read_document, &meta)?;
    let chosen = select(&point, object, subtree)?;
    let mut cx = Ctx {
        directory: directory.clone(),
        nc: live_nc,
        by_dn: point
            .iter()
            .map(|(g, o)| (o.dn.to_ascii_lowercase(), g.clone()))
            .collect(),
        point: &point,
        live: BTreeMap::new(),
        restored: BTreeMap::new(),
    };
    let (mut actions, mut steps, mut warnings, mut blockers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let age_days = (rehydra_plugin_sdk::time::now() - parse_time(&req.restore_point.time)) / 86_400;
    if age_days > i64::from(meta.tombstone_lifetime_days) {
        warnings.push(format!(
            "this restore point is {age_days} days old, older than the tombstone lifetime ({} days): objects deleted since are gone for good and come back with new SIDs",
            meta.tombstone_lifetime_days
        ));
    }
    for g in &chosen {
        let b = &cx.point[g];
        let dn = b.dn.clone();
        let live = cx.live(g)?;
        if let Some(l) = &live
            && !same_identity(b, l)
        {
            blockers.push(format!(
                "the directory's object with the GUID of {dn} is {} (SID {}), not the account of the restore point (SID {}): nothing is written to it",
                l.dn,
                l.values("objectSid").first().and_then(|s| dir::sid_text(s)).unwrap_or_else(|| "none".into()),
                b.values("objectSid").first().and_then(|s| dir::sid_text(s)).unwrap_or_else(|| "none".into()),
            ));
            continue;
        }
        match live {
            Some(l) if deleted(&l) => {
                // with the Recycle Bin on, a deleted object keeps its attributes and is not
                // yet recycled; Samba 4.17's undelete expects a stripped tombstone and fails
                if samba && !recycled(&l) {
                    blockers.push(format!(
                        "{dn} was deleted while the Recycle Bin is on, and Samba cannot undelete such an object over LDAP (it answers \"no such attribute isRecycled\"): nothing is written; it keeps its attributes and memberships in CN=Deleted Objects until the deleted-object lifetime ends"
                    ));
                    continue;
                }
                let put_back: Vec<(String, Vec<Vec<u8>>)> = b
                    .attrs
                    .iter()
                    .filter(|(k, v)| {
                        writable(k) && !rdn_attr(&dn, k) && l.values(k) != v.as_slice()
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                steps.push(step(steps.len() + 1, format!("Reanimate {dn}"), format!(
                    "from its tombstone (same objectGUID {} and SID {}); put back {} attribute(s): {}",
                    dir::guid_text(g).unwrap_or_default(),
                    l.values("objectSid").first().and_then(|s| dir::sid_text(s)).unwrap_or_else(|| "none".into()),
                    put_back.len(),
                    put_back.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
                )));
                actions.push(Action::Reanimate {
                    tombstone: l.dn.clone(),
                    dn: dn.clone(),
                    put_back,
                });
                cx.restored.insert(g.clone(), dn);
            }
            Some(l) if !deleted(&l) => {
                let Some(roll) = &roll else {
                    steps.push(step(
                        steps.len() + 1,
                        format!("Keep {}", l.dn),
                        "it exists; name attributes=… to roll attributes back".into(),
                    ));
                    continue;
                };
                let set: Vec<(String, Vec<Vec<u8>>)> = b
                    .attrs
                    .iter()
                    .chain(l.attrs.iter().filter(|(k, _)| b.values(k).is_empty()))
                    .filter(|(k, _)| !rdn_attr(&l.dn, k))
                    .filter(|(k, _)| {
                        (roll.contains("*") && writable(k))
                            || (roll.contains(&k.to_ascii_lowercase()) && writable_by_name(k))
                    })
                    .filter(|(k, _)| b.values(k) != l.values(k))
                    .map(|(k, _)| (k.clone(), b.values(k).to_vec()))
                    .collect();
                if set.is_empty() {
                    steps.push(step(
                        steps.len() + 1,
                        format!("Keep {}", l.dn),
                        "the named attributes already hold the restore point's values".into(),
                    ));
                } else {
                    if let Some((_, v)) = set.iter().find(|(k, _)| security::is_descriptor(k))
                        && let Some(why) = security::refusal(v)
                    {
                        blockers.push(format!(
                            "the security descriptor of {} is not rolled back: {why}",
                            l.dn
                        ));
                    }
                    let detail = set
                        .iter()
                        .map(|(k, v)| show_change(k, l.values(k), v))
                        .collect::<Vec<_>>()
                        .join("\n");
                    steps.push(step(
                        steps.len() + 1,
                        format!("Roll back {} attribute(s) of {}", set.len(), l.dn),
                        detail,
                    ));
                    actions.push(Action::Rollback {
                        dn: l.dn.clone(),
                        set,
                    });
                }
                cx.restored.insert(g.clone(), l.dn.clone());
            }
            _ => {
                let parent = dir::parent(&dn).unwrap_or_default().to_string();
                let parent_ok = cx
                    .guid_of_dn(&parent)
                    .map_or(Ok(true), |pg| cx.dn_after(&pg).map(|d| d.is_some()))?;
                if !parent_ok {
                    blockers.push(format!("{dn} needs its parent {parent}, which is gone: restore the parent too (subtree=true on it)"));
                }
                let mut attrs: Vec<(String, Vec<Vec<u8>>)> = b
                    .attrs
                    .iter()
                    .filter(|(k, _)| {
                        (writable(k) || k.eq_ignore_ascii_case("objectClass"))
                            && !k.eq_ignore_ascii_case("member")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut detail = format!(
                    "re-created from the restore point with {} attribute(s): it gets a NEW SID (the old one is gone with its tombstone), so permissions granted to the old SID do not apply",
                    attrs.len()
                );
                if b.is("user") {
                    // only the account type, never trust or delegation bits of the point
                    let kind = if b.is("computer") {
                        WORKSTATION_TRUST_ACCOUNT
                    } else {
                        NORMAL_ACCOUNT
                    };
                    attrs.push((
                        "userAccountControl".into(),
                        vec![(kind | ACCOUNT_DISABLE).to_string().into_bytes()],
                    ));
                    detail.push_str(
                        "; the account comes back disabled (passwords, delegation and service principal names are never restored): set a password, then enable it",
                    );
                }
                warnings.push(format!("{dn} is re-created with a new SID"));
                steps.push(step(steps.len() + 1, format!("Re-create {dn}"), detail));
                actions.push(Action::Recreate {
                    dn: dn.clone(),
                    attrs,
                });
                cx.restored.insert(g.clone(), dn);
            }
        }
    }
    if memberships {
        for g in &chosen {
            for (group, member, admin) in links(&mut cx, g)? {
                if admin {
                    warnings.push(format!("{member} is not added back to {group}: it controls the domain, add it by hand if that is wanted"));
                    continue;
                }
                steps.push(step(
                    steps.len() + 1,
                    format!("Add {member} to {group}"),
                    "group membership of the restore point".into(),
                ));
                actions.push(Action::AddMember { group, member });
            }
        }
    }
    let sysvol = setting(o, "sysvol").filter(|s| !s.trim().is_empty());
    let items = engine::items()?;
    for g in &chosen {
        if let Some((item, to)) = sysvol::plan(&cx.point[g], sysvol, &items, &mut warnings)? {
            steps.push(step(
                steps.len() + 1,
                format!(
                    "Put back the SYSVOL folder {}",
                    &item[sysvol::PREFIX.len()..]
                ),
                format!("to {to}, from the restore point's {item}"),
            ));
            actions.push(Action::Folder { item, to });
        }
    }
    if actions.is_empty() && blockers.is_empty() {
        warnings.push(
            "nothing to do: the directory already matches the restore point for what was asked"
                .into(),
        );
    }
    Ok(Planned {
        plan: RestorePlan {
            steps,
            warnings,
            blockers,
        },
        directory,
        actions,
    })
}

/// Memberships of the point to link again for a chosen object: its groups, and if it is a
/// group its members, where both ends exist after the restore and the link does not.
fn links(cx: &mut Ctx, g: &[u8]) -> Result<Vec<(String, String, bool)>> {
    let b = cx.point[g].clone();
    let Some(me) = cx.dn_after(g)? else {
        return Ok(vec![]);
    };
    let mut pairs = Vec::new();
    for grp in b.texts("memberOf") {
        if let Some(gg) = cx.guid_of_dn(&grp) {
            pairs.push((gg, g.to_vec()));
        }
    }
    for m in b.texts("member") {
        if let Some(mg) = cx.guid_of_dn(&m) {
            pairs.push((g.to_vec(), mg));
        }
    }
    let mut out = Vec::new();
    for (gg, mg) in pairs {
        let (Some(group), Some(member)) = (
            cx.dn_after(&gg)?,
            if mg == g {
                Some(me.clone())
            } else {
                cx.dn_after(&mg)?
            },
        ) else {
            continue;
        };
        let live_group = cx.live(&gg)?.filter(|l| !deleted(l));
        let already = live_group.as_ref().is_some_and(|l| {
            l.texts("member")
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&member))
        });
        // privileged by what the directory says of the group, or the point if it is restored too
        let admin = live_group.as_ref().is_some_and(privileged) || privileged(&cx.point[&gg]);
        if !already && !out.iter().any(|(a, b, _)| *a == group && *b == member) {
            out.push((group, member, admin));
        }
    }
    Ok(out)
}

/// True if `attr` is the naming attribute of `dn` (`CN=…` → cn).
fn rdn_attr(dn: &str, attr: &str) -> bool {
    dir::rdn(dn)
        .split_once('=')
        .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(attr))
}

/// Seconds since the epoch of an RFC 3339 time (`0` if unreadable, so it counts as old).
fn parse_time(t: &str) -> i64 {
    let d = |a: usize, b: usize| t.get(a..b).and_then(|s| s.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(da), Some(h), Some(mi), Some(s)) =
        (d(0, 4), d(5, 7), d(8, 10), d(11, 13), d(14, 16), d(17, 19))
    else {
        return 0;
    };
    // days from civil (Howard Hinnant)
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + s
}

fn attrs(v: &[(String, Vec<Vec<u8>>)]) -> Vec<Attribute> {
    v.iter()
        .map(|(k, v)| Attribute {
            name: k.clone(),
            values: v.clone(),
        })
        .collect()
}

fn replace(v: &[(String, Vec<Vec<u8>>)]) -> Vec<Change> {
    v.iter()
        .map(|(k, v)| Change {
            op: if v.is_empty() {
                ChangeOp::Delete
            } else {
                ChangeOp::Replace
            },
            attribute: k.clone(),
            values: v.clone(),
        })
        .collect()
}

/// Put attributes back one by one where the directory refuses them together.
fn put_back(
    directory: &str,
    dn: &str,
    set: &[(String, Vec<Vec<u8>>)],
    warnings: &mut Vec<String>,
) -> Result<()> {
    // a security descriptor is written as owner, group and DACL, never its SACL, and
    // first, on its own: the directory refusing it (an owner the bind account may not
    // set) leaves the object open as it is, a failure, before anything else is written
    let sd = Controls::SECURITY_DESCRIPTOR;
    let (descriptor, set): (Vec<_>, Vec<_>) = set
        .iter()
        .cloned()
        .partition(|(k, _)| security::is_descriptor(k));
    if !descriptor.is_empty()
        && let Err(e) = ldap::modify(directory, dn, &replace(&descriptor), sd)
    {
        return Err(Error::new(
            e.code,
            format!("{dn}: nTSecurityDescriptor not written: {}", e.message),
        ));
    }
    if set.is_empty() || ldap::modify(directory, dn, &replace(&set), sd).is_ok() {
        return Ok(());
    }
    for one in &set {
        if let Err(e) = ldap::modify(directory, dn, &replace(std::slice::from_ref(one)), sd) {
            if e.code == ErrorCode::Cancelled {
                return Err(e);
            }
            warnings.push(format!("{dn}: {} not put back: {}", one.0, e.message));
        }
    }
    Ok(())
}

/// The directory a restore of this point goes to: `directory`, else the one it came from.
fn target_directory(req: &RestoreRequest) -> Result<&str> {
    match setting(&req.options, "directory").filter(|d| !d.is_empty()) {
        Some(d) => Ok(d),
        None => directory_of(&req.restore_point.asset),
    }
}

/// The live forest's tombstone lifetime, when the directory of the point answers.
fn live_tombstone(req: &RestoreRequest) -> Option<u32> {
    let directory = target_directory(req).ok()?;
    let config = dir::root_dse(directory)
        .ok()?
        .text("configurationNamingContext")?;
    crate::inventory::tombstone_days(directory, &config).ok()
}

/// The directory a restore of this point goes to, its naming context (which must be the
/// point's), and whether it is a Samba DC (its root DSE's `vendorName`).
fn live_directory(req: &RestoreRequest, meta: &Meta) -> Result<(String, String, bool)> {
    let directory = target_directory(req)?.to_string();
    let root = dir::root_dse(&directory)?;
    let live_nc = root.text("defaultNamingContext").unwrap_or_default();
    let samba = root
        .text("vendorName")
        .is_some_and(|v| v.starts_with("Samba"));
    if !live_nc.eq_ignore_ascii_case(&meta.naming_context) {
        return Err(err(
            ErrorCode::InvalidInput,
            format!(
                "directory `{directory}` serves {live_nc}, the restore point holds {}: restore into a directory of that domain",
                meta.naming_context
            ),
        ));
    }
    Ok((directory, live_nc, samba))
}

/// Carry out a plan.
pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    find::refuse_in_restore(&req.options)?;
    let p = plan(req)?;
    p.plan.go_ahead()?;
    if flag(&req.options, "whole-dc") {
        return system_state::restore(&req.options, &req.target, p.plan.warnings);
    }
    if let Some(c) = comparing(&req.options) {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("compare={c} only shows what changed; run it with --plan-only"),
        ));
    }
    let d = &p.directory;
    let mut warnings = p.plan.warnings.clone();
    let total = p.actions.len() as u64;
    for (i, a) in p.actions.iter().enumerate() {
        host::progress(i as u64, total, "directory writes");
        match a {
            Action::Reanimate {
                tombstone,
                dn,
                put_back: set,
            } => {
                let changes = vec![
                    Change {
                        op: ChangeOp::Delete,
                        attribute: "isDeleted".into(),
                        values: vec![],
                    },
                    Change {
                        op: ChangeOp::Replace,
                        attribute: "distinguishedName".into(),
                        values: vec![dn.clone().into_bytes()],
                    },
                ];
                ldap::modify(d, tombstone, &changes, Controls::SHOW_DELETED)
                    .map_err(|e| err(e.code, format!("reanimating {dn}: {}", e.message)))?;
                put_back(d, dn, set, &mut warnings)?;
            }
            Action::Recreate { dn, attrs: a } => {
                ldap::add(d, dn, &attrs(a))
                    .map_err(|e| err(e.code, format!("re-creating {dn}: {}", e.message)))?;
            }
            Action::Rollback { dn, set } => put_back(d, dn, set, &mut warnings)?,
            Action::Folder { item, to } => {
                sysvol::restore(item, to)
                    .map_err(|e| err(e.code, format!("putting back {to}: {}", e.message)))?;
            }
            Action::AddMember { group, member } => {
                let c = Change {
                    op: ChangeOp::Add,
                    attribute: "member".into(),
                    values: vec![member.clone().into_bytes()],
                };
                if let Err(e) = ldap::modify(d, group, &[c], Controls::empty()) {
                    if e.code == ErrorCode::Cancelled {
                        return Err(e);
                    }
                    warnings.push(format!("{member} not added to {group}: {}", e.message));
                }
            }
        }
    }
    Ok(RestoreReport { bytes: 0, warnings })
}

/// Read every document of the restore point back and check it parses and adds up.
pub fn verify(_req: &RestoreRequest) -> Result<VerifyReport> {
    let meta = Meta::parse(&engine::read_document(META)?)?;
    let mut findings = Vec::new();
    for p in &meta.partitions {
        let mut n = 0u64;
        let outcome = backup::each_object(engine::read_document, p, |_| {
            n += 1;
            Ok(())
        });
        let problem = match outcome {
            Err(e) => Some(e.message),
            Ok(()) if n != p.objects => Some(format!("{n} objects read, {} recorded", p.objects)),
            Ok(()) => None,
        };
        if let Some(detail) = problem {
            findings.push(Finding {
                rule: "ad.restore-point-damaged".into(),
                severity: Severity::Critical,
                asset: Some(meta.domain.clone()),
                title: format!(
                    "The {} partition of this restore point cannot be read back",
                    p.name
                ),
                detail,
                recommendation:
                    "Take a new backup; run `rehydra check --read-data` on the repository".into(),
            });
        }
    }
    Ok(VerifyReport::of(findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_naming_attributes() {
        assert_eq!(parse_time("1970-01-02T00:00:01Z"), 86_401);
        assert_eq!(parse_time("2026-12-02T11:16:02.123Z"), 1_796_210_162);
        assert_eq!(parse_time("garbage"), 0);
        assert!(rdn_attr("CN=Bob,DC=t", "cn"));
        assert!(rdn_attr("OU=Staff,DC=t", "ou"));
        assert!(!rdn_attr("CN=Bob,DC=t", "sn"));
        assert!(!writable("objectSid") && !writable("uSNChanged") && writable("givenName"));
        for never in [
            "unicodePwd",
            "msDS-KeyCredentialLink",
            "sIDHistory",
            "member;range=0-1499",
        ] {
            assert!(!writable(never) && !writable_by_name(never), "{never}");
        }
        assert!(!writable("userAccountControl") && writable_by_name("userAccountControl"));
        // by OID, as only a crafted restore point names them: never
        for oid in [
            "1.2.840.113556.1.2.281",
            "OID.1.2.840.113556.1.2.281",
            "oid.2.5.4.12",
            "2.5.4.12",
        ] {
            assert!(!writable(oid) && !writable_by_name(oid), "{oid}");
        }
        assert!(!writable("nTSecurityDescriptor") && writable_by_name("ntsecuritydescriptor"));
    }

    fn obj(attrs: &[(&str, &[u8])]) -> Obj {
        let mut o = Obj::default();
        for (k, v) in attrs {
            o.attrs.entry((*k).into()).or_default().push(v.to_vec());
        }
        o
    }

    #[test]
    fn privileged_groups_and_identities() {
        let sid = |rid: u32| {
            let mut s = vec![1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];
            for x in [1u32, 2, 3, rid] {
                s.extend(x.to_le_bytes());
            }
            s
        };
        assert!(
            privileged(&obj(&[("objectSid", &sid(512))])),
            "Domain Admins"
        );
        assert!(privileged(&obj(&[
            ("objectSid", &sid(1105)),
            ("adminCount", b"1")
        ])));
        assert!(!privileged(&obj(&[("objectSid", &sid(1105))])));
        let a = obj(&[
            ("objectSid", &sid(1105)),
            ("objectClass", b"top"),
            ("objectClass", b"user"),
        ]);
        let b = obj(&[
            ("objectSid", &sid(500)),
            ("objectClass", b"top"),
            ("objectClass", b"user"),
        ]);
        let g = obj(&[
            ("objectSid", &sid(1105)),
            ("objectClass", b"top"),
            ("objectClass", b"group"),
        ]);
        assert!(same_identity(&a, &a.clone()));
        assert!(!same_identity(&a, &b), "another account with that GUID");
        assert!(!same_identity(&a, &g), "another class");
    }
}
