//! Azure Key Vault: every key, secret and certificate with all its versions.
//!
//! - `discover`: the vaults of the granted subscriptions (ARM `Microsoft.KeyVault/vaults`)
//!   with soft delete, purge protection, permission model and network rules, flagging the
//!   Azure Local deployment vault; under each vault its objects with their versions,
//!   expiry and exportability. A vault this machine cannot read is listed with the reason.
//! - `assess`: objects expiring within `expiry-days`, vaults without soft delete or purge
//!   protection, objects over Key Vault's 500 versions a backup takes, unreachable vaults.
//! - `backup` (a vault): see [`backup`]. `plan-restore` / `restore` / `verify`: see
//!   [`restore`].
//!
//! The plugin never sees a token: the host signs the requests in (Key Vault's audience
//! for `*.vault.azure.net`, ARM's for `management.azure.com`). Secret values a portable
//! copy reads are the workload's data: they go into the repository sealed like every
//! item and are never logged.

mod backup;
mod client;
mod inventory;
mod model;
mod restore;

rehydra_plugin_sdk::export_plugin_modules!(KeyVault { inventory, backup, restore });
