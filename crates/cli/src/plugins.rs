//! `rehydra plugins …`: thin calls into `rehydra_api::plugins`.

use anyhow::{Context as _, Result, bail};
use rehydra_api::plugins::{PluginSettings, Plugins, Property};
use rehydra_plugin_host::{self as host, package};
use std::path::PathBuf;

use crate::args::{Cli, PluginsCommand, VerbCommand};
use crate::commands::{cancel_on_ctrl_c, context, open};
use crate::output::{Bar, backup_outcome, bytes, json, warnings};

pub(crate) fn props(kv: &[String]) -> Result<Vec<Property>> {
    kv.iter()
        .map(|s| {
            let (n, v) = s
                .split_once('=')
                .with_context(|| format!("`{s}` is not NAME=VALUE"))?;
            Ok(Property {
                name: n.trim().to_string(),
                value: v.to_string(),
            })
        })
        .collect()
}

pub(crate) fn platform(cli: &Cli) -> Result<Plugins> {
    let settings = PluginSettings::with_defaults(&cli.plugin_dirs, cli.developer_mode)
        .with_caps(cli.plugin_max_memory_mib, cli.plugin_max_seconds);
    Ok(Plugins::new(&context(cli), settings)?)
}

/// A plugin call's log lines, on standard error: the debug ones only with --verbose.
pub(crate) fn print_log(cli: &Cli, log: &[String]) {
    for l in log
        .iter()
        .filter(|l| cli.verbose || !rehydra_api::plugins::is_debug(l))
    {
        eprintln!("{l}");
    }
}

/// Run a `plugins` subcommand; returns the exit code.
pub fn run(cli: &Cli, cmd: &PluginsCommand) -> Result<i32> {
    match cmd {
        PluginsCommand::Keygen { file } => {
            let key = package::create_signing_key(file)?;
            let public = hex::encode(key.verifying_key().as_bytes());
            if cli.json {
                json(&serde_json::json!({"key_file": file, "public_key": public}))?;
            } else {
                println!(
                    "signing key written to {} (keep it secret, keep a backup)",
                    file.display()
                );
                println!("public key: {public}");
                println!("admins trust it with: rehydra plugins trust <publisher> {public}");
            }
            return Ok(0);
        }
        PluginsCommand::Pack {
            component,
            manifest,
            key,
            output,
        } => {
            let wasm = std::fs::read(component)
                .with_context(|| format!("reading {}", component.display()))?;
            let text = std::fs::read(manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            let key = key.as_deref().map(package::load_signing_key).transpose()?;
            let out = package::pack(component, &wasm, &text, key.as_ref())?;
            let tmp = output.with_extension("tmp");
            std::fs::write(&tmp, &out)
                .and_then(|()| std::fs::rename(&tmp, output))
                .with_context(|| format!("writing {}", output.display()))?;
            if cli.json {
                json(
                    &serde_json::json!({"file": output, "bytes": out.len(), "signed": key.is_some()}),
                )?;
            } else {
                println!(
                    "{} written ({}, {})",
                    output.display(),
                    bytes(out.len() as u64),
                    if key.is_some() {
                        "signed"
                    } else {
                        "UNSIGNED: loads only in developer mode"
                    }
                );
            }
            return Ok(0);
        }
        _ => {}
    }
    let p = platform(cli)?;
    match cmd {
        PluginsCommand::List => {
            let list = p.list()?;
            if cli.json {
                json(&list)?;
            } else if list.is_empty() {
                println!("no plugins installed (rehydra plugins install <file.wasm>)");
            } else {
                for e in &list {
                    match &e.error {
                        None => println!(
                            "{:<20} {:<10} {:<14} {}  {}",
                            e.id,
                            e.version.as_deref().unwrap_or(""),
                            e.publisher.as_deref().unwrap_or(""),
                            e.workloads.join(","),
                            e.path.display()
                        ),
                        Some(err) => println!("{:<20} NOT LOADABLE: {err}", e.id),
                    }
                }
            }
        }
        PluginsCommand::Info { id } => {
            let d = p.info(id)?;
            if cli.json {
                json(&d)?;
            } else {
                let m = &d.manifest;
                println!("{} {} by {} — {}", m.id, m.version, m.publisher, m.name);
                println!("  {}", m.description);
                println!(
                    "  file: {}  signer: {}",
                    d.entry.path.display(),
                    d.entry
                        .signer
                        .as_ref()
                        .map_or_else(|| "not loaded".to_string(), ToString::to_string)
                );
                println!(
                    "  workloads: {}  contract: {}",
                    m.workloads.join(", "),
                    m.contract
                );
                println!(
                    "  limits per call: {} MiB, {} s (asked for {} MiB, {} s; lower them with --plugin-max-memory-mib and --plugin-max-seconds)",
                    d.limits.memory_mib,
                    d.limits.timeout_secs,
                    m.limits.memory_mib,
                    m.limits.timeout_secs
                );
                println!("  capabilities requested:");
                for c in &d.capabilities {
                    let granted = if c.granted.is_empty() {
                        "NOT GRANTED".to_string()
                    } else {
                        format!("granted: {}", c.granted.join(", "))
                    };
                    println!(
                        "    {:<12} {} — {} [{}]",
                        c.kind, c.allows, c.reason, granted
                    );
                }
                print_settings(&m.settings);
            }
        }
        PluginsCommand::Install {
            file,
            replace,
            allow_downgrade,
        } => {
            let e = p.install(file, *replace, *allow_downgrade)?;
            if cli.json {
                json(&e)?;
            } else {
                println!(
                    "installed {} {} to {}",
                    e.id,
                    e.version.as_deref().unwrap_or(""),
                    e.path.display()
                );
                println!(
                    "it can do nothing until you grant capabilities: rehydra plugins info {}",
                    e.id
                );
            }
        }
        PluginsCommand::Grant { id, grants } => {
            let g = p.grant(id, grants)?;
            if cli.json {
                json(&g)?;
            } else {
                println!("granted to {id}: {}", g.join(", "));
            }
        }
        PluginsCommand::Revoke { id, grants } => {
            let n = p.revoke(id, grants)?;
            if cli.json {
                json(&serde_json::json!({"revoked": n}))?;
            } else {
                println!("{n} grant(s) revoked from {id}");
            }
        }
        PluginsCommand::Trust { publisher, key } => {
            p.trust(publisher, key)?;
            if !cli.json {
                println!("plugins signed by {publisher} with {key} now load");
            }
        }
        PluginsCommand::Untrust { publisher, key } => {
            if !p.untrust(publisher, key)? {
                bail!("{publisher} {key} was not trusted");
            }
        }
        PluginsCommand::Trusted => {
            let t = p.trusted_keys()?;
            if cli.json {
                json(&t)?;
            } else {
                for k in t {
                    println!("{:<20} {}", k.publisher, k.key);
                }
            }
        }
        PluginsCommand::Target(t) => target(cli, &p, t)?,
        PluginsCommand::Directory(d) => crate::directory::run(cli, &p, d)?,
        PluginsCommand::SqlServer(s) => crate::sql_server::run(cli, &p, s)?,
        PluginsCommand::KubeCluster(k) => crate::kube_cluster::run(cli, &p, k)?,
        PluginsCommand::Audit { plugin, limit } => {
            let rows = p.audit_log(plugin.as_deref(), *limit)?;
            if cli.json {
                json(&rows)?;
            } else {
                for r in rows {
                    println!(
                        "{} {:<16} {:<10} {:<8} {} {} — {}",
                        r.time,
                        r.plugin_id,
                        r.verb,
                        if r.allowed { "allowed" } else { "DENIED" },
                        r.capability,
                        r.target,
                        r.detail
                    );
                }
            }
        }
        PluginsCommand::Run { id, verb } => return run_verb(cli, &p, id, verb),
        PluginsCommand::Keygen { .. } | PluginsCommand::Pack { .. } => {}
    }
    Ok(0)
}

fn target(cli: &Cli, p: &Plugins, cmd: &TargetCommand) -> Result<()> {
    match cmd {
        TargetCommand::Add {
            name,
            ssh,
            port,
            identity,
            known_hosts,
            shell,
            powershell,
            cluster,
            nodes,
        } => {
            let abs = |f: &Option<PathBuf>| -> Result<Option<PathBuf>> {
                f.as_ref()
                    .map(|f| std::path::absolute(f).with_context(|| format!("{}", f.display())))
                    .transpose()
            };
            let shell = match shell {
                ShellArg::Windows => host::RemoteShell::Windows,
                ShellArg::Posix => host::RemoteShell::Posix,
            };
            let t = host::Target {
                name: name.clone(),
                ssh: ssh.clone(),
                port: *port,
                identity: abs(identity)?,
                known_hosts: abs(known_hosts)?,
                shell,
                powershell: powershell.clone(),
                cluster: *cluster,
                nodes: nodes.clone(),
            };
            let kept = p.set_target(&t)?;
            let t = &kept.target;
            if cli.json {
                json(&kept)?;
            } else {
                left_out(&kept.left_out);
                let nodes = if t.cluster {
                    format!(
                        " (and its cluster's nodes {}, as {name}/<node>)",
                        t.nodes.join(", ")
                    )
                } else {
                    String::new()
                };
                println!(
                    "target {name} = ssh {ssh}; grant programs on it{nodes} with: rehydra plugins grant <plugin> command:<program>@{name}"
                );
            }
        }
        TargetCommand::Refresh { name, yes } => {
            let kept = p.refresh_target(name, *yes)?;
            if cli.json {
                json(&kept)?;
            } else {
                left_out(&kept.left_out);
                if !kept.removed.is_empty() {
                    println!(
                        "cluster {name} no longer lists {}: unpinned",
                        kept.removed.join(", ")
                    );
                }
            }
            if !kept.pinned {
                bail!(
                    "cluster {name} now lists new nodes {}: nothing new was pinned. Check that they are this cluster's nodes (whoever may run PowerShell there can make the answer name any host), then: rehydra plugins target refresh {name} --yes",
                    kept.added.join(", ")
                );
            }
            if !cli.json {
                println!(
                    "cluster {name}: nodes {} (pinned)",
                    kept.target.nodes.join(", ")
                );
            }
        }
        TargetCommand::List => {
            let ts = p.targets()?;
            if cli.json {
                json(&ts)?;
            } else {
                for t in ts {
                    let port = t.port.map(|p| format!(":{p}")).unwrap_or_default();
                    let cluster = if t.cluster {
                        format!(
                            ", cluster: nodes {} as {}/<node>",
                            t.nodes.join(", "),
                            t.name
                        )
                    } else {
                        String::new()
                    };
                    println!(
                        "{:<16} ssh {}{port} ({:?} shell, {}{cluster})",
                        t.name, t.ssh, t.shell, t.powershell
                    );
                }
            }
        }
        TargetCommand::Remove { name } => {
            if !p.remove_target(name)? {
                bail!("no command target named {name}");
            }
        }
    }
    Ok(())
}

/// Say which lines of a cluster's answer were not taken as nodes.
fn left_out(lines: &[String]) {
    if !lines.is_empty() {
        warnings([format!(
            "the cluster's answer also held {}, which are not host names and were not pinned",
            lines.join(", ")
        )]);
    }
}

fn run_verb(cli: &Cli, p: &Plugins, id: &str, verb: &VerbCommand) -> Result<i32> {
    match verb {
        VerbCommand::Describe => {
            let i = p.describe(id)?;
            if cli.json {
                json(&i)?;
            } else {
                println!(
                    "{} {} — {} (workloads: {})",
                    i.id,
                    i.version,
                    i.description,
                    i.workloads.join(", ")
                );
            }
        }
        VerbCommand::Discover { settings } => {
            let (assets, log) = p.discover(id, &props(settings)?)?;
            print_log(cli, &log);
            if cli.json {
                json(&assets)?;
            } else {
                for a in assets {
                    println!(
                        "{:<10} {:<40} {}{}",
                        a.kind,
                        a.id,
                        a.name,
                        if a.flags.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", a.flags.join(","))
                        }
                    );
                }
            }
        }
        VerbCommand::Assess { settings } => {
            let (findings, log) = p.assess(id, &props(settings)?)?;
            print_log(cli, &log);
            if cli.json {
                json(&findings)?;
            } else if findings.is_empty() {
                println!("no findings");
            } else {
                for f in findings {
                    println!(
                        "[{}] {} ({}): {}\n    {}\n    → {}",
                        f.severity,
                        f.title,
                        f.rule,
                        f.asset.unwrap_or_default(),
                        f.detail,
                        f.recommendation
                    );
                }
            }
        }
        VerbCommand::Backup {
            asset,
            options,
            tags,
        } => {
            let s = open(cli)?;
            let bar = Bar::new(cli);
            let cancel = cancel_on_ctrl_c();
            let out = p.backup(&s, id, asset, &props(options)?, tags, &bar, &cancel)?;
            print_log(cli, &out.log);
            let sn = &out.restore_point;
            return backup_outcome(cli.json, &out, &out.warnings, || {
                format!(
                    "restore point {} saved by {id}: {} items, {} read, {} new, consistency {}, {:.1} s",
                    sn.short_id,
                    sn.items.len(),
                    bytes(sn.bytes),
                    bytes(sn.new_bytes),
                    sn.consistency,
                    sn.seconds
                )
            });
        }
        VerbCommand::Restore {
            restore_point,
            target,
            options,
            plan_only,
        } => {
            let s = open(cli)?;
            let bar = Bar::new(cli);
            let cancel = cancel_on_ctrl_c();
            check_owner(&s, id, restore_point)?;
            let out = p.restore(
                &s,
                restore_point,
                target,
                &props(options)?,
                !plan_only,
                &bar,
                &cancel,
            )?;
            print_log(cli, &out.log);
            if cli.json {
                json(&out)?;
            } else {
                println!("plan:");
                for st in &out.plan.steps {
                    println!("  {}: {} — {}", st.id, st.title, st.detail);
                }
                for w in &out.plan.warnings {
                    println!("  warning: {w}");
                }
                match &out.report {
                    Some(r) => {
                        warnings(&r.warnings);
                        println!("restored {} to {target}", bytes(r.bytes));
                    }
                    None => println!("plan only: nothing was touched"),
                }
            }
        }
        VerbCommand::Verify {
            restore_point,
            options,
        } => {
            let s = open(cli)?;
            check_owner(&s, id, restore_point)?;
            let (r, log) = p.verify(&s, restore_point, &props(options)?)?;
            print_log(cli, &log);
            if cli.json {
                json(&r)?;
            } else {
                println!(
                    "{}",
                    if r.ok {
                        "verified: the restore point can come back"
                    } else {
                        "VERIFICATION FAILED"
                    }
                );
                for f in &r.findings {
                    println!("  [{}] {}: {}", f.severity, f.title, f.detail);
                }
            }
            return Ok(if r.ok { 0 } else { 14 });
        }
    }
    Ok(0)
}

/// Restore and verify go to the plugin that made the restore point; say so if another was named.
fn check_owner(s: &rehydra_api::Session, id: &str, spec: &str) -> Result<()> {
    let (_, snap) = s.resolve(spec, &rehydra_api::RestorePointFilter::default())?;
    if snap.plugin.id != id {
        bail!(rehydra_api::ApiError::new(
            rehydra_api::Code::InvalidInput,
            format!(
                "restore point {spec} was made by `{}`, not `{id}`",
                snap.plugin.id
            )
        ));
    }
    Ok(())
}

/// The settings a plugin declares, as `plugins info` lists them (given with `--set`).
fn print_settings(settings: &[rehydra_plugin_host::SettingDecl]) {
    use rehydra_plugin_host::{SettingType, SettingVerb};
    if settings.is_empty() {
        println!("  settings: none declared (--set values are passed unchecked)");
        return;
    }
    println!("  settings (--set NAME=VALUE):");
    for s in settings {
        let kind = match s.kind {
            SettingType::String => "text".to_string(),
            SettingType::Bool => "true/false".to_string(),
            SettingType::Integer => "number".to_string(),
            SettingType::Time => "date and time".to_string(),
            SettingType::Choice => s.choices.join("|"),
        };
        let verbs: Vec<&str> = s
            .verbs
            .iter()
            .map(|v| match v {
                SettingVerb::Discover => "discover",
                SettingVerb::Backup => "backup",
                SettingVerb::Restore => "restore",
            })
            .collect();
        let mut notes = vec![verbs.join(", ")];
        if s.required {
            notes.push("required".into());
        }
        if let Some(d) = &s.default {
            notes.push(format!("default {d}"));
        }
        if s.secret {
            notes.push("secret".into());
        }
        if let Some(by) = &s.found_by {
            notes.push(format!("values listed by --set {by}=<text> --plan-only"));
        }
        println!(
            "    {:<18} {:<20} {} ({})",
            s.name,
            kind,
            s.help,
            notes.join("; ")
        );
    }
}

/// `plugins target`.
#[derive(clap::Subcommand, Debug)]
pub enum TargetCommand {
    /// Add (or replace) a target: plugins granted `command:<program>@<name>` run that
    /// program there over SSH. The key and known-hosts files stay with Rehydra; plugins
    /// address the target by its name and never hold its key.
    Add {
        /// Name plugins use, e.g. hv01 (`local` means this machine and is not a target).
        name: String,
        /// SSH destination, `[user@]host` (Windows: OpenSSH server with PowerShell 7).
        #[arg(long)]
        ssh: String,
        /// SSH port.
        #[arg(long)]
        port: Option<u16>,
        /// Private key file for this target (default: your SSH configuration).
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Known-hosts file holding the target's host key (default: yours). Unknown
        /// host keys are always refused.
        #[arg(long)]
        known_hosts: Option<PathBuf>,
        /// The target's login shell: windows (cmd.exe, the Windows OpenSSH default) or posix.
        #[arg(long, value_enum, default_value_t = ShellArg::Windows)]
        shell: ShellArg,
        /// PowerShell executable on the target: pwsh (7) or powershell (5.1).
        #[arg(long, default_value = "pwsh")]
        powershell: String,
        /// The host is one node of a failover cluster: it is asked for its nodes now
        /// (Get-ClusterNode), which are pinned, and plugins reach them as <name>/<node>
        /// (the user in --ssh, same port, key, known-hosts file, shell), covered by the
        /// grant on <name>.
        #[arg(long)]
        cluster: bool,
        /// The cluster's nodes, instead of asking it (host names, comma-separated).
        #[arg(long, value_delimiter = ',', requires = "cluster")]
        nodes: Vec<String>,
    },
    /// Ask a cluster target for its nodes again (after one joined or left the cluster).
    /// Nodes it no longer lists are unpinned; new ones are shown and pinned only with
    /// --yes.
    Refresh {
        /// Target name.
        name: String,
        /// Pin the new nodes it lists (look at their names first).
        #[arg(long)]
        yes: bool,
    },
    /// Configured targets.
    List,
    /// Forget a target.
    Remove {
        /// Target name.
        name: String,
    },
}

/// A target's login shell.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ShellArg {
    /// Windows OpenSSH (cmd.exe).
    Windows,
    /// A POSIX shell.
    Posix,
}
