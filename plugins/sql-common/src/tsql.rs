//! What the plugin asks SQL Server, and how it reads the answers: the databases
//! (`sys.databases`, `sys.master_files`) and the backup history (`msdb`), values bound as
//! parameters, every answer read by column name and checked (the instance is another
//! machine's word).

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::sql::{self, ResultSet};

use crate::chain::{Backup, Kind, Lsn};

/// Time a catalog query may take.
pub const QUERY_SECS: u32 = 300;
/// Time a BACKUP or RESTORE statement may take.
pub const BULK_SECS: u32 = 86_400;
/// Most history rows read per database.
const HISTORY_MAX: u32 = 2000;
/// The `NAME` Rehydra gives its backup sets, so a history shows which are ours.
pub const SET_NAME: &str = "Rehydra";

/// Longest `NAME` of a backup set (msdb's `backupset.name` is `nvarchar(128)`; a longer
/// one is refused by BACKUP).
const SET_NAME_MAX: usize = 128;

/// The `NAME` of the backup sets taken for `asset`: `Rehydra <asset>`, its first
/// [`SET_NAME_MAX`] characters.
pub fn set_name(asset: &str) -> String {
    format!("{SET_NAME} {asset}")
        .chars()
        .take(SET_NAME_MAX)
        .collect()
}

/// The asset a backup set of ours was taken for, read back from its `NAME` (`None` for
/// another product's); for an asset id too long for a set's `NAME`, its beginning.
pub fn asset_of(set_name: &str) -> Option<&str> {
    set_name.strip_prefix(SET_NAME)?.strip_prefix(' ')
}

/// A database of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Db {
    pub name: String,
    pub recovery: String,
    pub state: String,
    pub compat: String,
    pub encrypted: bool,
    pub in_ag: bool,
    /// Its availability-group database id (`group_database_id`): the same on every
    /// replica of the group, so it tells this database from another of the same name.
    pub group: Option<String>,
    pub pages: u64,
}

/// What this instance is to a database of an availability group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// `PRIMARY`, `SECONDARY` or `RESOLVING`, as
    /// `sys.dm_hadr_availability_replica_states.role_desc` says for this instance.
    pub role: String,
    /// The replica the group's backup preference names
    /// (`sys.fn_hadr_backup_is_preferred_replica`).
    pub preferred_backup: bool,
}

impl Replica {
    /// A secondary replica, where SQL Server takes only COPY_ONLY fulls and plain logs.
    pub fn secondary(&self) -> bool {
        self.role.eq_ignore_ascii_case("SECONDARY")
    }

    /// The primary replica.
    pub fn primary(&self) -> bool {
        self.role.eq_ignore_ascii_case("PRIMARY")
    }
}

impl Db {
    /// SIMPLE recovery: no log backups, so no point-in-time restores.
    pub fn simple(&self) -> bool {
        self.recovery.eq_ignore_ascii_case("SIMPLE")
    }
}

/// A file of a database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbFile {
    /// Logical name (what `MOVE` names).
    pub logical: String,
    /// `ROWS` or `LOG` (and `FILESTREAM`, `FULLTEXT`).
    pub kind: String,
    /// Where it is on the instance.
    pub physical: String,
}

/// A backup as msdb records it.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub backup: Backup,
    pub device: String,
    pub user: String,
    /// The backup set's name (`Rehydra <asset>` for ours).
    pub set_name: String,
}

/// One result set read by column name.
pub struct Rows<'a> {
    set: &'a ResultSet,
}

impl<'a> Rows<'a> {
    pub fn of(sets: &'a [ResultSet], what: &str) -> Result<Self> {
        sets.iter()
            .find(|s| !s.columns.is_empty())
            .map(|set| Self { set })
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Failed,
                    format!("{what}: the instance sent no result set"),
                )
            })
    }

    fn col(&self, name: &str) -> Result<usize> {
        self.set
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Failed,
                    format!("the instance's answer has no column `{name}`"),
                )
            })
    }

    /// Each row as a lookup of its cells by column name.
    pub fn each(&self) -> impl Iterator<Item = Row<'_>> {
        self.set.rows.iter().map(move |r| Row {
            rows: self,
            cells: r,
        })
    }
}

/// One row of [`Rows`].
pub struct Row<'a> {
    rows: &'a Rows<'a>,
    cells: &'a [Option<String>],
}

impl Row<'_> {
    pub fn opt(&self, name: &str) -> Result<Option<&str>> {
        let i = self.rows.col(name)?;
        Ok(self.cells.get(i).and_then(|c| c.as_deref()))
    }

    pub fn text(&self, name: &str) -> Result<String> {
        Ok(self.opt(name)?.unwrap_or_default().to_string())
    }

    pub fn lsn(&self, name: &str) -> Result<Option<Lsn>> {
        self.opt(name)?
            .map(|v| {
                v.trim().parse::<Lsn>().map_err(|_| {
                    Error::new(
                        ErrorCode::Failed,
                        format!("`{name}` is not an LSN: {}", clip(v)),
                    )
                })
            })
            .transpose()
    }

    pub fn flag(&self, name: &str) -> Result<bool> {
        Ok(matches!(self.opt(name)?, Some("1" | "true" | "True")))
    }

    pub fn time(&self, name: &str) -> Result<i64> {
        let v = self.opt(name)?.unwrap_or_default();
        parse_time(v).ok_or_else(|| {
            Error::new(
                ErrorCode::Failed,
                format!("`{name}` is not a time: {}", clip(v)),
            )
        })
    }
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Run `batch` on `server` with `params`.
pub fn run(server: &str, batch: &str, params: &[&str], secs: u32) -> Result<Vec<ResultSet>> {
    let params: Vec<String> = params.iter().map(|p| (*p).to_string()).collect();
    sql::query(server, batch, &params, secs)
}

/// Run a RESTORE script's statements on `server` in order, each within [`BULK_SECS`],
/// showing progress from `*done` of `total` (counted up per statement). A failure names
/// the statement and says where `database` is left.
///
/// # Errors
/// The first statement that fails.
pub fn run_restore_script<'a>(
    server: &str,
    database: &str,
    script: impl IntoIterator<Item = &'a str>,
    done: &mut u64,
    total: u64,
) -> Result<()> {
    for stmt in script {
        rehydra_plugin_sdk::host::progress(
            *done,
            total,
            stmt.split(" WITH").next().unwrap_or_default(),
        );
        run(server, stmt, &[], BULK_SECS).map_err(|e| {
            Error::new(
                e.code,
                format!(
                    "{}\nwhile running: {stmt}\nthe database `{database}` may be left RESTORING; run the rest of the plan's script by hand, or restore again with replace=true",
                    e.message
                ),
            )
        })?;
        *done += 1;
    }
    Ok(())
}

const DATABASES: &str = "SELECT d.name, d.recovery_model_desc, d.state_desc, d.compatibility_level, d.is_encrypted, d.group_database_id, (SELECT SUM(f.size) FROM sys.master_files f WHERE f.database_id = d.database_id) AS pages FROM sys.databases d WHERE d.database_id > 4";

fn db_of(r: &Row<'_>) -> Result<Db> {
    Ok(Db {
        name: r.text("name")?,
        recovery: r.text("recovery_model_desc")?,
        state: r.text("state_desc")?,
        compat: r.text("compatibility_level")?,
        encrypted: r.flag("is_encrypted")?,
        in_ag: r.opt("group_database_id")?.is_some(),
        group: r.opt("group_database_id")?.map(str::to_ascii_lowercase),
        pages: r.opt("pages")?.and_then(|p| p.parse().ok()).unwrap_or(0),
    })
}

/// The user databases of `server`, by name.
pub fn databases(server: &str) -> Result<Vec<Db>> {
    let sets = run(
        server,
        &format!("{DATABASES} ORDER BY d.name"),
        &[],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "listing databases")?;
    rows.each().map(|r| db_of(&r)).collect()
}

/// Database `name` of `server`, if it is there.
pub fn database(server: &str, name: &str) -> Result<Option<Db>> {
    let sets = run(
        server,
        &format!("{DATABASES} AND d.name = @P1"),
        &[name],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "reading the database")?;
    // whatever the instance's collation matched is that database (`SALES` is `sales` on
    // a case-insensitive instance)
    rows.each().next().map(|r| db_of(&r)).transpose()
}

/// This instance's role for each database of an availability group it holds (SQL Server
/// 2012 and later; the DMV needs VIEW SERVER STATE), by name; with `name`, that one.
/// Databases outside a group are not asked about.
pub fn replicas(server: &str, name: Option<&str>) -> Result<Vec<(String, Replica)>> {
    let one = if name.is_some() {
        " AND d.name = @P1"
    } else {
        ""
    };
    let sets = run(
        server,
        &format!(
            "SELECT d.name, s.role_desc, sys.fn_hadr_backup_is_preferred_replica(d.name) AS preferred_backup FROM sys.databases d JOIN sys.dm_hadr_availability_replica_states s ON s.replica_id = d.replica_id AND s.is_local = 1 WHERE d.group_database_id IS NOT NULL{one}"
        ),
        &name.into_iter().collect::<Vec<_>>(),
        QUERY_SECS,
    )
    .map_err(|e| {
        Error::new(
            e.code,
            format!(
                "reading this replica's role in its availability groups (the login needs VIEW SERVER STATE): {}",
                e.message
            ),
        )
    })?;
    let rows = Rows::of(&sets, "reading availability-group roles")?;
    rows.each()
        .map(|r| {
            Ok((
                r.text("name")?,
                Replica {
                    role: r.text("role_desc")?,
                    preferred_backup: r.flag("preferred_backup")?,
                },
            ))
        })
        .collect()
}

/// `master`, `model`, `msdb`, `tempdb`: never a restore's target, never listed.
pub fn is_system_database(name: &str) -> bool {
    ["master", "model", "msdb", "tempdb"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name.trim()))
}

/// Where `server` puts a new database's data and log files (`InstanceDefaultDataPath`,
/// `InstanceDefaultLogPath`; SQL Server 2012 and later), each `None` when it does not say.
pub fn default_folders(server: &str) -> Result<(Option<String>, Option<String>)> {
    let sets = run(
        server,
        "SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260)) AS data_path, CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(260)) AS log_path",
        &[],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "reading the instance's default folders")?;
    let Some(r) = rows.each().next() else {
        return Ok((None, None));
    };
    // a folder is used in MOVE clauses a script shows: nothing a script could misread
    let folder = |v: Option<&str>| {
        v.map(|s| s.trim_end_matches(['\\', '/']).to_string())
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 260
                    && !s.chars().any(char::is_control)
                    && !s.contains("$(")
            })
    };
    Ok((folder(r.opt("data_path")?), folder(r.opt("log_path")?)))
}

/// The files of database `name` (for `MOVE`).
pub fn files(server: &str, name: &str) -> Result<Vec<DbFile>> {
    let sets = run(
        server,
        "SELECT f.name, f.type_desc, f.physical_name FROM sys.master_files f JOIN sys.databases d ON d.database_id = f.database_id WHERE d.name = @P1 ORDER BY f.file_id",
        &[name],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "reading the database's files")?;
    rows.each()
        .map(|r| {
            Ok(DbFile {
                logical: r.text("name")?,
                kind: r.text("type_desc")?,
                physical: r.text("physical_name")?,
            })
        })
        .collect()
}

const HISTORY: &str = "b.backup_set_uuid, b.type, b.is_copy_only, b.first_lsn, b.last_lsn, b.checkpoint_lsn, b.database_backup_lsn, b.differential_base_lsn, b.first_recovery_fork_guid, b.last_recovery_fork_guid, b.backup_start_date, b.backup_finish_date, b.user_name, b.name, b.database_name, m.physical_device_name FROM msdb.dbo.backupset b JOIN msdb.dbo.backupmediafamily m ON m.media_set_id = b.media_set_id";

fn history_row(r: &Row<'_>) -> Result<Option<HistoryRow>> {
    let kind = match r.text("type")?.trim() {
        "D" => Kind::Full,
        "I" => Kind::Diff,
        "L" => Kind::Log,
        // file, filegroup and partial backups are not part of a database chain here
        _ => return Ok(None),
    };
    let need = |n: &str| -> Result<Lsn> {
        r.lsn(n)?
            .ok_or_else(|| Error::new(ErrorCode::Failed, format!("msdb has no `{n}` for a backup")))
    };
    let lower = |n: &str| -> Result<Option<String>> { Ok(r.opt(n)?.map(str::to_ascii_lowercase)) };
    let name = r.text("name")?;
    Ok(Some(HistoryRow {
        backup: Backup {
            id: r.text("backup_set_uuid")?.to_ascii_lowercase(),
            kind,
            first_lsn: need("first_lsn")?,
            last_lsn: need("last_lsn")?,
            checkpoint_lsn: need("checkpoint_lsn")?,
            database_backup_lsn: r.lsn("database_backup_lsn")?.unwrap_or(0),
            differential_base_lsn: r.lsn("differential_base_lsn")?,
            fork: lower("last_recovery_fork_guid")?,
            first_fork: lower("first_recovery_fork_guid")?,
            start: r.time("backup_start_date")?,
            finish: r.time("backup_finish_date")?,
            copy_only: r.flag("is_copy_only")?,
            ours: name.starts_with(SET_NAME),
        },
        device: r.text("physical_device_name")?,
        user: r.text("user_name")?,
        set_name: name,
    }))
}

/// The moments the one row of an aggregate query answers in `columns` (NULL: none).
fn moments<const N: usize>(
    server: &str,
    batch: &str,
    params: &[&str],
    columns: [&str; N],
    what: &str,
) -> Result<[Option<i64>; N]> {
    let sets = run(server, batch, params, QUERY_SECS)?;
    let rows = Rows::of(&sets, what)?;
    let mut out = [None; N];
    if let Some(r) = rows.each().next() {
        for (slot, column) in out.iter_mut().zip(columns) {
            if let Some(t) = r.opt(column)? {
                *slot = Some(parse_time(t).ok_or_else(|| {
                    Error::new(
                        ErrorCode::Failed,
                        format!("{what}: `{}` is not a time", clip(t)),
                    )
                })?);
            }
        }
    }
    Ok(out)
}

/// When the newest full backup of database `name` msdb records finished (copy-only too),
/// however many backups came since: [`history`] reads only the newest `HISTORY_MAX`.
pub fn newest_full(server: &str, name: &str) -> Result<Option<i64>> {
    let [at] = moments(
        server,
        "SELECT MAX(b.backup_finish_date) AS at FROM msdb.dbo.backupset b WHERE b.database_name = @P1 AND b.type = 'D'",
        &[name],
        ["at"],
        "reading the newest full backup",
    )?;
    Ok(at)
}

/// The backups of database `name` the instance took itself into `folder` (not
/// copy-only), as msdb lists them: when the oldest full and the newest backup finished.
pub fn own_backups_span(server: &str, name: &str, folder: &str) -> Result<Option<(i64, i64)>> {
    let like = format!("{folder}/%");
    let [first, last] = moments(
        server,
        "SELECT MIN(CASE WHEN b.type = 'D' THEN b.backup_finish_date END) AS first_full, MAX(b.backup_finish_date) AS last FROM msdb.dbo.backupset b JOIN msdb.dbo.backupmediafamily m ON m.media_set_id = b.media_set_id WHERE b.database_name = @P1 AND b.is_copy_only = 0 AND m.physical_device_name LIKE @P2",
        &[name, &like],
        ["first_full", "last"],
        "reading the span of the instance's own backups",
    )?;
    Ok(first.zip(last).map(|(f, l)| (f, l.max(f))))
}

/// The newest backups of database `name` in msdb, oldest first.
pub fn history(server: &str, name: &str) -> Result<Vec<HistoryRow>> {
    let sets = run(
        server,
        &format!(
            "SELECT TOP ({HISTORY_MAX}) {HISTORY} WHERE b.database_name = @P1 ORDER BY b.backup_finish_date DESC"
        ),
        &[name],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "reading the backup history")?;
    let mut out = Vec::new();
    for r in rows.each().take(HISTORY_MAX as usize) {
        if let Some(h) = history_row(&r)? {
            out.push(h);
        }
    }
    out.reverse();
    Ok(out)
}

/// A backup msdb lists that is not copy-only, and its position in its media (`1`: the
/// file's first backup set, the one `RESTORE … FROM DISK` reads without `FILE =`; `None`
/// when msdb gives none that reads as one).
pub struct Listed {
    pub row: HistoryRow,
    pub position: Option<u32>,
}

/// The newest `max` + 1 backups of database `name` that are not copy-only, oldest first
/// (by finish, then by msdb's order): a caller can tell a history longer than it keeps.
pub fn not_copy_only(server: &str, name: &str, max: usize) -> Result<Vec<Listed>> {
    let sets = run(
        server,
        &format!(
            "SELECT TOP ({}) {} WHERE b.database_name = @P1 AND b.is_copy_only = 0 ORDER BY b.backup_finish_date DESC, b.backup_set_id DESC",
            max + 1,
            HISTORY.replacen(" FROM ", ", b.position FROM ", 1)
        ),
        &[name],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "reading the backup history")?;
    let mut out = Vec::new();
    for r in rows.each().take(max + 1) {
        if let Some(row) = history_row(&r)? {
            let position = r.opt("position")?.and_then(|p| p.trim().parse().ok());
            out.push(Listed { row, position });
        }
    }
    out.reverse();
    Ok(out)
}

/// The backup set just written to `device` for database `name`, as msdb recorded it.
pub fn written_to(server: &str, name: &str, device: &str) -> Result<Option<HistoryRow>> {
    let sets = run(
        server,
        &format!(
            "SELECT TOP (1) {HISTORY} WHERE b.database_name = @P1 AND m.physical_device_name = @P2 ORDER BY b.backup_set_id DESC"
        ),
        &[name, device],
        QUERY_SECS,
    )?;
    let rows = Rows::of(&sets, "reading the backup just taken")?;
    match rows.each().next() {
        Some(r) => history_row(&r),
        None => Ok(None),
    }
}

/// `2026-11-30T14:37:15.123` (also with a space, without the fraction, or with a `Z`)
/// as milliseconds since 1970 on the instance's clock.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    // every field plain digits in range: `2026-02-31`, `-1` hours or junk after the
    // fraction are not a time (they would quietly become another one)
    if !date.splitn(3, '-').all(digits)
        || !hms.split(':').all(digits)
        || !(frac.is_empty() || (frac.len() <= 7 && digits(frac)))
        || !(1..=12).contains(&mo)
        || !(1..=month_days[(mo - 1) as usize]).contains(&da)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=59).contains(&se)
    {
        return None;
    }
    let ms = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain("000".chars()).take(3).collect();
        f.parse::<i64>().ok()?
    };
    Some(((days_from_civil(y, mo, da) * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

/// Milliseconds since 1970 as `2026-11-30T14:37:15.123`.
pub fn show_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let base = rehydra_plugin_sdk::time::rfc3339(secs);
    format!("{}.{:03}", base.trim_end_matches('Z'), ms.rem_euclid(1000))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The instance and database of an asset id `<instance>/<database>`.
pub fn split_asset(id: &str) -> Result<(&str, &str)> {
    id.split_once('/')
        .filter(|(s, d)| !s.is_empty() && !d.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("`{id}` is not a database asset (<instance>/<database>; the plugin's discover lists them)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-12-01T14:37:15").unwrap();
        assert_eq!(show_time(t), "2026-12-01T14:37:15.000");
        assert_eq!(parse_time("2026-12-01 14:37:15.5"), Some(t + 500));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "",
            "2026-13-01T00:00:00",
            "2026-12-01",
            "x-y-zTa:b:c",
            "2026-12-01T25:00:00",
            "2026-02-31T00:00:00",
            "2025-02-29T00:00:00",
            "2026-12-01T-1:00:00",
            "2026-12-01T+1:00:00",
            "2026-12-01T14:37:15.000\n:!! rm -rf /",
            "2026-12-01T14:37:15.12x",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert!(
            parse_time("2024-02-29T23:59:59.9999999").is_some(),
            "a leap day, datetime2's 7 digits"
        );
        assert!(is_system_database("MSDB") && !is_system_database("sales"));
    }

    #[test]
    fn set_names_fit_msdb_and_read_back_as_their_asset() {
        assert_eq!(set_name("sql01:1433/sales"), "Rehydra sql01:1433/sales");
        assert_eq!(
            asset_of("Rehydra sql01:1433/sales"),
            Some("sql01:1433/sales")
        );
        assert_eq!(asset_of("Ola Hallengren sales"), None);
        let long = format!("sql01.contoso.local:1433/{}", "é".repeat(200));
        let name = set_name(&long);
        assert_eq!(name.chars().count(), 128);
        assert!(long.starts_with(asset_of(&name).unwrap()));
    }

    #[test]
    fn assets_name_an_instance_and_a_database() {
        assert_eq!(
            split_asset("sql01:1433/sales").unwrap(),
            ("sql01:1433", "sales")
        );
        assert_eq!(split_asset("sql01/a/b").unwrap(), ("sql01", "a/b"));
        assert!(split_asset("sales").is_err() && split_asset("/x").is_err());
    }
}
