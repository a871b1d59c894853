//! `rehydra policy`: protection policies (backup, retention, copy) and their runs.

use anyhow::{Result, bail};
use rehydra_api as api;

use std::path::PathBuf;

use clap::Subcommand;

use crate::args::Cli;
use crate::commands::*;
use crate::output::{Bar, bytes, json};
use crate::password;

/// `policy`.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum PolicyCommand {
    /// Add or replace a policy for the repository given with -r.
    Add {
        /// Policy name.
        name: String,
        /// Back up this folder (or file).
        #[arg(long, conflicts_with = "plugin")]
        folder: Option<String>,
        /// Back up an asset through this plugin (with --asset), or every asset of a kind
        /// it discovers (with --asset-kind).
        #[arg(long)]
        plugin: Option<String>,
        /// The asset id (as the plugin's discover reports it).
        #[arg(long, requires = "plugin", conflicts_with = "asset_kind")]
        asset: Option<String>,
        /// Every asset of this kind (`vault` …) the plugin discovers at each run: new ones
        /// are protected from their first run on.
        #[arg(long, requires = "plugin")]
        asset_kind: Option<String>,
        /// Discover settings for --asset-kind, as name=value.
        #[arg(
            long = "discover-set",
            value_name = "NAME=VALUE",
            requires = "asset_kind"
        )]
        discover: Vec<String>,
        /// Plugin backup options as name=value.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Run when the last run is older than this many hours (unless --at is given).
        #[arg(long, default_value_t = 24.0)]
        every_hours: f64,
        /// Run at this time of day instead, HH:MM in this machine's time zone (repeat
        /// for several); a time missed while the machine was off runs at the next look.
        #[arg(long, value_name = "HH:MM")]
        at: Vec<String>,
        /// Only on these days with --at (mon,tue,wed,thu,fri,sat,sun).
        #[arg(long, value_name = "DAYS", value_delimiter = ',', requires = "at")]
        days: Vec<String>,
        /// Start only inside this backup window, HH:MM-HH:MM (may cross midnight, e.g.
        /// 22:00-06:00): a run due outside it waits for it to open.
        #[arg(long, value_name = "HH:MM-HH:MM")]
        window: Option<String>,
        /// Run when this cron expression says instead of --every-hours or --at: five
        /// fields, minute hour day-of-month month day-of-week, in this machine's time
        /// zone (e.g. '0 2 * * 1-5' for 02:00 on weekdays; '30 1 1 * *' monthly).
        #[arg(long, value_name = "EXPR", conflicts_with_all = ["at", "days"])]
        cron: Option<String>,
        /// Keep the newest N.
        #[arg(long, default_value_t = 0)]
        keep_last: u32,
        /// Keep one a day for N days.
        #[arg(long, default_value_t = 0)]
        keep_daily: u32,
        /// Keep one a week for N weeks.
        #[arg(long, default_value_t = 0)]
        keep_weekly: u32,
        /// Keep one a month for N months.
        #[arg(long, default_value_t = 0)]
        keep_monthly: u32,
        /// Keep one a year for N years.
        #[arg(long, default_value_t = 0)]
        keep_yearly: u32,
        /// Extra tags for its restore points.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Copy target: a second repository every restore point of the policy is copied
        /// to after the backup, with the same retention (create it first with `init`).
        #[arg(long, value_name = "REPO")]
        copy_to: Option<String>,
        /// A file holding the copy target's password, read at each run (else give it
        /// to `policy run` with --copy-password-file or REHYDRA_COPY_PASSWORD).
        #[arg(long, value_name = "FILE", requires = "copy_to")]
        copy_password_file: Option<PathBuf>,
        /// Who is told about its runs.
        #[command(flatten)]
        notify: NotifyArgs,
        /// What a --folder policy leaves out (an exclude file is read now and its
        /// patterns kept in the policy).
        #[command(flatten)]
        exclude: crate::args::ExcludeArgs,
    },
    /// Policies, last run and when each is due.
    List,
    /// Run a policy now (backup, retention, then the copy to its copy target), or every
    /// due one with --due (a policy that fails does not stop the others; each is
    /// reported). Then tells people as the policy says. Exits 1 when a policy or a copy
    /// failed (a backup that was saved stands; the next run copies what the target
    /// lacks), 3 when all ran but with warnings or a notification could not be sent.
    Run {
        /// Policy name.
        #[arg(required_unless_present = "due")]
        name: Option<String>,
        /// Run every policy of this repository that is due.
        #[arg(long)]
        due: bool,
        /// The copy target's password, from this file (when the policy names none).
        #[arg(long, env = "REHYDRA_COPY_PASSWORD_FILE", value_name = "FILE")]
        copy_password_file: Option<PathBuf>,
        /// Hand the run to the service running for this catalog and return at once: it
        /// runs there (with the service's passwords), and goes on when this command
        /// ends. `rehydra service --status` shows how it stands, `rehydra service cancel
        /// ID` stops it.
        #[arg(long, conflicts_with = "due", requires = "name")]
        service: bool,
    },
    /// Remove a policy (its restore points stay).
    Remove {
        /// Policy name.
        name: String,
    },
}

/// A policy's notifications (`policy add`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NotifyArgs {
    /// When the webhook and the mail are sent: failure (also a cancelled run), warnings
    /// (failure or warnings) or always.
    #[arg(long, value_name = "WHEN", default_value = "failure", value_parser = ["failure", "warnings", "always"])]
    pub notify_when: String,
    /// POST the run as JSON to this http(s) URL (retried on 429, 5xx and connection
    /// failures; the body is described in the README).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// GET this http(s) URL after every run, with /fail appended when it failed
    /// (Healthchecks and similar dead man's switches).
    #[arg(long, value_name = "URL")]
    pub ping: Option<String>,
    /// Mail a summary to this address (repeat for several); needs --mail-from and
    /// --smtp-server.
    #[arg(long, value_name = "ADDRESS", requires_all = ["mail_from", "smtp_server"])]
    pub mail_to: Vec<String>,
    /// The mail's sender address.
    #[arg(long, value_name = "ADDRESS", requires = "mail_to")]
    pub mail_from: Option<String>,
    /// SMTP server as HOST or HOST:PORT (587 for starttls, 465 for tls, 25 for none).
    #[arg(long, value_name = "HOST[:PORT]", requires = "mail_to")]
    pub smtp_server: Option<String>,
    /// starttls (required), tls (from the first byte) or none (a trusted relay only;
    /// no password is sent over it).
    #[arg(long, value_name = "MODE", default_value = "starttls", value_parser = ["starttls", "tls", "none"])]
    pub smtp_security: String,
    /// SMTP user name (with --smtp-password-file).
    #[arg(long, value_name = "NAME", requires = "smtp_password_file")]
    pub smtp_user: Option<String>,
    /// A file whose first line is the SMTP password, read at each send (never copied
    /// into the catalog).
    #[arg(long, value_name = "FILE", requires = "smtp_user")]
    pub smtp_password_file: Option<PathBuf>,
    /// Extra certificate authorities (PEM) to trust for the SMTP server.
    #[arg(long, value_name = "FILE", requires = "mail_to")]
    pub smtp_ca_file: Option<PathBuf>,
}

pub(crate) fn run(cli: &Cli, c: &PolicyCommand) -> Result<i32> {
    use PolicyCommand as P;
    use api::policies::{self, Keep, Policy, What};
    let ctx = context(cli);
    match c {
        P::Add {
            name,
            folder,
            plugin,
            asset,
            asset_kind,
            discover,
            options,
            every_hours,
            at,
            days,
            window,
            cron,
            keep_last,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            tags,
            copy_to,
            copy_password_file,
            notify,
            exclude,
        } => {
            if cli.repo.is_empty() {
                bail!(
                    "name the repository the policy backs up into with -r/--repo or REHYDRA_REPOSITORY"
                );
            }
            let pairs = |v: &[String]| -> Result<Vec<(String, String)>> {
                Ok(crate::plugins::props(v)?
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect())
            };
            if folder.is_none()
                && (!exclude.exclude.is_empty()
                    || !exclude.exclude_file.is_empty()
                    || exclude.one_file_system)
            {
                return Err(api::ApiError::new(
                    api::Code::InvalidInput,
                    "--exclude, --exclude-file and --one-file-system go with --folder",
                )
                .into());
            }
            let what = match (folder, plugin, asset, asset_kind) {
                (Some(path), None, None, None) => What::Folder {
                    path: absolute(std::path::Path::new(path)),
                    exclude: exclude.patterns()?,
                    one_file_system: exclude.one_file_system,
                },
                (None, Some(plugin), Some(asset), None) => What::Plugin {
                    plugin: plugin.clone(),
                    asset: asset.clone(),
                    options: pairs(options)?,
                },
                (None, Some(plugin), None, Some(kind)) => What::Discovered {
                    plugin: plugin.clone(),
                    asset_kind: kind.clone(),
                    discover: pairs(discover)?,
                    options: pairs(options)?,
                },
                _ => bail!(
                    "give --folder PATH, --plugin ID --asset ASSET, or --plugin ID --asset-kind KIND (every asset of that kind it discovers)"
                ),
            };
            let p = Policy {
                name: name.clone(),
                what,
                every_hours: *every_hours,
                at: at.clone(),
                days: days.clone(),
                window: window.clone(),
                cron: cron.clone(),
                keep: Keep {
                    last: *keep_last,
                    daily: *keep_daily,
                    weekly: *keep_weekly,
                    monthly: *keep_monthly,
                    yearly: *keep_yearly,
                },
                repository: cli.repo.clone(),
                tags: tags.clone(),
                copy_to: copy_to.as_ref().map(|r| policies::CopyTarget {
                    repository: r.clone(),
                    password_file: copy_password_file.as_deref().map(absolute),
                }),
                notify: notify_settings(notify),
            };
            policies::save(&ctx, &crate::plugins::platform(cli)?, &p)?;
            if !cli.json {
                println!(
                    "policy {name} saved; run it with: rehydra policy run {name} (or --due from a timer)"
                );
            }
        }
        P::List => {
            let l = policies::list(&ctx, chrono::Utc::now())?;
            if cli.json {
                json(&l)?;
            } else {
                for s in &l {
                    let what = s.policy.what.label();
                    println!(
                        "{:<20} {:<40} {}, last {}, {}",
                        s.policy.name,
                        what,
                        s.schedule,
                        s.last_run
                            .map_or_else(|| "never".into(), |t| t.to_rfc3339()),
                        if s.due {
                            "due".into()
                        } else {
                            format!("next {}", s.next_due.to_rfc3339())
                        }
                    );
                    if let [_, then @ ..] = s.upcoming.as_slice()
                        && !then.is_empty()
                    {
                        let then: Vec<String> = then.iter().map(|t| t.to_rfc3339()).collect();
                        println!("{:<20} then {}", "", then.join(", "));
                    }
                    if s.failures > 0 {
                        println!(
                            "{:<20} failed {} time(s) since its last success; its last job's log: rehydra catalog runs",
                            "", s.failures
                        );
                    }
                }
            }
        }
        P::Run {
            name: Some(name),
            service: true,
            ..
        } => {
            let r = api::service::requests::hand_over(
                &ctx,
                name,
                &api::service::requests::asker("rehydra policy run"),
            )?;
            if cli.json {
                json(&r)?;
            } else {
                println!(
                    "policy {name} handed to the service (request {}): it runs there, also after this command ends; `rehydra service --status` shows how it stands, `rehydra service cancel {}` stops it",
                    r.id, r.id
                );
            }
        }
        P::Run {
            name,
            due,
            copy_password_file,
            ..
        } => {
            let s = open(cli)?;
            let names: Vec<String> = if *due {
                policies::list(&ctx, chrono::Utc::now())?
                    .into_iter()
                    .filter(|p| p.due && p.policy.repository == cli.repo)
                    .map(|p| p.policy.name)
                    .collect()
            } else {
                name.iter().cloned().collect()
            };
            let plugins = crate::plugins::platform(cli).ok();
            let bar = Bar::new(cli);
            let cancel = cancel_on_ctrl_c();
            let copy_pw = match copy_password_file {
                Some(f) => Some(password::copy_target(Some(f))?),
                None => std::env::var("REHYDRA_COPY_PASSWORD")
                    .ok()
                    .map(String::into_bytes),
            };
            let mut runs = Vec::new();
            let mut failures = 0;
            for n in &names {
                let r = match policies::run(
                    &ctx,
                    &s,
                    plugins.as_ref(),
                    n,
                    copy_pw.as_deref(),
                    &bar,
                    &cancel,
                ) {
                    Ok(r) => r,
                    // one policy that fails does not stop the others (unless cancelled)
                    Err(e) if *due && e.code != api::Code::Cancelled => {
                        eprintln!("policy {n}: failed: {}", e.message);
                        failures += 1;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if !cli.json {
                    report(n, &r);
                }
                runs.push(r);
            }
            if cli.json {
                json(&runs)?;
            } else if names.is_empty() {
                println!("no policy is due");
            }
            return Ok(
                if failures > 0
                    || runs
                        .iter()
                        .any(|r| r.copy.as_ref().is_some_and(|c| c.error.is_some()))
                {
                    1
                } else if runs
                    .iter()
                    .any(|r| !r.warnings.is_empty() || !r.notify_errors.is_empty())
                {
                    3
                } else {
                    0
                },
            );
        }
        P::Remove { name } => {
            if !policies::remove(&ctx, name)? {
                bail!("no policy named {name}");
            }
        }
    }
    Ok(0)
}

/// What a run did, as lines for a person.
fn report(n: &str, r: &api::policies::PolicyRun) {
    for sn in &r.restore_points {
        println!(
            "policy {n}: restore point {} of {} saved ({} read, {} new)",
            sn.short_id,
            sn.asset,
            bytes(sn.bytes),
            bytes(sn.new_bytes)
        );
    }
    for w in &r.warnings {
        eprintln!("policy {n}: warning: {w}");
    }
    println!("policy {n}: retention removed {}", r.forgotten.len());
    if let Some(c) = &r.copy {
        match &c.error {
            Some(e) => eprintln!("policy {n}: {e}"),
            None => println!(
                "policy {n}: {} restore point(s) copied to {}; retention removed {} there",
                c.copied.len(),
                c.repository,
                c.forgotten.len()
            ),
        }
    }
    for e in &r.notify_errors {
        eprintln!("policy {n}: warning: notification not sent: {e}");
    }
}

/// The policy's notification settings from `policy add`'s flags (`None` when it has none).
fn notify_settings(a: &NotifyArgs) -> Option<api::notify::Notify> {
    use api::notify::{Email, Notify, NotifyWhen, SmtpSecurity};
    let email = (!a.mail_to.is_empty()).then(|| Email {
        server: a.smtp_server.clone().unwrap_or_default(),
        security: match a.smtp_security.as_str() {
            "tls" => SmtpSecurity::Tls,
            "none" => SmtpSecurity::None,
            _ => SmtpSecurity::Starttls,
        },
        from: a.mail_from.clone().unwrap_or_default(),
        to: a.mail_to.clone(),
        username: a.smtp_user.clone(),
        password_file: a.smtp_password_file.as_deref().map(absolute),
        ca_file: a.smtp_ca_file.as_deref().map(absolute),
    });
    (a.webhook.is_some() || a.ping.is_some() || email.is_some()).then(|| Notify {
        when: match a.notify_when.as_str() {
            "always" => NotifyWhen::Always,
            "warnings" => NotifyWhen::Warnings,
            _ => NotifyWhen::Failure,
        },
        webhook: a.webhook.clone(),
        ping: a.ping.clone(),
        email,
    })
}
