//! `backup`: every object of the domain's partitions (domain, configuration, the DNS
//! application partitions) with all attributes, binary ones and security descriptors
//! included, as LDIF documents of at most [`SHARD_MAX`] bytes, and `directory.json`
//! with the USN high-watermark read before the first search; then what changed since the
//! previous restore point (`changes.json`); with `sysvol=`, each GPO's SYSVOL folder
//! (see [`crate::sysvol`]).

use std::collections::BTreeMap;

use rehydra_plugin_sdk::ldap::{Controls, Scope};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};
use serde::{Deserialize, Serialize};

use crate::changes::{self, Digests};
use crate::inventory::{self, directory_of};
use crate::{dir, ldif, system_state, sysvol};

/// Largest LDIF document (documents are at most 16 MiB).
pub const SHARD_MAX: usize = 12 << 20;
/// The restore point's description of itself.
pub const META: &str = "directory.json";

/// One partition in a restore point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Partition {
    /// `domain`, `configuration`, `domain-dns`, `forest-dns`.
    pub name: String,
    pub nc: String,
    pub objects: u64,
    /// Its LDIF documents, in order.
    pub shards: Vec<String>,
}

/// `directory.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Meta {
    pub domain: String,
    pub directory: String,
    pub naming_context: String,
    /// `highestCommittedUSN` before the first search: every change up to it is in here.
    pub highest_usn: u64,
    pub tombstone_lifetime_days: u32,
    pub recycle_bin: bool,
    pub domain_controllers: Vec<String>,
    pub partitions: Vec<Partition>,
}

impl Meta {
    /// Read and check `directory.json` of a restore point (written by any host).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let m: Self = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("{META} of the restore point is damaged: {e}"),
            )
        })?;
        let mut ncs: Vec<String> = m
            .partitions
            .iter()
            .map(|p| p.nc.to_ascii_lowercase())
            .collect();
        ncs.sort();
        ncs.dedup();
        if m.partitions.len() > 16 || ncs.len() != m.partitions.len() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("{META} names a partition twice, or more than 16"),
            ));
        }
        if m.partitions.iter().any(|p| p.shards.len() > 100_000) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("{META} names too many documents"),
            ));
        }
        Ok(m)
    }
}

/// The partitions worth keeping: the domain, configuration and DNS application partitions
/// (the schema comes back with any domain controller).
pub fn partitions(d: &inventory::Domain) -> Vec<(String, String)> {
    let mut out = vec![("domain".to_string(), d.nc.clone())];
    if !d.config_nc.is_empty() {
        out.push(("configuration".into(), d.config_nc.clone()));
    }
    for nc in &d.naming_contexts {
        let lower = nc.to_ascii_lowercase();
        if lower.starts_with("dc=domaindnszones,") {
            out.push(("domain-dns".into(), nc.clone()));
        } else if lower.starts_with("dc=forestdnszones,") {
            out.push(("forest-dns".into(), nc.clone()));
        }
    }
    out
}

struct Shards {
    prefix: String,
    text: String,
    names: Vec<String>,
}

impl Shards {
    fn push(&mut self, o: &ldif::Obj) -> Result<()> {
        if let Some(bad) = o.attrs.keys().find(|k| !ldif::valid_name(k)) {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{}: the directory sent an attribute named {bad:?}", o.dn),
            ));
        }
        let mut rec = String::new();
        ldif::write(o, &mut rec);
        if rec.len() > SHARD_MAX {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{} is larger than {} MiB as LDIF", o.dn, SHARD_MAX >> 20),
            ));
        }
        if self.text.len() + rec.len() > SHARD_MAX {
            self.flush()?;
        }
        self.text.push_str(&rec);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let name = format!("{}/objects-{:04}.ldif", self.prefix, self.names.len() + 1);
        engine::put_document(&name, self.text.as_bytes())?;
        self.names.push(name);
        self.text.clear();
        Ok(())
    }
}

/// Every object of a restore point's partition, shard by shard.
pub fn each_object(
    read: impl Fn(&str) -> Result<Vec<u8>>,
    p: &Partition,
    mut f: impl FnMut(ldif::Obj) -> Result<()>,
) -> Result<()> {
    for s in &p.shards {
        let bytes = read(s)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::new(ErrorCode::InvalidInput, format!("{s} is not UTF-8")))?;
        for o in ldif::parse(text)
            .map_err(|e| Error::new(ErrorCode::InvalidInput, format!("{s}: {e}")))?
        {
            f(o)?;
        }
    }
    Ok(())
}

/// Every object of the live partition `nc` with all attributes and its security
/// descriptor, long member lists fetched whole; objects of the child partitions in
/// `others` (DNS zones below the domain) are left to their own.
pub fn read_partition(
    directory: &str,
    nc: &str,
    others: &[String],
    mut f: impl FnMut(ldif::Obj) -> Result<()>,
) -> Result<()> {
    dir::search(
        directory,
        nc,
        Scope::Subtree,
        "(objectClass=*)",
        &["*", "nTSecurityDescriptor"],
        Controls::SECURITY_DESCRIPTOR,
        |mut o| {
            dir::complete_ranges(directory, &mut o)?;
            if others
                .iter()
                .any(|x| x != nc && dir::within(&o.dn, x) && x.len() > nc.len())
            {
                return Ok(());
            }
            f(o)
        },
    )
}

/// `backup` of a domain.
pub fn backup(req: &BackupRequest) -> Result<BackupReport> {
    let directory = directory_of(&req.asset.id)?;
    let system_state = system_state::requested(&req.options)?;
    let d = inventory::read(directory, 90, rehydra_plugin_sdk::time::now())?;
    let mut meta = Meta {
        domain: d.dns.clone(),
        directory: directory.into(),
        naming_context: d.nc.clone(),
        highest_usn: d.highest_usn,
        tombstone_lifetime_days: d.tombstone_days,
        recycle_bin: d.recycle_bin,
        domain_controllers: d.controllers.iter().map(|(n, _)| n.clone()).collect(),
        partitions: Vec::new(),
    };
    let parts = partitions(&d);
    let others: Vec<String> = parts.iter().map(|(_, nc)| nc.clone()).collect();
    let mut digests = Digests::default();
    let mut total = 0u64;
    let mut gpos = Vec::new();
    for (name, nc) in &parts {
        let mut shards = Shards {
            prefix: name.clone(),
            text: String::new(),
            names: Vec::new(),
        };
        let mut n = 0u64;
        read_partition(directory, nc, &others, |o| {
            n += 1;
            total += 1;
            if n.is_multiple_of(500) {
                host::progress(total, 0, &format!("{name}: {n} objects"));
            }
            digests.add(&o);
            if name == "domain"
                && let Some(g) = sysvol::gpo_folder(&o)
            {
                gpos.push(g);
            }
            shards.push(&o)
        })?;
        if !shards.text.is_empty() || shards.names.is_empty() {
            shards.flush()?;
        }
        meta.partitions.push(Partition {
            name: name.clone(),
            nc: nc.clone(),
            objects: n,
            shards: shards.names,
        });
    }
    let body = serde_json::to_vec_pretty(&meta)
        .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(META, &body)?;
    let mut warnings = Vec::new();
    match previous_digests() {
        Ok(Some((when, old))) => {
            let c = changes::compare(&old, &digests, &when);
            host::info(&c.summary());
            let body = serde_json::to_vec_pretty(&c)
                .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
            engine::put_document(changes::ITEM, &body)?;
        }
        Ok(None) => {}
        Err(e) => warnings.push(format!(
            "what changed since the previous restore point is not known: {}",
            e.message
        )),
    }
    host::info(&format!(
        "{total} objects of {} up to USN {}",
        meta.domain, meta.highest_usn
    ));
    let mut consistency = format!("objects up to USN {}", meta.highest_usn);
    if let Some(root) = setting(&req.options, "sysvol").filter(|s| !s.trim().is_empty()) {
        let kept = sysvol::backup(root, &gpos, &mut warnings)?;
        consistency.push_str(&format!("; {kept} GPO folders"));
    }
    if let Some(tool) = system_state {
        let s = system_state::backup(
            &req.options,
            tool,
            &meta.domain,
            meta.tombstone_lifetime_days,
        )?;
        consistency.push_str(&format!("; system state of {} ({})", s.dc, s.item));
    }
    Ok(BackupReport {
        consistency,
        warnings,
    })
}

/// Digests of the previous restore point's objects, and its time.
fn previous_digests() -> Result<Option<(String, Digests)>> {
    let Some(prev) = engine::previous()? else {
        return Ok(None);
    };
    let meta = Meta::parse(&engine::read_previous_document(META)?)?;
    let mut d = Digests::default();
    for p in &meta.partitions {
        each_object(engine::read_previous_document, p, |o| {
            d.add(&o);
            Ok(())
        })?;
    }
    Ok(Some((prev.time, d)))
}

/// Objects of a restore point's domain partition by GUID (for planning restores).
pub fn objects(
    read: impl Fn(&str) -> Result<Vec<u8>>,
    meta: &Meta,
) -> Result<BTreeMap<Vec<u8>, ldif::Obj>> {
    let mut out = BTreeMap::new();
    if let Some(p) = meta.partitions.iter().find(|p| p.name == "domain") {
        each_object(read, p, |o| {
            if let Some(g) = o.values("objectGUID").first().cloned() {
                out.insert(g, o);
            }
            Ok(())
        })?;
    }
    Ok(out)
}
