//! `rehydra plugins sql-server`: the SQL Server instances plugins may be granted
//! (`sql:<name>`), and the login the host signs in to each with.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use rehydra_api::plugins::{Plugins, SqlLoginKind, SqlServer};

use crate::args::Cli;
use crate::directory::{PasswordArgs, absolute, check_first, kept};
use crate::output::json;

/// `plugins sql-server`.
#[derive(Subcommand, Debug)]
pub enum SqlServerCommand {
    /// Add (or replace) an instance, then connect and sign in to check it (TDS with TLS
    /// for the whole session; the instance's certificate is always verified). Plugins
    /// granted `sql:<name>` run T-SQL there as this login; they never see the password.
    ///
    /// Sign in with a login and its password (--login or --windows-login, and one
    /// --password-… option), with --integrated as the account Rehydra runs as, or with
    /// --entra as your Azure sign-in.
    Add {
        /// Name plugins and grants use: `host` or `host:port`, e.g. sql01.contoso.local.
        name: String,
        /// Connect to this `host[:port]` instead of the name (default port 1433).
        #[arg(long)]
        address: Option<String>,
        /// SQL login to sign in with. Give it only what the plugin needs: `db_backupoperator`
        /// and `VIEW SERVER STATE` to back up; `dbcreator` to restore.
        #[arg(long, group = "account", required = true)]
        login: Option<String>,
        /// Windows account (`DOMAIN\user`) to sign in with: over NTLM when Rehydra runs on
        /// Windows; elsewhere by Kerberos, the password getting the account a ticket from
        /// its domain's KDC (krb5.conf's default realm, or DOMAIN when it is the realm's
        /// full name), kept in memory only, for the service principal
        /// MSSQLSvc/<host>:<port> of the name, which must then be the instance's full host
        /// name.
        #[arg(long, group = "account")]
        windows_login: Option<String>,
        /// Sign in as the account Rehydra runs as, keeping no password: on Linux with
        /// Kerberos (the ticket in its cache, from kinit; for the service, a client keytab
        /// named by KRB5_CLIENT_KTNAME), asking for the service principal
        /// MSSQLSvc/<host>:<port> of the name; on Windows through SSPI's NTLM package (the
        /// signed-in account, or the service's). The name must be the instance's full host
        /// name; the certificate is checked against it. The check says which login the
        /// instance took Rehydra for: plugins granted it get that login's rights.
        #[arg(long, group = "account", conflicts_with_all = ["password_file", "password_env", "password_keychain"])]
        integrated: bool,
        /// Sign in with your Azure sign-in (Microsoft Entra ID; `rehydra azure`), keeping
        /// no password: each connection sends an access token for Azure SQL's audience
        /// (https://database.windows.net/, or --audience) in the login. The instance must
        /// accept Entra logins (Azure Arc-enabled SQL Server 2022 and later, SQL Managed
        /// Instance) and have a login for that identity; the certificate is checked
        /// against the address. Such a token is good for every Azure SQL database the
        /// identity may reach: give it only to instances you trust as much.
        #[arg(long, group = "account", conflicts_with_all = ["password_file", "password_env", "password_keychain", "only_as"])]
        entra: bool,
        /// With --entra, the Azure SQL audience of the instance's cloud when not the public
        /// one: https://database.usgovcloudapi.net/.default or
        /// https://database.chinacloudapi.cn/.default (nothing else: a token for another
        /// service is never sent to a SQL Server).
        #[arg(long, value_name = "SCOPE", requires = "entra")]
        audience: Option<String>,
        /// With --integrated, the only Windows login (DOMAIN\user) the instance may sign
        /// Rehydra in as: checked (SUSER_SNAME()) before anything else is sent, so a
        /// wrong ticket in the account's cache is refused instead of used.
        #[arg(long, value_name = "DOMAIN\\USER", requires = "integrated")]
        only_as: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
        /// PEM file of CA certificates to trust for this instance as well as the system's
        /// roots, e.g. your enterprise CA.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Run the batches on this command target (`rehydra plugins target add`), or
        /// `local` for this machine's PowerShell 7, with PowerShell's SQL client
        /// (System.Data.SqlClient), connecting to the name and signed in as the account
        /// commands run as there (needs --integrated; nothing secret is kept or sent;
        /// TLS, the certificate checked against the name by that machine's trust). For
        /// an instance on the target's own machine: an SSH session signed in with a key
        /// has no network credentials on Windows, so an instance elsewhere refuses it.
        /// No Attention stops a batch given up on this way.
        #[arg(long, value_name = "TARGET", requires = "integrated", conflicts_with_all = ["only_as", "ca_file", "address"])]
        via: Option<String>,
        /// Keep it without connecting first.
        #[arg(long)]
        no_check: bool,
    },
    /// Configured instances.
    List,
    /// Connect and sign in to a configured instance; writes nothing.
    Check {
        /// Instance name.
        name: String,
    },
    /// Forget an instance.
    Remove {
        /// Instance name.
        name: String,
    },
}

/// Who signs in to `s`, in words.
fn who(s: &SqlServer) -> String {
    match s.kind {
        SqlLoginKind::Integrated if s.via.is_some() => "the account commands run as there".into(),
        SqlLoginKind::Integrated if s.login.is_empty() => "the account Rehydra runs as".into(),
        SqlLoginKind::Integrated => format!("the account Rehydra runs as, only as {}", s.login),
        SqlLoginKind::Entra => "your Azure sign-in (Microsoft Entra ID)".into(),
        SqlLoginKind::Windows | SqlLoginKind::Sql => s.login.clone(),
    }
}

/// Run a `plugins sql-server` command.
pub fn run(cli: &Cli, p: &Plugins, cmd: &SqlServerCommand) -> Result<()> {
    match cmd {
        SqlServerCommand::Add {
            name,
            address,
            login,
            windows_login,
            integrated,
            entra,
            audience,
            only_as,
            password,
            ca_file,
            via,
            no_check,
        } => {
            let (kind, login) = match (login, windows_login) {
                (Some(l), _) => (SqlLoginKind::Sql, l.clone()),
                (_, Some(w)) => (SqlLoginKind::Windows, w.clone()),
                _ if *integrated => (
                    SqlLoginKind::Integrated,
                    only_as.clone().unwrap_or_default(),
                ),
                _ if *entra => (SqlLoginKind::Entra, String::new()),
                _ => bail!("say who signs in: --login, --windows-login, --integrated or --entra"),
            };
            let password = match kind {
                SqlLoginKind::Integrated | SqlLoginKind::Entra => None,
                _ => Some(password.source()?),
            };
            let server = SqlServer {
                name: name.clone(),
                address: address.clone(),
                kind,
                login: login.clone(),
                password,
                ca_file: ca_file.as_ref().map(absolute).transpose()?,
                via: via.clone(),
                audience: audience.clone(),
            };
            let checked = check_first(*no_check, || p.check_new_sql_server(server.clone()))?;
            let server = p.set_sql_server(server)?;
            if cli.json {
                json(&server)?;
            } else {
                if let Some(s) = checked {
                    println!(
                        "signed in to {} (SQL Server {}) as {}",
                        s.server, s.version, s.login
                    );
                }
                kept("SQL Server", &server.name, "sql");
            }
        }
        SqlServerCommand::List => {
            let all = p.sql_servers()?;
            if cli.json {
                json(&all)?;
            } else {
                for s in all {
                    let at = s.address.as_deref().unwrap_or(&s.name);
                    let through = s
                        .via
                        .as_ref()
                        .map(|v| format!(" through {v}"))
                        .unwrap_or_default();
                    println!("{:<28} {at}{through} as {}", s.name, who(&s));
                }
            }
        }
        SqlServerCommand::Check { name } => {
            let s = p.check_sql_server(name)?;
            if cli.json {
                json(
                    &serde_json::json!({ "server": s.server, "version": s.version, "login": s.login }),
                )?;
            } else {
                println!(
                    "signed in to {} (SQL Server {}) as {}",
                    s.server, s.version, s.login
                );
            }
        }
        SqlServerCommand::Remove { name } => {
            if !p.remove_sql_server(name)? {
                bail!("no SQL Server named {name}");
            }
        }
    }
    Ok(())
}
