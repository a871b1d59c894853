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

rehydra_plugin_sdk::export_plugin_modules!(Kubernetes { inventory, backup, restore });
