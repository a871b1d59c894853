//! What a vault holds, read from Key Vault, and `vault.json`: the restore point's record
//! of it (every object with every version, attributes and tags, which item holds its
//! backup and its portable copy, and why an object cannot move).

use std::collections::BTreeMap;

use rehydra_plugin_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{self, kv_url, last_segment, valid_name, valid_version};

/// The three object collections of a vault.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Secrets,
    Keys,
    Certificates,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Certificates, Kind::Keys, Kind::Secrets];

    /// The collection's path segment (`secrets` …).
    pub fn path(self) -> &'static str {
        match self {
            Kind::Secrets => "secrets",
            Kind::Keys => "keys",
            Kind::Certificates => "certificates",
        }
    }

    /// The asset kind (`secret` …).
    pub fn one(self) -> &'static str {
        match self {
            Kind::Secrets => "secret",
            Kind::Keys => "key",
            Kind::Certificates => "certificate",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.path() == s)
    }
}

/// One version of an object, as listed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub id: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// SHA-256 of the value kept in the portable copy (secrets and certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One key, secret or certificate.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    /// A secret or key that belongs to a certificate (backed up and restored with it).
    #[serde(default)]
    pub managed: bool,
    /// Key type (`RSA`, `RSA-HSM`, `EC` …) of keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Whether the private key may leave the vault (certificates: the policy's
    /// `key_props.exportable`; keys: `attributes.exportable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exportable: Option<bool>,
    /// Issuer of certificates (the policy's `issuer.name`: `Self`, `Unknown`, a CA's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Oldest first.
    pub versions: Vec<Version>,
    /// Item holding the service's backup blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_item: Option<String>,
    /// Item holding the portable copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portable_item: Option<String>,
    /// Why there is no portable copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_portable: Option<String>,
    /// Why the backup of this object failed (the restore point is saved with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl Object {
    /// `secrets/name`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.kind.path(), self.name)
    }

    /// The newest version's expiry.
    pub fn expires(&self) -> Option<i64> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.enabled)
            .and_then(|v| v.exp)
    }

    /// Same versions, same update times: the backup taken then is still this object's.
    pub fn unchanged_since(&self, old: &Object) -> bool {
        self.versions.len() == old.versions.len()
            && self
                .versions
                .iter()
                .zip(&old.versions)
                .all(|(a, b)| a.id == b.id && a.updated == b.updated && a.enabled == b.enabled)
    }
}

/// `vault.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct VaultDoc {
    pub format: u32,
    /// ARM resource id.
    pub id: String,
    pub name: String,
    pub uri: String,
    pub subscription: String,
    pub location: String,
    pub tenant: String,
    pub soft_delete: bool,
    pub purge_protection: bool,
    /// Taken with `portable=true`.
    pub portable: bool,
    pub objects: Vec<Object>,
}

impl VaultDoc {
    pub fn find(&self, kind: Kind, name: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
    }

    /// A record read from a repository is checked before anything uses it: names Key
    /// Vault can hold, one entry per object, item names that are the object's own, a
    /// vault URI that names a vault.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !crate::client::vault_uri_ok(&self.uri) {
            return Err(format!(
                "its vault URI `{}` is not a key vault's",
                rehydra_plugin_sdk::windows::clip(&self.uri, 200)
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for o in &self.objects {
            if !valid_name(&o.name) || !seen.insert((o.kind, o.name.as_str())) {
                return Err(format!(
                    "object `{}` is not a Key Vault name or is listed twice",
                    rehydra_plugin_sdk::windows::clip(&o.name, 200)
                ));
            }
            for (item, prefix) in [(&o.backup_item, "backup"), (&o.portable_item, "portable")] {
                if item
                    .as_ref()
                    .is_some_and(|i| *i != format!("{prefix}/{}", o.path()))
                {
                    return Err(format!("{} names another object's item", o.path()));
                }
            }
            if o.versions.iter().any(|v| !valid_version(&v.id)) {
                return Err(format!("{} has a version id that is not one", o.path()));
            }
        }
        Ok(())
    }
}

/// A version from a list item (`id`/`kid` and `attributes`).
fn version_of(item: &Value) -> Option<Version> {
    let id = item["id"].as_str().or(item["kid"].as_str())?;
    let a = &item["attributes"];
    Some(Version {
        id: last_segment(id).to_string(),
        enabled: a["enabled"].as_bool().unwrap_or(true),
        created: a["created"].as_i64(),
        updated: a["updated"].as_i64(),
        nbf: a["nbf"].as_i64(),
        exp: a["exp"].as_i64(),
        content_type: item["contentType"].as_str().map(str::to_string),
        tags: item["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        sha256: None,
    })
}

fn bad(what: &str, detail: &str) -> Error {
    Error::new(ErrorCode::Failed, format!("{what}: {detail}; refused"))
}

/// Every object of the vault at `uri` with every version (oldest first), and what a
/// restore needs to know (key type, exportable). Names and version ids are checked.
pub fn read_objects(uri: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let what = format!("listing the {} of {uri}", kind.path());
        for item in client::list(&kv_url(uri, kind.path()), &what)? {
            let id = item["id"]
                .as_str()
                .or(item["kid"].as_str())
                .unwrap_or_default();
            let name = last_segment(id).to_string();
            if !valid_name(&name) {
                return Err(bad(
                    &what,
                    &format!(
                        "the object id `{}` has no valid name",
                        rehydra_plugin_sdk::windows::clip(id, 200)
                    ),
                ));
            }
            let what_v = format!("listing the versions of {}/{name} in {uri}", kind.path());
            let mut versions = Vec::new();
            for v in client::list(
                &kv_url(uri, &format!("{}/{name}/versions", kind.path())),
                &what_v,
            )? {
                let v = version_of(&v).ok_or_else(|| bad(&what_v, "a version without an id"))?;
                if !valid_version(&v.id) {
                    return Err(bad(&what_v, "a version id that is not one"));
                }
                versions.push(v);
            }
            versions.sort_by_key(|v| (v.created.unwrap_or(0), v.id.clone()));
            let mut o = Object {
                kind,
                name,
                managed: item["managed"].as_bool().unwrap_or(false),
                key_type: None,
                exportable: item["attributes"]["exportable"].as_bool(),
                issuer: None,
                versions,
                backup_item: None,
                portable_item: None,
                not_portable: None,
                failed: None,
            };
            match kind {
                Kind::Keys if !o.managed => {
                    let k = client::call(
                        "GET",
                        &kv_url(uri, &format!("keys/{}", o.name)),
                        None,
                        &format!("reading key {}", o.name),
                    )?;
                    o.key_type = k["key"]["kty"].as_str().map(str::to_string);
                }
                Kind::Certificates => {
                    let p = client::call(
                        "GET",
                        &kv_url(uri, &format!("certificates/{}/policy", o.name)),
                        None,
                        &format!("reading the policy of certificate {}", o.name),
                    )?;
                    o.exportable = p["key_props"]["exportable"].as_bool();
                    o.issuer = p["issuer"]["name"].as_str().map(str::to_string);
                }
                _ => {}
            }
            out.push(o);
        }
    }
    // a secret or key is a certificate's own only when that certificate is listed: an
    // answer cannot hide a plain object from the backup by calling it managed
    let certs: Vec<String> = out
        .iter()
        .filter(|o| o.kind == Kind::Certificates)
        .map(|o| o.name.clone())
        .collect();
    for o in out
        .iter_mut()
        .filter(|o| o.managed && !certs.contains(&o.name))
    {
        rehydra_plugin_sdk::host::log(
            rehydra_plugin_sdk::host::Level::Warn,
            &format!(
                "{} {} says it belongs to a certificate, but no certificate of that name is listed: backed up on its own",
                o.kind.one(),
                o.name
            ),
        );
        o.managed = false;
    }
    Ok(out)
}

/// A soft-deleted object's name, as `deletedsecrets` lists it.
pub fn read_deleted(uri: &str, kind: Kind) -> Result<Vec<String>> {
    let what = format!("listing the deleted {} of {uri}", kind.path());
    Ok(
        client::list(&kv_url(uri, &format!("deleted{}", kind.path())), &what)?
            .iter()
            .filter_map(|i| {
                i["recoveryId"]
                    .as_str()
                    .or(i["id"].as_str())
                    .or(i["kid"].as_str())
            })
            .map(|id| last_segment(id).to_string())
            .filter(|n| valid_name(n))
            .collect(),
    )
}

pub use rehydra_plugin_sdk::time::{now, rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(uri: &str, objects: Vec<Object>) -> VaultDoc {
        VaultDoc {
            format: 1,
            id: "/v".into(),
            name: "v".into(),
            uri: uri.into(),
            subscription: String::new(),
            location: String::new(),
            tenant: String::new(),
            soft_delete: true,
            purge_protection: false,
            portable: true,
            objects,
        }
    }

    fn obj(name: &str, backup: Option<&str>) -> Object {
        Object {
            kind: Kind::Secrets,
            name: name.into(),
            managed: false,
            key_type: None,
            exportable: None,
            issuer: None,
            versions: vec![],
            backup_item: backup.map(str::to_string),
            portable_item: None,
            not_portable: None,
            failed: None,
        }
    }

    #[test]
    fn a_hostile_record_is_refused_before_use() {
        assert!(
            doc(
                "https://v.vault.azure.net/",
                vec![obj("a", Some("backup/secrets/a"))]
            )
            .check()
            .is_ok()
        );
        // another object's blob under this name, a URI that retargets the requests, a twice-listed name
        assert!(
            doc(
                "https://v.vault.azure.net/",
                vec![obj("a", Some("backup/secrets/b"))]
            )
            .check()
            .is_err()
        );
        assert!(
            doc("https://v.vault.azure.net/deletedsecrets/x?a=", vec![])
                .check()
                .is_err()
        );
        assert!(
            doc(
                "https://v.vault.azure.net/",
                vec![obj("a", None), obj("a", None)]
            )
            .check()
            .is_err()
        );
        assert!(
            doc("https://v.vault.azure.net/", vec![obj("../a", None)])
                .check()
                .is_err()
        );
    }

    #[test]
    fn versions_from_the_official_list_shape() {
        let v: Value = serde_json::from_str(r#"{"id":"https://myvault.vault.azure.net/secrets/listsecretversionstest/11a536561da34d6b8b452d880df58f3a","attributes":{"enabled":true,"created":1481851699,"updated":1481851699}}"#).unwrap();
        let v = version_of(&v).unwrap();
        assert_eq!(v.id, "11a536561da34d6b8b452d880df58f3a");
        assert_eq!(v.created, Some(1481851699));
        assert!(v.enabled);
    }
}
