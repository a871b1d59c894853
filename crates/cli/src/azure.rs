//! `rehydra azure`: how Rehydra signs in to Azure, and what that gives.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use rehydra_api::azure::{self, IdentitySetting, SecretSetting};

use crate::args::Cli;
use crate::commands::context;
use crate::output::json;

/// `azure`.
#[derive(Subcommand, Debug)]
pub enum AzureCommand {
    /// Which identity is in use, its tenant and subscriptions, and what failed in the
    /// chain and why.
    Status,
    /// Choose the identity jobs use (kept in the catalog; a secret never is). Without an
    /// option: automatic (an environment service principal, then `az`, then `azd`, then
    /// the machine's managed identity).
    Login(LoginArgs),
    /// Go back to the automatic choice.
    Logout,
    /// The Azure Resource Manager endpoint (sovereign clouds, Azure Stack Hub); without a
    /// URL, the public cloud's.
    Endpoint {
        /// e.g. https://management.usgovcloudapi.net
        url: Option<String>,
    },
    /// Token audiences for hosts Rehydra does not know as Azure (add, remove, list).
    #[command(subcommand)]
    Audience(AudienceCommand),
    /// Tenants other than the identity's own that an Azure service's bearer challenge may
    /// send it to (a customer's vault reached as a guest or through Azure Lighthouse):
    /// none unless allowed here (allow, remove, list).
    #[command(subcommand)]
    Tenant(TenantCommand),
}

/// `azure tenant`.
#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Allow a tenant: its id or domain, or * for any.
    Allow {
        /// Tenant id (GUID) or domain, or *.
        tenant: String,
    },
    /// Stop allowing a tenant.
    Remove {
        /// As allowed.
        tenant: String,
    },
    /// The tenants allowed.
    List,
}

/// `azure login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The Azure CLI sign-in (`az login`): for an admin at the keyboard.
    #[arg(long, conflicts_with_all = ["azd", "service_principal", "managed_identity"])]
    cli: bool,
    /// The Azure Developer CLI sign-in (`azd auth login`).
    #[arg(long, conflicts_with_all = ["service_principal", "managed_identity"])]
    azd: bool,
    /// A service principal (for schedules): give --tenant, --client-id and one of
    /// --secret-file, --secret-env, --secret-keychain or --certificate.
    #[arg(long, requires_all = ["tenant", "client_id"], conflicts_with = "managed_identity")]
    service_principal: bool,
    /// The machine's managed identity: Azure Arc (Azure Local nodes, Arc-enabled servers)
    /// or IMDS (Azure VMs).
    #[arg(long)]
    managed_identity: bool,
    /// Directory (tenant) id or domain.
    #[arg(long)]
    tenant: Option<String>,
    /// Application (client) id; with --managed-identity, a user-assigned identity (IMDS).
    #[arg(long)]
    client_id: Option<String>,
    /// A file holding the client secret (readable by its owner only).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret when jobs run.
    #[arg(long, value_name = "VAR")]
    secret_env: Option<String>,
    /// Read the client secret from standard input once and keep it in the OS keychain.
    #[arg(long)]
    secret_keychain: bool,
    /// A PEM file with the certificate and its RSA private key.
    #[arg(long, value_name = "PEM")]
    certificate: Option<PathBuf>,
}

/// `azure audience`.
#[derive(Subcommand, Debug)]
pub enum AudienceCommand {
    /// Give a host (or *.domain) tokens for a scope.
    Add {
        /// Host name or *.domain.
        host: String,
        /// Token scope, e.g. https://management.azure.com/.default
        scope: String,
    },
    /// Forget a host.
    Remove {
        /// As added.
        host: String,
    },
    /// The hosts added.
    List,
}

fn identity(a: &LoginArgs) -> Result<IdentitySetting> {
    if a.cli {
        return Ok(IdentitySetting::AzureCli);
    }
    if a.azd {
        return Ok(IdentitySetting::AzureDeveloperCli);
    }
    if a.managed_identity {
        return Ok(IdentitySetting::ManagedIdentity {
            client_id: a.client_id.clone(),
        });
    }
    if !a.service_principal {
        return Ok(IdentitySetting::Auto);
    }
    let (tenant, client_id) = (
        a.tenant.clone().unwrap_or_default(),
        a.client_id.clone().unwrap_or_default(),
    );
    if let Some(certificate) = &a.certificate {
        return Ok(IdentitySetting::Certificate {
            tenant,
            client_id,
            certificate: std::path::absolute(certificate)?,
        });
    }
    let secret = match (&a.secret_file, &a.secret_env, a.secret_keychain) {
        (Some(f), None, false) => SecretSetting::File(std::path::absolute(f)?),
        (None, Some(v), false) => SecretSetting::Env(v.clone()),
        (None, None, true) => {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            let s = s.trim_end_matches(['\r', '\n']);
            if s.is_empty() {
                bail!("no client secret on standard input");
            }
            azure::store_secret(&tenant, &client_id, s)?
        }
        _ => bail!(
            "give exactly one of --secret-file, --secret-env, --secret-keychain or --certificate"
        ),
    };
    Ok(IdentitySetting::ServicePrincipal {
        tenant,
        client_id,
        secret,
    })
}

/// Run an `azure` subcommand.
pub fn run(cli: &Cli, cmd: &AzureCommand) -> Result<i32> {
    let ctx = context(cli);
    match cmd {
        AzureCommand::Status => {
            let s = azure::status(&ctx)?;
            if cli.json {
                json(&s)?;
            } else {
                print_status(&s);
            }
            // no identity gives a token: say so in the exit code too
            Ok(if s.source.is_some() { 0 } else { 1 })
        }
        AzureCommand::Login(a) => {
            let id = identity(a)?;
            azure::set_identity(&ctx, &id)?;
            if !cli.quiet {
                println!("Rehydra signs in to Azure with {}", id.describe());
                println!("check it with: rehydra azure status");
            }
            Ok(0)
        }
        AzureCommand::Logout => {
            azure::set_identity(&ctx, &IdentitySetting::Auto)?;
            if !cli.quiet {
                println!("Rehydra signs in to Azure automatically again");
            }
            Ok(0)
        }
        AzureCommand::Endpoint { url } => {
            azure::set_arm_endpoint(&ctx, url.as_deref())?;
            Ok(0)
        }
        AzureCommand::Audience(AudienceCommand::Add { host, scope }) => {
            azure::add_audience(&ctx, host, scope)?;
            Ok(0)
        }
        AzureCommand::Audience(AudienceCommand::Remove { host }) => {
            if !azure::remove_audience(&ctx, host)? {
                bail!("no audience was set for `{host}`");
            }
            Ok(0)
        }
        AzureCommand::Tenant(TenantCommand::Allow { tenant }) => {
            azure::allow_tenant(&ctx, tenant)?;
            Ok(0)
        }
        AzureCommand::Tenant(TenantCommand::Remove { tenant }) => {
            if !azure::forget_tenant(&ctx, tenant)? {
                bail!("tenant `{tenant}` was not allowed");
            }
            Ok(0)
        }
        AzureCommand::Tenant(TenantCommand::List) => {
            let s = azure::settings(&ctx)?;
            if cli.json {
                json(&s.tenants)?;
            } else {
                for t in &s.tenants {
                    println!("{t}");
                }
            }
            Ok(0)
        }
        AzureCommand::Audience(AudienceCommand::List) => {
            let s = azure::settings(&ctx)?;
            if cli.json {
                json(&s.audiences)?;
            } else {
                for (host, scope) in &s.audiences {
                    println!("{host}  {scope}");
                }
            }
            Ok(0)
        }
    }
}

fn print_status(s: &azure::AzureStatus) {
    println!("configured:  {}", s.configured);
    match &s.source {
        Some(src) => {
            let who = s
                .user
                .as_deref()
                .map(|u| format!("user {u}"))
                .or_else(|| s.app_id.as_deref().map(|a| format!("application {a}")))
                .unwrap_or_else(|| "an identity".into());
            println!("signed in:   {who} through {src}");
            if let Some(t) = &s.tenant {
                println!("tenant:      {t}");
            }
            if let Some(e) = &s.expires {
                println!("token until: {e} (refreshed on its own)");
            }
        }
        None => println!(
            "signed in:   no ({})",
            s.error.as_deref().unwrap_or("no identity gave a token")
        ),
    }
    for a in &s.attempts {
        match &a.failure {
            None => println!("  ✓ {}", a.source),
            Some(why) => println!("  ✗ {}: {why}", a.source),
        }
    }
    println!("ARM:         {}", s.arm_endpoint);
    if let Some(e) = &s.subscriptions_error {
        println!("subscriptions: not listed: {e}");
    } else if s.source.is_some() {
        println!("subscriptions ({}):", s.subscriptions.len());
        for sub in &s.subscriptions {
            println!("  {}  {}  {}", sub.id, sub.name, sub.state);
        }
    }
    for (host, scope) in &s.audiences {
        println!("audience:    {host} → {scope}");
    }
    for t in &s.tenants {
        println!("tenant:      {t} (a bearer challenge may ask for a token there)");
    }
}
