//! SQL Server instances the admin configures for `sql:<server>` grants: where the
//! instance is, the login the host signs in with and where its password is kept (or
//! none, signed in as the account Rehydra runs as), the CA to trust. The catalog holds
//! the spec (never the password); the host asks for the access of an instance each time
//! a plugin runs a batch on it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::directories::{PasswordSource, principal_host, read_small};
use super::*;

/// The kind of account the host signs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SqlLoginKind {
    /// A SQL Server login.
    #[default]
    Sql,
    /// A Windows account (`DOMAIN\user`) and its password: NTLM from Windows, Kerberos
    /// elsewhere (a ticket the password gets from the account's domain, kept in memory).
    Windows,
    /// The account Rehydra runs as, no password kept: Kerberos on Linux (its ticket
    /// cache, or a client keytab), Windows' single sign-on on Windows.
    Integrated,
    /// The admin's Azure sign-in (Microsoft Entra ID), no password kept: an access token
    /// for the instance's audience in each login.
    Entra,
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
    /// The login (`sa`-like name, or `DOMAIN\user`); when integrated, empty or the only
    /// Windows login (`DOMAIN\user`) the instance may sign the account in as.
    #[serde(default)]
    pub login: String,
    /// Where its password is kept (none when integrated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
    /// PEM file of the CA certificates to trust for this instance (default: the
    /// system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A command target (`rehydra plugins target add`), or `local` for this machine's
    /// PowerShell 7, that runs the batches with PowerShell's SQL client, signed in as the
    /// account commands run as there (integrated only); none: the host connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// With [`SqlLoginKind::Entra`], the Azure SQL audience its token is for (one of
    /// `azure::SQL_AUDIENCES`; none: the public cloud's, `https://database.windows.net/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

impl SqlServer {
    /// Check the fields (the name as a grant would be).
    ///
    /// # Errors
    /// A name or address that is not `host[:port]`; an empty login or no password, or
    /// when integrated a password, a login that is not `DOMAIN\user`, or a name that is
    /// not a full host name (so with a Windows account on a host that is not Windows).
    pub fn validate(&mut self) -> Result<()> {
        let grant = host::Grant::parse(&format!("sql:{}", self.name)).map_err(plugin_err)?;
        self.name = grant.scope;
        if let Some(a) = &self.address {
            host::Grant::parse(&format!("sql:{a}")).map_err(plugin_err)?;
        }
        let bad = |m: String| Err(ApiError::new(Code::InvalidInput, m));
        let name = &self.name;
        if let Some(via) = &mut self.via {
            *via = via.trim().to_string();
            if via.eq_ignore_ascii_case("local") {
                *via = "local".into();
            }
            if self.kind != SqlLoginKind::Integrated || self.password.is_some() {
                return bad(format!(
                    "SQL Server `{name}` through `{via}` is signed in to as the account commands run as there: give --integrated, and no login or password (a password is never put on a command line)"
                ));
            }
            if !self.login.trim().is_empty() || self.ca_file.is_some() || self.address.is_some() {
                return bad(format!(
                    "SQL Server `{name}` through `{via}`: --only-as, --ca-file and --address do not apply (PowerShell there connects to the name, signs in as its account and checks the certificate against the name with that machine's trust)"
                ));
            }
            return Ok(());
        }
        if let Some(a) = &mut self.audience {
            *a = a.trim().to_string();
            if self.kind != SqlLoginKind::Entra {
                return bad(format!(
                    "SQL Server `{name}`: an audience is for a sign-in with your Azure sign-in (--entra) only"
                ));
            }
            if !crate::azure::SQL_AUDIENCES.contains(&a.as_str()) {
                return bad(format!(
                    "SQL Server `{name}`: `{a}` is not an audience of Azure SQL; give one of {} (a token for ARM, Key Vault or a cluster is never sent to a SQL Server)",
                    crate::azure::SQL_AUDIENCES.join(", ")
                ));
            }
        }
        if self.kind == SqlLoginKind::Entra {
            if self.password.is_some() || !self.login.trim().is_empty() {
                return bad(format!(
                    "SQL Server `{name}` is signed in to with your Azure sign-in (Microsoft Entra ID), which keeps no login or password here: give neither with it"
                ));
            }
            return Ok(());
        }
        if self.kind == SqlLoginKind::Integrated {
            if self.password.is_some() {
                return bad(format!(
                    "SQL Server `{name}` is signed in to as the account Rehydra runs as, which keeps no password: give none with it"
                ));
            }
            self.login = self.login.trim().to_string();
            let only = &self.login;
            let windows_login = only.split_once('\\').is_some_and(|(d, u)| {
                !d.trim().is_empty() && !u.trim().is_empty() && !u.contains('\\')
            });
            if !only.is_empty() && !windows_login {
                return bad(format!(
                    "SQL Server `{name}`: the only login to sign in as is a Windows login, DOMAIN\\user, not `{only}`"
                ));
            }
            if let Err(host) = principal_host(name) {
                return bad(format!(
                    "SQL Server `{name}`: signing in as the account Rehydra runs as needs the instance's full host name (e.g. sql01.contoso.local[:port], as in its service principal MSSQLSvc/<host>:<port>), not `{host}`; connect elsewhere with --address"
                ));
            }
            return Ok(());
        }
        let bad_windows = self.kind == SqlLoginKind::Windows
            && rehydra_plugin_host::windows_account(&self.login).is_none();
        if self.login.trim().is_empty() || bad_windows {
            return bad(format!(
                "SQL Server `{name}` needs a login to sign in with (--login; a Windows account as DOMAIN\\user), or --integrated to sign in as the account Rehydra runs as"
            ));
        }
        if self.password.is_none() {
            return bad(format!(
                "SQL Server `{name}` needs where the password of `{}` is (--password-file, --password-env or --password-keychain)",
                self.login
            ));
        }
        // a Windows account from a host that is not Windows signs in by Kerberos: the
        // service principal is made of the name
        if cfg!(unix)
            && self.kind == SqlLoginKind::Windows
            && let Err(host) = principal_host(name)
        {
            return bad(format!(
                "SQL Server `{name}`: a Windows account signs in from here by Kerberos, which needs the instance's full host name (e.g. sql01.contoso.local[:port], as in its service principal MSSQLSvc/<host>:<port>), not `{host}`; connect elsewhere with --address"
            ));
        }
        Ok(())
    }

    /// The access the host signs in with: the password (or the Entra token, from
    /// `tokens`) and CA file read now, the command target it goes through found among
    /// `targets`.
    fn access(
        &self,
        targets: &[host::Target],
        tokens: Option<&crate::azure::SqlTokens>,
    ) -> std::result::Result<host::SqlAccess, String> {
        let via = match self.via.as_deref() {
            None => None,
            Some("local") => Some(host::SqlVia::Local),
            Some(name) => Some(host::SqlVia::Target(
                // (exactly: `known_via` kept the target's own spelling)
                targets.iter().find(|t| t.name == name).cloned().ok_or_else(|| {
                    format!(
                        "SQL Server `{}` goes through command target `{name}`, which is not configured (rehydra plugins target add {name} --ssh <user@host>)",
                        self.name
                    )
                })?,
            )),
        };
        let password = match (&self.password, self.kind) {
            (_, SqlLoginKind::Integrated) => Default::default(),
            (_, SqlLoginKind::Entra) => tokens
                .ok_or_else(|| format!("SQL Server `{}`: no Azure sign-in is set up", self.name))?
                .token(
                    &self.name,
                    self.audience
                        .as_deref()
                        .unwrap_or(crate::azure::SQL_AUDIENCES[0]),
                )?,
            (Some(p), _) => rehydra_azure::read_secret(&p.source())
                .map_err(|e| format!("the password of SQL Server `{}`: {e}", self.name))?,
            (None, _) => {
                return Err(format!(
                    "SQL Server `{}` has no password: add it again (rehydra plugins sql-server add)",
                    self.name
                ));
            }
        };
        let ca_pem = match &self.ca_file {
            Some(p) => Some(read_small(p)?),
            None => None,
        };
        // an address without a port has the name's (1433 when neither has one)
        let port = self.name.rsplit_once(':').map_or("1433", |(_, p)| p);
        let a = self.address.as_deref().unwrap_or(&self.name);
        Ok(host::SqlAccess {
            address: if a.contains(':') {
                a.to_string()
            } else {
                format!("{a}:{port}")
            },
            login: match self.kind {
                SqlLoginKind::Sql => host::SqlLogin::Sql(self.login.clone()),
                SqlLoginKind::Windows => host::SqlLogin::Windows(self.login.clone()),
                SqlLoginKind::Integrated => host::SqlLogin::Integrated(
                    Some(self.login.trim().to_string()).filter(|l| !l.is_empty()),
                ),
                SqlLoginKind::Entra => host::SqlLogin::Entra,
            },
            password,
            ca_pem,
            via,
        })
    }
}

/// The configured instances, the command targets some go through, and the Azure
/// sign-in when one signs in with it, as the host asks for them.
pub(super) struct Configured {
    servers: Vec<SqlServer>,
    targets: Vec<host::Target>,
    /// Set up only when an instance signs in with it; a sign-in that cannot be set up
    /// fails only the batches of those instances.
    tokens: Option<std::result::Result<crate::azure::SqlTokens, String>>,
}

impl Configured {
    /// `servers` with the `targets` configured, and the Azure sign-in of `ctx` when an
    /// instance signs in with it.
    pub(super) fn new(ctx: &Context, servers: Vec<SqlServer>, targets: Vec<host::Target>) -> Self {
        let tokens = servers
            .iter()
            .any(|s| s.kind == SqlLoginKind::Entra)
            .then(|| crate::azure::SqlTokens::new(ctx).map_err(|e| e.message));
        Self {
            servers,
            targets,
            tokens,
        }
    }
}

impl host::SqlServers for Configured {
    fn sql_server(&self, server: &str) -> std::result::Result<Option<host::SqlAccess>, String> {
        self.servers
            .iter()
            .find(|d| d.name == server)
            .map(|d| {
                // (a sign-in that could not be set up fails only the instances using it)
                let tokens = match &self.tokens {
                    Some(Err(e)) if d.kind == SqlLoginKind::Entra => return Err(e.clone()),
                    Some(Ok(t)) => Some(t),
                    _ => None,
                };
                d.access(&self.targets, tokens)
            })
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
        self.known_via(&mut s)?;
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
    pub fn check_sql_server(&self, name: &str) -> Result<host::SqlSignedIn> {
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
        self.check_sql(&s)
    }

    /// Connect and sign in as `s` says, before it is kept (see [`Self::check_sql_server`]).
    ///
    /// # Errors
    /// As [`Self::check_sql_server`], and invalid fields.
    pub fn check_new_sql_server(&self, mut s: SqlServer) -> Result<host::SqlSignedIn> {
        s.validate()?;
        self.known_via(&mut s)?;
        self.check_sql(&s)
    }

    fn check_sql(&self, s: &SqlServer) -> Result<host::SqlSignedIn> {
        // (the targets are read only for an instance that goes through one)
        let targets = match s.via {
            Some(_) => self.targets()?,
            None => Vec::new(),
        };
        let tokens = match s.kind {
            SqlLoginKind::Entra => Some(crate::azure::SqlTokens::new(&self.ctx)?),
            _ => None,
        };
        let access = s
            .access(&targets, tokens.as_ref())
            .map_err(|e| ApiError::new(Code::InvalidInput, e))?;
        host::check_sql_server(&s.name, &access)
            .map_err(|e| ApiError::new(Code::Io, format!("SQL Server `{}`: {e}", s.name)))
    }

    /// `s`'s command target is `local` or configured (named as it is, whatever the case
    /// it was given in).
    fn known_via(&self, s: &mut SqlServer) -> Result<()> {
        let Some(t) = s.via.clone().filter(|t| t != "local") else {
            return Ok(());
        };
        match self
            .targets()?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(&t))
        {
            Some(c) => {
                s.via = Some(c.name);
                Ok(())
            }
            None => Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "no command target named {t} (rehydra plugins target add {t} --ssh <user@host>, or --via local for this machine's PowerShell 7)"
                ),
            )),
        }
    }

    /// The instances that go through command target `target`.
    pub(super) fn sql_servers_via(&self, target: &str) -> Result<Vec<String>> {
        Ok(self
            .sql_servers()?
            .into_iter()
            .filter(|s| {
                s.via
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(target))
            })
            .map(|s| s.name)
            .collect())
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
