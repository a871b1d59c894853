//! SQL Managed Instance enabled by Azure Arc: its databases backed up off the cluster,
//! and restored with the instance's own point-in-time restore.
//!
//! An Arc SQL MI keeps its built-in backups (full weekly, differential every 12 hours,
//! log every 5 minutes) on the cluster's own storage and restores them only to the same
//! instance. This plugin adds copies elsewhere: native `COPY_ONLY` backups, so the
//! instance's own chain is untouched, or copies of the instance's own backups, stored in
//! the repository as chains that `sql-common` keeps and checks exactly as for SQL Server.
//!
//! - `discover`: instances from the Kubernetes API (`kube=`, `namespaces=`) and/or ARM
//!   (`subscriptions=`, `resource-groups=`), then the user databases of each instance
//!   whose TDS endpoint the admin configured (`servers=<ns>/<instance>=<endpoint>`).
//!   Asset ids: `<namespace>/<instance>` and `<namespace>/<instance>/<database>`
//!   ([`names`]).
//! - `assess`: rules `arcsqlmi.*` ([`inventory`]).
//! - `backup` (a database): see [`backup`]; `level=built-in` copies the instance's own
//!   backups instead ([`own_backups`]).
//! - `plan-restore` / `restore` / `verify`: see [`restore`] and [`builtin`].
//!
//! The plugin never sees a credential: the host signs in to the API server, ARM and the
//! SQL endpoints the admin granted.

mod arm;
mod backup;
mod builtin;
mod instance;
mod inventory;
mod kube;
mod names;
mod own_backups;
mod restore;
#[cfg(test)]
mod tests;

rehydra_plugin_sdk::export_plugin_modules!(ArcSqlMi { inventory, backup, restore });
