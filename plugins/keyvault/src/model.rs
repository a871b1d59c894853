//! What a vault holds, read from Key Vault, and `vault.json`: the restore point's record
//! of it (every object with every version, attributes and tags, which item holds its
//! backup and its portable copy, and why an object cannot move).

use std::collections::BTreeMap;

use rehydra_plugin_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{self, kv_url, last_segment, valid_name, valid_version};

/// The three object collections of a vault.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
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
        self.versions.iter().rev().find(|v| v.enabled).and_then(|v| v.exp)
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
        self.objects.iter().find(|o| o.kind == kind && o.name == name)
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
            let id = item["id"].as_str().or(item["kid"].as_str()).unwrap_or_default();
            let name = last_segment(id).to_string();
            if !valid_name(&name) {
                return Err(bad(&what, &format!("the object id `{}` has no valid name", rehydra_plugin_sdk::windows::clip(id, 200))));
            }
            let what_v = format!("listing the versions of {}/{name} in {uri}", kind.path());
            let mut versions = Vec::new();
            for v in client::list(&kv_url(uri, &format!("{}/{name}/versions", kind.path())), &what_v)? {
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
                versions,
                backup_item: None,
                portable_item: None,
                not_portable: None,
                failed: None,
            };
            match kind {
                Kind::Keys if !o.managed => {
                    let k = client::call("GET", &kv_url(uri, &format!("keys/{}", o.name)), None, &format!("reading key {}", o.name))?;
                    o.key_type = k["key"]["kty"].as_str().map(str::to_string);
                }
                Kind::Certificates => {
                    let p = client::call("GET", &kv_url(uri, &format!("certificates/{}/policy", o.name)), None, &format!("reading the policy of certificate {}", o.name))?;
                    o.exportable = p["key_props"]["exportable"].as_bool();
                }
                _ => {}
            }
            out.push(o);
        }
    }
    Ok(out)
}

/// A soft-deleted object's name, as `deletedsecrets` lists it.
pub fn read_deleted(uri: &str, kind: Kind) -> Result<Vec<String>> {
    let what = format!("listing the deleted {} of {uri}", kind.path());
    Ok(client::list(&kv_url(uri, &format!("deleted{}", kind.path())), &what)?
        .iter()
        .filter_map(|i| i["recoveryId"].as_str().or(i["id"].as_str()).or(i["kid"].as_str()))
        .map(|id| last_segment(id).to_string())
        .filter(|n| valid_name(n))
        .collect())
}

/// Days from 1970-01-01 to a civil date, and back: RFC 3339 without a date crate.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds since 1970 now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(2208988799), "2039-12-31T23:59:59Z");
        assert_eq!(rfc3339(1493938410), "2017-05-04T22:53:30Z");
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
