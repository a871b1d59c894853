//! Back up one vault: every object through the service's Backup operation (all versions
//! in one blob), objects unchanged since the previous restore point carried forward from
//! it without asking Key Vault again, and with `portable=true` the secret values and
//! exportable certificates, so the vault can be rebuilt where a blob cannot go.
//!
//! Item names: `backup/<kind>/<name>` (the blob as Key Vault returned it),
//! `portable/<kind>/<name>` (JSON: every readable version, oldest first), `vault.json`.
//! A failure on one object is a warning and the others go on.

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::{self, kv_url};
use crate::inventory::{MAX_VERSIONS, arm_vault, value, vault_id_ok};
use crate::model::{self, Kind, Object, VaultDoc};

pub const DOC: &str = "vault.json";
const FORMAT: u32 = 1;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// The previous restore point's record, when it is this vault's.
fn previous(id: &str) -> Option<VaultDoc> {
    engine::previous().ok().flatten()?;
    let raw = engine::read_previous_document(DOC).ok()?;
    let doc = serde_json::from_slice::<VaultDoc>(&raw)
        .ok()
        .filter(|d| d.id.eq_ignore_ascii_case(id))?;
    match doc.check() {
        Ok(()) => Some(doc),
        Err(why) => {
            host::log(
                host::Level::Warn,
                &format!(
                    "the previous restore point's {DOC} is not used ({why}): every object is backed up from Key Vault"
                ),
            );
            None
        }
    }
}

fn vault_doc(req: &BackupRequest, portable: bool) -> Result<VaultDoc> {
    let id = req.asset.id.trim_end_matches('/');
    let sub = id.split('/').nth(2).unwrap_or_default();
    if !vault_id_ok(id, sub) {
        let hint = match id.split('/').nth(9) {
            Some(kind) if id.split('/').count() > 9 => format!(
                "`{id}` is a {} of a vault: back up the vault ({}); a restore can take one object",
                kind.trim_start_matches("deleted").trim_end_matches('s'),
                id.split('/').take(9).collect::<Vec<_>>().join("/")
            ),
            _ => format!("`{id}` is not the resource id of a key vault (as discover lists it)"),
        };
        return Err(Error::new(ErrorCode::InvalidInput, hint));
    }
    // the vault as ARM has it now: its URI, subscription and geography go into the point
    let props = arm_vault(&req.options, id)?;
    let p = |n: &str| value(&props, n);
    Ok(VaultDoc {
        format: FORMAT,
        id: id.to_string(),
        name: id.rsplit('/').next().unwrap_or_default().to_string(),
        uri: p("vault-uri"),
        subscription: p("subscription"),
        location: p("location"),
        tenant: p("tenant"),
        soft_delete: p("soft-delete") != "false",
        purge_protection: p("purge-protection") == "true",
        portable,
        objects: vec![],
    })
}

pub fn backup(req: &BackupRequest) -> Result<BackupReport> {
    let portable = flag(&req.options, "portable");
    let mut doc = vault_doc(req, portable)?;
    let objects = model::read_objects(&doc.uri)?;
    let prev = previous(&doc.id);
    let mut warnings = Vec::new();
    let (mut carried, mut taken) = (0, 0);
    let total = objects.len() as u64;
    for (i, mut o) in objects.into_iter().enumerate() {
        if host::cancelled() {
            return Err(Error::new(ErrorCode::Cancelled, "cancelled"));
        }
        host::progress(i as u64, total, &format!("{} {}", o.kind.one(), o.name));
        if o.managed {
            // a certificate's own secret and key: backed up and restored with it
            doc.objects.push(o);
            continue;
        }
        let old = prev
            .as_ref()
            .and_then(|p| p.find(o.kind, &o.name))
            .filter(|old| old.failed.is_none() && o.unchanged_since(old));
        match one(&doc, &mut o, old, portable) {
            Ok(true) => carried += 1,
            Ok(false) => taken += 1,
            Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
            Err(e) => {
                warnings.push(format!(
                    "{} {}: not backed up: {}",
                    o.kind.one(),
                    o.name,
                    e.message
                ));
                o.failed = Some(e.message);
            }
        }
        doc.objects.push(o);
    }
    let own = doc.objects.iter().filter(|o| !o.managed).count();
    if own > 0
        && doc
            .objects
            .iter()
            .filter(|o| !o.managed)
            .all(|o| o.failed.is_some())
    {
        // a point with nothing in it must not count as a backup (retention would drop good ones)
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "vault {}: no object could be backed up: {}",
                doc.name,
                warnings.join("; ")
            ),
        ));
    }
    host::progress(total, total, "inventory");
    let body = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(DOC, &body)?;
    host::info(&format!(
        "vault {}: {} objects, {taken} backed up from Key Vault, {carried} unchanged and carried forward{}",
        doc.name,
        doc.objects.len(),
        if portable {
            ", with portable copies"
        } else {
            ""
        }
    ));
    Ok(BackupReport {
        consistency: "application".into(),
        warnings,
    })
}

/// Back up one object; `Ok(true)` when carried forward from the previous point.
fn one(doc: &VaultDoc, o: &mut Object, old: Option<&Object>, portable: bool) -> Result<bool> {
    let item = format!("backup/{}", o.path());
    if o.versions.len() > MAX_VERSIONS {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "{} versions: Key Vault backs up at most {MAX_VERSIONS}",
                o.versions.len()
            ),
        ));
    }
    let old_blob = old
        .and_then(|old| old.backup_item.as_deref())
        .and_then(|i| engine::read_previous_document(i).ok());
    let carried = old_blob.is_some();
    let blob = match old_blob {
        Some(b) => b,
        None => {
            let v = client::call(
                "POST",
                &kv_url(&doc.uri, &format!("{}/backup", o.path())),
                None,
                &format!("backing up {} {}", o.kind.one(), o.name),
            )?;
            v["value"]
                .as_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| Error::new(ErrorCode::Failed, "the backup answer has no value"))?
                .as_bytes()
                .to_vec()
        }
    };
    engine::put_document(&item, &blob)?;
    o.backup_item = Some(item);
    if portable {
        portable_copy(doc, o, old)?;
    }
    Ok(carried)
}

/// The portable copy: secret values (and a certificate's PFX/PEM through its secret),
/// every readable version oldest first. Keys never leave Key Vault.
fn portable_copy(doc: &VaultDoc, o: &mut Object, old: Option<&Object>) -> Result<()> {
    match o.kind {
        Kind::Keys => {
            o.not_portable = Some(format!(
                "key {} ({}) cannot leave Key Vault: its private part is never exported, so it moves only by the Backup operation into a vault of the same subscription and geography",
                o.name,
                o.key_type.as_deref().unwrap_or("key")
            ));
            return Ok(());
        }
        Kind::Certificates if o.exportable != Some(true) => {
            o.not_portable = Some(format!(
                "certificate {}: its policy makes the private key non-exportable",
                o.name
            ));
            return Ok(());
        }
        _ => {}
    }
    let item = format!("portable/{}", o.path());
    // unchanged since the previous point: its copy and hashes stand
    if let Some(old) = old.filter(|old| old.portable_item.is_some()) {
        if let Ok(raw) =
            engine::read_previous_document(old.portable_item.as_deref().unwrap_or_default())
        {
            engine::put_document(&item, &raw)?;
            for (v, ov) in o.versions.iter_mut().zip(&old.versions) {
                v.sha256 = ov.sha256.clone();
            }
            o.portable_item = Some(item);
            return Ok(());
        }
    }
    let mut versions = Vec::new();
    let mut policy = Value::Null;
    if o.kind == Kind::Certificates {
        policy = client::call(
            "GET",
            &kv_url(&doc.uri, &format!("certificates/{}/policy", o.name)),
            None,
            &format!("reading the policy of certificate {}", o.name),
        )?;
    }
    for v in &mut o.versions {
        if !v.enabled {
            host::log(
                host::Level::Warn,
                &format!(
                    "{} {} version {}: disabled, its value cannot be read; left out of the portable copy",
                    o.kind.one(),
                    o.name,
                    v.id
                ),
            );
            continue;
        }
        // a certificate's value is its secret of the same name and version
        let url = kv_url(&doc.uri, &format!("secrets/{}/{}", o.name, v.id));
        let s = client::call(
            "GET",
            &url,
            None,
            &format!("reading {} {} version {}", o.kind.one(), o.name, v.id),
        )?;
        let value = s["value"].as_str().ok_or_else(|| {
            Error::new(
                ErrorCode::Failed,
                format!(
                    "{} {} version {}: the answer has no value",
                    o.kind.one(),
                    o.name,
                    v.id
                ),
            )
        })?;
        v.sha256 = Some(sha256(value));
        let mut attributes = json!({"enabled": v.enabled});
        if let Some(n) = v.nbf {
            attributes["nbf"] = json!(n);
        }
        if let Some(e) = v.exp {
            attributes["exp"] = json!(e);
        }
        versions.push(json!({
            "id": v.id, "value": value,
            "contentType": s["contentType"].as_str().or(v.content_type.as_deref()),
            "attributes": attributes, "tags": v.tags,
        }));
    }
    let body = serde_json::to_vec(&json!({"policy": policy, "versions": versions}))
        .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(&item, &body)?;
    o.portable_item = Some(item);
    Ok(())
}
