//! Discover (vaults through ARM, their objects through the data plane) and assess.

use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::clip;
use serde_json::Value;

use crate::client::{self, ARM_API};
use crate::model::{self, Kind, Object, now, rfc3339};

/// Secrets an Azure Local deployment keeps in its key vault (their presence marks the
/// deployment vault, whose secrets the cluster's rotation and repair depend on).
const DEPLOYMENT_SECRETS: &[&str] = &[
    "AzureStackLCMUserCredential",
    "LocalAdminCredential",
    "DefaultARBApplication",
    "WitnessStorageKey",
];

/// Key Vault keeps at most this many versions of an object in one backup.
pub const MAX_VERSIONS: usize = 500;

/// The value of an asset property.
pub fn get<'a>(a: &'a Asset, name: &str) -> Option<&'a str> {
    setting(&a.properties, name)
}

/// Azure's rule for resource group names: 1 to 90 letters, digits, `._-()`, not ending
/// in a dot.
pub fn resource_group_ok(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-()".contains(&b))
}

fn is_guid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub fn arm_base(s: &[Property]) -> String {
    setting_or(s, "arm", "https://management.azure.com")
        .trim_end_matches('/')
        .to_string()
}

/// The vault properties a backup and a restore need, from an ARM vault resource.
pub fn vault_props(v: &Value) -> Vec<Property> {
    let p = &v["properties"];
    let id = v["id"].as_str().unwrap_or_default();
    let part = |i: usize| id.split('/').nth(i).unwrap_or_default().to_string();
    let b = |x: &Value| x.as_bool().unwrap_or(false).to_string();
    vec![
        property("vault-uri", p["vaultUri"].as_str().unwrap_or_default()),
        property("subscription", part(2)),
        property("resource-group", part(4)),
        property("location", v["location"].as_str().unwrap_or_default()),
        property("tenant", p["tenantId"].as_str().unwrap_or_default()),
        // soft delete is on unless the vault says otherwise (it cannot be turned off since 2020)
        property(
            "soft-delete",
            p["enableSoftDelete"].as_bool().unwrap_or(true).to_string(),
        ),
        property("purge-protection", b(&p["enablePurgeProtection"])),
        property(
            "permission-model",
            if p["enableRbacAuthorization"].as_bool().unwrap_or(false) {
                "rbac"
            } else {
                "access-policies"
            },
        ),
        property(
            "public-network-access",
            p["publicNetworkAccess"].as_str().unwrap_or("Enabled"),
        ),
        property(
            "network-default-action",
            p["networkAcls"]["defaultAction"]
                .as_str()
                .unwrap_or("Allow"),
        ),
    ]
}

/// The vault `id` (checked with [`vault_id_ok`] by the caller) as ARM has it now: its
/// properties as discover lists them, with a usable `vault-uri`.
pub fn arm_vault(s: &[Property], id: &str) -> Result<Vec<Property>> {
    let v = client::call(
        "GET",
        &format!("{}{id}?api-version={ARM_API}", arm_base(s)),
        None,
        &format!("reading vault {id}"),
    )?;
    let props = vault_props(&v);
    if !client::vault_uri_ok(&value(&props, "vault-uri")) {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "vault {id}: ARM's answer has no vaultUri of a key vault (https://<name>.vault.azure.net/); refused"
            ),
        ));
    }
    Ok(props)
}

/// The value of a property (empty when absent).
pub fn value(props: &[Property], name: &str) -> String {
    setting(props, name).unwrap_or_default().to_string()
}

/// Is this an ARM id of a key vault in `sub`?
pub fn vault_id_ok(id: &str, sub: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && parts[2].eq_ignore_ascii_case(sub)
        && is_guid(sub)
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && resource_group_ok(parts[4])
        && parts[5].eq_ignore_ascii_case("providers")
        && parts[6].eq_ignore_ascii_case("Microsoft.KeyVault")
        && parts[7].eq_ignore_ascii_case("vaults")
        && client::valid_name(parts[8])
}

pub fn discover(s: &[Property]) -> Result<Vec<Asset>> {
    let subs = require(
        s,
        "subscriptions",
        "the subscription ids whose key vaults to protect",
    )?;
    let arm = arm_base(s);
    let rg = setting(s, "resource-group").filter(|v| !v.is_empty());
    if let Some(rg) = rg.filter(|rg| !resource_group_ok(rg)) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "resource-group: `{rg}` is not a resource group name (letters, digits, . _ - ( ), up to 90)"
            ),
        ));
    }
    let mut out = Vec::new();
    for sub in subs.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if !is_guid(sub) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("subscriptions: `{sub}` is not a subscription id"),
            ));
        }
        let path = match rg {
            Some(rg) => format!(
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults"
            ),
            None => format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"),
        };
        let what = format!("listing the key vaults of subscription {sub}");
        for v in client::list(&format!("{arm}{path}?api-version={ARM_API}"), &what)? {
            let id = v["id"].as_str().unwrap_or_default();
            if !vault_id_ok(id, sub) {
                host::log(
                    host::Level::Warn,
                    &format!(
                        "{what}: skipped `{}`, not a key vault of this subscription",
                        clip(id, 200)
                    ),
                );
                continue;
            }
            out.extend(vault_assets(&v)?);
        }
    }
    Ok(out)
}

fn vault_assets(v: &Value) -> Result<Vec<Asset>> {
    let id = v["id"].as_str().unwrap_or_default();
    let name = v["name"].as_str().unwrap_or_default();
    let mut vault = asset("vault", id, name, None);
    vault.properties = vault_props(v);
    let uri = get(&vault, "vault-uri").unwrap_or_default().to_string();
    let mut out = Vec::new();
    if !client::vault_uri_ok(&uri) {
        vault.properties.push(property("reachable", "false"));
        vault.properties.push(property(
            "unreachable-reason",
            "ARM gives the vault no vaultUri of a key vault (https://<name>.vault.azure.net/)",
        ));
        return Ok(vec![vault]);
    }
    match model::read_objects(&uri) {
        Ok(objects) => {
            let deployment = objects.iter().any(|o| {
                o.kind == Kind::Secrets
                    && DEPLOYMENT_SECRETS
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(&o.name))
            });
            vault.properties.push(property("reachable", "true"));
            vault
                .properties
                .push(property("objects", objects.len().to_string()));
            vault
                .properties
                .push(property("deployment", deployment.to_string()));
            for o in &objects {
                out.push(object_asset(id, o));
            }
            // deleted but recoverable: listed so a restore can be chosen before purge
            for kind in Kind::ALL {
                let deleted = model::read_deleted(&uri, kind).unwrap_or_else(|e| {
                    // listing deleted objects needs its own right: said, and discovery goes on
                    host::log(host::Level::Warn, &format!("vault {name}: {}", e.message));
                    Vec::new()
                });
                for n in deleted {
                    let mut d = asset(
                        &format!("deleted-{}", kind.one()),
                        &format!("{id}/deleted{}/{n}", kind.path()),
                        &n,
                        Some(id),
                    );
                    d.properties = vec![
                        property("protected-with", id),
                        property("recoverable", "true"),
                    ];
                    out.push(d);
                }
            }
        }
        Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
        Err(e) => {
            // a vault this machine cannot reach or read says so, and discovery goes on
            vault.properties.push(property("reachable", "false"));
            vault
                .properties
                .push(property("unreachable-reason", e.message));
        }
    }
    out.insert(0, vault);
    Ok(out)
}

fn object_asset(vault_id: &str, o: &Object) -> Asset {
    let mut a = asset(
        o.kind.one(),
        &format!("{vault_id}/{}", o.path()),
        &o.name,
        Some(vault_id),
    );
    // backed up with its vault, as its own item (a certificate's secret and key within
    // the certificate's): the inventory shows it protected by the vault's points that
    // hold that item
    let held_in = if o.managed {
        format!("backup/certificates/{}", o.name)
    } else {
        format!("backup/{}", o.path())
    };
    let mut p = vec![
        property("protected-with", vault_id),
        property("protected-in-item", held_in),
        property("versions", o.versions.len().to_string()),
    ];
    if let Some(v) = o.versions.last() {
        p.push(property("enabled", v.enabled.to_string()));
        if let Some(ct) = &v.content_type {
            p.push(property("content-type", ct.clone()));
        }
    }
    if let Some(exp) = o.expires() {
        p.push(property("expires", rfc3339(exp)));
        p.push(property(
            "expires-in-days",
            ((exp - now()).div_euclid(86_400)).to_string(),
        ));
    }
    if let Some(k) = &o.key_type {
        p.push(property("key-type", k.clone()));
    }
    if let Some(i) = &o.issuer {
        p.push(property("issuer", i.clone()));
    }
    if let Some(e) = o.exportable {
        p.push(property("exportable", e.to_string()));
    }
    if o.managed {
        p.push(property("managed", "true"));
    }
    a.properties = p;
    a
}

fn finding(
    rule: &str,
    severity: Severity,
    a: &Asset,
    title: String,
    detail: String,
    rec: &str,
) -> Finding {
    Finding::new(rule, severity, Some(&a.id), title, detail, rec)
}

pub fn assess(assets: &[Asset], s: &[Property]) -> Result<Vec<Finding>> {
    let days: i64 = setting_or(s, "expiry-days", "60").parse().map_err(|_| {
        Error::new(
            ErrorCode::InvalidInput,
            "expiry-days must be a whole number of days",
        )
    })?;
    let mut out = Vec::new();
    let deployment = |a: &Asset| {
        a.parent.as_ref().is_some_and(|p| {
            assets
                .iter()
                .any(|v| &v.id == p && get(v, "deployment") == Some("true"))
        })
    };
    for a in assets {
        let is = |n: &str, v: &str| get(a, n) == Some(v);
        if a.kind == "vault" {
            if is("reachable", "false") {
                out.push(finding("keyvault.unreachable", Severity::High, a, format!("Key vault {} cannot be read from here", a.name), get(a, "unreachable-reason").unwrap_or_default().to_string(), "Grant this machine network access (the vault's firewall or private endpoint) and the identity Key Vault reader rights on the objects (Key Vault Administrator or Backup Operator), then discover again"));
            }
            if is("soft-delete", "false") {
                out.push(finding("keyvault.no-soft-delete", Severity::High, a, format!("Key vault {} has soft delete off", a.name), "A deleted secret, key or certificate is gone at once; nothing can be recovered".into(), "Turn soft delete on (az keyvault update --enable-soft-delete true)"));
            }
            if is("purge-protection", "false") {
                out.push(finding("keyvault.no-purge-protection", Severity::Medium, a, format!("Key vault {} has purge protection off", a.name), "Anyone with purge rights can destroy a deleted object before its retention ends".into(), "Turn purge protection on (az keyvault update --enable-purge-protection true); it cannot be turned off again"));
            }
            continue;
        }
        if let Some(n) = get(a, "versions")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > MAX_VERSIONS)
        {
            out.push(finding("keyvault.over-500-versions", Severity::High, a, format!("{} {} has {n} versions", a.kind, a.name), format!("Key Vault's Backup operation takes at most {MAX_VERSIONS} versions of one object"), "Remove old versions you no longer need (they are deleted with the object only), or keep the values with a portable copy (portable=true)"));
        }
        if let Some(left) = get(a, "expires-in-days")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|d| *d <= days)
        {
            let dep = deployment(a);
            let severity = if left < 0 {
                Severity::Critical
            } else if left <= 7 || dep {
                Severity::High
            } else {
                Severity::Medium
            };
            let when = if left < 0 {
                format!("expired {} days ago", -left)
            } else {
                format!("expires in {left} days")
            };
            let rec = if dep {
                "This is a secret of the Azure Local deployment vault (one-year lifetime): rotate it the way Azure Local documents for it before it expires, then take a new restore point"
            } else {
                "Renew or rotate it before it expires, then take a new restore point"
            };
            out.push(finding(
                "keyvault.expiring",
                severity,
                a,
                format!("{} {} {when}", a.kind, a.name),
                format!("expires {}", get(a, "expires").unwrap_or_default()),
                rec,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_ids_are_checked() {
        let sub = "00000000-0000-0000-0000-000000000000";
        assert!(vault_id_ok(
            &format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
            ),
            sub
        ));
        assert!(!vault_id_ok(
            &format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/vaults/kv1"
            ),
            sub
        ));
        assert!(!vault_id_ok(
            "/subscriptions/other/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1",
            sub
        ));
        assert!(!vault_id_ok(
            &format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/../x"
            ),
            sub
        ));
        assert!(!vault_id_ok(
            &format!(
                "/subscriptions/{sub}/resourceGroups/r?g/providers/Microsoft.KeyVault/vaults/kv1"
            ),
            sub
        ));
        assert!(!vault_id_ok(
            &format!(
                "x/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
            ),
            sub
        ));
        assert!(!vault_id_ok(
            &format!("/subscriptions/{sub}/resourceGroups/rg/other/Microsoft.KeyVault/vaults/kv1"),
            sub
        ));
    }

    #[test]
    fn the_official_vault_listing_gives_the_properties() {
        let raw = include_str!("../../../tests/fixtures/keyvault/arm-getVault.json");
        let v: Value = serde_json::from_str(raw).unwrap();
        let body = &v["responses"]["200"]["body"];
        let p = vault_props(body);
        let get = |n: &str| p.iter().find(|x| x.name == n).unwrap().value.clone();
        assert!(get("vault-uri").starts_with("https://"));
        assert_eq!(get("subscription"), "00000000-0000-0000-0000-000000000000");
        assert_eq!(get("soft-delete"), "true");
    }

    #[test]
    fn expiring_and_unsafe_vaults_are_found() {
        let mut v = asset("vault", "/v", "kv", None);
        v.properties = vec![
            property("soft-delete", "false"),
            property("purge-protection", "false"),
            property("deployment", "true"),
        ];
        let mut s = asset(
            "secret",
            "/v/secrets/LocalAdminCredential",
            "LocalAdminCredential",
            Some("/v"),
        );
        s.properties = vec![property("expires-in-days", "20"), property("versions", "3")];
        let mut far = asset("secret", "/v/secrets/b", "b", Some("/v"));
        far.properties = vec![
            property("expires-in-days", "200"),
            property("versions", "501"),
        ];
        let f = assess(&[v, s, far], &[]).unwrap();
        let rules: Vec<_> = f.iter().map(|f| (f.rule.as_str(), f.severity)).collect();
        assert!(
            rules.contains(&("keyvault.no-soft-delete", Severity::High)),
            "{rules:?}"
        );
        assert!(rules.contains(&("keyvault.no-purge-protection", Severity::Medium)));
        assert!(
            rules.contains(&("keyvault.expiring", Severity::High)),
            "deployment secrets are high"
        );
        assert!(rules.contains(&("keyvault.over-500-versions", Severity::High)));
        assert_eq!(
            f.iter().filter(|f| f.rule == "keyvault.expiring").count(),
            1,
            "200 days is outside the default 60"
        );
    }
}
