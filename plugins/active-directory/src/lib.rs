//! Active Directory: the objects of a domain, backed up over LDAP and restored one by one.
//!
//! - `discover` (setting `directory`, a directory the admin configured with `rehydra
//!   plugins directory add`): the domain behind it with its naming contexts, functional
//!   levels, domain controllers and sites, FSMO role holders, Recycle Bin, tombstone
//!   lifetime and object counts. `assess`: see [`inventory`].
//! - `backup`: every object of the domain, configuration and DNS partitions with all
//!   attributes (binary ones and security descriptors included) as LDIF, the USN
//!   high-watermark, and what changed since the previous restore point; see [`backup`].
//! - `plan-restore` / `restore` / `verify`: one object or a subtree, reanimated from its
//!   tombstone where the directory still has it (same SID), else re-created; attribute
//!   rollback of existing objects; group memberships linked again; see [`restore`].
//!   `find=<text>` plans nothing but the objects of the point that hold the text, for
//!   the restore wizard's picker; see [`find`].
//!   `compare=live` plans nothing but what changed in the directory since the point,
//!   attribute by attribute, and `compare=<another point>` what changed between the two;
//!   see [`compare`].
//! - With `sysvol`, each GPO's SYSVOL folder is kept beside its object and put back with
//!   it; see [`sysvol`].
//! - With `system-state`, the DC's own backup tool (samba-tool, wbadmin) runs through a
//!   command target and its output goes into the same restore point; `whole-dc` restores
//!   it, refusing a point older than the tombstone lifetime; see [`system_state`].
//!
//! The plugin never sees a credential: the host binds as the account the admin configured
//! for the directory, over LDAPS or StartTLS, and logs every write.

pub mod backup;
pub mod changes;
pub mod compare;
pub mod dir;
pub mod find;
pub mod inventory;
pub mod ldif;
pub mod restore;
mod rules;
pub mod security;
pub mod system_state;
pub mod sysvol;

rehydra_plugin_sdk::export_plugin_modules!(ActiveDirectory { inventory, backup, restore });
