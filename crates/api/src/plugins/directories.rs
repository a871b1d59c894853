//! LDAP directories the admin configures for `ldap:<server>` grants: where the server
//! is, how to secure the connection, the account to bind as and where its password is
//! kept. The catalog holds the spec (never the password); the host asks for the access
//! of a directory when a plugin first uses it.

use std::path::PathBuf;

use rehydra_azure::SecretSource;
use serde::{Deserialize, Serialize};

use super::*;

/// Largest CA file read.
const CA_FILE_MAX: u64 = 1 << 20;

/// Where a directory's bind password is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum PasswordSource {
    /// A file (on Unix not readable by other users).
    File(PathBuf),
    /// An environment variable of the process.
    Env(String),
    /// The OS keychain entry `service`/`user`.
    Keychain {
        /// Service name.
        service: String,
        /// User name.
        user: String,
    },
}

impl PasswordSource {
    pub(super) fn source(&self) -> SecretSource {
        match self {
            Self::File(p) => SecretSource::File(p.clone()),
            Self::Env(v) => SecretSource::Env(v.clone()),
            Self::Keychain { service, user } => SecretSource::Keyring {
                service: service.clone(),
                user: user.clone(),
            },
        }
    }
}

/// The host of a `host[:port]` connection name, as a Kerberos service principal names
/// it; `Err` with it when it is no full host name (an address, a short or dotted-off
/// name), which no principal is registered for.
pub(super) fn principal_host(name: &str) -> std::result::Result<&str, &str> {
    let host = name.rsplit_once(':').map_or(name, |(h, _)| h);
    let ip = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok();
    if ip || !host.contains('.') || host.ends_with('.') {
        Err(host)
    } else {
        Ok(host)
    }
}

/// A directory plugins may be granted (`ldap:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Directory {
    /// The name plugins and grants use: `host` or `host:port` (lower case).
    pub name: String,
    /// `host:port` to connect to, when not the name itself (default port 636 for LDAPS,
    /// 389 for StartTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// StartTLS on the LDAP port instead of LDAPS.
    #[serde(default)]
    pub starttls: bool,
    /// Kerberos (SASL GSSAPI) as the account this process runs as, instead of a password:
    /// the name must then be the DC's host name, as in its service principal
    /// `ldap/<name>`, and the certificate is checked against it.
    #[serde(default)]
    pub kerberos: bool,
    /// The account to bind as: a DN or `user@domain`; with Kerberos the only principal
    /// (`user@REALM`) to bind as, or empty for this process's default one.
    #[serde(default)]
    pub bind: String,
    /// Where its password is kept (none with Kerberos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
    /// PEM file of the CA certificates to trust for this directory (default: the
    /// system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Directory {
    /// Check the fields (the name as a grant would be).
    ///
    /// # Errors
    /// A name or address that is not `host[:port]`, an empty bind account.
    pub fn validate(&mut self) -> Result<()> {
        let grant = host::Grant::parse(&format!("ldap:{}", self.name)).map_err(plugin_err)?;
        self.name = grant.scope;
        if let Some(a) = &self.address {
            host::Grant::parse(&format!("ldap:{a}")).map_err(plugin_err)?;
        }
        let bad = |m: String| Err(ApiError::new(Code::InvalidInput, m));
        let name = &self.name;
        if self.kerberos {
            if self.password.is_some() {
                return bad(format!(
                    "directory `{name}` binds with Kerberos, which keeps no password: give none with it"
                ));
            }
            if let Err(host) = principal_host(name) {
                return bad(format!(
                    "directory `{name}`: Kerberos needs the DC's full host name (e.g. dc1.contoso.local, as in its service principal ldap/<host>), not `{host}`; connect elsewhere with --address"
                ));
            }
        } else if self.bind.trim().is_empty() || self.password.is_none() {
            return bad(format!(
                "directory `{name}` needs an account to bind as and where its password is (--bind with --password-file, --password-env or --password-keychain), or --kerberos to keep no password"
            ));
        }
        Ok(())
    }

    /// The host of the directory's service principal: its name without the port.
    fn spn_host(&self) -> &str {
        principal_host(&self.name).unwrap_or_else(|h| h)
    }

    /// `host:port` to connect to.
    fn address(&self) -> String {
        let a = self.address.as_deref().unwrap_or(&self.name);
        if a.contains(':') {
            a.to_string()
        } else {
            format!("{a}:{}", if self.starttls { 389 } else { 636 })
        }
    }

    /// The access the host binds with: the password and CA file read now.
    fn access(&self) -> std::result::Result<host::DirectoryAccess, String> {
        let bind = match (self.kerberos, &self.password) {
            (true, _) => host::DirectoryBind::Kerberos {
                host: self.spn_host().to_string(),
                principal: Some(self.bind.trim().to_string()).filter(|p| !p.is_empty()),
            },
            (false, Some(source)) => host::DirectoryBind::Password {
                account: self.bind.clone(),
                password: rehydra_azure::read_secret(&source.source())
                    .map_err(|e| format!("the password of directory `{}`: {e}", self.name))?,
            },
            (false, None) => {
                return Err(format!(
                    "directory `{}` has no password and no Kerberos: add it again (rehydra plugins directory add)",
                    self.name
                ));
            }
        };
        let ca_pem = match &self.ca_file {
            Some(p) => Some(read_small(p)?),
            None => None,
        };
        Ok(host::DirectoryAccess {
            address: self.address(),
            starttls: self.starttls,
            bind,
            ca_pem,
        })
    }
}

pub(super) fn read_small(p: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("CA file {}: {e}", p.display()))?;
    if !meta.is_file() || meta.len() > CA_FILE_MAX {
        return Err(format!(
            "CA file {} is not a file of at most 1 MiB",
            p.display()
        ));
    }
    #[cfg(unix)]
    {
        // whoever may change it may put their own CA there and read the bind password
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o002 != 0 {
            return Err(format!(
                "CA file {} may be changed by every user; run chmod o-w on it",
                p.display()
            ));
        }
    }
    std::fs::read(p).map_err(|e| format!("CA file {}: {e}", p.display()))
}

/// The configured directories, as the host asks for them.
pub(super) struct Configured(pub(super) Vec<Directory>);

impl host::Directories for Configured {
    fn directory(
        &self,
        server: &str,
    ) -> std::result::Result<Option<host::DirectoryAccess>, String> {
        self.0
            .iter()
            .find(|d| d.name == server)
            .map(Directory::access)
            .transpose()
    }
}

impl Plugins {
    /// Add or replace a directory.
    ///
    /// # Errors
    /// Invalid fields; catalog failure.
    pub fn set_directory(&self, mut dir: Directory) -> Result<Directory> {
        dir.validate()?;
        self.set_spec(rehydra_catalog::Specs::Directories, &dir.name, &dir)?;
        Ok(dir)
    }

    /// Forget a directory; returns whether it was configured.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn remove_directory(&self, name: &str) -> Result<bool> {
        self.remove_spec(
            rehydra_catalog::Specs::Directories,
            &name.to_ascii_lowercase(),
        )
    }

    /// Connect to `name` as configured and bind: its DNS host name, default naming
    /// context and whom it bound us as, so the admin sees the configuration works.
    /// Writes nothing.
    ///
    /// # Errors
    /// Not configured; the password or CA file cannot be read; cannot connect, the
    /// certificate is not trusted, or the bind is refused.
    pub fn check_directory(&self, name: &str) -> Result<host::DirectoryFound> {
        let name = name.to_ascii_lowercase();
        let dir = self
            .directories()?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidInput,
                    format!("no directory named {name} (rehydra plugins directory list)"),
                )
            })?;
        Self::check(&dir)
    }

    /// Connect and bind as `dir` says, before it is kept (see [`Self::check_directory`]).
    ///
    /// # Errors
    /// As [`Self::check_directory`], and invalid fields.
    pub fn check_new_directory(&self, mut dir: Directory) -> Result<host::DirectoryFound> {
        dir.validate()?;
        Self::check(&dir)
    }

    fn check(dir: &Directory) -> Result<host::DirectoryFound> {
        let name = dir.name.clone();
        let access = dir
            .access()
            .map_err(|e| ApiError::new(Code::InvalidInput, e))?;
        host::check_directory(&name, &access)
            .map_err(|e| ApiError::new(Code::Io, format!("directory `{name}`: {e}")))
    }

    /// Configured directories.
    ///
    /// # Errors
    /// Catalog failure; a stored directory that no longer parses.
    pub fn directories(&self) -> Result<Vec<Directory>> {
        self.specs(
            rehydra_catalog::Specs::Directories,
            "directory",
            "rehydra plugins directory add",
        )
    }
}
