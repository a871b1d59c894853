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
            keep_last,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            tags,
            copy_to,
            copy_password_file,
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
                        "{:<20} {:<40} every {} h, last {}, {}",
                        s.policy.name,
                        what,
                        s.policy.every_hours,
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
            for n in &names {
                let r = policies::run(
                    &ctx,
                    &s,
                    plugins.as_ref(),
                    n,
                    copy_pw.as_deref(),
                    &bar,
                    &cancel,
                )?;
                if !cli.json {
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
                }
                runs.push(r);
            }
            if cli.json {
                json(&runs)?;
            } else if names.is_empty() {
                println!("no policy is due");
            }
            return Ok(
                if runs
                    .iter()
                    .any(|r| r.copy.as_ref().is_some_and(|c| c.error.is_some()))
                {
                    1
                } else if runs.iter().any(|r| !r.warnings.is_empty()) {
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
