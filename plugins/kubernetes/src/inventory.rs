//! `discover` and `assess`: a cluster and its namespaces, with what a backup of them
//! holds and what it cannot hold yet.
//!
//! Assets: the cluster (`<cluster>`: its API server, namespaces, storage classes and
//! their provisioners) and each namespace (`<cluster>/<namespace>`: workloads, claims,
//! their storage classes and CSI drivers, whether each driver has a VolumeSnapshotClass).

use std::collections::{BTreeMap, BTreeSet};

use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use serde_json::Value;

use crate::api::{self, ApiResource, hint};
use crate::settings::{self, SYSTEM_NAMESPACES};

fn get<'a>(a: &'a Asset, name: &str) -> &'a str {
    a.properties
        .iter()
        .find(|p| p.name == name)
        .map_or("", |p| p.value.as_str())
}

/// Every object of type `key` in the cluster (all namespaces); nothing when the cluster
/// does not serve it.
fn all(server: &str, types: &[ApiResource], key: &str) -> Result<Vec<Value>> {
    match api::find(types, key) {
        Some(t) => kube::list(&t.collection(server, None), &format!("listing {key}"), hint),
        None => Ok(vec![]),
    }
}

fn name_of(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ns_of(v: &Value) -> String {
    v["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn discover(s: &[Property]) -> Result<Vec<Asset>> {
    let has_kube = setting(s, "kube").is_some_and(|v| !v.trim().is_empty());
    let has_arm = !settings::list(setting(s, "subscriptions")).is_empty();
    if !has_kube && !has_arm {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "say where the clusters are: kube=https://<api-server>:<port> (a cluster, its namespaces and what they hold), and/or subscriptions=<id,…> (the Arc-connected clusters Azure Resource Manager lists)",
        ));
    }
    let mut out = if has_kube { from_api(s)? } else { vec![] };
    if has_arm {
        crate::arm::merge(&mut out, crate::arm::clusters(s)?);
    }
    Ok(out)
}

/// The cluster of `kube=` and its namespaces.
fn from_api(s: &[Property]) -> Result<Vec<Asset>> {
    let server = settings::server(s)?;
    let cluster = settings::cluster(s, &server)?;
    let excluded = settings::namespaces("exclude-namespaces", setting(s, "exclude-namespaces"))?;
    let (types, warnings) = api::discover(&server)?;
    for w in &warnings {
        rehydra_plugin_sdk::host::log(rehydra_plugin_sdk::host::Level::Warn, w);
    }
    let namespaces = all(&server, &types, "namespaces")?;
    let classes: BTreeMap<String, String> = all(&server, &types, "storageclasses.storage.k8s.io")?
        .iter()
        .map(|c| {
            (
                name_of(c),
                c["provisioner"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // the CSI drivers a VolumeSnapshotClass serves (in whatever version the cluster
    // prefers)
    let vsc_drivers: BTreeSet<String> =
        match types.iter().find(|t| t.resource == "volumesnapshotclasses") {
            Some(t) => kube::list(
                &t.collection(&server, None),
                "listing VolumeSnapshotClass objects",
                hint,
            )?
            .iter()
            .filter_map(|c| c["driver"].as_str().map(str::to_string))
            .collect(),
            None => BTreeSet::new(),
        };
    let claims = all(&server, &types, "persistentvolumeclaims")?;
    let mut workloads: BTreeMap<String, usize> = BTreeMap::new();
    for key in [
        "deployments.apps",
        "statefulsets.apps",
        "daemonsets.apps",
        "cronjobs.batch",
    ] {
        for w in all(&server, &types, key)? {
            *workloads.entry(ns_of(&w)).or_default() += 1;
        }
    }
    let mut out = vec![Asset {
        kind: "cluster".into(),
        id: cluster.clone(),
        name: cluster.clone(),
        parent: None,
        properties: vec![
            property("server", server.clone()),
            property("namespaces", namespaces.len().to_string()),
            property(
                "storage-classes",
                classes
                    .iter()
                    .map(|(c, p)| format!("{c}={p}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            property(
                "vsc-drivers",
                vsc_drivers.iter().cloned().collect::<Vec<_>>().join(","),
            ),
        ],
        flags: ProtectionFlags::empty(),
    }];
    for n in &namespaces {
        let ns = name_of(n);
        if !kube::is_label(&ns) {
            continue;
        }
        let mine: Vec<&Value> = claims.iter().filter(|c| ns_of(c) == ns).collect();
        let used: BTreeSet<String> = mine
            .iter()
            .filter_map(|c| c["spec"]["storageClassName"].as_str().map(str::to_string))
            .collect();
        let drivers: BTreeSet<String> = used
            .iter()
            .filter_map(|c| classes.get(c).cloned())
            .collect();
        let without: Vec<String> = drivers
            .iter()
            .filter(|d| !vsc_drivers.contains(*d))
            .cloned()
            .collect();
        let system = SYSTEM_NAMESPACES.contains(&ns.as_str()) || excluded.contains(&ns);
        out.push(Asset {
            kind: "namespace".into(),
            id: format!("{cluster}/{ns}"),
            name: ns.clone(),
            parent: Some(cluster.clone()),
            properties: vec![
                property(
                    "workloads",
                    workloads.get(&ns).copied().unwrap_or(0).to_string(),
                ),
                property("claims", mine.len().to_string()),
                property(
                    "storage-classes",
                    used.into_iter().collect::<Vec<_>>().join(","),
                ),
                property(
                    "csi-drivers",
                    drivers.into_iter().collect::<Vec<_>>().join(","),
                ),
                property("drivers-without-vsc", without.join(",")),
                property("system", system.to_string()),
            ],
            flags: ProtectionFlags::empty(),
        });
    }
    Ok(out)
}

pub fn assess(assets: &[Asset], _s: &[Property]) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for a in assets.iter().filter(|a| a.kind == "cluster") {
        let state = get(a, "agent-state");
        if !state.is_empty() && state != "Succeeded" {
            out.push(Finding {
                rule: "kubernetes.arc-agent".into(),
                severity: Severity::High,
                asset: Some(a.id.clone()),
                title: format!("{}: the Azure Arc agents are {state}", a.name),
                detail: "Azure no longer manages this cluster reliably: upgrades, Entra sign-in through Arc and the cluster's ARM view may fail".into(),
                recommendation: "Check the agents (az connectedk8s show, the azure-arc namespace) and upgrade or repair them".into(),
            });
        }
    }
    for a in assets
        .iter()
        .filter(|a| a.kind == "namespace" && get(a, "system") != "true")
    {
        let claims: usize = get(a, "claims").parse().unwrap_or(0);
        if claims > 0 {
            out.push(Finding::about(
                &a.id,
                "kubernetes.volume-data",
                Severity::Medium,
                format!("{claims} claim(s) in {} hold data on their volumes", a.name),
                format!(
                    "A backup of the namespace's objects alone restores each claim with a new, empty volume (storage classes: {})",
                    get(a, "storage-classes")
                ),
                "Back the namespace up with volume-data=pod (its files through a copy pod, crash-consistent), or keep the volumes protected by the application's own backups",
            ));
        }
        let without = get(a, "drivers-without-vsc");
        if !without.is_empty() {
            out.push(Finding {
                rule: "kubernetes.no-snapshot-class".into(),
                severity: Severity::Low,
                asset: Some(a.id.clone()),
                title: format!("{}: no VolumeSnapshotClass for {without}", a.name),
                detail: "Its volumes cannot be copied at one moment through the CSI VolumeSnapshot API: their data can only be read file by file while in use (crash-consistent at best)".into(),
                recommendation: "Install the CSI driver's VolumeSnapshot support and a VolumeSnapshotClass for it".into(),
            });
        }
    }
    Ok(out)
}
