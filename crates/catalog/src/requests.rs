//! Work handed to the always-on service: a policy to run now, asked by the app or a
//! command line, taken by the service in the order asked, with its progress and outcome
//! written back so the asker may close its window and look again later.

use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use crate::{Catalog, Result, now};

/// How a request stands. Stored as its name; a name this build does not know reads as
/// [`RequestState::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
#[ts(rename = "ServiceRequestState")]
pub enum RequestState {
    /// Not taken by the service yet.
    Waiting,
    /// The service runs it.
    Running,
    /// Cancelled while running: the service stops it within a second.
    Stopping,
    /// Ran; the message says what it made.
    Succeeded,
    /// Did not run or failed: the message says why.
    Failed,
    /// Cancelled (before it started, or stopped while running).
    Cancelled,
    /// Written (or sent) by a newer build.
    #[serde(other)]
    Unknown,
}

impl RequestState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Self {
        [
            Self::Waiting,
            Self::Running,
            Self::Stopping,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Self::Unknown)
    }

    /// Waiting, running or stopping: not ended yet.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Waiting | Self::Running | Self::Stopping)
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A request as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "ServiceRequest")]
pub struct RequestRow {
    /// Its number.
    pub id: i64,
    /// The policy to run.
    pub policy: String,
    /// When it was asked (RFC 3339).
    pub asked: String,
    /// Who asked.
    pub asked_by: String,
    /// How it stands.
    pub state: RequestState,
    /// When the service took it.
    pub started: Option<String>,
    /// When it ended.
    pub finished: Option<String>,
    /// The running job's last progress line.
    pub progress: Option<String>,
    /// How it ended.
    pub message: Option<String>,
}

/// A row as a request; a value of another type than expected (written by hand, or by a
/// newer build) reads as empty rather than failing the whole listing.
fn request(r: &SqliteRow) -> RequestRow {
    let text = |c: &str| r.try_get::<String, _>(c).unwrap_or_default();
    let maybe = |c: &str| r.try_get::<Option<String>, _>(c).ok().flatten();
    RequestRow {
        id: r.try_get("id").unwrap_or_default(),
        policy: text("policy"),
        asked: text("asked"),
        asked_by: text("asked_by"),
        state: RequestState::parse(&text("state")),
        started: maybe("started"),
        finished: maybe("finished"),
        progress: maybe("progress"),
        message: maybe("message"),
    }
}

impl Catalog {
    /// Hand a policy run to the service; returns the request.
    ///
    /// # Errors
    /// Database failure.
    pub async fn ask_service(&self, policy: &str, asked_by: &str) -> Result<RequestRow> {
        let q = sqlx::query(
            "INSERT INTO service_requests (policy, asked, asked_by, state) VALUES (?1, ?2, ?3, 'waiting') RETURNING *",
        )
        .bind(policy)
        .bind(now())
        .bind(asked_by);
        let rows = self.fetch(q).await?;
        Ok(request(&rows[0]))
    }

    /// The requests not ended yet and the `limit` newest others, newest first.
    ///
    /// # Errors
    /// Database failure.
    pub async fn service_requests(&self, limit: i64) -> Result<Vec<RequestRow>> {
        let q = sqlx::query(
            "SELECT * FROM service_requests WHERE state IN ('waiting', 'running', 'stopping') OR id IN (SELECT id FROM service_requests ORDER BY id DESC LIMIT ?1) ORDER BY id DESC",
        )
        .bind(limit);
        Ok(self.fetch(q).await?.iter().map(request).collect())
    }

    /// The newest request for `policy` whose asker's label starts with `asked_by`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn last_service_request(
        &self,
        policy: &str,
        asked_by: &str,
    ) -> Result<Option<RequestRow>> {
        let q = sqlx::query(
            "SELECT * FROM service_requests WHERE policy = ?1 AND substr(asked_by, 1, length(?2)) = ?2 ORDER BY id DESC LIMIT 1",
        )
        .bind(policy)
        .bind(asked_by);
        Ok(self.fetch(q).await?.first().map(request))
    }

    /// One request.
    ///
    /// # Errors
    /// Database failure.
    pub async fn service_request(&self, id: i64) -> Result<Option<RequestRow>> {
        let q = sqlx::query("SELECT * FROM service_requests WHERE id = ?1").bind(id);
        Ok(self.fetch(q).await?.first().map(request))
    }

    /// Whether a request waits (a cheap look, made every second by the service).
    ///
    /// # Errors
    /// Database failure.
    pub async fn service_request_waits(&self) -> Result<bool> {
        let q = sqlx::query("SELECT 1 FROM service_requests WHERE state = 'waiting' LIMIT 1");
        Ok(!self.fetch(q).await?.is_empty())
    }

    /// Take the oldest waiting request: it is running from now on. One statement, so
    /// two takers never get the same one.
    ///
    /// # Errors
    /// Database failure.
    pub async fn take_service_request(&self) -> Result<Option<RequestRow>> {
        let q = sqlx::query(
            "UPDATE service_requests SET state = 'running', started = ?1 WHERE id = (SELECT id FROM service_requests WHERE state = 'waiting' ORDER BY id LIMIT 1) RETURNING *",
        )
        .bind(now());
        Ok(self.fetch(q).await?.first().map(request))
    }

    /// The running job's progress line.
    ///
    /// # Errors
    /// Database failure.
    pub async fn service_request_progress(&self, id: i64, line: &str) -> Result<()> {
        let q = sqlx::query(
            "UPDATE service_requests SET progress = ?2 WHERE id = ?1 AND state IN ('running', 'stopping')",
        )
        .bind(id)
        .bind(line);
        self.run(q).await?;
        Ok(())
    }

    /// A request that runs ended (`state` is one of the ended ones); one that ended
    /// already is left as it ended.
    ///
    /// # Errors
    /// Database failure.
    pub async fn end_service_request(
        &self,
        id: i64,
        state: RequestState,
        message: &str,
    ) -> Result<()> {
        let q = sqlx::query(
            "UPDATE service_requests SET state = ?2, finished = ?3, message = ?4, progress = NULL WHERE id = ?1 AND state IN ('running', 'stopping')",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(now())
        .bind(message);
        self.run(q).await?;
        Ok(())
    }

    /// Cancel a request: a waiting one is cancelled at once, a running one is stopping
    /// (the service stops it); an ended one is left as it is. The request afterwards, or
    /// `None` when there is no such request.
    ///
    /// # Errors
    /// Database failure.
    pub async fn cancel_service_request(&self, id: i64) -> Result<Option<RequestRow>> {
        let q = sqlx::query(
            "UPDATE service_requests SET state = CASE state WHEN 'waiting' THEN 'cancelled' WHEN 'running' THEN 'stopping' ELSE state END, finished = CASE state WHEN 'waiting' THEN ?2 ELSE finished END, message = CASE state WHEN 'waiting' THEN 'cancelled before it started' ELSE message END WHERE id = ?1",
        )
        .bind(id)
        .bind(now());
        self.run(q).await?;
        self.service_request(id).await
    }

    /// Requests a service left running when it ended without saying (killed, the
    /// machine lost power) are failed with `message`; returns how many.
    ///
    /// # Errors
    /// Database failure.
    pub async fn abandon_service_requests(&self, message: &str) -> Result<u64> {
        let q = sqlx::query(
            "UPDATE service_requests SET state = 'failed', finished = ?1, message = ?2, progress = NULL WHERE state IN ('running', 'stopping')",
        )
        .bind(now())
        .bind(message);
        Ok(self.run(q).await?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest request of a policy by an asker's label, however many came after it.
    #[tokio::test]
    async fn the_last_request_of_a_policy_by_whom() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.db")).await.unwrap();
        let first = c
            .ask_service("p1", "operator alice (uid 1001) on vm")
            .await
            .unwrap();
        for i in 0..20 {
            c.ask_service(&format!("p{i}"), "rehydra policy run on vm")
                .await
                .unwrap();
        }
        let last = c.last_service_request("p1", "operator ").await.unwrap();
        assert_eq!(last.map(|r| r.id), Some(first.id));
        assert_eq!(
            c.last_service_request("p2", "operator ").await.unwrap(),
            None
        );
        // a label that merely contains the prefix is not one that starts with it
        c.ask_service("p2", "not an operator on vm").await.unwrap();
        assert_eq!(
            c.last_service_request("p2", "operator ").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn requests_are_taken_in_order_once_and_cancelled_as_they_stand() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.db")).await.unwrap();
        assert!(!c.service_request_waits().await.unwrap());
        assert_eq!(c.take_service_request().await.unwrap(), None);
        let a = c.ask_service("nightly", "the desktop app").await.unwrap();
        let b = c.ask_service("hourly", "rehydra policy run").await.unwrap();
        let z = c.ask_service("weekly", "the desktop app").await.unwrap();
        assert_eq!(a.state, RequestState::Waiting);
        assert!(c.service_request_waits().await.unwrap());
        // the oldest first, and never twice
        let t = c.take_service_request().await.unwrap().unwrap();
        assert_eq!((t.id, t.state), (a.id, RequestState::Running));
        assert!(t.started.is_some());
        c.service_request_progress(a.id, "backup: 10 MiB")
            .await
            .unwrap();
        // a waiting one is cancelled at once, a running one is asked to stop
        let cz = c.cancel_service_request(z.id).await.unwrap().unwrap();
        assert_eq!(cz.state, RequestState::Cancelled);
        assert!(cz.finished.is_some());
        let ca = c.cancel_service_request(a.id).await.unwrap().unwrap();
        assert_eq!(ca.state, RequestState::Stopping);
        assert_eq!(ca.progress.as_deref(), Some("backup: 10 MiB"));
        assert_eq!(c.cancel_service_request(999).await.unwrap(), None);
        c.end_service_request(a.id, RequestState::Cancelled, "stopped")
            .await
            .unwrap();
        // an ended one stays as it ended
        let again = c.cancel_service_request(a.id).await.unwrap().unwrap();
        assert_eq!(
            (again.state, again.message.as_deref(), again.progress),
            (RequestState::Cancelled, Some("stopped"), None)
        );
        let t = c.take_service_request().await.unwrap().unwrap();
        assert_eq!(t.id, b.id);
        assert_eq!(c.take_service_request().await.unwrap(), None);
        // a service that died leaves b running: the next one fails it, saying why
        assert_eq!(c.abandon_service_requests("gone").await.unwrap(), 1);
        let all = c.service_requests(10).await.unwrap();
        assert_eq!(
            all.iter().map(|r| (r.id, r.state)).collect::<Vec<_>>(),
            vec![
                (z.id, RequestState::Cancelled),
                (b.id, RequestState::Failed),
                (a.id, RequestState::Cancelled)
            ]
        );
        // open ones are always listed, however many ended after them
        let w = c.ask_service("nightly", "x").await.unwrap();
        for _ in 0..3 {
            let r = c.ask_service("hourly", "x").await.unwrap();
            c.cancel_service_request(r.id).await.unwrap();
        }
        let few = c.service_requests(1).await.unwrap();
        assert_eq!(few.len(), 2);
        assert!(few.iter().any(|r| r.id == w.id));
        assert_eq!(RequestState::parse("later"), RequestState::Unknown);
    }
}
