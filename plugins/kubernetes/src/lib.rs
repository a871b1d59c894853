//! Kubernetes workloads (AKS on Azure Local, or any conformant cluster): objects backed
//! up by cluster, namespace, label and type through the Kubernetes API, restored in
//! dependency order into the same or another namespace or cluster, and Velero backups
//! imported as restore points.
//!
//! - `discover`: the cluster of `kube=` and its namespaces ([`inventory`]), and the
//!   Arc-connected clusters of `subscriptions=` ([`arm`]).
//! - `assess`: rules `kubernetes.*` ([`inventory`]).
//! - `backup`: [`backup`] (from the cluster) or [`velero`] (`velero=`, an import).
//! - `plan-restore` / `restore` / `verify`: [`restore`].
//!
//! The plugin never sees a credential: the host signs in to the API servers the admin
//! granted. What it stores: [`index`] (one index per restore point) and one document per
//! object ([`objects`]). Not built yet: copying volume data (a restored claim gets a new,
//! empty volume, and every backup and restore says so).
use rehydra_plugin_sdk::prelude::*;

mod api;
mod arm;
mod backup;
mod csi;
mod find;
mod hooks;
mod index;
mod inventory;
mod objects;
mod restore;
mod selection;
mod settings;
mod tarball;
mod velero;
mod volumes;

struct Kubernetes;

impl Plugin for Kubernetes {
    fn describe() -> PluginInfo {
        describe_from_manifest!()
    }

    fn discover(s: Vec<Property>) -> Result<Vec<Asset>> {
        inventory::discover(&s)
    }

    fn assess(assets: Vec<Asset>, s: Vec<Property>) -> Result<Vec<Finding>> {
        inventory::assess(&assets, &s)
    }

    fn backup(req: BackupRequest) -> Result<BackupReport> {
        backup::backup(&req)
    }

    fn plan_restore(req: RestoreRequest) -> Result<RestorePlan> {
        restore::plan(&req)
    }

    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        restore::restore(&req)
    }

    fn verify(req: RestoreRequest) -> Result<VerifyReport> {
        restore::verify(&req)
    }
}

rehydra_plugin_sdk::export_plugin!(Kubernetes);
