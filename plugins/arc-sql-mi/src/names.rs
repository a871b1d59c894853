//! Names the plugin takes from answers, settings and restore points, checked before they
//! reach a URL, a kubectl argument, a file name or a T-SQL parameter.
//!
//! Asset ids: an instance is `<namespace>/<instance>`, a database
//! `<namespace>/<instance>/<database>`. Namespaces and instance names are Kubernetes
//! names (RFC 1123 labels: lower-case letters, digits and `-`, at most 63), so they hold
//! no `/`; everything after the second `/` is the database's name.

use rehydra_plugin_sdk::prelude::*;

/// Longest database name SQL Server allows (`sysname`).
const DB_NAME_MAX: usize = 128;

pub use rehydra_plugin_sdk::kube::{is_label, label};
pub use rehydra_plugin_sdk::rest::shown;

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

/// A database name this plugin will hand to T-SQL (as a parameter), to a restore task or
/// to a file name: 1 to 128 characters, no control characters, no `$(`.
///
/// # Errors
/// `invalid-input` naming the value.
pub fn database<'a>(what: &str, s: &'a str) -> Result<&'a str> {
    if s.is_empty()
        || s.chars().count() > DB_NAME_MAX
        || s.chars().any(char::is_control)
        || s.contains("$(")
        || s.trim() != s
    {
        return Err(invalid(format!(
            "{what} `{}` is not a database name this plugin accepts (1 to 128 characters, no control characters, no `$(`, no leading or trailing space)",
            shown(s, 80)
        )));
    }
    Ok(s)
}

/// A database of an instance, as its asset id names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbRef {
    pub namespace: String,
    pub instance: String,
    pub database: String,
}

impl DbRef {
    /// `<namespace>/<instance>`: the instance's key in `servers=` and its asset id.
    pub fn instance_key(&self) -> String {
        format!("{}/{}", self.namespace, self.instance)
    }

    /// The asset id.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.instance, self.database)
    }
}

/// Parse a database asset id `<namespace>/<instance>/<database>`.
///
/// # Errors
/// `invalid-input`: not three parts, or a part that is not a valid name.
pub fn parse_db(id: &str) -> Result<DbRef> {
    let mut parts = id.splitn(3, '/');
    let (Some(ns), Some(inst), Some(db)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(format!(
            "`{}` is not a database asset (<namespace>/<instance>/<database>; discover lists them)",
            shown(id, 120)
        )));
    };
    Ok(DbRef {
        namespace: label("namespace", ns)?.to_string(),
        instance: label("instance", inst)?.to_string(),
        database: database("database", db)?.to_string(),
    })
}

/// An instance as `instance=` names it: `<namespace>/<instance>`, both Kubernetes names.
///
/// # Errors
/// `invalid-input` naming the value.
pub fn instance_ref(s: &str) -> Result<(String, String)> {
    let (ns, inst) = s.split_once('/').ok_or_else(|| {
        invalid(format!(
            "instance `{}` is not <namespace>/<instance>, e.g. arc/sqlmi2",
            shown(s, 120)
        ))
    })?;
    Ok((
        label("namespace", ns)?.to_string(),
        label("instance", inst)?.to_string(),
    ))
}

/// `servers=<namespace>/<instance>=<sql name>,…`: which configured SQL endpoint reaches
/// each instance.
///
/// # Errors
/// `invalid-input` for an entry that is not `<namespace>/<instance>=<name>`.
pub fn servers(setting: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            invalid(format!(
                "servers entry `{}` is not <namespace>/<instance>=<sql endpoint>, e.g. arc/sqlmi1=sqlmi1.contoso.local:31433",
                shown(entry, 120)
            ))
        };
        let (key, name) = entry.split_once('=').ok_or_else(bad)?;
        let (ns, inst) = key.trim().split_once('/').ok_or_else(bad)?;
        let name = name.trim();
        if !is_label(ns)
            || !is_label(inst)
            || name.is_empty()
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(bad());
        }
        out.push((format!("{ns}/{inst}"), name.to_ascii_lowercase()));
    }
    Ok(out)
}

/// The SQL endpoint configured for `instance_key`, if any.
pub fn server_of<'a>(servers: &'a [(String, String)], instance_key: &str) -> Option<&'a str> {
    servers
        .iter()
        .find(|(k, _)| k == instance_key)
        .map(|(_, v)| v.as_str())
}

/// A comma-separated list, trimmed, without empty entries.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_assets_have_three_parts_and_the_database_may_hold_slashes() {
        let d = parse_db("arc/sqlmi1/sales/2026").unwrap();
        assert_eq!(
            (
                d.namespace.as_str(),
                d.instance.as_str(),
                d.database.as_str()
            ),
            ("arc", "sqlmi1", "sales/2026")
        );
        assert_eq!(d.id(), "arc/sqlmi1/sales/2026");
        for bad in [
            "arc/sqlmi1",
            "../sqlmi1/db",
            "arc/SQLMI/db",
            "arc/sqlmi1/",
            "arc/sqlmi1/db\n:!! calc",
            "arc/sqlmi1/$(rm)",
            "arc/sqlmi1/ db",
        ] {
            assert_eq!(
                parse_db(bad).unwrap_err().code,
                ErrorCode::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn servers_map_instances_to_endpoints() {
        let s = servers(" arc/sqlmi1=SQLMI1.contoso.local:31433, test/mi2=mi2 ").unwrap();
        assert_eq!(
            server_of(&s, "arc/sqlmi1"),
            Some("sqlmi1.contoso.local:31433")
        );
        assert_eq!(server_of(&s, "test/mi2"), Some("mi2"));
        assert_eq!(server_of(&s, "arc/other"), None);
        for bad in ["arc=x", "arc/sqlmi1", "arc/sqlmi1=", "ARC/x=y", "arc/x=a b"] {
            assert!(servers(bad).is_err(), "{bad}");
        }
    }
}
