//! `chain.json`, the document every restore point holds: the database, its files, and
//! every backup of the chain the point keeps (the full it starts from, and the
//! differentials and logs after it), each with the item that holds it and its LSNs as
//! msdb recorded them. Read back from a repository it is hostile input: checked whole
//! before anything uses it.

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};
use serde::{Deserialize, Serialize};

use crate::chain::{Backup, Kind, Lsn, Plan};
use crate::tsql::{DbFile, parse_time, show_time};

/// Item name of the chain document.
pub const CHAIN_ITEM: &str = "chain.json";
/// Most backups one chain keeps (a log every 5 minutes for over a month).
pub const BACKUPS_MAX: usize = 10_000;

/// The chain a restore point keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainDoc {
    pub format: u32,
    pub server: String,
    pub database: String,
    pub recovery: String,
    pub files: Vec<DbFile>,
    pub backups: Vec<Kept>,
    /// The availability-group database id (`group_database_id`) of a database in a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One backup of the chain, and the item of the restore point that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    pub item: String,
    pub kind: String,
    pub set: String,
    pub first_lsn: String,
    pub last_lsn: String,
    pub checkpoint_lsn: String,
    pub database_backup_lsn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential_base_lsn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_fork: Option<String>,
    pub start: String,
    pub finish: String,
    pub copy_only: bool,
    /// Where SQL Server wrote it.
    pub device: String,
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Full => "full",
        Kind::Diff => "diff",
        Kind::Log => "log",
    }
}

/// A name or value a plan or script may show: no control characters, at most 1 KiB.
fn text_ok(t: &str) -> bool {
    !t.chars().any(char::is_control) && t.len() <= 1024
}

impl Kept {
    /// The texts a plan or script shows of it.
    fn texts(&self) -> impl Iterator<Item = &String> {
        [
            &self.kind,
            &self.set,
            &self.start,
            &self.finish,
            &self.device,
        ]
        .into_iter()
        .chain(self.fork.as_ref())
        .chain(self.first_fork.as_ref())
    }

    /// Whether every text of it may be kept in a chain (see [`ChainDoc::check_texts`]).
    pub fn texts_ok(&self) -> bool {
        self.texts().all(|t| text_ok(t))
    }

    pub fn new(item: &str, b: &Backup, device: &str) -> Self {
        Self {
            item: item.into(),
            kind: kind_name(b.kind).into(),
            set: b.id.clone(),
            first_lsn: b.first_lsn.to_string(),
            last_lsn: b.last_lsn.to_string(),
            checkpoint_lsn: b.checkpoint_lsn.to_string(),
            database_backup_lsn: b.database_backup_lsn.to_string(),
            differential_base_lsn: b.differential_base_lsn.map(|l| l.to_string()),
            fork: b.fork.clone(),
            first_fork: b.first_fork.clone(),
            start: show_time(b.start),
            finish: show_time(b.finish),
            copy_only: b.copy_only,
            device: device.into(),
        }
    }

    /// As the chain rules see it (ours: the repository holds it).
    pub fn backup(&self) -> Result<Backup> {
        let bad = |what: &str| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("chain.json: backup `{}` has a malformed {what}", self.item),
            )
        };
        let lsn = |s: &str, what: &str| s.parse::<Lsn>().map_err(|_| bad(what));
        Ok(Backup {
            id: self.item.clone(),
            kind: match self.kind.as_str() {
                "full" => Kind::Full,
                "diff" => Kind::Diff,
                "log" => Kind::Log,
                _ => return Err(bad("kind")),
            },
            first_lsn: lsn(&self.first_lsn, "first LSN")?,
            last_lsn: lsn(&self.last_lsn, "last LSN")?,
            checkpoint_lsn: lsn(&self.checkpoint_lsn, "checkpoint LSN")?,
            database_backup_lsn: lsn(&self.database_backup_lsn, "database backup LSN")?,
            differential_base_lsn: self
                .differential_base_lsn
                .as_deref()
                .map(|l| lsn(l, "differential base LSN"))
                .transpose()?,
            fork: self.fork.clone(),
            first_fork: self.first_fork.clone(),
            start: parse_time(&self.start).ok_or_else(|| bad("start time"))?,
            finish: parse_time(&self.finish).ok_or_else(|| bad("finish time"))?,
            copy_only: self.copy_only,
            ours: true,
        })
    }
}

impl ChainDoc {
    /// Parse and check a chain document read from a repository.
    ///
    /// # Errors
    /// Not JSON of this shape, an unknown format, a malformed backup, item names that
    /// repeat or lie outside `backups/`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let doc: Self = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("chain.json is damaged: {e}"),
            )
        })?;
        if doc.format != 1 {
            return Err(Error::new(
                ErrorCode::Unsupported,
                format!(
                    "chain.json is of format {}; this plugin reads format 1",
                    doc.format
                ),
            ));
        }
        if doc.backups.len() > BACKUPS_MAX {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "chain.json lists too many backups",
            ));
        }
        doc.check_texts()?;
        let mut seen = std::collections::HashSet::new();
        for k in &doc.backups {
            let name_ok = k.item.strip_prefix("backups/").is_some_and(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
            if !name_ok || !seen.insert(k.item.clone()) {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "chain.json names item `{}` twice or outside backups/",
                        k.item.chars().take(80).collect::<String>()
                    ),
                ));
            }
            k.backup()?;
        }
        Ok(doc)
    }

    /// Every text a plan or script shows is free of control characters, and times read
    /// back as what they say; run before writing a chain too, so that a point is never
    /// written that a later backup or restore cannot read (`$(` is allowed: scripts run
    /// over TDS, and a `restore.sql` holding it says to run sqlcmd with `-x`).
    ///
    /// # Errors
    /// `invalid-input` naming the text.
    pub fn check_texts(&self) -> Result<()> {
        let texts = [&self.server, &self.database, &self.recovery]
            .into_iter()
            .chain(self.group.as_ref())
            .chain(
                self.files
                    .iter()
                    .flat_map(|f| [&f.logical, &f.kind, &f.physical]),
            )
            .chain(self.backups.iter().flat_map(Kept::texts));
        for t in texts {
            if !text_ok(t) {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "chain.json holds a name or value with control characters, or over 1 KiB: {:?}",
                        t.chars().take(80).collect::<String>()
                    ),
                ));
            }
        }
        for k in &self.backups {
            for t in [&k.start, &k.finish] {
                if parse_time(t).map(show_time).as_deref() != Some(t.as_str()) {
                    return Err(Error::new(
                        ErrorCode::InvalidInput,
                        format!(
                            "chain.json holds `{}` where a time is expected",
                            t.chars().take(40).collect::<String>()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The backups as the chain rules see them.
    pub fn history(&self) -> Result<Vec<Backup>> {
        self.backups.iter().map(Kept::backup).collect()
    }

    /// The backups a restore sequence uses, in restore order.
    pub fn steps(&self, plan: &Plan) -> Vec<&Kept> {
        plan.steps
            .iter()
            .filter_map(|&i| self.backups.get(i))
            .collect()
    }

    /// The chain a new backup of `database` adds to: `prev` for a differential or log, a
    /// new one (its files read by `files`) for a full or when there is no previous chain.
    /// The backups it already keeps are carried forward into the new restore point
    /// (reported as step `step.0` of `step.1`); its recovery model becomes `recovery`.
    ///
    /// # Errors
    /// Reading the files, or carrying a backup forward.
    pub fn continued(
        kind: Kind,
        prev: Option<ChainDoc>,
        server: String,
        database: &str,
        recovery: &str,
        files: impl FnOnce() -> Result<Vec<DbFile>>,
        step: (u64, u64),
    ) -> Result<ChainDoc> {
        let mut doc = match (kind, prev) {
            (Kind::Full, _) | (_, None) => ChainDoc {
                format: 1,
                server,
                database: database.into(),
                recovery: recovery.into(),
                files: files()?,
                backups: Vec::new(),
                group: None,
            },
            (_, Some(p)) => p,
        };
        doc.carry_forward(step)?;
        recovery.clone_into(&mut doc.recovery);
        Ok(doc)
    }

    /// Carry the backups the chain keeps forward into the new restore point without
    /// reading them again (reported as step `step.0` of `step.1`).
    ///
    /// # Errors
    /// Carrying a backup forward.
    pub fn carry_forward(&self, step: (u64, u64)) -> Result<()> {
        host::progress(
            step.0,
            step.1,
            &format!(
                "keeping the {} earlier backup(s) of the chain",
                self.backups.len()
            ),
        );
        for k in &self.backups {
            engine::carry_forward(&k.item, &k.item)?;
        }
        Ok(())
    }
}

/// A verify finding that the chain kept in a restore point cannot serve.
pub fn chain_finding(asset: &str, rule: &str, title: String, detail: String) -> Finding {
    Finding::about(
        asset,
        rule,
        Severity::High,
        title,
        detail,
        "take a full backup (level=full) so a new, whole chain starts",
    )
}

/// What verify checks for every SQL plugin: each backup the point's chain names is an
/// item of the point with content (`<prefix>.missing-backup`), and the chain reaches its
/// last backup (`<prefix>.chain-unusable`). The restore sequence comes back when it does.
///
/// # Errors
/// The point's items cannot be listed, or a backup of the chain is malformed.
pub fn verify_chain(
    doc: &ChainDoc,
    asset: &str,
    prefix: &str,
) -> Result<(VerifyReport, Option<Plan>)> {
    let items = engine::items()?;
    let mut findings = Vec::new();
    for k in &doc.backups {
        if !items.iter().any(|i| i.name == k.item && i.size > 0) {
            findings.push(chain_finding(
                asset,
                &format!("{prefix}.missing-backup"),
                format!("{} is not in the restore point", k.item),
                format!(
                    "chain.json names {} backup {} but the point holds no such item",
                    k.kind, k.item
                ),
            ));
        }
    }
    let plan = match crate::chain::plan(&doc.history()?, None, true) {
        Ok(p) => Some(p),
        Err(why) => {
            findings.push(chain_finding(
                asset,
                &format!("{prefix}.chain-unusable"),
                "the chain cannot be restored".into(),
                why.describe(),
            ));
            None
        }
    };
    Ok((VerifyReport::of(findings), plan))
}

/// The chain the previous restore point of the asset keeps, when `ours` says it is this
/// database's (each plugin names its instances its own way). A full backup starts a new
/// chain, so for `kind` full a previous chain that cannot be read is logged and set aside;
/// a differential or log needs it.
///
/// # Errors
/// The previous point cannot be read, or its chain is damaged (not for a full).
pub fn previous_chain(kind: Kind, ours: impl Fn(&ChainDoc) -> bool) -> Result<Option<ChainDoc>> {
    let read = || -> Result<Option<ChainDoc>> {
        if engine::previous()?.is_none() {
            return Ok(None);
        }
        let doc = ChainDoc::parse(&engine::read_previous_document(CHAIN_ITEM)?)?;
        Ok(ours(&doc).then_some(doc))
    };
    match read() {
        Ok(prev) => Ok(prev),
        Err(e) if kind == Kind::Full => {
            host::log(
                host::Level::Warn,
                &format!(
                    "the previous restore point's chain.json cannot be read ({}); this full backup starts a new chain",
                    e.message
                ),
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A name for a backup file: the database's safe letters (at most 64), the level and the
/// time to the millisecond; nothing a path, a shell or T-SQL could misread.
pub fn backup_file_name(db: &str, kind: Kind, now_ms: i64) -> String {
    let safe: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let stamp: String = show_time(now_ms)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let ext = if kind == Kind::Log { "trn" } else { "bak" };
    format!("{safe}_{}_{stamp}.{ext}", kind_name(kind))
}

/// Milliseconds since 1970 now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(items: &[&str]) -> Vec<u8> {
        let backups: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                serde_json::json!({"item": i, "kind": "full", "set": "x", "first_lsn": "1", "last_lsn": "2",
                    "checkpoint_lsn": "1", "database_backup_lsn": "0", "start": "2026-12-01T10:00:00.000",
                    "finish": "2026-12-01T10:00:01.000", "copy_only": false, "device": "/x"})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"format": 1, "server": "s", "database": "d", "recovery": "FULL", "files": [], "backups": backups})).unwrap()
    }

    #[test]
    fn hostile_chain_documents_are_refused() {
        assert!(ChainDoc::parse(&doc(&["backups/a.bak"])).is_ok());
        for bad in [
            &["../x"][..],
            &["backups/../../etc"],
            &["backups/a.bak", "backups/a.bak"],
            &["backups/"],
        ] {
            assert!(ChainDoc::parse(&doc(bad)).is_err(), "{bad:?}");
        }
        let mut v: serde_json::Value = serde_json::from_slice(&doc(&["backups/a.bak"])).unwrap();
        v["backups"][0]["first_lsn"] = "12x".into();
        assert!(ChainDoc::parse(&serde_json::to_vec(&v).unwrap()).is_err());
        v["backups"][0]["first_lsn"] = "1".into();
        v["database"] = "d\nGO\n:!! calc".into();
        assert!(ChainDoc::parse(&serde_json::to_vec(&v).unwrap()).is_err());
        v["database"] = "d".into();
        // a text a plan shows: a time that is not one, a set name that forges lines
        v["backups"][0]["finish"] = "2026-12-01T10:00:01.000\n:!! rm -rf /".into();
        assert!(ChainDoc::parse(&serde_json::to_vec(&v).unwrap()).is_err());
        v["backups"][0]["finish"] = "2026-12-01T10:00:01.000".into();
        v["backups"][0]["set"] = "x\nstep: forged".into();
        assert!(ChainDoc::parse(&serde_json::to_vec(&v).unwrap()).is_err());
        v["backups"][0]["set"] = "x".into();
        // `$(` in a file name SQL Server allows: read (scripts run over TDS; restore.sql
        // says to use sqlcmd -x), so such a database stays backed up
        v["files"] = serde_json::json!([{"logical": "d$(x)", "kind": "ROWS", "physical": "/data/d$(x).mdf"}]);
        assert!(ChainDoc::parse(&serde_json::to_vec(&v).unwrap()).is_ok());
        v["format"] = 2.into();
        assert_eq!(
            ChainDoc::parse(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .code,
            ErrorCode::Unsupported
        );
    }
}
