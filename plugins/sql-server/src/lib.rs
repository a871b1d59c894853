//! SQL Server databases: native full, differential and log backups kept as chains, and
//! restores to a point in time.
//!
//! - `discover` (`servers=`): the instances' user databases with recovery model, state,
//!   size, AG membership, TDE and their last backups from msdb.
//! - `assess`: broken chains (a log gap, a fork, a differential without its full), a full
//!   someone else took that differentials now depend on, SIMPLE recovery's RPO, no full
//!   backup, TDE.
//! - `backup` (a database): see [`backup`]. `plan-restore` / `restore` / `verify`: see
//!   [`restore`]. The chain rules are in `sql_common::chain`.
//!
//! The plugin never sees a login or password: the host signs in to the instances the
//! admin configured and granted (`sql:<instance>`).

mod backup;
mod inventory;
mod moments;
mod restore;
mod target;

use sql_common::{chain, model, stored, tsql};

rehydra_plugin_sdk::export_plugin_modules!(SqlServer { inventory, backup, restore });
