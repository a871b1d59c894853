//! `rehydra assess`: the read-only sweep and its report, and `assess diff`.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use rehydra_api::assessment::{self, Assessment, Labels, Logo, Options, PluginScope, Thresholds};

use crate::args::Cli;
use crate::commands::{context, open, open_second};
use crate::output::json;

/// `assess`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AssessArgs {
    #[command(subcommand)]
    pub command: Option<AssessCommand>,
    /// Sweep this plugin (repeat it for more); default: every installed plugin. A plugin
    /// that lacks a required setting or any grant is listed as not swept.
    #[arg(long = "plugin", value_name = "ID")]
    pub plugins: Vec<String>,
    /// A discovery setting of one plugin, as ID:NAME=VALUE (repeat it), e.g.
    /// `hyperv-vm:nodes=hv01,hv02` or `keyvault:subscriptions=<id>`; `rehydra plugins
    /// info ID` lists what a plugin takes.
    #[arg(long = "set", value_name = "ID:NAME=VALUE")]
    pub settings: Vec<String>,
    /// Say what would run (plugins, settings, grants) and stop.
    #[arg(long)]
    pub plan_only: bool,
    /// Write assessment.json, findings.csv and report.html into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also print report.pdf (with headless Chromium, Chrome or Edge; REHYDRA_BROWSER
    /// names another).
    #[arg(long, requires = "out")]
    pub pdf: bool,
    /// Replace report files already in --out.
    #[arg(long, requires = "out")]
    pub overwrite: bool,
    /// The customer's name, on the report.
    #[arg(long, default_value = "")]
    pub customer: String,
    /// The consultant's name (and firm), on the report.
    #[arg(long, default_value = "")]
    pub consultant: String,
    /// What was assessed, in your words, on the report.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// A PNG or JPEG logo for the report (at most 512 KiB).
    #[arg(long, value_name = "FILE")]
    pub logo: Option<PathBuf>,
    /// Recovery point objective in hours: older newest points miss it.
    #[arg(long, default_value_t = 24.0)]
    pub rpo_hours: f64,
    /// Join this repository too (repeat it), e.g. the offsite copy: its restore points
    /// and copies count. Opened with --join-password-file, REHYDRA_COPY_PASSWORD or a
    /// prompt (the repository of -r keeps its own password).
    #[arg(long = "join", value_name = "LOCATION")]
    pub join: Vec<String>,
    /// The password file of the --join repositories.
    #[arg(long, value_name = "FILE", requires = "join")]
    pub join_password_file: Option<PathBuf>,
    /// Flag a repository without a successful restore in this many days.
    #[arg(long, default_value_t = 30)]
    pub restore_test_days: u32,
    /// Retention, in days, to estimate repository growth for.
    #[arg(long, default_value_t = 30)]
    pub retention_days: u32,
    /// Daily change to assume where no repository measures it, in percent.
    #[arg(long, default_value_t = 3.0)]
    pub daily_change_percent: f64,
}

/// `assess` subcommands.
#[derive(Subcommand, Debug)]
pub enum AssessCommand {
    /// Compare two assessments (their assessment.json files): findings resolved, new
    /// and changed in severity, by their stable ids, and how score and coverage moved.
    Diff {
        /// The older assessment.json.
        before: PathBuf,
        /// The newer assessment.json.
        after: PathBuf,
    },
}

/// `ID:NAME=VALUE` settings, by plugin.
fn scopes(settings: &[String]) -> Result<Vec<PluginScope>> {
    let mut out: Vec<PluginScope> = Vec::new();
    for s in settings {
        let (id, kv) = s
            .split_once(':')
            .with_context(|| format!("`{s}` is not ID:NAME=VALUE (the plugin id first)"))?;
        let p = crate::plugins::props(std::slice::from_ref(&kv.to_string()))?;
        match out.iter_mut().find(|x| x.plugin == id) {
            Some(x) => x.settings.extend(p),
            None => out.push(PluginScope {
                plugin: id.to_string(),
                settings: p,
            }),
        }
    }
    Ok(out)
}

fn options(a: &AssessArgs) -> Result<Options> {
    if a.rpo_hours.is_nan()
        || a.rpo_hours <= 0.0
        || !(0.0..=100.0).contains(&a.daily_change_percent)
    {
        bail!("--rpo-hours must be above 0 and --daily-change-percent from 0 to 100");
    }
    let logo = match &a.logo {
        Some(f) => Some(Logo::from_bytes(&assessment::read_at_most(
            f,
            Logo::MAX as u64,
            "a logo",
        )?)?),
        None => None,
    };
    Ok(Options {
        plugins: a.plugins.clone(),
        settings: scopes(&a.settings)?,
        thresholds: Thresholds {
            rpo_hours: a.rpo_hours,
            restore_test_days: a.restore_test_days,
            retention_days: a.retention_days,
            daily_change_percent: a.daily_change_percent,
        },
        labels: Labels {
            customer: a.customer.clone(),
            consultant: a.consultant.clone(),
            scope: a.scope.clone(),
            logo,
        },
    })
}

/// Run `assess`; returns the exit code: 3 when part of the estate could not be read.
pub fn run(cli: &Cli, a: &AssessArgs) -> Result<i32> {
    if let Some(AssessCommand::Diff { before, after }) = &a.command {
        return diff(cli, before, after);
    }
    let opts = options(a)?;
    // refusals that would otherwise come only after a long sweep
    if let Some(dir) = &a.out {
        assessment::report::check(dir, a.pdf, a.overwrite)?;
    }
    let p = crate::plugins::platform(cli)?;
    let plan = assessment::plan(&p, &opts)?;
    if a.plan_only || !cli.quiet {
        if a.plan_only && cli.json {
            json(&plan)?;
            return Ok(0);
        }
        eprintln!(
            "the sweep runs each plugin's discover and assess in read-only calls: the host refuses writes over HTTP and LDAP and to files (commands and SQL queries run as granted)"
        );
        for x in &plan {
            let mark = if x.runs { "will sweep" } else { "skips" };
            eprintln!(
                "  {mark} {} {}: {}",
                x.plugin,
                t(x.version.as_deref().unwrap_or("")),
                t(&x.note)
            );
            if x.runs {
                for s in &x.settings {
                    eprintln!("      {}={}", t(&s.name), t(&s.value));
                }
                eprintln!("      may reach: {}", x.grants.join(", "));
            }
        }
        for r in std::iter::once(&cli.repo)
            .filter(|r| !r.is_empty())
            .chain(&a.join)
        {
            eprintln!("  joins repository {r}");
        }
        if a.plan_only {
            return Ok(0);
        }
    }
    let mut sessions = Vec::new();
    if !cli.repo.is_empty() {
        sessions.push(open(cli)?);
    }
    for location in &a.join {
        sessions.push(open_second(
            cli,
            location,
            a.join_password_file.as_deref(),
            "joined repository",
            "--join-password-file",
        )?);
    }
    let joined: Vec<&rehydra_api::Session> = sessions.iter().collect();
    let quiet = cli.quiet;
    let report = assessment::run(&p, &context(cli), &joined, &opts, &|step| {
        if !quiet {
            eprintln!("{step}");
        }
    })?;
    // a plugin that failed, or one named that was not swept: part of the estate is missing
    let partial = report
        .sweep
        .iter()
        .any(|s| s.status == "failed" || (s.status == "skipped" && a.plugins.contains(&s.plugin)));
    if cli.json {
        json(&report)?;
    } else {
        print(&report);
    }
    if let Some(dir) = &a.out {
        for w in assessment::report::write(&report, dir, a.pdf, a.overwrite)? {
            if !cli.json {
                println!("wrote {}", w.display());
            }
        }
    }
    Ok(if partial { 3 } else { 0 })
}

/// Text from plugins or a given file, safe for a terminal: control characters shown as
/// spaces (assessments hold them cleaned; `assess diff` reads files anyone may have made).
fn t(s: &str) -> String {
    assessment::rules::clean(s, 2000).replace('\n', " ")
}

fn print(r: &Assessment) {
    let s = &r.summary;
    let c = &s.coverage;
    println!(
        "score {} (grade {}): {} findings, {} critical, {} high",
        s.score,
        s.grade,
        r.findings.len(),
        s.by_severity.get("critical").copied().unwrap_or(0),
        s.by_severity.get("high").copied().unwrap_or(0)
    );
    if r.repositories.is_empty() {
        println!(
            "{} assets; protection not judged (no repository joined: add -r)",
            c.unknown
        );
    } else {
        println!(
            "{} protected, {} stale, {} unprotected",
            c.protected, c.stale, c.unprotected
        );
    }
    for w in r.sweep.iter().filter(|w| w.status != "swept") {
        println!("{} {}: {}", w.status, w.plugin, t(&w.detail));
    }
    println!("what to do first:");
    for (i, x) in s.top_actions.iter().enumerate() {
        println!(
            "  {}. [{}] {}: {}",
            i + 1,
            x.severity,
            x.title,
            x.recommendation
        );
    }
    for f in &r.findings {
        println!(
            "{:<8} {:<32} {:<24} {}",
            t(&f.severity),
            t(&f.rule),
            t(f.asset_name.as_deref().unwrap_or("-")),
            t(&f.title)
        );
    }
}

fn diff(cli: &Cli, before: &std::path::Path, after: &std::path::Path) -> Result<i32> {
    let d = assessment::diff::diff(&Assessment::read(before)?, &Assessment::read(after)?);
    if cli.json {
        json(&d)?;
        return Ok(0);
    }
    println!(
        "score {} -> {}; protected {} -> {}, unprotected {} -> {}",
        d.score.0,
        d.score.1,
        d.coverage.0.protected,
        d.coverage.1.protected,
        d.coverage.0.unprotected,
        d.coverage.1.unprotected
    );
    for f in &d.resolved {
        println!(
            "resolved  {:<8} {} {}",
            t(&f.severity),
            t(&f.id),
            t(&f.title)
        );
    }
    for f in &d.new {
        println!(
            "new       {:<8} {} {}",
            t(&f.severity),
            t(&f.id),
            t(&f.title)
        );
    }
    for c in &d.changed {
        println!(
            "changed   {} -> {} {} {}",
            t(&c.was),
            t(&c.finding.severity),
            t(&c.finding.id),
            t(&c.finding.title)
        );
    }
    println!("{} unchanged", d.unchanged);
    Ok(0)
}
