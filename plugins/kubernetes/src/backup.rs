//! `backup`: the objects of a cluster's namespaces, read through the Kubernetes API.
//!
//! The asset is `<cluster>` (every namespace but the system ones and
//! `exclude-namespaces`) or `<cluster>/<namespace>`. For each namespace: the Namespace
//! itself, then every namespaced type the cluster serves (minus [`api::SKIPPED`], within
//! `include-resources` / `exclude-resources`) listed in pages with `labels` as the
//! label selector; then the cluster-scoped objects that belong to them: the
//! PersistentVolumes bound to their claims, and the CustomResourceDefinitions of the
//! custom resources stored. One document per object, cleaned of what the server owns
//! ([`crate::objects::clean`]); unchanged objects dedup against earlier backups.
//!
//! A type that cannot be listed (no right to, or gone meanwhile) is a warning, and the
//! rest is stored. With `volume-data=pod` the files of every claim are stored too (see
//! `claims`: from a VolumeSnapshot where the driver has a class, [`crate::csi`], else
//! while in use, [`crate::volumes`]); without it each claim is named in a warning, and a
//! restore creates it with a new, empty volume.

use std::collections::BTreeSet;

use rehydra_plugin_sdk::engine;
use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{encode, shown};
use serde_json::Value;

use crate::api::{self, ApiResource, SKIPPED, hint};
use crate::index::{Claim, Entry, Index, Source};
use crate::objects::{clean, identity, keep};
use crate::settings::{self, SYSTEM_NAMESPACES, Scope};
use crate::{csi, volumes};

mod claims;

/// Longest label selector accepted.
const SELECTOR_MAX: usize = 1024;

/// Groups whose types are built into Kubernetes: their definitions are never stored.
fn built_in(group: &str) -> bool {
    group.is_empty() || group.ends_with(".k8s.io") || !group.contains('.')
}

/// What `backup` reads.
struct Selection {
    server: String,
    selector: Option<String>,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    fn wants(&self, t: &ApiResource) -> bool {
        let k = t.key();
        !SKIPPED.contains(&k.as_str())
            && (self.include.is_empty()
                || self.include.contains(&k)
                || self.include.contains(&t.resource))
            && !self.exclude.contains(&k)
            && !self.exclude.contains(&t.resource)
    }

    fn list_url(&self, t: &ApiResource, ns: Option<&str>) -> String {
        let base = t.collection(&self.server, ns);
        match &self.selector {
            Some(sel) => format!("{base}?labelSelector={}", encode(sel)),
            None => base,
        }
    }
}

pub fn backup(req: &BackupRequest) -> Result<BackupReport> {
    let s = &req.options;
    if let Some(path) = setting(s, "velero").filter(|v| !v.trim().is_empty()) {
        return crate::velero::import(req, path.trim());
    }
    let server = settings::server(s)?;
    let cluster = settings::cluster(s, &server)?;
    let scope = settings::scope(&req.asset.id)?;
    let (asset_cluster, only) = match &scope {
        Scope::Cluster(c) => (c, None),
        Scope::Namespace(c, ns) => (c, Some(ns.clone())),
    };
    if *asset_cluster != cluster {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "asset `{}` is of cluster `{asset_cluster}`, but kube= and cluster= name `{cluster}`: give the settings of that cluster",
                req.asset.id
            ),
        ));
    }
    let selector = setting(s, "labels")
        .map(str::trim)
        .filter(|v| !v.is_empty());
    if let Some(sel) = selector
        && (sel.len() > SELECTOR_MAX || sel.chars().any(char::is_control))
    {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("labels: `{}` is not a label selector", shown(sel, 80)),
        ));
    }
    let (types, mut warnings) = api::discover(&server)?;
    let sel = Selection {
        server: server.clone(),
        selector: selector.map(str::to_string),
        include: settings::list(setting(s, "include-resources")),
        exclude: settings::list(setting(s, "exclude-resources")),
    };
    let ns_type = api::find(&types, "namespaces").cloned().ok_or_else(|| {
        Error::new(
            ErrorCode::Failed,
            "the API server does not serve namespaces",
        )
    })?;
    let namespaces: Vec<Value> = match &only {
        Some(ns) => {
            let url = ns_type.object(&server, None, ns);
            vec![kube::get(&url, "reading the namespace", hint)?.ok_or_else(|| {
                Error::new(
                    ErrorCode::NotFound,
                    format!("namespace `{ns}` does not exist on {server} (rehydra plugins run kubernetes discover lists them)"),
                )
            })?]
        }
        None => {
            let excluded =
                settings::namespaces("exclude-namespaces", setting(s, "exclude-namespaces"))?;
            kube::list(
                &ns_type.collection(&server, None),
                "listing the namespaces",
                hint,
            )?
            .into_iter()
            .filter(|n| {
                let name = n["metadata"]["name"].as_str().unwrap_or_default();
                !SYSTEM_NAMESPACES.contains(&name) && !excluded.iter().any(|e| e == name)
            })
            .collect()
        }
    };
    let mut ix = Index::new(Source {
        kind: "cluster".into(),
        cluster: cluster.clone(),
        server: Some(server.clone()),
        selector: sel.selector.clone(),
        velero: None,
    });
    let namespaced: Vec<&ApiResource> = types
        .iter()
        .filter(|t| t.namespaced && sel.wants(t))
        .collect();
    let total = (namespaces.len() * (namespaced.len() + 1)) as u64;
    let mut done = 0;
    let mut volumes = BTreeSet::new();
    for n in namespaces {
        let obj = clean(n, "v1", "Namespace");
        let (_, ns) = identity(&obj, false)?;
        kube::label("a namespace", &ns)?;
        store(&mut ix, &ns_type, obj, &mut warnings)?;
        ix.namespaces.push(ns.clone());
        for t in &namespaced {
            if host::cancelled() {
                return Err(Error::new(
                    ErrorCode::Cancelled,
                    "cancelled; nothing was stored",
                ));
            }
            done += 1;
            host::progress(done, total, &format!("{ns}: {}", t.key()));
            let what = format!("listing {} in namespace {ns}", t.key());
            let items = match kube::list_restarting(&sel.list_url(t, Some(&ns)), &what, hint) {
                Ok(items) => items,
                Err(e) => {
                    warnings.push(format!("{} not backed up: {}", t.key(), e.message));
                    continue;
                }
            };
            for item in items {
                let obj = clean(item, &t.api_version(), &t.kind);
                if !keep(&obj) {
                    continue;
                }
                if obj["metadata"]["namespace"].as_str() != Some(ns.as_str()) {
                    warnings.push(format!(
                        "{}: the API server listed an object of another namespace ({}) under {ns}; left out",
                        t.key(),
                        shown(obj["metadata"]["namespace"].as_str().unwrap_or("none"), 80)
                    ));
                    continue;
                }
                let c = (t.group.is_empty() && t.kind == "PersistentVolumeClaim")
                    .then(|| claim(&obj, &ns));
                let volume = obj["spec"]["volumeName"].as_str().map(str::to_string);
                if store(&mut ix, t, obj, &mut warnings)?
                    && let Some(c) = c
                {
                    ix.claims.push(c);
                    volumes.extend(volume);
                }
            }
        }
    }
    related(&sel, &types, &volumes, &mut ix, &mut warnings)?;
    let wait = settings::wait(s)?;
    let copier = volumes::copier(s, &server, wait)?;
    let hooks = match setting(s, "hooks").map(str::trim) {
        None | Some("" | "none") => false,
        Some("velero") => true,
        Some(other) => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("hooks `{}` is not none or velero", shown(other, 40)),
            ));
        }
    };
    let csi = match &copier {
        Some(_) => csi::classes(s, &server, &types, wait, &mut warnings)?,
        // (a wrong value is said even when no files are copied)
        None => csi::wanted(s).map(|_| None)?,
    };
    let how = claims::Copies {
        copier: copier.as_ref(),
        hooks,
        csi: csi.as_ref(),
    };
    claims::copy_volumes(&how, &mut ix, &mut warnings)?;
    ix.store()?;
    host::info(&format!(
        "{} objects of {} namespaces stored",
        ix.objects.len(),
        ix.namespaces.len()
    ));
    Ok(BackupReport {
        consistency: "crash".into(),
        warnings,
    })
}

/// The PersistentVolumes bound to stored claims, and the definitions of stored custom
/// resources.
fn related(
    sel: &Selection,
    types: &[ApiResource],
    volumes: &BTreeSet<String>,
    ix: &mut Index,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if let Some(pv) = api::find(types, "persistentvolumes") {
        for v in volumes {
            let url = pv.object(&sel.server, None, v);
            match kube::get(&url, &format!("reading persistent volume {v}"), hint) {
                Ok(Some(obj)) => {
                    store(ix, pv, clean(obj, &pv.api_version(), &pv.kind), warnings)?;
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!(
                    "persistent volume {v} not backed up: {}",
                    e.message
                )),
            }
        }
    }
    let custom: Vec<String> = ix
        .types
        .iter()
        .filter(|t| !built_in(&t.group))
        .map(ApiResource::key)
        .collect();
    if let Some(crd) = api::find(types, "customresourcedefinitions.apiextensions.k8s.io") {
        for key in custom {
            let url = crd.object(&sel.server, None, &key);
            match kube::get(&url, &format!("reading the definition of {key}"), hint) {
                Ok(Some(obj)) => {
                    store(ix, crd, clean(obj, &crd.api_version(), &crd.kind), warnings)?;
                }
                Ok(None) => warnings.push(format!(
                    "{key}: no CustomResourceDefinition of that name (an aggregated API?); its objects restore only where the type exists"
                )),
                Err(e) => warnings.push(format!("definition of {key} not backed up: {}", e.message)),
            }
        }
    }
    Ok(())
}

/// A stored claim, as the index records it (read from a cluster or a Velero backup).
pub fn claim(obj: &Value, ns: &str) -> Claim {
    let text = |v: &Value, max| rehydra_plugin_sdk::rest::text(v, max).map(str::to_string);
    Claim {
        namespace: ns.to_string(),
        name: obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        storage_class: text(&obj["spec"]["storageClassName"], 253),
        size: text(&obj["spec"]["resources"]["requests"]["storage"], 40),
        block: obj["spec"]["volumeMode"] == "Block",
        data: false,
    }
}

/// Store one cleaned object of type `t` as its document, and index it. An object whose
/// name cannot be an item name or a URL path (the API server allows spaces in some
/// names) is left out with a warning, not the whole backup; `false` then, and for an
/// object stored already.
pub fn store(
    ix: &mut Index,
    t: &ApiResource,
    obj: Value,
    warnings: &mut Vec<String>,
) -> Result<bool> {
    let (namespace, name) = match identity(&obj, t.namespaced) {
        Ok(id) => id,
        Err(e) => {
            warnings.push(format!("{}: {}; left out", t.key(), e.message));
            return Ok(false);
        }
    };
    let entry = Entry {
        key: t.key(),
        namespace,
        name,
    };
    let item = entry.item();
    if !ix.add(t, entry) {
        return Ok(false);
    }
    let body =
        serde_json::to_vec(&obj).map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(&item, &body)?;
    Ok(true)
}
