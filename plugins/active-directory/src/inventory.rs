//! `discover` and `assess`: the domain behind a directory, its domain controllers, FSMO
//! role holders, Recycle Bin, tombstone lifetime and object counts, and the risks in them.

use rehydra_plugin_sdk::ldap::{Controls, Scope};
use rehydra_plugin_sdk::prelude::*;

use crate::dir;
use crate::ldif::Obj;

/// Seconds between 1601-01-01 (Windows FILETIME) and 1970-01-01.
const FILETIME_EPOCH: i64 = 11_644_473_600;
/// `userAccountControl`: a domain controller's account.
const SERVER_TRUST_ACCOUNT: u32 = 0x2000;

/// What one domain looks like, read through one directory.
#[derive(Debug, Clone, Default)]
pub struct Domain {
    pub directory: String,
    pub dns: String,
    pub nc: String,
    pub config_nc: String,
    pub naming_contexts: Vec<String>,
    pub domain_level: String,
    pub forest_level: String,
    pub controllers: Vec<(String, String)>,
    pub fsmo: Vec<(&'static str, String)>,
    pub recycle_bin: bool,
    pub tombstone_days: u32,
    pub highest_usn: u64,
    pub counts: Vec<(&'static str, usize)>,
    pub stale_computers: Vec<String>,
}

/// `<domain>@<directory>`: the asset id (the directory is what the plugin connects to).
pub fn asset_id(domain: &str, directory: &str) -> String {
    format!("{domain}@{directory}")
}

/// The directory of an asset id.
pub fn directory_of(asset: &str) -> Result<&str> {
    asset
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("`{asset}` is not a domain of this plugin (<domain>@<directory>)"),
            )
        })
}

fn count(directory: &str, nc: &str, filter: &str) -> Result<usize> {
    let mut n = 0;
    dir::search(
        directory,
        nc,
        Scope::Subtree,
        filter,
        &["1.1"],
        Controls::empty(),
        |_| {
            n += 1;
            Ok(())
        },
    )?;
    Ok(n)
}

fn owner(directory: &str, dn: &str) -> Result<Option<String>> {
    Ok(dir::read(directory, dn, &["fSMORoleOwner"])?
        .and_then(|o| o.text("fSMORoleOwner"))
        // the NTDS Settings object of a server: the server is its parent
        .map(|ntds| server_name(dir::parent(&ntds).unwrap_or(&ntds))))
}

fn server_name(server_dn: &str) -> String {
    dir::rdn(server_dn)
        .split_once('=')
        .map_or(server_dn, |(_, v)| v)
        .to_string()
}

fn level(v: Option<String>) -> String {
    match v.as_deref() {
        Some("0") => "2000".into(),
        Some("1") => "2003 interim".into(),
        Some("2") => "2003".into(),
        Some("3") => "2008".into(),
        Some("4") => "2008 R2".into(),
        Some("5") => "2012".into(),
        Some("6") => "2012 R2".into(),
        Some("7") => "2016".into(),
        Some("10") => "2025".into(),
        Some(other) => format!("level {other}"),
        None => "unknown".into(),
    }
}

/// Read a domain through `directory`.
pub fn read(directory: &str, stale_days: u32, now: i64) -> Result<Domain> {
    let dse = dir::root_dse(directory)?;
    let nc = dse.text("defaultNamingContext").ok_or_else(|| {
        Error::new(
            ErrorCode::Failed,
            format!("directory `{directory}` names no default naming context: is it a domain controller?"),
        )
    })?;
    let config_nc = dse.text("configurationNamingContext").unwrap_or_default();
    let schema_nc = dse.text("schemaNamingContext").unwrap_or_default();
    let mut d = Domain {
        directory: directory.into(),
        dns: dir::dns_name(&nc),
        naming_contexts: dse.texts("namingContexts"),
        domain_level: level(dse.text("domainFunctionality")),
        forest_level: level(dse.text("forestFunctionality")),
        highest_usn: dse
            .text("highestCommittedUSN")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        nc: nc.clone(),
        config_nc: config_nc.clone(),
        ..Domain::default()
    };
    let sites = format!("CN=Sites,{config_nc}");
    dir::search(
        directory,
        &sites,
        Scope::Subtree,
        "(objectClass=server)",
        &["dNSHostName"],
        Controls::empty(),
        |s| {
            // CN=DC1,CN=Servers,CN=<site>,CN=Sites,…
            let site = dir::parent(&s.dn)
                .and_then(dir::parent)
                .map(server_name)
                .unwrap_or_default();
            let name = s.text("dNSHostName").unwrap_or_else(|| server_name(&s.dn));
            d.controllers.push((name, site));
            Ok(())
        },
    )?;
    for (role, dn) in [
        ("schema master", schema_nc.clone()),
        ("domain naming master", format!("CN=Partitions,{config_nc}")),
        ("PDC emulator", nc.clone()),
        ("RID master", format!("CN=RID Manager$,CN=System,{nc}")),
        ("infrastructure master", format!("CN=Infrastructure,{nc}")),
    ] {
        if let Some(o) = owner(directory, &dn)? {
            d.fsmo.push((role, o));
        }
    }
    let ds = format!("CN=Directory Service,CN=Windows NT,CN=Services,{config_nc}");
    d.tombstone_days = tombstone_days(directory, &config_nc).unwrap_or(60);
    let rb = format!("CN=Recycle Bin Feature,CN=Optional Features,{ds}");
    d.recycle_bin = dir::read(directory, &rb, &["msDS-EnabledFeatureBL"])
        .ok()
        .flatten()
        .is_some_and(|o| !o.values("msDS-EnabledFeatureBL").is_empty());
    for (what, filter) in [
        ("users", "(&(objectCategory=person)(objectClass=user))"),
        ("groups", "(objectClass=group)"),
        ("computers", "(objectClass=computer)"),
        ("organizational units", "(objectClass=organizationalUnit)"),
        ("group policy objects", "(objectClass=groupPolicyContainer)"),
    ] {
        d.counts.push((what, count(directory, &nc, filter)?));
    }
    let cutoff = now - i64::from(stale_days) * 86_400;
    dir::search(
        directory,
        &nc,
        Scope::Subtree,
        "(objectClass=computer)",
        &[
            "sAMAccountName",
            "lastLogonTimestamp",
            "pwdLastSet",
            "userAccountControl",
        ],
        Controls::empty(),
        |c| {
            let uac: u32 = c
                .text("userAccountControl")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if uac & SERVER_TRUST_ACCOUNT == 0 && last_seen(&c).is_none_or(|t| t < cutoff) {
                d.stale_computers
                    .push(c.text("sAMAccountName").unwrap_or(c.dn));
            }
            Ok(())
        },
    )?;
    Ok(d)
}

/// When a computer last logged on or changed its password (Unix seconds).
fn last_seen(c: &Obj) -> Option<i64> {
    let ft = |n: &str| -> Option<i64> {
        let v: i64 = c.text(n)?.parse().ok()?;
        (v > 0).then(|| v / 10_000_000 - FILETIME_EPOCH)
    };
    ft("lastLogonTimestamp").max(ft("pwdLastSet"))
}

/// The asset of a domain.
pub fn asset(d: &Domain) -> Asset {
    let mut props = vec![
        property("directory", &d.directory),
        property("naming-context", &d.nc),
        property("naming-contexts", d.naming_contexts.join("; ")),
        property("domain-functional-level", &d.domain_level),
        property("forest-functional-level", &d.forest_level),
        property(
            "domain-controllers",
            d.controllers
                .iter()
                .map(|(n, s)| format!("{n} (site {s})"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        property(
            "fsmo",
            d.fsmo
                .iter()
                .map(|(r, o)| format!("{r}: {o}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        property(
            "recycle-bin",
            if d.recycle_bin { "enabled" } else { "disabled" },
        ),
        property("tombstone-lifetime-days", d.tombstone_days.to_string()),
        property("highest-usn", d.highest_usn.to_string()),
        property("stale-computers", d.stale_computers.len().to_string()),
    ];
    for (what, n) in &d.counts {
        props.push(property(&what.replace(' ', "-"), n.to_string()));
    }
    Asset {
        kind: "domain".into(),
        id: asset_id(&d.dns, &d.directory),
        name: d.dns.clone(),
        parent: None,
        properties: props,
        flags: ProtectionFlags::empty(),
    }
}

/// `discover`: the domain behind the configured directory.
pub fn discover(s: &[Property]) -> Result<Vec<Asset>> {
    let directory = require(
        s,
        "directory",
        "the directory to read, as configured with `rehydra plugins directory add`",
    )?;
    let stale = setting_or(s, "stale-days", "90").parse().unwrap_or(90);
    let d = read(directory, stale, rehydra_plugin_sdk::time::now())?;
    Ok(vec![asset(&d)])
}

fn find_prop<'a>(a: &'a Asset, name: &str) -> Option<&'a str> {
    setting(&a.properties, name)
}

/// `assess`: one domain controller, the Recycle Bin off, every FSMO role on one DC,
/// stale computer accounts.
pub fn assess(assets: &[Asset], _s: &[Property]) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for a in assets.iter().filter(|a| a.kind == "domain") {
        let dcs = find_prop(a, "domain-controllers").unwrap_or_default();
        let n_dcs = dcs.split(", ").filter(|s| !s.is_empty()).count();
        if n_dcs == 1 {
            out.push(Finding::about(&a.id, "ad.single-dc", Severity::High,
                format!("{} has a single domain controller", a.name),
                format!("{dcs} is the only domain controller: losing it loses the domain until it is restored from a backup"),
                "Add a second domain controller (on another host) and keep backing up system state"));
        }
        if find_prop(a, "recycle-bin") == Some("disabled") {
            out.push(Finding::about(&a.id, "ad.recycle-bin-off", Severity::Medium,
                format!("The Active Directory Recycle Bin is off in {}", a.name),
                "deleted objects lose most attributes and all group memberships at once; they come back only from a backup".into(),
                "Enable the Recycle Bin (Enable-ADOptionalFeature 'Recycle Bin Feature'); keep object backups for what it cannot bring back"));
        }
        let fsmo = find_prop(a, "fsmo").unwrap_or_default();
        let holders: std::collections::BTreeSet<&str> = fsmo
            .split(", ")
            .filter_map(|r| r.split_once(": ").map(|(_, o)| o))
            .collect();
        if holders.len() == 1 && n_dcs > 1 {
            out.push(Finding::about(&a.id, "ad.fsmo-on-one-dc", Severity::Low,
                format!("All FSMO roles of {} are on one domain controller", a.name),
                fsmo.to_string(),
                "Spread the roles (PDC emulator and RID master apart from schema and naming masters) so one failure does not stop them all"));
        }
        let stale: usize = find_prop(a, "stale-computers")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if stale > 0 {
            out.push(Finding::about(
                &a.id,
                "ad.stale-computers",
                Severity::Low,
                format!("{stale} computer accounts in {} look unused", a.name),
                "no logon or password change within the stale-days setting".into(),
                "Disable, then delete, computer accounts that are gone; back up first",
            ));
        }
    }
    Ok(out)
}

/// The forest's tombstone lifetime in days, as `directory` holds it in the configuration
/// partition `config_nc`.
pub fn tombstone_days(directory: &str, config_nc: &str) -> Result<u32> {
    let ds = format!("CN=Directory Service,CN=Windows NT,CN=Services,{config_nc}");
    let ds_obj = dir::read(directory, &ds, &["tombstoneLifetime"])?;
    // without the attribute Active Directory uses 60 days (forests from before 2003 SP1)
    Ok(ds_obj
        .and_then(|o| o.text("tombstoneLifetime"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(60))
}
