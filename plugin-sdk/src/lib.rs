//! Write Rehydra workload plugins in Rust.
//!
//! A plugin is a WebAssembly component (`wasm32-wasip2`) that implements the
//! `rehydra:plugin@0.1.5` contract in `plugin-sdk/wit`. With this crate you implement one
//! trait, [`Plugin`], whose methods all have defaults except [`Plugin::describe`], and
//! export it with [`export_plugin!`]:
//!
//! ```ignore
//! use rehydra_plugin_sdk::{engine, export_plugin, prelude::*};
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     fn describe() -> PluginInfo {
//!         describe_from_manifest!() // from `rehydra-plugin.toml`, read when compiled
//!     }
//!     fn backup(req: BackupRequest) -> Result<BackupReport> {
//!         engine::ingest_path("files", &req.asset.id)?;   // needs the `files` grant
//!         Ok(BackupReport { consistency: "crash".into(), warnings: vec![] })
//!     }
//! }
//! export_plugin!(Hello);
//! ```
//!
//! The host calls come from the modules [`engine`], [`files`], [`http`], [`commands`],
//! [`ldap`], [`sql`] and [`host`]. Each says which capability it needs; a call the admin did not grant
//! returns an [`Error`] with [`ErrorCode::Denied`].
//!
//! Built for anything but `wasm32`, those modules are served by the mock host of the
//! `mock` module instead, so `cargo test` runs a plugin's verbs natively (see
//! `mock::MockHost` and "Test your plugin without a host" in the README).

#![allow(unsafe_code)]

/// Raw bindings generated from the WIT contract.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__rehydra_export",
        default_bindings_module: "rehydra_plugin_sdk::bindings",
        generate_all,
    });
}

pub use bindings::rehydra::plugin::types::*;

/// The backup engine (capability `engine`): ingest by path, push small streams and
/// documents, read and restore items of the restore point in hand.
///
/// Natively (not `wasm32`) the same functions are served by the `mock::MockHost`
/// running the current verb.
pub mod engine {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::engine::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::engine::{
        DiskFormat, DiskRange, Error, ItemInfo, ItemSummary, RestorePoint,
    };
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::engine::*;
}

/// Files under granted roots (capability `files`, and `files-write` to write).
///
/// Natively (not `wasm32`) served by the `mock::MockHost` running the current verb.
pub mod files {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::files::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::files::{Entry, EntryKind, Error};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::files::*;
}

/// HTTP(S) to granted hosts (capability `http`); the host adds authentication.
///
/// Natively (not `wasm32`) served by the `mock::MockHost` running the current verb.
pub mod http {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::http::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::http::{Error, Request, Response};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::http::*;
}

/// Commands and PowerShell on granted targets (capability `command`).
///
/// Natively (not `wasm32`) served by the `mock::MockHost` running the current verb.
pub mod commands {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::commands::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::commands::{Error, Output};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::commands::*;
}

/// LDAP directories the admin configured (capability `ldap:<server>`); the host binds.
///
/// Natively (not `wasm32`) the mock host does not serve directories yet: every call
/// returns [`ErrorCode::Unsupported`]. Test directory code against a real one (the
/// `active-directory` plugin's tests provision a Samba domain controller).
pub mod ldap {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::ldap::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::ldap::{
        Attribute, Change, ChangeOp, Controls, Entry, Error, Page, Query, Scope,
    };
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::ldap::*;

    /// Every entry `query` finds, page by page (`page_size` 1 to 1000), handed to `each`
    /// as they arrive; stops at the first error (its or the directory's).
    ///
    /// # Errors
    /// As [`search`], or what `each` returns.
    pub fn search_all(
        directory: &str,
        query: &Query,
        page_size: u32,
        mut each: impl FnMut(Entry) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut cookie = Vec::new();
        loop {
            let page = search(directory, query, page_size, &cookie)?;
            for e in page.entries {
                each(e)?;
            }
            if page.cookie.is_empty() {
                return Ok(());
            }
            if crate::host::cancelled() {
                return Err(Error {
                    code: crate::ErrorCode::Cancelled,
                    message: "cancelled by the user".into(),
                });
            }
            cookie = page.cookie;
        }
    }
}

/// T-SQL on SQL Server instances the admin configured (capability `sql:<server>`); the
/// host signs in.
///
/// Natively (not `wasm32`) served by the `mock::MockHost` running the current verb: the
/// test answers each batch (`MockHost::on_sql`).
pub mod sql {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::sql::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::sql::{Error, ResultSet};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::sql::*;

    /// T-SQL text for a string value: `N'…'` with quotes doubled (prefer parameters).
    pub fn literal(s: &str) -> String {
        format!("N'{}'", s.replace('\'', "''"))
    }

    /// T-SQL text for a name: `[…]` with `]` doubled, as `QUOTENAME` does.
    pub fn name(s: &str) -> String {
        format!("[{}]", s.replace(']', "]]"))
    }
}

/// Log, progress and cancellation (always available).
///
/// Natively (not `wasm32`) served by the `mock::MockHost` running the current verb.
pub mod host {
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::bindings::rehydra::plugin::host::Level;
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::rehydra::plugin::host::*;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::mock::host::*;

    /// Log at info level.
    pub fn info(msg: &str) {
        log(Level::Info, msg);
    }
}

/// A mock host for native unit tests of a plugin's verbs (not compiled into plugins).
#[cfg(not(target_arch = "wasm32"))]
pub mod mock;

/// Helpers for plugins that manage Windows nodes (PowerShell, path maps).
pub mod windows;

/// Helpers for Azure: Resource Manager long-running operations ([`azure::arm`]) and
/// lists ([`azure::resources`]).
pub mod azure;
/// The Kubernetes API over the `http` capability: names, paged lists, objects.
pub mod kube;
/// The values a restore setting offers through another (`found-by`): `pick:` steps.
pub mod found;
/// JSON over the `http` capability: requests, errors, endpoints, safe answer fields.
pub mod rest;
/// Time as plugins print it (RFC 3339 UTC), without a date crate in every plugin.
pub mod time {
    /// Seconds since 1970-01-01 UTC as RFC 3339 (`2026-12-02T07:47:04Z`); before 1970 too.
    #[must_use]
    pub fn rfc3339(secs: i64) -> String {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // civil from days (Howard Hinnant), days since 1970-01-01
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// Seconds since 1970-01-01 UTC now (0 if the clock is before it).
    #[must_use]
    pub fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn dates() {
            assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
            assert_eq!(super::rfc3339(2_208_988_799), "2039-12-31T23:59:59Z");
            assert_eq!(super::rfc3339(1_493_938_410), "2017-05-04T22:53:30Z");
            assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
        }
    }
}

/// Result of plugin calls.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        Asset, BackupReport, BackupRequest, DiskRange, Error, ErrorCode, Finding, ItemInfo,
        ItemKind, Plugin, PluginInfo, Property, ProtectionFlags, RestorePlan, RestorePoint,
        RestoreReport, RestoreRequest, Result, Severity, Step, VerifyReport, asset,
        describe_from_manifest, empty_plan, flag, info, property, refuse_blocked, require, setting,
        setting_or,
    };
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Build a [`PluginInfo`].
pub fn info(
    id: &str,
    name: &str,
    version: &str,
    workloads: &[&str],
    description: &str,
) -> PluginInfo {
    PluginInfo {
        id: id.into(),
        name: name.into(),
        version: version.into(),
        workloads: workloads.iter().map(|w| (*w).to_string()).collect(),
        description: description.into(),
    }
}

/// The plugin's identity as its manifest states it: `id`, `name`, `version`, `workloads`
/// and `description` from the top of `rehydra-plugin.toml` (the part before the first
/// table). Use it through [`describe_from_manifest!`], so the identity is written once.
/// A key it cannot read comes back empty, and the host then refuses the plugin with a
/// message naming both ids.
pub fn info_from_manifest(manifest: &str) -> PluginInfo {
    let mut info = info("", "", "", &[], "");
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            break; // the first table: capabilities, limits, settings
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        // a TOML basic string or array of them reads as JSON; what follows (a comment) is not read
        let mut values =
            serde_json::Deserializer::from_str(value.trim()).into_iter::<serde_json::Value>();
        let Some(Ok(value)) = values.next() else {
            continue;
        };
        let text = || value.as_str().unwrap_or_default().to_string();
        match key.trim() {
            "id" => info.id = text(),
            "name" => info.name = text(),
            "version" => info.version = text(),
            "description" => info.description = text(),
            "workloads" => {
                info.workloads = value
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|w| w.as_str().map(Into::into))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
    info
}

/// `describe`'s answer read from the plugin's own `rehydra-plugin.toml` (beside its
/// `Cargo.toml`) when the plugin is compiled:
///
/// ```ignore
/// fn describe() -> PluginInfo {
///     rehydra_plugin_sdk::describe_from_manifest!()
/// }
/// ```
#[macro_export]
macro_rules! describe_from_manifest {
    () => {
        $crate::info_from_manifest(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rehydra-plugin.toml"
        )))
    };
}

/// The value of setting or option `name`, if given.
pub fn setting<'a>(props: &'a [Property], name: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

/// The value of `name` if given and not empty, else `default`.
pub fn setting_or<'a>(props: &'a [Property], name: &str, default: &'a str) -> &'a str {
    setting(props, name)
        .filter(|v| !v.is_empty())
        .unwrap_or(default)
}

/// The value of a required setting or option: an `invalid-input` error naming it and what
/// it should hold (`hint`) when it is absent or empty.
///
/// # Errors
/// `invalid-input`.
pub fn require<'a>(props: &'a [Property], name: &str, hint: &str) -> Result<&'a str> {
    setting(props, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("`{name}` is required: {hint}"),
            )
        })
}

/// Whether option `name` is on. The one truthiness rule of every plugin: `true`, `yes`,
/// `on` or `1` in any case; absent or anything else is off.
pub fn flag(props: &[Property], name: &str) -> bool {
    setting(props, name).is_some_and(|v| {
        ["true", "yes", "on", "1"]
            .iter()
            .any(|t| v.trim().eq_ignore_ascii_case(t))
    })
}

/// A property `name` = `value` (of an asset, a setting).
pub fn property(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.into(),
        value: value.into(),
    }
}

/// An asset with no properties and no flags.
pub fn asset(kind: &str, id: &str, name: &str, parent: Option<&str>) -> Asset {
    Asset {
        kind: kind.into(),
        id: id.into(),
        name: name.into(),
        parent: parent.map(Into::into),
        properties: vec![],
        flags: ProtectionFlags::empty(),
    }
}

impl BackupReport {
    /// A report of `consistency` (`crash`, `application`, …) with no warnings.
    pub fn new(consistency: &str) -> Self {
        Self {
            consistency: consistency.into(),
            warnings: vec![],
        }
    }
}

impl RestoreReport {
    /// `bytes` written, no warnings.
    pub fn new(bytes: u64) -> Self {
        Self {
            bytes,
            warnings: vec![],
        }
    }
}

impl VerifyReport {
    /// `ok` or not, no findings.
    pub fn new(ok: bool) -> Self {
        Self {
            ok,
            findings: vec![],
        }
    }

    /// A report of `findings`: the point passed when there are none.
    pub fn of(findings: Vec<Finding>) -> Self {
        Self {
            ok: findings.is_empty(),
            findings,
        }
    }
}

impl Finding {
    /// A finding of `rule` about `asset` (none: about the whole estate).
    pub fn new(
        rule: &str,
        severity: Severity,
        asset: Option<&str>,
        title: impl Into<String>,
        detail: impl Into<String>,
        recommendation: impl Into<String>,
    ) -> Self {
        Self {
            rule: rule.into(),
            severity,
            asset: asset.map(str::to_string),
            title: title.into(),
            detail: detail.into(),
            recommendation: recommendation.into(),
        }
    }

    /// A finding of `rule` about one asset (its id).
    pub fn about(
        asset: &str,
        rule: &str,
        severity: Severity,
        title: String,
        detail: String,
        recommendation: &str,
    ) -> Self {
        Self::new(rule, severity, Some(asset), title, detail, recommendation)
    }
}

impl Step {
    /// A step depending on no other.
    pub fn new(id: &str, title: &str, detail: String) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            detail,
            depends_on: vec![],
        }
    }
}

impl RestorePlan {
    /// Refuse to carry out this plan if it has blockers: see [`refuse_blocked`].
    ///
    /// # Errors
    /// `invalid-input` naming every blocker.
    pub fn go_ahead(&self) -> Result<()> {
        refuse_blocked(&self.blockers)
    }
}

/// A restore re-plans before it writes and stops here when the plan has blockers: the
/// error names them all, and nothing was written.
///
/// # Errors
/// `invalid-input` naming every blocker.
pub fn refuse_blocked(blockers: &[String]) -> Result<()> {
    if blockers.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::InvalidInput,
        format!(
            "the restore plan is blocked, nothing was written: {}",
            blockers.join("; ")
        ),
    ))
}

/// A plan with nothing in it yet.
pub fn empty_plan() -> RestorePlan {
    RestorePlan {
        steps: vec![],
        warnings: vec![],
        blockers: vec![],
    }
}

fn unsupported(verb: &str) -> Error {
    Error::new(
        ErrorCode::Unsupported,
        format!("this plugin does not implement `{verb}`"),
    )
}

/// A workload plugin. Only [`Plugin::describe`] is required; every other verb answers
/// `unsupported` (or nothing to report) until you implement it.
pub trait Plugin {
    /// Who the plugin is; must match its manifest.
    fn describe() -> PluginInfo;

    /// The assets this plugin can protect.
    ///
    /// # Errors
    /// Whatever the inventory source reports.
    fn discover(_settings: Vec<Property>) -> Result<Vec<Asset>> {
        Err(unsupported("discover"))
    }

    /// Read-only risk assessment. Default: no findings.
    ///
    /// # Errors
    /// Whatever the inventory source reports.
    fn assess(_assets: Vec<Asset>, _settings: Vec<Property>) -> Result<Vec<Finding>> {
        Ok(Vec::new())
    }

    /// Back up one asset through [`engine`].
    ///
    /// # Errors
    /// The engine or a capability call failed.
    fn backup(_req: BackupRequest) -> Result<BackupReport> {
        Err(unsupported("backup"))
    }

    /// Plan a restore without touching anything. Default: restore every item to the target.
    ///
    /// # Errors
    /// The request cannot be planned.
    fn plan_restore(req: RestoreRequest) -> Result<RestorePlan> {
        let steps = req
            .restore_point
            .items
            .iter()
            .filter(|i| i.kind != ItemKind::Document)
            .map(|i| Step {
                id: format!("restore:{}", i.name),
                title: format!("Restore {}", i.name),
                detail: format!("{} bytes to {}", i.size, req.target),
                depends_on: Vec::new(),
            })
            .collect();
        Ok(RestorePlan {
            steps,
            warnings: Vec::new(),
            blockers: Vec::new(),
        })
    }

    /// Execute a restore.
    ///
    /// # Errors
    /// The engine or a capability call failed.
    fn restore(_req: RestoreRequest) -> Result<RestoreReport> {
        Err(unsupported("restore"))
    }

    /// Prove a restore point can come back (read-only).
    ///
    /// # Errors
    /// The restore point cannot be read.
    fn verify(_req: RestoreRequest) -> Result<VerifyReport> {
        Err(unsupported("verify"))
    }
}

/// Export a type implementing [`Plugin`] as the component's `workload` interface.
/// Call it once, at the crate root of the plugin.
#[macro_export]
macro_rules! export_plugin {
    ($t:ty) => {
        const _: () = {
            struct RehydraExport;
            impl $crate::bindings::exports::rehydra::plugin::workload::Guest for RehydraExport {
                fn describe() -> $crate::PluginInfo {
                    <$t as $crate::Plugin>::describe()
                }
                fn discover(
                    s: ::std::vec::Vec<$crate::Property>,
                ) -> $crate::Result<::std::vec::Vec<$crate::Asset>> {
                    <$t as $crate::Plugin>::discover(s)
                }
                fn assess(
                    a: ::std::vec::Vec<$crate::Asset>,
                    s: ::std::vec::Vec<$crate::Property>,
                ) -> $crate::Result<::std::vec::Vec<$crate::Finding>> {
                    <$t as $crate::Plugin>::assess(a, s)
                }
                fn backup(r: $crate::BackupRequest) -> $crate::Result<$crate::BackupReport> {
                    <$t as $crate::Plugin>::backup(r)
                }
                fn plan_restore(r: $crate::RestoreRequest) -> $crate::Result<$crate::RestorePlan> {
                    <$t as $crate::Plugin>::plan_restore(r)
                }
                fn restore(r: $crate::RestoreRequest) -> $crate::Result<$crate::RestoreReport> {
                    <$t as $crate::Plugin>::restore(r)
                }
                fn verify(r: $crate::RestoreRequest) -> $crate::Result<$crate::VerifyReport> {
                    <$t as $crate::Plugin>::verify(r)
                }
            }
    $crate::bindings::__rehydra_export!(RehydraExport with_types_in $crate::bindings);
        };
    };
}

/// Define and export a plugin laid out in the usual three modules, so the crate root
/// holds no forwarding code: `$inventory::discover(&settings)` and
/// `$inventory::assess(&assets, &settings)`, `$backup::backup(&request)`, and
/// `$restore::plan(&request)` (anything that turns [`Into`] a [`RestorePlan`]),
/// `$restore::restore(&request)` and `$restore::verify(&request)`. The identity is the
/// manifest's ([`describe_from_manifest!`]). It declares the unit struct `$t`, which the
/// crate's tests hand to [`mock::MockHost`]. A plugin laid out otherwise implements
/// [`Plugin`] itself and calls [`export_plugin!`].
///
/// ```ignore
/// mod backup;
/// mod inventory;
/// mod restore;
/// rehydra_plugin_sdk::export_plugin_modules!(MyWorkload { inventory, backup, restore });
/// ```
#[macro_export]
macro_rules! export_plugin_modules {
    ($t:ident { $inventory:ident, $backup:ident, $restore:ident }) => {
        struct $t;

        impl $crate::Plugin for $t {
            fn describe() -> $crate::PluginInfo {
                $crate::describe_from_manifest!()
            }
            fn discover(
                s: ::std::vec::Vec<$crate::Property>,
            ) -> $crate::Result<::std::vec::Vec<$crate::Asset>> {
                $inventory::discover(&s)
            }
            fn assess(
                a: ::std::vec::Vec<$crate::Asset>,
                s: ::std::vec::Vec<$crate::Property>,
            ) -> $crate::Result<::std::vec::Vec<$crate::Finding>> {
                $inventory::assess(&a, &s)
            }
            fn backup(r: $crate::BackupRequest) -> $crate::Result<$crate::BackupReport> {
                $backup::backup(&r)
            }
            fn plan_restore(r: $crate::RestoreRequest) -> $crate::Result<$crate::RestorePlan> {
                $restore::plan(&r).map(::std::convert::Into::into)
            }
            fn restore(r: $crate::RestoreRequest) -> $crate::Result<$crate::RestoreReport> {
                $restore::restore(&r)
            }
            fn verify(r: $crate::RestoreRequest) -> $crate::Result<$crate::VerifyReport> {
                $restore::verify(&r)
            }
        }

        $crate::export_plugin!($t);
    };
}

#[cfg(test)]
mod option_tests {
    use super::*;
    use crate::mock::props;

    #[test]
    fn identity_is_read_from_the_manifest_top_only() {
        let m = "# a comment\nid = \"my-folders\"   # trailing comment\nname = \"My \\\"folders\\\"\"\nversion = \"1.2.3\"\nworkloads = [\"files\", \"vm\"]\ndescription = \"C:\\\\x\"\n\n[[capabilities]]\nid = \"not-me\"\n";
        let i = info_from_manifest(m);
        assert_eq!(i.id, "my-folders");
        assert_eq!(i.name, "My \"folders\"");
        assert_eq!(i.version, "1.2.3");
        assert_eq!(i.workloads, ["files", "vm"]);
        assert_eq!(i.description, "C:\\x");
        assert_eq!(
            info_from_manifest("id = 5\n").id,
            "",
            "not a string: empty, refused by the host"
        );
        // the SDK's own example plugin, as compiled
        let example = include_str!("../../plugins/example-files/rehydra-plugin.toml");
        assert_eq!(info_from_manifest(example).id, "example-files");
    }

    #[test]
    fn one_truthiness_rule_and_required_settings_name_themselves() {
        let p = props(&[
            ("a", "TRUE"),
            ("b", "yes"),
            ("c", " on "),
            ("d", "1"),
            ("e", "no"),
            ("f", ""),
        ]);
        for on in ["a", "b", "c", "d"] {
            assert!(flag(&p, on), "{on}");
        }
        for off in ["e", "f", "absent"] {
            assert!(!flag(&p, off), "{off}");
        }
        assert_eq!(setting_or(&p, "f", "dflt"), "dflt");
        assert_eq!(setting_or(&p, "b", "dflt"), "yes");
        let e = require(&p, "root", "a folder").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("`root`") && e.message.contains("a folder"));
        assert_eq!(require(&p, "b", "x").unwrap(), "yes");
    }
}
