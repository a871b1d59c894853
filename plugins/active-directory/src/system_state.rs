//! System state of a domain controller, for disaster recovery: the DC's own backup tool
//! run through a command target, its output ingested into the restore point, and a
//! restore plan that explains how a DC comes back and refuses a point a DC must never
//! come back from.
//!
//! - `system-state=samba`: `samba-tool domain backup offline --targetdir <staging>` on
//!   the DC (`dc`, a command target; `local` for this machine). Offline backups lock the
//!   databases and are safe while Samba runs; they need no credential (an `online` backup
//!   would need the password on the command line, which the plugin never has). The new
//!   `samba-backup-<realm>-<time>.tar.bz2` is ingested through `path-map`.
//! - `system-state=wbadmin`: `wbadmin start systemstatebackup -backupTarget:<staging>
//!   -quiet` through PowerShell on the DC; `<staging>\WindowsImageBackup\<computer>` is
//!   ingested through `path-map`.
//!
//! Restore (`system-state-to=<folder>`) writes the backup into that folder; for Samba with
//! `new-server-name` it then runs `samba-tool domain backup restore` into
//! `<folder>/<name>`, which gives a DC of the restored domain, ready to start. A point
//! older than the domain's tombstone lifetime is refused: a DC restored from it would
//! bring back objects its partners have purged.

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::{clip, map_path, ps_quote};
use rehydra_plugin_sdk::{commands, engine, files, host};
use serde::{Deserialize, Serialize};

/// The system state's description of itself in a restore point.
pub const META: &str = "system-state.json";
/// Prefix of the system-state items.
pub const PREFIX: &str = "system-state/";

/// The DC's backup tool.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// `samba-tool domain backup offline`.
    Samba,
    /// `wbadmin start systemstatebackup`.
    Wbadmin,
}

/// `system-state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct StateMeta {
    pub tool: Tool,
    /// The command target the tool ran on.
    pub dc: String,
    /// The item holding the backup.
    pub item: String,
    /// Where the tool wrote it, as the DC names it.
    pub source: String,
    /// When the tool finished (seconds since the Unix epoch).
    pub taken: i64,
    pub tombstone_lifetime_days: u32,
    pub domain: String,
}

fn err(code: ErrorCode, m: impl Into<String>) -> Error {
    Error::new(code, m.into())
}

/// Which tool `system-state` names, if any.
pub fn requested(o: &[Property]) -> Result<Option<Tool>> {
    match setting(o, "system-state").unwrap_or("") {
        "" | "none" => Ok(None),
        "samba" => Ok(Some(Tool::Samba)),
        "wbadmin" => Ok(Some(Tool::Wbadmin)),
        other => Err(err(
            ErrorCode::InvalidInput,
            format!("system-state `{other}`: use samba (a Samba DC) or wbadmin (a Windows DC)"),
        )),
    }
}

/// A name the tool wrote that may become part of an item name and a path here.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

/// Take the DC's system state and store it; returns the meta for the restore point.
pub fn backup(o: &[Property], tool: Tool, domain: &str, tombstone_days: u32) -> Result<StateMeta> {
    let dc = setting_or(o, "dc", "local");
    let staging = require(
        o,
        "staging",
        "where the DC's backup tool writes: a folder on a Samba DC, a volume or share (E: or \\\\server\\share) for wbadmin",
    )?;
    let map = setting_or(o, "path-map", "");
    let (item, source) = match tool {
        Tool::Samba => samba_backup(o, dc, staging, map)?,
        Tool::Wbadmin => wbadmin_backup(dc, staging, map)?,
    };
    let meta = StateMeta {
        tool,
        dc: dc.to_string(),
        item,
        source,
        taken: rehydra_plugin_sdk::time::now(),
        tombstone_lifetime_days: tombstone_days,
        domain: domain.to_string(),
    };
    let body =
        serde_json::to_vec_pretty(&meta).map_err(|e| err(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(META, &body)?;
    Ok(meta)
}

fn samba_backup(o: &[Property], dc: &str, staging: &str, map: &str) -> Result<(String, String)> {
    if !staging.starts_with('/') {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("staging `{staging}`: a Samba DC writes to an absolute folder path"),
        ));
    }
    let here = map_path(map, staging)?;
    let before = archives(&here)?;
    let mut args: Vec<String> = ["domain", "backup", "offline", "--targetdir", staging]
        .map(String::from)
        .to_vec();
    if let Some(conf) = setting(o, "samba-config").filter(|c| !c.is_empty()) {
        args.extend(["-s".to_string(), conf.to_string()]);
    }
    host::progress(0, 0, &format!("samba-tool domain backup offline on {dc}"));
    let r = commands::run(dc, "samba-tool", &args)?;
    if r.status != 0 {
        return Err(err(
            ErrorCode::Failed,
            format!(
                "{dc}: samba-tool domain backup offline failed (exit {}): {}",
                r.status,
                clip(&String::from_utf8_lossy(&r.stderr), 400)
            ),
        ));
    }
    let new: Vec<String> = archives(&here)?
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    let [name] = new.as_slice() else {
        return Err(err(
            ErrorCode::Failed,
            format!(
                "{dc}: samba-tool finished but {} new backup archives are in {here} (expected one)",
                new.len()
            ),
        ));
    };
    let item = format!("{PREFIX}{name}");
    let s = engine::ingest_file(&item, &format!("{}/{name}", here.trim_end_matches('/')))?;
    host::info(&format!(
        "system state of {dc}: {name} ({} bytes); it holds the domain's password hashes and stays in {staging}: remove it there once the backup is copied off",
        s.size
    ));
    Ok((item, format!("{}/{name}", staging.trim_end_matches('/'))))
}

/// Names of the Samba backup archives in `dir` (none when it does not exist yet).
fn archives(dir: &str) -> Result<Vec<String>> {
    let entries = match files::list_dir(dir) {
        Ok(e) => e,
        Err(e) if e.code == ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .into_iter()
        .filter(|e| {
            e.kind == files::EntryKind::File
                && e.name.starts_with("samba-backup-")
                && e.name.ends_with(".tar.bz2")
                && plain_name(&e.name)
        })
        .map(|e| e.name)
        .collect())
}

fn wbadmin_backup(dc: &str, staging: &str, map: &str) -> Result<(String, String)> {
    let script = format!(
        "$ErrorActionPreference = 'Stop'\n\
         $out = & wbadmin start systemstatebackup ('-backupTarget:' + {}) -quiet 2>&1\n\
         if ($LASTEXITCODE -ne 0) {{ [Console]::Error.WriteLine(($out | Out-String)); exit $LASTEXITCODE }}\n\
         [pscustomobject]@{{ computer = $env:COMPUTERNAME }} | ConvertTo-Json -Compress",
        ps_quote(staging)
    );
    host::progress(0, 0, &format!("wbadmin start systemstatebackup on {dc}"));
    let out = rehydra_plugin_sdk::windows::powershell(dc, &script, "wbadmin systemstatebackup")?;
    #[derive(Deserialize)]
    struct Done {
        computer: String,
    }
    let done: Done = serde_json::from_slice(&out).map_err(|e| {
        err(
            ErrorCode::Failed,
            format!("{dc}: the answer after wbadmin is not the expected JSON ({e})"),
        )
    })?;
    if !plain_name(&done.computer) || done.computer.len() > 63 {
        return Err(err(
            ErrorCode::Failed,
            format!(
                "{dc}: the computer name {:?} is not a host name",
                clip(&done.computer, 80)
            ),
        ));
    }
    let on_dc = rehydra_plugin_sdk::windows::join(
        staging,
        &format!("WindowsImageBackup\\{}", done.computer),
    );
    let here = map_path(map, &on_dc)?;
    let item = format!("{PREFIX}WindowsImageBackup/{}", done.computer);
    let s = engine::ingest_path(&item, &here)?;
    host::info(&format!(
        "system state of {} ({dc}): {on_dc}, {} bytes",
        done.computer, s.size
    ));
    Ok((item, on_dc))
}

/// The restore plan of a system state to `to`.
pub fn plan(
    o: &[Property],
    to: &str,
    point_time: i64,
    now: i64,
    live_tombstone: Option<u32>,
) -> Result<RestorePlan> {
    let meta = StateMeta::read()?;
    let mut plan = empty_plan();
    // the point's own word is not trusted to relax the rule: the live forest's lifetime
    // when it answers, else at most the usual 180 days
    let tombstone = match live_tombstone {
        Some(live) => live.min(meta.tombstone_lifetime_days),
        None => {
            plan.warnings.push(format!(
                "the directory did not answer: the tombstone lifetime is taken as {} days (the restore point's, at most 180)",
                meta.tombstone_lifetime_days.min(180)
            ));
            meta.tombstone_lifetime_days.min(180)
        }
    };
    let taken = meta.taken.max(point_time);
    if taken > now + 86_400 {
        plan.blockers.push(
            "this system state says it was taken in the future: the clock of the machine that wrote it, or the restore point, is wrong".into(),
        );
    }
    let age_days = (now - meta.taken.min(point_time).max(0)) / 86_400;
    check_age(&mut plan, age_days, tombstone);
    match files::stat(to) {
        _ if !to.starts_with('/') => plan.blockers.push(format!(
            "--target `{to}` must be an absolute folder path on this machine"
        )),
        Ok(e) if e.kind == files::EntryKind::Directory => {}
        Ok(_) => plan.blockers.push(format!(
            "--target {to} is not a folder (a link is not followed): give an existing folder only root can write to"
        )),
        Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
        Err(e) => plan.blockers.push(format!(
            "--target {to}: {}; create the folder first (only root should write to it: the backup holds the domain's secrets)",
            e.message
        )),
    }
    let want = match meta.tool {
        Tool::Samba => ItemKind::Stream,
        Tool::Wbadmin => ItemKind::Tree,
    };
    let kind_ok = engine::items()?
        .iter()
        .any(|i| i.name == meta.item && i.kind == want);
    if !kind_ok {
        plan.blockers.push(format!(
            "{} is not in this restore point as the {} the {META} says",
            meta.item,
            if want == ItemKind::Stream {
                "file"
            } else {
                "folder"
            }
        ));
    }
    let dest = meta.destination(to);
    plan.steps.push(Step::new(
        "write",
        "Write the system-state backup",
        format!(
            "{} ({} backup of {} taken on {}) to {dest}; nothing there is overwritten",
            meta.item,
            match meta.tool {
                Tool::Samba => "samba-tool",
                Tool::Wbadmin => "wbadmin",
            },
            meta.domain,
            meta.dc
        ),
    ));
    if files::stat(&dest).is_ok() {
        plan.blockers.push(format!(
            "{dest} already exists: choose another folder, nothing is overwritten"
        ));
    }
    match meta.tool {
        Tool::Samba => samba_steps(o, &mut plan, to, meta.name())?,
        Tool::Wbadmin => wbadmin_steps(&mut plan, to),
    }
    plan.steps.push(Step::new(
        "how-dcs-come-back",
        "How a domain controller comes back",
        HOW_DCS_COME_BACK.to_string(),
    ));
    Ok(plan)
}

/// What an admin needs to know before bringing a DC back from system state.
pub const HOW_DCS_COME_BACK: &str = "Non-authoritative restore (the normal case): the DC comes back as it was at this point and then takes every newer change from its replication partners, so objects deleted since stay deleted. Authoritative restore (to bring deleted objects back on every DC): after a non-authoritative restore and before leaving Directory Services Restore Mode, mark the objects with ntdsutil \"authoritative restore\" so their restored copies win replication; where the Recycle Bin or a tombstone still holds them, restore the objects instead (this plugin's object restore, with the same SID). USN rollback: never bring a DC back by copying its disk, VM or checkpoint; only its own restore tool gives it a new invocation ID, otherwise its partners ignore its changes and it is quarantined. A point older than the tombstone lifetime must never rejoin the domain.";

/// Refuse a point older than the tombstone lifetime; warn when it is close.
pub fn check_age(plan: &mut RestorePlan, age_days: i64, tombstone_days: u32) {
    let t = i64::from(tombstone_days);
    if age_days >= t {
        plan.blockers.push(format!(
            "this system state is {age_days} days old and the domain's tombstone lifetime is {t} days: a domain controller restored from it would bring back objects its partners have already purged (lingering objects) and must never rejoin the domain; use a newer restore point, or build a new DC and let it replicate"
        ));
    } else if age_days * 4 >= t * 3 {
        plan.warnings.push(format!(
            "this system state is {age_days} days old, close to the tombstone lifetime ({t} days): bring the DC back and let it replicate within {} days",
            t - age_days
        ));
    }
}

fn samba_steps(o: &[Property], plan: &mut RestorePlan, to: &str, archive: &str) -> Result<()> {
    let Some(server) = setting(o, "new-server-name").filter(|s| !s.is_empty()) else {
        plan.steps.push(Step::new(
            "restore-dc",
            "Bring the DC back (by hand)",
            format!(
                "On the machine that becomes the DC: samba-tool domain backup restore --backup-file {to}/{archive} --targetdir <empty folder> --newservername <new DC name>; or give new-server-name and this restore runs it here"
            ),
        ));
        return Ok(());
    };
    let netbios = server.len() <= 15
        && server
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !server.starts_with('-');
    if !netbios {
        plan.blockers.push(format!(
            "new-server-name `{}`: a DC name has 1 to 15 letters, digits or hyphens",
            clip(server, 40)
        ));
        return Ok(());
    }
    let dir = format!("{}/{server}", to.trim_end_matches('/'));
    if files::stat(&dir).is_ok() {
        plan.blockers.push(format!(
            "{dir} already exists: samba-tool restores into a new folder"
        ));
    }
    // both tools must be granted and present before anything is written
    for tool in ["python3", "samba-tool"] {
        match commands::run("local", tool, &["--version".to_string()]) {
            Ok(r) if r.status == 0 => {}
            Ok(r) => plan.blockers.push(format!(
                "{tool} --version fails on this machine (exit {})",
                r.status
            )),
            Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
            Err(e) => plan
                .blockers
                .push(format!("{tool} cannot run here: {}", e.message)),
        }
    }
    plan.steps.push(Step {
        depends_on: vec!["write".into()],
        ..Step::new(
            "restore-dc",
            "Restore the domain into a new DC",
            format!(
                "samba-tool domain backup restore --backup-file {to}/{archive} --targetdir {dir} --newservername {server}: a DC named {server} of the restored domain, with a new invocation ID. This is for a domain whose DCs are lost: keep every old DC of the domain off the network while it runs, then join new DCs to it. Start it with: samba -s {dir}/etc/smb.conf"
            ),
        )
    });
    Ok(())
}

fn wbadmin_steps(plan: &mut RestorePlan, to: &str) {
    plan.steps.push(Step {
        depends_on: vec!["write".into()],
        ..Step::new(
            "restore-dc",
            "Bring the DC back (on the DC, by hand)",
            format!(
                "Copy {}/WindowsImageBackup to a volume or share the DC reads, start the DC in Directory Services Restore Mode, list the versions with wbadmin get versions -backupTarget:<that volume>, then run wbadmin start systemstaterecovery -version:<version> -backupTarget:<that volume> and restart. Rehydra does not boot a DC into DSRM.",
                to.trim_end_matches('/')
            ),
        )
    });
}

/// Write the system state, and for Samba with `new-server-name` restore the DC.
pub fn restore(o: &[Property], to: &str, warnings: Vec<String>) -> Result<RestoreReport> {
    let mut report = RestoreReport { bytes: 0, warnings };
    let meta = StateMeta::read()?;
    // the planned destination, a new file or folder (the plan checked it is free)
    report.bytes += engine::restore_item(&meta.item, &meta.destination(to), false)?;
    let archive = meta.name();
    if let (Tool::Samba, Some(server)) = (
        meta.tool,
        setting(o, "new-server-name").filter(|s| !s.is_empty()),
    ) {
        let dir = format!("{}/{server}", to.trim_end_matches('/'));
        check_archive(&format!("{}/{archive}", to.trim_end_matches('/')))?;
        let args: Vec<String> = [
            "domain",
            "backup",
            "restore",
            "--backup-file",
            &format!("{}/{archive}", to.trim_end_matches('/')),
            "--targetdir",
            &dir,
            "--newservername",
            server,
        ]
        .map(String::from)
        .to_vec();
        let r = commands::run("local", "samba-tool", &args)?;
        if r.status != 0 {
            return Err(err(
                ErrorCode::Failed,
                format!(
                    "samba-tool domain backup restore failed (exit {}): {}; the backup is in {to}/{archive}",
                    r.status,
                    clip(&String::from_utf8_lossy(&r.stderr), 600)
                ),
            ));
        }
        host::info(&format!(
            "DC {server} of {} restored into {dir}; start it with: samba -s {dir}/etc/smb.conf",
            meta.domain
        ));
    }
    Ok(report)
}

/// The check `check_archive` runs with Python's `tarfile`, the module samba-tool extracts
/// with (without a filter, as root): what it passes is exactly what samba-tool will
/// unpack. Archives inside the archive (`sysvol.tar.gz`, which samba-tool unpacks too)
/// are checked the same way, three levels deep at most.
const ARCHIVE_CHECK: &str = r#"
import sys, tarfile
def bad(why):
    sys.stderr.write(why[:400] + "\n")
    sys.exit(3)
def check(t, where, depth):
    n = 0
    for m in t:
        n += 1
        name = m.name
        shown = repr(name)[:200]
        if not (m.isreg() or m.isdir()):
            bad("member %s of %s is a link or special file" % (shown, where))
        if name.startswith("/") or "\\" in name or ".." in name.split("/") or any(ord(c) < 32 for c in name):
            bad("member %s of %s leads outside the folder" % (shown, where))
        if m.isreg() and name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
            if depth >= 3:
                bad("%s nests archives too deep" % where)
            with tarfile.open(fileobj=t.extractfile(m), mode="r|*") as inner:
                check(inner, shown, depth + 1)
    if n == 0:
        bad("%s is empty" % where)
try:
    with tarfile.open(sys.argv[1], mode="r|*") as t:
        check(t, "the archive", 0)
except (tarfile.TarError, OSError, EOFError) as e:
    bad("it cannot be read as an archive: %s" % e)
"#;

/// Refuse an archive samba-tool must not extract: it unpacks it (and the `sysvol.tar.gz`
/// inside) as it is, and a restore point may come from another host. Only folders and
/// regular files with relative names free of `..` pass; links, devices and absolute names
/// are refused. Runs `python3` (`command:python3@local`), whose `tarfile` reads the
/// archive the way samba-tool's will.
fn check_archive(path: &str) -> Result<()> {
    let args = ["-I", "-c", ARCHIVE_CHECK, path].map(String::from);
    let r = commands::run("local", "python3", &args)?;
    if r.status == 0 {
        return Ok(());
    }
    Err(err(
        ErrorCode::InvalidInput,
        format!(
            "{path} is not restored as a DC: {}",
            clip(&String::from_utf8_lossy(&r.stderr), 400)
        ),
    ))
}

impl StateMeta {
    /// The last component of the item's name: the archive, or the computer's folder.
    pub fn name(&self) -> &str {
        self.item.rsplit('/').next().unwrap_or_default()
    }

    /// Where a restore to the folder `to` puts the backup.
    pub fn destination(&self, to: &str) -> String {
        let name = self.name();
        let to = to.trim_end_matches('/');
        match self.tool {
            Tool::Samba => format!("{to}/{name}"),
            Tool::Wbadmin => format!("{to}/WindowsImageBackup/{name}"),
        }
    }

    /// `system-state.json` of the restore point being restored (written by any host).
    pub fn read() -> Result<Self> {
        let m: Self = serde_json::from_slice(&engine::read_document(META)?).map_err(|e| {
            err(
                ErrorCode::InvalidInput,
                format!("{META} of the restore point is damaged: {e}"),
            )
        })?;
        let plain = m
            .item
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.split('/').all(plain_name));
        if !plain {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "{META} names an item outside {PREFIX}: {:?}",
                    clip(&m.item, 120)
                ),
            ));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_older_than_the_tombstone_lifetime_is_refused() {
        let mut p = empty_plan();
        check_age(&mut p, 180, 180);
        assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
        assert!(p.blockers[0].contains("must never rejoin"));
        let mut p = empty_plan();
        check_age(&mut p, 140, 180);
        assert!(p.blockers.is_empty());
        assert_eq!(p.warnings.len(), 1);
        let mut p = empty_plan();
        check_age(&mut p, 3, 180);
        assert!(p.blockers.is_empty() && p.warnings.is_empty());
    }

    #[test]
    fn names_from_the_dc_are_plain() {
        assert!(plain_name(
            "samba-backup-test.lan-2026-12-02T14-30-00.1.tar.bz2"
        ));
        assert!(plain_name("DC01"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "a b", "x\u{1b}"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }
}
