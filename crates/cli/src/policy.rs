//! `rehydra policy`: protection policies (backup, retention, copy) and their runs.

use anyhow::{Result, bail};
use rehydra_api as api;

use crate::args::Cli;
use crate::commands::*;
use crate::output::{Bar, bytes, json};
use crate::password;

pub(crate) fn run(cli: &Cli, c: &crate::args::PolicyCommand) -> Result<i32> {
    use crate::args::PolicyCommand as P;
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
            keep_last,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            tags,
            copy_to,
            copy_password_file,
            notify,
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
            let what = match (folder, plugin, asset, asset_kind) {
                (Some(path), None, None, None) => What::Folder {
                    path: absolute(std::path::Path::new(path)),
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
                    let what = match &s.policy.what {
                        What::Folder { path } => path.clone(),
                        What::Plugin { plugin, asset, .. } => format!("{plugin}:{asset}"),
                        What::Discovered {
                            plugin, asset_kind, ..
                        } => format!("{plugin}: every {asset_kind}"),
                    };
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
                }
            }
        }
        P::Run {
            name,
            due,
            copy_password_file,
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
            let bar = Bar::new(cli.quiet, cli.json);
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
fn notify_settings(a: &crate::args::NotifyArgs) -> Option<api::notify::Notify> {
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
