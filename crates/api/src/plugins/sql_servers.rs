//! SQL Server instances the admin configures for `sql:<server>` grants: where the
//! instance is, the login the host signs in with and where its password is kept, the CA
//! to trust. The catalog holds the spec (never the password); the host asks for the
//! access of an instance each time a plugin runs a batch on it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::directories::{PasswordSource, read_small};
use super::*;

/// The kind of account the host signs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SqlLoginKind {
    /// A SQL Server login.
    #[default]
    Sql,
    /// A Windows account (`DOMAIN\user`), NTLM.
    Windows,
}

/// A SQL Server instance plugins may be granted (`sql:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SqlServer {
    /// The name plugins and grants use: `host` or `host:port` (lower case).
    pub name: String,
    /// `host:port` to connect to, when not the name itself (default port 1433).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The kind of account.
    #[serde(default)]
    pub kind: SqlLoginKind,
    /// The login (`sa`-like name, or `DOMAIN\user`).
    pub login: String,
    /// Where its password is kept.
    pub password: PasswordSource,
    /// PEM file of the CA certificates to trust for this instance (default: the
    /// system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl SqlServer {
    /// Check the fields (the name as a grant would be).
    ///
    /// # Errors
    /// A name or address that is not `host[:port]`, an empty login.
    pub fn validate(&mut self) -> Result<()> {
        let grant = host::Grant::parse(&format!("sql:{}", self.name)).map_err(plugin_err)?;
        self.name = grant.scope;
        if let Some(a) = &self.address {
            host::Grant::parse(&format!("sql:{a}")).map_err(plugin_err)?;
        }
        let bad_windows = self.kind == SqlLoginKind::Windows && !self.login.contains('\\');
        if self.login.trim().is_empty() || bad_windows {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "SQL Server `{}` needs a login to sign in with (--login; a Windows account as DOMAIN\\user)",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// The access the host signs in with: the password and CA file read now.
    fn access(&self) -> std::result::Result<host::SqlAccess, String> {
        let password = rehydra_azure::read_secret(&self.password.source())
            .map_err(|e| format!("the password of SQL Server `{}`: {e}", self.name))?;
        let ca_pem = match &self.ca_file {
            Some(p) => Some(read_small(p)?),
            None => None,
        };
        let a = self.address.as_deref().unwrap_or(&self.name);
        Ok(host::SqlAccess {
            address: if a.contains(':') {
                a.to_string()
            } else {
                format!("{a}:1433")
            },
            login: match self.kind {
                SqlLoginKind::Sql => host::SqlLogin::Sql(self.login.clone()),
                SqlLoginKind::Windows => host::SqlLogin::Windows(self.login.clone()),
            },
            password,
            ca_pem,
        })
    }
}

/// The configured instances, as the host asks for them.
pub(super) struct Configured(pub(super) Vec<SqlServer>);

impl host::SqlServers for Configured {
    fn sql_server(&self, server: &str) -> std::result::Result<Option<host::SqlAccess>, String> {
        self.0
            .iter()
            .find(|d| d.name == server)
            .map(SqlServer::access)
            .transpose()
    }
}

impl Plugins {
    /// Add or replace a SQL Server instance.
    ///
    /// # Errors
    /// Invalid fields; catalog failure.
    pub fn set_sql_server(&self, mut s: SqlServer) -> Result<SqlServer> {
        s.validate()?;
        self.set_spec(rehydra_catalog::Specs::SqlServers, &s.name, &s)?;
        Ok(s)
    }

    /// Forget an instance; returns whether it was configured.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn remove_sql_server(&self, name: &str) -> Result<bool> {
        self.remove_spec(
            rehydra_catalog::Specs::SqlServers,
            &name.to_ascii_lowercase(),
        )
    }

    /// Connect to `name` as configured and sign in: its server name and version, so the
    /// admin sees the configuration works. Writes nothing.
    ///
    /// # Errors
    /// Not configured; the password or CA file cannot be read; cannot connect, the
    /// certificate is not trusted, or the login is refused.
    pub fn check_sql_server(&self, name: &str) -> Result<(String, String)> {
        let name = name.to_ascii_lowercase();
        let s = self
            .sql_servers()?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidInput,
                    format!("no SQL Server named {name} (rehydra plugins sql-server list)"),
                )
            })?;
        Self::check_sql(&s)
    }

    /// Connect and sign in as `s` says, before it is kept (see [`Self::check_sql_server`]).
    ///
    /// # Errors
    /// As [`Self::check_sql_server`], and invalid fields.
    pub fn check_new_sql_server(&self, mut s: SqlServer) -> Result<(String, String)> {
        s.validate()?;
        Self::check_sql(&s)
    }

    fn check_sql(s: &SqlServer) -> Result<(String, String)> {
        let access = s
            .access()
            .map_err(|e| ApiError::new(Code::InvalidInput, e))?;
        host::check_sql_server(&s.name, &access)
            .map_err(|e| ApiError::new(Code::Io, format!("SQL Server `{}`: {e}", s.name)))
    }

    /// Configured instances.
    ///
    /// # Errors
    /// Catalog failure; a stored instance that no longer parses.
    pub fn sql_servers(&self) -> Result<Vec<SqlServer>> {
        self.specs(
            rehydra_catalog::Specs::SqlServers,
            "SQL Server",
            "rehydra plugins sql-server add",
        )
    }
}
