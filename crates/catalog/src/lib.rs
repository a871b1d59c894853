//! Rehydra's catalog: a SQLite cache (through sqlx, with migrations) of repositories,
//! restore points and job runs, for fast listings and job history.
//!
//! **It is a cache.** The repository is the source of truth: [`Catalog::replace_restore_points`]
//! rewrites a repository's rows from what the repository holds, so deleting the catalog
//! file loses nothing but job history.

mod jobs;
mod policies;
mod repositories;
mod requests;
mod settings;
mod totals;

pub use jobs::JobStatus;
pub use policies::PolicyRow;
pub use repositories::RepositoryRow;
pub use requests::{RequestRow, RequestState};
pub use totals::{JobTotal, PointTotal};

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::{SqliteArguments, SqliteQueryResult, SqliteRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, Sqlite, SqlitePool};

/// A query of the catalog, with its parameters bound.
type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Catalog errors.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database could not be opened or queried.
    #[error("catalog {path}: {source}")]
    Db {
        /// The catalog file.
        path: String,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// Schema migration failed.
    #[error(
        "catalog {path}: migration failed: {source} (delete the file to rebuild it; it is only a cache)"
    )]
    Migrate {
        /// The catalog file.
        path: String,
        /// Cause.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, CatalogError>;

/// A restore point row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RestorePointRow {
    /// Manifest id.
    pub id: String,
    /// Repository id.
    pub repository_id: String,
    /// RFC 3339 time.
    pub time: String,
    /// Workload.
    pub workload: String,
    /// Asset.
    pub asset: String,
    /// Plugin id.
    pub plugin_id: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Consistency.
    pub consistency: String,
    /// Host.
    pub hostname: String,
    /// Parent id.
    pub parent: Option<String>,
    /// Tags (JSON array).
    pub tags: String,
    /// Items (JSON array).
    pub items: String,
    /// Logical bytes.
    pub bytes: i64,
    /// New plaintext bytes.
    pub new_bytes: i64,
    /// Stored bytes.
    pub stored_bytes: i64,
}

/// A job run row.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct JobRun {
    /// Row id.
    pub id: i64,
    /// Repository id.
    pub repository_id: Option<String>,
    /// Kind.
    pub kind: String,
    /// Start time.
    pub started: String,
    /// End time.
    pub finished: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// Message.
    pub message: String,
    /// Restore point made or used.
    pub restore_point_id: Option<String>,
    /// Bytes processed.
    pub bytes: i64,
}

/// One plugin audit-log entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    /// RFC 3339 time (UTC).
    pub time: String,
    /// Plugin id.
    pub plugin_id: String,
    /// Verb.
    pub verb: String,
    /// Capability.
    pub capability: String,
    /// Path, host or command.
    pub target: String,
    /// Allowed or denied.
    pub allowed: bool,
    /// Detail.
    pub detail: String,
}

/// The `signer` of grants made before grants recorded who signed the plugin (migration
/// 0006): bound to a real signer by [`Catalog::claim_legacy_grants`], never returned
/// by [`Catalog::grants`].
pub const LEGACY_SIGNER: &str = "";

/// An open catalog.
#[derive(Clone)]
pub struct Catalog {
    pool: SqlitePool,
    path: String,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// Kinds of named admin settings kept as JSON specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Specs {
    /// Machines plugins may run granted commands on.
    CommandTargets,
    /// LDAP directories plugins may use.
    Directories,
    /// SQL Server instances plugins may use.
    SqlServers,
    /// Kubernetes clusters reached with a kubeconfig's CA and credentials.
    KubeClusters,
}

impl Catalog {
    /// Open (creating and migrating) the catalog at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or migrated.
    pub async fn open(path: &Path) -> Result<Self> {
        let p = path.display().to_string();
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // it holds the admin's settings (a policy's webhook URL carries its token): readable
        // by its owner only (SQLite gives its -wal and -shm files the same mode)
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt as _;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
        }
        let db = |source| CatalogError::Db {
            path: p.clone(),
            source,
        };
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(db)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| CatalogError::Migrate {
                path: p.clone(),
                source,
            })?;
        Ok(Self { pool, path: p })
    }

    pub(crate) fn db(&self) -> impl Fn(sqlx::Error) -> CatalogError + '_ {
        |source| CatalogError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Run a query; its rows.
    pub(crate) async fn fetch(&self, q: Query<'_>) -> Result<Vec<SqliteRow>> {
        q.fetch_all(&self.pool).await.map_err(self.db())
    }

    /// Run a statement; what it changed.
    async fn run(&self, q: Query<'_>) -> Result<SqliteQueryResult> {
        q.execute(&self.pool).await.map_err(self.db())
    }

    /// Run a statement whose parameters are all text; returns the rows it changed.
    pub(crate) async fn exec(&self, sql: &'static str, args: &[&str]) -> Result<u64> {
        let mut q = sqlx::query(sql);
        for a in args {
            q = q.bind(*a);
        }
        Ok(self.run(q).await?.rows_affected())
    }

    /// The first two (text) columns of every row, in the query's order.
    async fn pairs(&self, sql: &'static str) -> Result<Vec<(String, String)>> {
        let rows = self.fetch(sqlx::query(sql)).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Insert or replace one restore point.
    ///
    /// # Errors
    /// Database failure.
    pub async fn put_restore_point(&self, r: &RestorePointRow) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        insert_rp(&mut tx, r).await.map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(())
    }

    /// Replace every restore point of a repository (rebuild from the source of truth).
    ///
    /// # Errors
    /// Database failure.
    pub async fn replace_restore_points(
        &self,
        repository_id: &str,
        rows: &[RestorePointRow],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        sqlx::query("DELETE FROM restore_points WHERE repository_id = ?1")
            .bind(repository_id)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        for r in rows {
            insert_rp(&mut tx, r).await.map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())?;
        Ok(())
    }

    /// Restore points of a repository, oldest first, optionally for one asset.
    ///
    /// # Errors
    /// Database failure.
    pub async fn restore_points(
        &self,
        repository_id: &str,
        asset: Option<&str>,
    ) -> Result<Vec<RestorePointRow>> {
        let q = sqlx::query("SELECT * FROM restore_points WHERE repository_id = ?1 AND (?2 IS NULL OR asset = ?2) ORDER BY time, id")
            .bind(repository_id)
            .bind(asset);
        let rows = self.fetch(q).await?;
        Ok(rows
            .iter()
            .map(|r| RestorePointRow {
                id: r.get("id"),
                repository_id: r.get("repository_id"),
                time: r.get("time"),
                workload: r.get("workload"),
                asset: r.get("asset"),
                plugin_id: r.get("plugin_id"),
                plugin_version: r.get("plugin_version"),
                consistency: r.get("consistency"),
                hostname: r.get("hostname"),
                parent: r.get("parent"),
                tags: r.get("tags"),
                items: r.get("items"),
                bytes: r.get("bytes"),
                new_bytes: r.get("new_bytes"),
                stored_bytes: r.get("stored_bytes"),
            })
            .collect())
    }

    /// Start a job run; returns its id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn start_run(&self, repository_id: Option<&str>, kind: &str) -> Result<i64> {
        let q = sqlx::query("INSERT INTO job_runs (repository_id, kind, started, status) VALUES (?1, ?2, ?3, 'running')")
            .bind(repository_id)
            .bind(kind)
            .bind(now());
        let r = self.run(q).await?;
        Ok(r.last_insert_rowid())
    }

    /// Finish a job run.
    ///
    /// # Errors
    /// Database failure.
    pub async fn finish_run(
        &self,
        id: i64,
        status: JobStatus,
        message: &str,
        restore_point: Option<&str>,
        bytes: u64,
    ) -> Result<()> {
        let q = sqlx::query("UPDATE job_runs SET finished = ?2, status = ?3, message = ?4, restore_point_id = ?5, bytes = ?6 WHERE id = ?1")
            .bind(id)
            .bind(now())
            .bind(status.as_str())
            .bind(message)
            .bind(restore_point)
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.run(q).await?;
        Ok(())
    }

    /// The newest job runs.
    ///
    /// # Errors
    /// Database failure.
    pub async fn runs(&self, limit: i64) -> Result<Vec<JobRun>> {
        let q = sqlx::query("SELECT * FROM job_runs ORDER BY id DESC LIMIT ?1").bind(limit);
        let rows = self.fetch(q).await?;
        Ok(rows
            .iter()
            .map(|r| JobRun {
                id: r.get("id"),
                repository_id: r.get("repository_id"),
                kind: r.get("kind"),
                started: r.get("started"),
                finished: r.get("finished"),
                status: JobStatus::parse(r.get("status")),
                message: r.get("message"),
                restore_point_id: r.get("restore_point_id"),
                bytes: r.get("bytes"),
            })
            .collect())
    }

    /// Grants of `plugin` signed by `signer` (`kind[:scope]` strings), sorted. Grants
    /// given to another signer of the same id, and legacy rows not yet bound to a signer
    /// ([`Catalog::claim_legacy_grants`]), are not included.
    ///
    /// # Errors
    /// Database failure.
    pub async fn grants(&self, plugin: &str, signer: &str) -> Result<Vec<String>> {
        if signer == LEGACY_SIGNER {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT grant_spec FROM plugin_grants WHERE plugin_id = ?1 AND signer = ?2 ORDER BY grant_spec",
        )
        .bind(plugin)
        .bind(signer);
        let rows = self.fetch(q).await?;
        Ok(rows.iter().map(|r| r.get("grant_spec")).collect())
    }

    /// Add a grant for `plugin` as signed by `signer` (idempotent).
    ///
    /// # Errors
    /// Database failure.
    pub async fn grant(&self, plugin: &str, signer: &str, spec: &str) -> Result<()> {
        self.exec("INSERT OR IGNORE INTO plugin_grants (plugin_id, signer, grant_spec, granted_at) VALUES (?1, ?2, ?3, ?4)", &[plugin, signer, spec, &now()]).await?;
        Ok(())
    }

    /// Bind `plugin`'s legacy grants (made before grants recorded their signer, migration
    /// 0006) to `signer`, the signer of the plugin file installed now; returns how many.
    /// Called on every load, so it happens at the first use after the upgrade.
    ///
    /// # Errors
    /// Database failure.
    pub async fn claim_legacy_grants(&self, plugin: &str, signer: &str) -> Result<u64> {
        if signer == LEGACY_SIGNER {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        sqlx::query("INSERT OR IGNORE INTO plugin_grants (plugin_id, signer, grant_spec, granted_at) SELECT plugin_id, ?2, grant_spec, granted_at FROM plugin_grants WHERE plugin_id = ?1 AND signer = ''")
            .bind(plugin)
            .bind(signer)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        let n = sqlx::query("DELETE FROM plugin_grants WHERE plugin_id = ?1 AND signer = ''")
            .bind(plugin)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?
            .rows_affected();
        tx.commit().await.map_err(self.db())?;
        Ok(n)
    }

    /// Remove a grant, or all grants of `plugin` when `spec` is `None`, whoever signed the
    /// plugin they were given to; returns how many.
    ///
    /// # Errors
    /// Database failure.
    pub async fn revoke(&self, plugin: &str, spec: Option<&str>) -> Result<u64> {
        match spec {
            Some(s) => {
                self.exec(
                    "DELETE FROM plugin_grants WHERE plugin_id = ?1 AND grant_spec = ?2",
                    &[plugin, s],
                )
                .await
            }
            None => {
                self.exec("DELETE FROM plugin_grants WHERE plugin_id = ?1", &[plugin])
                    .await
            }
        }
    }

    /// Named admin settings of `kind` as (name, JSON spec).
    ///
    /// # Errors
    /// Database failure.
    pub async fn specs(&self, kind: Specs) -> Result<Vec<(String, String)>> {
        self.pairs(match kind {
            Specs::CommandTargets => "SELECT name, spec FROM command_targets ORDER BY name",
            Specs::Directories => "SELECT name, spec FROM directories ORDER BY name",
            Specs::SqlServers => "SELECT name, spec FROM sql_servers ORDER BY name",
            Specs::KubeClusters => "SELECT name, spec FROM kube_clusters ORDER BY name",
        })
        .await
    }

    /// Add or replace a named admin setting of `kind`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_spec(&self, kind: Specs, name: &str, spec: &str) -> Result<()> {
        let sql = match kind {
            Specs::CommandTargets => {
                "INSERT INTO command_targets (name, spec, added_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, added_at = excluded.added_at"
            }
            Specs::Directories => {
                "INSERT INTO directories (name, spec, added_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, added_at = excluded.added_at"
            }
            Specs::SqlServers => {
                "INSERT INTO sql_servers (name, spec, added_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, added_at = excluded.added_at"
            }
            Specs::KubeClusters => {
                "INSERT INTO kube_clusters (name, spec, added_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, added_at = excluded.added_at"
            }
        };
        self.exec(sql, &[name, spec, &now()]).await?;
        Ok(())
    }

    /// Remove a named admin setting of `kind`; returns whether it existed.
    ///
    /// # Errors
    /// Database failure.
    pub async fn remove_spec(&self, kind: Specs, name: &str) -> Result<bool> {
        let sql = match kind {
            Specs::CommandTargets => "DELETE FROM command_targets WHERE name = ?1",
            Specs::Directories => "DELETE FROM directories WHERE name = ?1",
            Specs::SqlServers => "DELETE FROM sql_servers WHERE name = ?1",
            Specs::KubeClusters => "DELETE FROM kube_clusters WHERE name = ?1",
        };
        Ok(self.exec(sql, &[name]).await? > 0)
    }

    /// Append lines to a job run's log.
    ///
    /// # Errors
    /// Database failure, or no such run.
    pub async fn append_job_log(&self, run: i64, lines: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq) + 1, 0) AS n FROM job_log WHERE run_id = ?1")
                .bind(run)
                .fetch_one(&mut *tx)
                .await
                .map_err(self.db())?
                .get("n");
        for (i, line) in lines.iter().enumerate() {
            sqlx::query("INSERT INTO job_log (run_id, seq, line) VALUES (?1, ?2, ?3)")
                .bind(run)
                .bind(next + i as i64)
                .bind(line)
                .execute(&mut *tx)
                .await
                .map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())?;
        Ok(())
    }

    /// A job run's log, in order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn job_log(&self, run: i64) -> Result<Vec<String>> {
        let q = sqlx::query("SELECT line FROM job_log WHERE run_id = ?1 ORDER BY seq").bind(run);
        let rows = self.fetch(q).await?;
        Ok(rows.iter().map(|r| r.get("line")).collect())
    }

    /// Trusted publisher keys as (publisher, key).
    ///
    /// # Errors
    /// Database failure.
    pub async fn trusted(&self) -> Result<Vec<(String, String)>> {
        self.pairs("SELECT publisher, key FROM trusted_publishers ORDER BY publisher, key")
            .await
    }

    /// Trust `key` for `publisher` (idempotent).
    ///
    /// # Errors
    /// Database failure.
    pub async fn trust(&self, publisher: &str, key: &str) -> Result<()> {
        self.exec("INSERT OR IGNORE INTO trusted_publishers (publisher, key, added_at) VALUES (?1, ?2, ?3)", &[publisher, key, &now()]).await?;
        Ok(())
    }

    /// Stop trusting `key` of `publisher`; returns how many entries went.
    ///
    /// # Errors
    /// Database failure.
    pub async fn untrust(&self, publisher: &str, key: &str) -> Result<u64> {
        self.exec(
            "DELETE FROM trusted_publishers WHERE publisher = ?1 AND key = ?2",
            &[publisher, key],
        )
        .await
    }

    /// Append audit entries.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit(&self, entries: &[AuditRow]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        for e in entries {
            sqlx::query("INSERT INTO plugin_audit (time, plugin_id, verb, capability, target, allowed, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .bind(&e.time)
                .bind(&e.plugin_id)
                .bind(&e.verb)
                .bind(&e.capability)
                .bind(&e.target)
                .bind(e.allowed)
                .bind(&e.detail)
                .execute(&mut *tx)
                .await
                .map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())?;
        Ok(())
    }

    /// The newest audit entries, optionally of one plugin.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_log(&self, plugin: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
        let q = sqlx::query("SELECT * FROM plugin_audit WHERE ?1 IS NULL OR plugin_id = ?1 ORDER BY id DESC LIMIT ?2")
            .bind(plugin)
            .bind(limit);
        let rows = self.fetch(q).await?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                time: r.get("time"),
                plugin_id: r.get("plugin_id"),
                verb: r.get("verb"),
                capability: r.get("capability"),
                target: r.get("target"),
                allowed: r.get("allowed"),
                detail: r.get("detail"),
            })
            .collect())
    }

    /// Close the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn insert_rp(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    r: &RestorePointRow,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT OR REPLACE INTO restore_points (id, repository_id, time, workload, asset, plugin_id, plugin_version, consistency, hostname, parent, tags, items, bytes, new_bytes, stored_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .bind(&r.id)
    .bind(&r.repository_id)
    .bind(&r.time)
    .bind(&r.workload)
    .bind(&r.asset)
    .bind(&r.plugin_id)
    .bind(&r.plugin_version)
    .bind(&r.consistency)
    .bind(&r.hostname)
    .bind(&r.parent)
    .bind(&r.tags)
    .bind(&r.items)
    .bind(r.bytes)
    .bind(r.new_bytes)
    .bind(r.stored_bytes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, asset: &str) -> RestorePointRow {
        RestorePointRow {
            id: id.into(),
            repository_id: "r1".into(),
            time: format!("2026-01-01T00:00:0{id}Z"),
            workload: "files".into(),
            asset: asset.into(),
            plugin_id: "builtin".into(),
            plugin_version: "0.1.0".into(),
            consistency: "crash".into(),
            hostname: "h".into(),
            parent: None,
            tags: "[]".into(),
            items: "[]".into(),
            bytes: 1,
            new_bytes: 1,
            stored_bytes: 1,
        }
    }

    #[tokio::test]
    async fn catalog_roundtrip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.db")).await.unwrap();
        c.upsert_repository("r1", "/x").await.unwrap();
        c.upsert_repository("r2", "/y").await.unwrap();
        c.upsert_repository("r1", "/x2").await.unwrap();
        let known = c.repositories(10).await.unwrap();
        assert_eq!(
            known
                .iter()
                .map(|r| (r.id.as_str(), r.location.as_str()))
                .collect::<Vec<_>>(),
            vec![("r1", "/x2"), ("r2", "/y")],
            "the most recent first, at the location last used"
        );
        assert_eq!(c.repositories(1).await.unwrap().len(), 1);
        c.put_restore_point(&row("1", "a")).await.unwrap();
        c.put_restore_point(&row("2", "b")).await.unwrap();
        assert_eq!(c.restore_points("r1", None).await.unwrap().len(), 2);
        assert_eq!(c.restore_points("r1", Some("a")).await.unwrap().len(), 1);
        c.replace_restore_points("r1", &[row("3", "a")])
            .await
            .unwrap();
        let all = c.restore_points("r1", None).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            vec!["3"]
        );
        let run = c.start_run(Some("r1"), "backup").await.unwrap();
        c.finish_run(run, JobStatus::Succeeded, "", Some("3"), 10)
            .await
            .unwrap();
        assert_eq!(c.runs(10).await.unwrap()[0].status, JobStatus::Succeeded);
        // a run's log keeps its order across appends, and belongs to that run only
        c.append_job_log(run, &["one".into(), "two".into()])
            .await
            .unwrap();
        c.append_job_log(run, &["three".into()]).await.unwrap();
        let other = c.start_run(Some("r1"), "check").await.unwrap();
        c.append_job_log(other, &["elsewhere".into()])
            .await
            .unwrap();
        assert_eq!(c.job_log(run).await.unwrap(), vec!["one", "two", "three"]);
        assert!(
            c.append_job_log(9999, &["x".into()]).await.is_err(),
            "no such run"
        );
    }

    #[tokio::test]
    async fn grants_belong_to_a_signer_and_legacy_grants_go_to_the_first_claimant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        // a catalog from before migration 0006, with one grant
        {
            let opts = SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
            let mut m = sqlx::migrate!("./migrations");
            m.migrations = std::borrow::Cow::Owned(
                m.migrations
                    .iter()
                    .filter(|m| m.version < 6)
                    .cloned()
                    .collect(),
            );
            m.run(&pool).await.unwrap();
            sqlx::query("INSERT INTO plugin_grants (plugin_id, grant_spec, granted_at) VALUES ('p', 'engine', 'then')")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let c = Catalog::open(&path).await.unwrap();
        assert!(
            c.grants("p", "aaaa").await.unwrap().is_empty(),
            "legacy rows apply to nobody until claimed"
        );
        assert!(c.grants("p", LEGACY_SIGNER).await.unwrap().is_empty());
        assert_eq!(c.claim_legacy_grants("p", "aaaa").await.unwrap(), 1);
        assert_eq!(c.grants("p", "aaaa").await.unwrap(), vec!["engine"]);
        // a later claimant (another publisher's file with the same id) gets nothing
        assert_eq!(c.claim_legacy_grants("p", "bbbb").await.unwrap(), 0);
        assert!(c.grants("p", "bbbb").await.unwrap().is_empty());
        c.grant("p", "bbbb", "files:/x").await.unwrap();
        assert_eq!(c.grants("p", "aaaa").await.unwrap(), vec!["engine"]);
        assert_eq!(c.grants("p", "bbbb").await.unwrap(), vec!["files:/x"]);
        assert_eq!(
            c.revoke("p", None).await.unwrap(),
            2,
            "revoke covers every signer"
        );
    }
}
