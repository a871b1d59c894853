//! `rehydra plugins directory`: the LDAP directories plugins may be granted
//! (`ldap:<name>`), and the account the host binds to each with.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use rehydra_api::plugins::{Directory, PasswordSource, Plugins};

use crate::args::Cli;
use crate::output::json;

/// `plugins directory`.
#[derive(Subcommand, Debug)]
pub enum DirectoryCommand {
    /// Add (or replace) a directory, then connect and bind to check it (LDAPS, or
    /// StartTLS; the server's certificate is always verified). Plugins granted
    /// `ldap:<name>` search and change it as this account; they never see the password.
    ///
    /// Bind with an account and its password (--bind and one --password-… option), or
    /// with --kerberos as the account Rehydra runs as (--bind then pins the principal).
    Add {
        /// Name plugins and grants use: `host` or `host:port`, e.g. dc1.contoso.local.
        name: String,
        /// Connect to this `host[:port]` instead of the name.
        #[arg(long)]
        address: Option<String>,
        /// StartTLS on port 389 instead of LDAPS on 636.
        #[arg(long)]
        starttls: bool,
        /// Bind with Kerberos (GSSAPI with the TLS channel binding) as the account
        /// Rehydra runs as, keeping no password: on Windows the signed-in account or the
        /// service's (LocalSystem is the computer account), on Linux the ticket in its
        /// cache (kinit; KRB5CCNAME). The name must be the DC's full host name, as in its
        /// service principal ldap/<host>; the certificate is checked against it.
        #[arg(long, conflicts_with_all = ["password_file", "password_env", "password_keychain"])]
        kerberos: bool,
        /// Account to bind as: `user@domain` or a DN. Give it only the rights the
        /// plugin needs (reading the directory; writing for restores). With --kerberos,
        /// the only principal to bind as (user@REALM), whatever else the cache holds.
        #[arg(long, required_unless_present = "kerberos")]
        bind: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
        /// PEM file of the CA certificates to trust for this directory (default: the
        /// system's roots), e.g. your enterprise CA.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Keep it without connecting first.
        #[arg(long)]
        no_check: bool,
    },
    /// Configured directories.
    List,
    /// Connect and bind to a configured directory; writes nothing.
    Check {
        /// Directory name.
        name: String,
    },
    /// Forget a directory.
    Remove {
        /// Directory name.
        name: String,
    },
}

/// Checks a new connection before it is kept, unless `no_check`: a failed check keeps
/// nothing (the configuration stays as it was) and says how to go on.
pub(crate) fn check_first<T>(
    no_check: bool,
    check: impl FnOnce() -> rehydra_api::Result<T>,
) -> Result<Option<T>> {
    if no_check {
        return Ok(None);
    }
    match check() {
        Ok(found) => Ok(Some(found)),
        Err(e) => bail!(
            "{}; nothing was kept (fix it, or add with --no-check)",
            e.message
        ),
    }
}

/// Says a connection was kept, and the grant (`<scheme>:<name>`) a plugin needs to use it.
pub(crate) fn kept(what: &str, name: &str, scheme: &str) {
    println!("{what} {name} kept; grant it with: rehydra plugins grant <plugin> {scheme}:{name}");
}

pub(crate) fn absolute(p: &PathBuf) -> Result<PathBuf> {
    Ok(std::path::absolute(p)?)
}

/// Where the password of a connection is kept: one of three places (checked by
/// [`PasswordArgs::source`], since a directory bound with Kerberos has none).
#[derive(Args, Debug)]
#[group(multiple = false)]
pub(crate) struct PasswordArgs {
    /// File holding the password (not readable by other users).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Environment variable holding the password (of the process that runs jobs).
    #[arg(long)]
    password_env: Option<String>,
    /// OS keychain entry `service/user` holding the password.
    #[arg(long)]
    password_keychain: Option<String>,
}

impl PasswordArgs {
    /// Where the password is kept.
    pub(crate) fn source(&self) -> Result<PasswordSource> {
        Ok(
            match (
                &self.password_file,
                &self.password_env,
                &self.password_keychain,
            ) {
                (Some(f), _, _) => PasswordSource::File(absolute(f)?),
                (_, Some(v), _) => PasswordSource::Env(v.clone()),
                (_, _, Some(k)) => match k.split_once('/') {
                    Some((service, user)) if !service.is_empty() && !user.is_empty() => {
                        PasswordSource::Keychain {
                            service: service.into(),
                            user: user.into(),
                        }
                    }
                    _ => bail!("--password-keychain takes `service/user`, not `{k}`"),
                },
                _ => bail!(
                    "say where the password is: --password-file, --password-env or --password-keychain"
                ),
            },
        )
    }
}

/// Run a `plugins directory` command.
pub fn run(cli: &Cli, p: &Plugins, cmd: &DirectoryCommand) -> Result<()> {
    match cmd {
        DirectoryCommand::Add {
            name,
            address,
            starttls,
            kerberos,
            bind,
            password,
            ca_file,
            no_check,
        } => {
            let password = if *kerberos {
                None
            } else {
                Some(password.source()?)
            };
            let dir = Directory {
                name: name.clone(),
                address: address.clone(),
                starttls: *starttls,
                kerberos: *kerberos,
                bind: bind.clone().unwrap_or_default(),
                password,
                ca_file: ca_file.as_ref().map(absolute).transpose()?,
            };
            let checked = check_first(*no_check, || p.check_new_directory(dir.clone()))?;
            let dir = p.set_directory(dir)?;
            if cli.json {
                json(&dir)?;
            } else {
                if let Some(found) = checked {
                    println!("{found}");
                }
                kept("directory", &dir.name, "ldap");
            }
        }
        DirectoryCommand::List => {
            let dirs = p.directories()?;
            if cli.json {
                json(&dirs)?;
            } else {
                for d in dirs {
                    let tls = if d.starttls { "StartTLS" } else { "LDAPS" };
                    let at = d.address.as_deref().unwrap_or(&d.name);
                    let who = if d.kerberos {
                        "with Kerberos as the account Rehydra runs as"
                    } else {
                        &format!("as {}", d.bind)
                    };
                    println!("{:<24} {tls} to {at} {who}", d.name);
                }
            }
        }
        DirectoryCommand::Check { name } => {
            let found = p.check_directory(name)?;
            if cli.json {
                json(&serde_json::json!({
                    "host": found.host,
                    "naming-context": found.naming_context,
                    "account": found.account,
                    "kerberos": found.kerberos,
                }))?;
            } else {
                println!("{found}");
            }
        }
        DirectoryCommand::Remove { name } => {
            if !p.remove_directory(name)? {
                bail!("no directory named {name}");
            }
        }
    }
    Ok(())
}
