//! Plan, restore and verify.
//!
//! The plan reads `vault.json`, finds the target vault (the original, or `vault=<ARM id>`
//! read through ARM), and asks the target about every selected object: live (kept, or
//! refused with `existing=fail`), soft-deleted (recovered; with `purge=true` purged and
//! restored from the point instead), or absent (restored). How: the service's Restore
//! operation where the target is in the blob's subscription and geography, else the
//! portable copy; what cannot move (keys, non-exportable certificates, a point without a
//! portable copy) is a blocker named before anything is written.

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};
use serde_json::{Value, json};

use crate::backup::{DOC, sha256};
use crate::client::{self, kv_url, valid_name};
use crate::inventory::{arm_vault, value};
use crate::model::{self, Kind, Object, VaultDoc, Version};

/// Geographies of the regions Key Vault backups move within (Azure's data residency
/// boundaries); a region not listed is a geography of its own.
const GEOGRAPHIES: &[(&str, &[&str])] = &[
    (
        "us",
        &[
            "eastus",
            "eastus2",
            "westus",
            "westus2",
            "westus3",
            "centralus",
            "northcentralus",
            "southcentralus",
            "westcentralus",
        ],
    ),
    ("europe", &["northeurope", "westeurope"]),
    ("uk", &["uksouth", "ukwest"]),
    ("canada", &["canadacentral", "canadaeast"]),
    (
        "australia",
        &[
            "australiaeast",
            "australiasoutheast",
            "australiacentral",
            "australiacentral2",
        ],
    ),
    ("asiapacific", &["eastasia", "southeastasia"]),
    ("japan", &["japaneast", "japanwest"]),
    ("india", &["centralindia", "southindia", "westindia"]),
    ("germany", &["germanywestcentral", "germanynorth"]),
    ("france", &["francecentral", "francesouth"]),
];

fn geography(location: &str) -> String {
    let l = location.to_ascii_lowercase().replace(' ', "");
    GEOGRAPHIES
        .iter()
        .find(|(_, rs)| rs.contains(&l.as_str()))
        .map_or(l.clone(), |(g, _)| (*g).to_string())
}

/// Where the restore goes.
struct Target {
    uri: String,
    subscription: String,
    location: String,
    name: String,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum How {
    /// The service's Restore operation with the blob.
    Blob,
    /// Re-created from the portable copy.
    Portable,
    /// Soft-deleted in the target: recovered.
    Recover,
    /// Purged (consent given), then restored by `then`.
    PurgeThen(bool),
}

struct Action {
    kind: Kind,
    name: String,
    /// Name in the target (`rename`).
    target_name: String,
    how: How,
    /// Only this version (portable secrets).
    version: Option<String>,
}

pub struct Planned {
    pub plan: RestorePlan,
    target: Target,
    actions: Vec<Action>,
    doc: VaultDoc,
}

impl From<Planned> for RestorePlan {
    fn from(p: Planned) -> Self {
        p.plan
    }
}

fn load_doc() -> Result<VaultDoc> {
    let raw = engine::read_document(DOC)?;
    let doc: VaultDoc = serde_json::from_slice(&raw).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("{DOC} is not what this plugin wrote ({e})"),
        )
    })?;
    doc.check().map_err(|why| {
        Error::new(
            ErrorCode::Failed,
            format!("{DOC} of this restore point is refused: {why}"),
        )
    })?;
    Ok(doc)
}

/// The target vault: `vault=<ARM id>`, else the original. With `resolve`, the original is
/// looked up through ARM by its resource id (its URI now, not the one the restore point
/// recorded); `verify` without `vault=` reads the recorded URI (checked to be a vault's by
/// [`VaultDoc::check`]).
fn target(req: &RestoreRequest, doc: &VaultDoc, resolve: bool) -> Result<Target> {
    let id = match setting(&req.options, "vault").filter(|v| !v.is_empty()) {
        Some(id) => id,
        None if !resolve => {
            return Ok(Target {
                uri: doc.uri.clone(),
                subscription: doc.subscription.clone(),
                location: doc.location.clone(),
                name: doc.name.clone(),
            });
        }
        None => doc.id.as_str(),
    };
    let sub = id.split('/').nth(2).unwrap_or_default();
    if !crate::inventory::vault_id_ok(id, sub) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "vault: `{id}` is not the resource id of a key vault (/subscriptions/…/resourceGroups/…/providers/Microsoft.KeyVault/vaults/<name>)"
            ),
        ));
    }
    let props = arm_vault(&req.options, id)?;
    let p = |n: &str| value(&props, n);
    Ok(Target {
        uri: p("vault-uri"),
        subscription: p("subscription"),
        location: p("location"),
        name: id.rsplit('/').next().unwrap_or_default().to_string(),
    })
}

/// `live`, `deleted` or `absent` in the target.
fn state(uri: &str, kind: Kind, name: &str) -> Result<&'static str> {
    let what = format!("looking for {} {name} in the target vault", kind.one());
    if client::get_opt(&kv_url(uri, &format!("{}/{name}", kind.path())), &what)?.is_some() {
        return Ok("live");
    }
    if client::get_opt(
        &kv_url(uri, &format!("deleted{}/{name}", kind.path())),
        &what,
    )?
    .is_some()
    {
        return Ok("deleted");
    }
    Ok("absent")
}

fn selected<'a>(doc: &'a VaultDoc, o: &[Property]) -> Result<Vec<&'a Object>> {
    match setting(o, "object").filter(|v| !v.is_empty()) {
        None => Ok(doc.objects.iter().filter(|o| !o.managed).collect()),
        Some(sel) => {
            let (k, n) = sel.split_once('/').unwrap_or(("", sel));
            let kind = Kind::parse(k).ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "object: `{sel}` is not secrets/<name>, keys/<name> or certificates/<name>"
                    ),
                )
            })?;
            let obj = doc.find(kind, n).ok_or_else(|| {
                Error::new(ErrorCode::NotFound, format!("object: no {} {n} in this restore point (it holds {} objects; `rehydra plugins run keyvault …` lists them in vault.json)", kind.one(), doc.objects.len()))
            })?;
            if obj.managed {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!("object: {sel} belongs to certificate {n}: restore certificates/{n}"),
                ));
            }
            Ok(vec![obj])
        }
    }
}

pub fn plan(req: &RestoreRequest) -> Result<Planned> {
    let o = &req.options;
    let doc = load_doc()?;
    let target = target(req, &doc, true)?;
    let same_place = target.subscription.eq_ignore_ascii_case(&doc.subscription)
        && geography(&target.location) == geography(&doc.location);
    let mode = setting_or(o, "mode", "auto");
    let version = setting(o, "version")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let rename = setting(o, "rename")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let (mut warnings, mut blockers, mut steps, mut actions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let objects = selected(&doc, o)?;
    if (version.is_some() || rename.is_some())
        && !(objects.len() == 1
            && objects[0].kind == Kind::Secrets
            && setting(o, "object").is_some())
    {
        blockers
            .push("version= and rename= take one secret: add object=secrets/<name>".to_string());
    }
    if let Some(r) = &rename {
        if !valid_name(r) {
            blockers.push(format!(
                "rename: `{r}` is not a Key Vault name (1 to 127 letters, digits and dashes)"
            ));
        }
    }
    let portable_mode = match mode {
        "portable" => true,
        "backup" => {
            if version.is_some() || rename.is_some() {
                blockers.push("mode=backup restores an object whole under its own name: version= and rename= need mode=portable (or auto)".into());
            }
            if !same_place {
                blockers.push(format!(
                    "mode=backup: Key Vault restores a backup only into a vault of the subscription and geography it was taken in ({} in {}); the target is {} in {}: use mode=portable",
                    doc.subscription, doc.location, target.subscription, target.location
                ));
            }
            false
        }
        "auto" => !same_place || version.is_some() || rename.is_some(),
        other => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("mode: `{other}` is not auto, backup or portable"),
            ));
        }
    };
    if portable_mode && !doc.portable {
        blockers.push("this restore point has no portable copy (it was backed up without portable=true): only the vault's own subscription and geography can take it back, with mode=backup".into());
    }
    let existing_fail = setting_or(o, "existing", "skip") == "fail";
    let purge = flag(o, "purge");
    let leave_out = setting_or(o, "unportable", "block") == "leave-out";
    let total = objects.len() as u64;
    for (i, obj) in objects.into_iter().enumerate() {
        host::progress(i as u64, total, &format!("checking {}", obj.path()));
        let target_name = rename.clone().unwrap_or_else(|| obj.name.clone());
        let label = format!("{} {target_name}", obj.kind.one());
        if let Some(f) = &obj.failed {
            warnings.push(format!(
                "{label} was not backed up in this restore point ({f}); left out"
            ));
            continue;
        }
        let restore_how = if portable_mode {
            if let Some(why) = &obj.not_portable {
                if leave_out {
                    warnings.push(format!("{why}: left out (unportable=leave-out)"));
                } else {
                    blockers.push(format!(
                        "{why} (unportable=leave-out restores the rest without it)"
                    ));
                }
                continue;
            }
            if obj.portable_item.is_none() {
                blockers.push(format!("{label}: no portable copy in this restore point"));
                continue;
            }
            How::Portable
        } else {
            How::Blob
        };
        let how = match state(&target.uri, obj.kind, &target_name)? {
            "live" if existing_fail => {
                blockers.push(format!(
                    "{label} already exists in vault {} (existing=fail)",
                    target.name
                ));
                continue;
            }
            "live"
                if restore_how == How::Portable && version.is_some() && target_name == obj.name =>
            {
                warnings.push(format!("{label} exists: the chosen version is added as its newest, so it becomes the current value"));
                How::Portable
            }
            "live" => {
                warnings.push(format!("{label} already exists in vault {}: kept as it is (to restore it under another name: object=secrets/<name> rename=<new name>)", target.name));
                continue;
            }
            "deleted" if purge => How::PurgeThen(restore_how == How::Portable),
            "deleted" => {
                warnings.push(format!("{label} is soft-deleted in vault {}: it is recovered as it was when deleted, not from this restore point (purge=true purges it and restores the point's instead)", target.name));
                How::Recover
            }
            _ => restore_how,
        };
        let detail = match how {
            How::Blob => format!("Key Vault's Restore operation with the backup blob ({} versions)", obj.versions.len()),
            How::Portable => match &version {
                Some(v) => format!("re-create version {v} from the portable copy as a new version"),
                None => format!("re-create {} versions from the portable copy, oldest first (new version ids)", obj.versions.iter().filter(|v| v.sha256.is_some()).count()),
            },
            How::Recover => "recover the soft-deleted object".into(),
            How::PurgeThen(_) => "PURGE the soft-deleted object for good (purge=true), then restore it from this point".into(),
        };
        steps.push(Step {
            id: format!("{}/{target_name}", obj.kind.path()),
            title: format!(
                "Restore {label} into vault {} ({})",
                target.name, target.uri
            ),
            detail,
            depends_on: vec![],
        });
        actions.push(Action {
            kind: obj.kind,
            name: obj.name.clone(),
            target_name,
            how,
            version: version.clone(),
        });
    }
    if let Some(v) = &version {
        if let Some(obj) = actions.first().and_then(|a| doc.find(a.kind, &a.name)) {
            if !obj
                .versions
                .iter()
                .any(|x| &x.id == v && x.sha256.is_some())
            {
                blockers.push(format!(
                    "version {v} of secret {} is not in the portable copy",
                    obj.name
                ));
            }
        }
    }
    Ok(Planned {
        plan: RestorePlan {
            steps,
            warnings,
            blockers,
        },
        target,
        actions,
        doc,
    })
}

pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    let p = plan(req)?;
    p.plan.go_ahead()?;
    let (mut bytes, mut failed) = (0u64, Vec::new());
    let total = p.actions.len() as u64;
    for (i, a) in p.actions.iter().enumerate() {
        if host::cancelled() {
            return Err(Error::new(
                ErrorCode::Cancelled,
                format!("cancelled after {i} of {total} objects"),
            ));
        }
        host::progress(
            i as u64,
            total,
            &format!("{} {}", a.kind.one(), a.target_name),
        );
        match run(&p, a) {
            Ok(n) => bytes += n,
            Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
            Err(e) => failed.push(format!("{} {}: {}", a.kind.one(), a.target_name, e.message)),
        }
    }
    if !failed.is_empty() {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "{} of {total} objects were not restored (the others were): {}",
                failed.len(),
                failed.join("; ")
            ),
        ));
    }
    Ok(RestoreReport {
        bytes,
        warnings: p.plan.warnings,
    })
}

/// What one object's write sends, read and checked before anything is touched.
enum Ready {
    Blob(String),
    /// Method, path, body and value size of each request, oldest version first.
    Portable(Vec<(&'static str, String, Value, u64)>),
}

fn run(p: &Planned, a: &Action) -> Result<u64> {
    let uri = &p.target.uri;
    let (kind, name) = (a.kind.path(), a.target_name.as_str());
    match a.how {
        How::Recover => {
            client::call(
                "POST",
                &kv_url(uri, &format!("deleted{kind}/{name}/recover")),
                None,
                &format!("recovering {name}"),
            )?;
            wait(uri, &format!("{kind}/{name}"), true)?;
            Ok(0)
        }
        How::PurgeThen(portable) => {
            // the data is read and checked first: a damaged point never costs the deleted object
            let ready = prepare(p, a, portable)?;
            client::call(
                "DELETE",
                &kv_url(uri, &format!("deleted{kind}/{name}")),
                None,
                &format!("purging {name}"),
            )?;
            wait(uri, &format!("deleted{kind}/{name}"), false)?;
            write(p, a, ready)
        }
        How::Blob => write(p, a, prepare(p, a, false)?),
        How::Portable => write(p, a, prepare(p, a, true)?),
    }
}

fn prepare(p: &Planned, a: &Action, portable: bool) -> Result<Ready> {
    let o = p
        .doc
        .find(a.kind, &a.name)
        .ok_or_else(|| Error::new(ErrorCode::NotFound, a.name.clone()))?;
    if !portable {
        let item = o.backup_item.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!("{} has no backup in this restore point", o.path()),
            )
        })?;
        let blob = String::from_utf8(engine::read_document(&item)?)
            .map_err(|_| Error::new(ErrorCode::Failed, format!("{item} is not a backup blob")))?;
        return Ok(Ready::Blob(blob));
    }
    let item = o.portable_item.clone().ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!("{} has no portable copy", o.path()),
        )
    })?;
    let copy: Value = serde_json::from_slice(&engine::read_document(&item)?)
        .map_err(|e| Error::new(ErrorCode::Failed, format!("{item}: {e}")))?;
    let entries = copy["versions"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    // walk the versions vault.json recorded (oldest first): each needs exactly one entry of
    // the copy with the value whose hash was taken at backup; attributes and tags come
    // from vault.json, only the value from the copy
    for v in o.versions.iter().filter(|v| v.sha256.is_some()) {
        if a.version.as_deref().is_some_and(|want| want != v.id) {
            continue;
        }
        let mut found = entries.iter().filter(|e| e["id"] == v.id.as_str());
        let (Some(e), None) = (found.next(), found.next()) else {
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "the portable copy of {} has not exactly one entry for version {}: damaged, nothing written",
                    o.path(),
                    v.id
                ),
            ));
        };
        let value = e["value"].as_str().unwrap_or_default();
        if v.sha256.as_deref() != Some(sha256(value).as_str()) {
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "the portable copy of {} version {} does not match its hash: damaged, nothing written",
                    o.path(),
                    v.id
                ),
            ));
        }
        let mut attributes = json!({"enabled": v.enabled});
        if let Some(n) = v.nbf {
            attributes["nbf"] = json!(n);
        }
        if let Some(x) = v.exp {
            attributes["exp"] = json!(x);
        }
        let mut body = json!({"value": value, "attributes": attributes, "tags": v.tags});
        let (method, path) = match a.kind {
            Kind::Secrets => {
                if let Some(ct) = &v.content_type {
                    body["contentType"] = json!(ct);
                }
                ("PUT", format!("secrets/{}", a.target_name))
            }
            Kind::Certificates => {
                if let Some(policy) = copy["policy"].as_object() {
                    let mut policy = policy.clone();
                    policy.remove("id");
                    policy.remove("attributes");
                    body["policy"] = Value::Object(policy);
                }
                ("POST", format!("certificates/{}/import", a.target_name))
            }
            Kind::Keys => {
                return Err(Error::new(
                    ErrorCode::Unsupported,
                    "keys have no portable copy",
                ));
            }
        };
        out.push((method, path, body, value.len() as u64));
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "the portable copy of {} holds no {} to write",
                o.path(),
                a.version
                    .as_deref()
                    .map_or("readable version".to_string(), |v| format!("version {v}"))
            ),
        ));
    }
    Ok(Ready::Portable(out))
}

fn write(p: &Planned, a: &Action, ready: Ready) -> Result<u64> {
    let uri = &p.target.uri;
    match ready {
        Ready::Blob(blob) => {
            client::call(
                "POST",
                &kv_url(uri, &format!("{}/restore", a.kind.path())),
                Some(&json!({"value": blob})),
                &format!("restoring {}", a.target_name),
            )?;
            Ok(blob.len() as u64)
        }
        Ready::Portable(requests) => {
            let mut bytes = 0;
            for (i, (method, path, body, n)) in requests.iter().enumerate() {
                client::call(
                    method,
                    &kv_url(uri, path),
                    Some(body),
                    &format!(
                        "re-creating {} {} ({} of {})",
                        a.kind.one(),
                        a.target_name,
                        i + 1,
                        requests.len()
                    ),
                )?;
                bytes += n;
            }
            Ok(bytes)
        }
    }
}

/// Poll until `path` exists (`present`) or is gone: recover and purge finish in the
/// background on the service.
fn wait(uri: &str, path: &str, present: bool) -> Result<()> {
    for _ in 0..60 {
        if client::get_opt(&kv_url(uri, path), path)?.is_some() == present {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    Err(Error::new(
        ErrorCode::Failed,
        format!(
            "{path} did not {} within 60 s",
            if present { "come back" } else { "go away" }
        ),
    ))
}

/// Compare the vault with the restore point: every object there with at least its
/// versions, and the portable copy's hashes equal to the values the vault holds now.
pub fn verify(req: &RestoreRequest) -> Result<VerifyReport> {
    let doc = load_doc()?;
    let target = target(req, &doc, false)?;
    let now = model::read_objects(&target.uri)?;
    let mut findings = Vec::new();
    let mut missing = |rule: &str, sev: Severity, o: &Object, title: String, rec: &str| {
        findings.push(Finding {
            rule: rule.into(),
            severity: sev,
            asset: Some(format!("{}/{}", doc.id, o.path())),
            title,
            detail: String::new(),
            recommendation: rec.into(),
        });
    };
    for o in doc
        .objects
        .iter()
        .filter(|o| !o.managed && o.failed.is_none())
    {
        let Some(live) = now.iter().find(|x| x.kind == o.kind && x.name == o.name) else {
            missing(
                "keyvault.verify.missing",
                Severity::High,
                o,
                format!(
                    "{} {} is in the restore point but not in vault {}",
                    o.kind.one(),
                    o.name,
                    target.name
                ),
                "Restore it (object=…)",
            );
            continue;
        };
        if live.versions.len() < o.versions.len() {
            missing(
                "keyvault.verify.versions",
                Severity::Medium,
                o,
                format!(
                    "{} {} has {} versions in the vault, {} in the restore point",
                    o.kind.one(),
                    o.name,
                    live.versions.len(),
                    o.versions.len()
                ),
                "Restore the missing versions from the portable copy",
            );
        }
        let wanted: Vec<&Version> = o.versions.iter().filter(|v| v.sha256.is_some()).collect();
        if wanted.is_empty() {
            continue;
        }
        // a portable restore writes new version ids: values are compared, not ids
        let mut have = Vec::new();
        for lv in live.versions.iter().filter(|x| x.enabled) {
            let s = client::call(
                "GET",
                &kv_url(&target.uri, &format!("secrets/{}/{}", o.name, lv.id)),
                None,
                &format!("reading {} version {}", o.name, lv.id),
            )?;
            have.push(sha256(s["value"].as_str().unwrap_or_default()));
        }
        for v in wanted {
            if !have.iter().any(|h| Some(h) == v.sha256.as_ref()) {
                missing(
                    "keyvault.verify.value",
                    Severity::High,
                    o,
                    format!(
                        "{} {} version {} of the restore point has no equal in the vault",
                        o.kind.one(),
                        o.name,
                        v.id
                    ),
                    "Check who changed it; restore that version from the portable copy (object=secrets/<name> version=<id>)",
                );
            }
        }
    }
    let ok = findings.is_empty();
    Ok(VerifyReport { ok, findings })
}

#[cfg(test)]
mod tests {
    use super::geography;

    #[test]
    fn regions_of_one_geography() {
        assert_eq!(geography("westus"), geography("East US"));
        assert_ne!(geography("westus"), geography("westeurope"));
        assert_eq!(geography("newregion"), "newregion");
    }
}
