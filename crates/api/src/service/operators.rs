//! The service's door for operators: people who may see how the machine's service stands,
//! run one of its policies now and cancel such a run, and nothing else. They are not
//! administrators and cannot open the service's catalog (on Windows only SYSTEM and
//! Administrators may; on Linux it is root's), which is what lets the service run what
//! it says: whoever may write it may make the service, LocalSystem or root, back up or
//! restore any file. So an operator asks the service itself, over a local socket (a Unix
//! socket on Linux, a named pipe on Windows) that only the group the administrator named
//! (`rehydra service --operators GROUP`), the administrators and the service's own
//! account may open. The operating system checks that, and names the asker to the
//! service (its peer credentials, or the pipe client's token), so a run handed over this
//! way says who asked, which the catalog's label cannot prove.
//!
//! One request per connection: a JSON line (an [`Ask`]), answered by one JSON line,
//! `{"ok": …}` or `{"error": {"code", "message"}}`. What an operator is shown is
//! [`Overview`]: the policies' names, what they back up in a few words, schedules and
//! results; never their settings (a webhook's URL carries its token).

#[cfg(unix)]
#[path = "operators/unix.rs"]
mod door;
#[cfg(windows)]
#[path = "operators/windows.rs"]
mod door;

use std::io::{BufRead as _, Read as _, Write as _};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use door::Door;

use super::requests::{self, ServiceRequest};
use crate::Context;
use crate::error::{ApiError, Code, Result};

/// The longest request line read (an [`Ask`] is a few dozen bytes).
const ASK_MAX: u64 = 4096;
/// The longest answer a client reads.
const ANSWER_MAX: u64 = 4 << 20;
/// How long the service waits for a connection's ask in all, and then for its answer to
/// be taken in all (the time the service takes to answer counts for neither), and a Unix
/// client for the service (a Windows client's pipe, opened for plain reads and writes,
/// has no timeouts).
const WAIT: Duration = Duration::from_secs(10);
/// A connection's deadlines, the same on both doors: [`WAIT`] for all of its reads (the
/// ask), then a new [`WAIT`] from its first write for all of its writes (the answer).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    until: std::time::Instant,
    answering: bool,
}

impl Deadline {
    /// For a connection that has yet to ask.
    fn asking() -> Self {
        Self {
            until: std::time::Instant::now() + WAIT,
            answering: false,
        }
    }

    /// For a connection already answered (what it still sends or how long it stays).
    fn answered() -> Self {
        Self {
            answering: true,
            ..Self::asking()
        }
    }

    /// What is left for a read; none is an error.
    fn read(&self) -> std::io::Result<Duration> {
        let left = self
            .until
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }

    /// What is left for a write, the answer's deadline starting at the first.
    fn write(&mut self) -> std::io::Result<Duration> {
        if !self.answering {
            *self = Self::answered();
        }
        self.read()
    }
}

/// Connections a door answers at once; past that one is closed unread.
const AT_ONCE: usize = 8;

/// One of the [`AT_ONCE`] connections a door answers, given back when dropped (also when
/// answering one panics).
struct Slot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    /// A slot of `busy`, if one is free.
    fn take(busy: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Option<Self> {
        use std::sync::atomic::Ordering::SeqCst;
        if busy.fetch_add(1, SeqCst) >= AT_ONCE {
            busy.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Self(std::sync::Arc::clone(busy)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The requests an overview lists besides those not ended.
const REQUESTS_SHOWN: i64 = 10;

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "kebab-case")]
pub enum Ask {
    /// How the service stands: its policies and the runs handed to it.
    Overview,
    /// Run a policy of the service now.
    Run {
        /// The policy's name.
        policy: String,
    },
    /// Cancel a run handed to the service.
    Cancel {
        /// The request's number.
        id: i64,
    },
}

/// How the service stands, as an operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Overview {
    /// The service's process.
    pub pid: u32,
    /// The repository whose policies it runs.
    pub repository: String,
    /// Those policies.
    pub policies: Vec<OperatorPolicy>,
    /// Runs handed to it: those not ended yet and the ten newest others, newest first.
    pub requests: Vec<ServiceRequest>,
}

/// A policy as an operator sees it: no settings, which may carry secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct OperatorPolicy {
    /// Its name.
    pub name: String,
    /// What it backs up, in a few words.
    pub what: String,
    /// Its schedule in words.
    pub schedule: String,
    /// Its last successful run.
    pub last_run: Option<DateTime<Utc>>,
    /// When it is due next.
    pub next_due: DateTime<Utc>,
    /// Failed runs since the last success.
    pub failures: u32,
}

/// The socket operators reach the service at: `REHYDRA_SERVICE_SOCKET`, else
/// `/run/rehydra/operators.sock` on Linux and `\\.\pipe\rehydra-operators` on Windows.
#[must_use]
pub fn endpoint() -> std::path::PathBuf {
    std::env::var_os("REHYDRA_SERVICE_SOCKET")
        .filter(|v| !v.is_empty())
        .map_or_else(|| door::DEFAULT.into(), Into::into)
}

/// How a run asked through the door is labelled (`operator NAME …`): the door names the
/// asker, and only such runs are an operator's to cancel.
pub(crate) const ASKED_BY_OPERATOR: &str = "operator ";
/// Held from an operator's look at the runs asked for to the ask itself.
static ASKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// How soon an operator may ask again for a run of a policy an operator asked for: runs
/// apply the policy's retention, so a stream of them would forget older restore points
/// (with `keep-last 3`, three runs in a row replace every older one).
const AGAIN_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// A request as an operator sees it: its progress without the file being read (a path
/// in a folder the operator may not read) and how it ended without its details (which
/// may name a copy target's password file or a mail server); the job log, for
/// administrators, has them whole.
fn for_operators(mut r: ServiceRequest) -> ServiceRequest {
    r.progress = r
        .progress
        .map(|p| p.split(" \u{2014} ").next().unwrap_or_default().to_string());
    r.message = r.message.map(|m| {
        if r.state == requests::RequestState::Succeeded {
            // "succeeded (N restore point(s), N warning(s), retention removed N)", then
            // what went wrong with the copy, if anything
            const COUNTS_END: &str = "retention removed ";
            m.find(COUNTS_END)
                .and_then(|at| m[at..].find(')').map(|end| at + end + 1))
                .map_or_else(
                    || "succeeded: the job log says more".to_string(),
                    |end| m[..end].to_string(),
                )
        } else {
            format!("{}: the job log says why (administrators read it)", r.state)
        }
    });
    r
}

/// The service's answer to `ask` from `asker` (who the operating system says connected).
/// The service running here serves `repository` from `ctx`'s catalog.
///
/// # Errors
/// What [`requests::hand_over`] and [`requests::cancel`] refuse; a policy an operator ran
/// less than 15 minutes ago; a run an operator did not ask for; the catalog cannot be
/// read.
pub fn answer(
    ctx: &Context,
    repository: &str,
    ask: &Ask,
    asker: &str,
) -> Result<serde_json::Value> {
    let json = |v: Result<ServiceRequest>| {
        v.and_then(|r| {
            serde_json::to_value(for_operators(r))
                .map_err(|e| ApiError::new(Code::Io, e.to_string()))
        })
    };
    let policies = || -> Result<Vec<crate::policies::PolicyStatus>> {
        Ok(crate::policies::list(ctx, Utc::now())?
            .into_iter()
            .filter(|p| p.policy.repository == repository)
            .collect())
    };
    let refuse = |m: String| Err(ApiError::new(Code::InvalidInput, m));
    match ask {
        Ask::Overview => {
            let policies = policies()?
                .into_iter()
                .map(|p| OperatorPolicy {
                    what: rehydra_core::one_line(&p.policy.what.label(), 300),
                    name: p.policy.name,
                    schedule: p.schedule,
                    last_run: p.last_run,
                    next_due: p.next_due,
                    failures: p.failures,
                })
                .collect();
            let o = Overview {
                pid: std::process::id(),
                repository: repository.to_string(),
                policies,
                requests: requests::list(ctx, REQUESTS_SHOWN)?
                    .into_iter()
                    .map(for_operators)
                    .collect(),
            };
            serde_json::to_value(o).map_err(|e| ApiError::new(Code::Io, e.to_string()))
        }
        Ask::Run { policy } => {
            if !policies()?.iter().any(|p| &p.policy.name == policy) {
                return refuse(format!(
                    "it has no policy named {policy} (`rehydra operator status` lists its policies)"
                ));
            }
            // the look and the ask as one: two operators asking at once get one run
            let _one_at_a_time = ASKING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // one waiting or running is the run asked for: no second one queued behind it
            if let Some(open) = requests::list(ctx, 0)?
                .into_iter()
                .find(|r| &r.policy == policy && r.state.is_open())
            {
                return json(Ok(open));
            }
            let last = requests::last_asked(ctx, policy, ASKED_BY_OPERATOR)?;
            let soon = last.and_then(|r| {
                let at = chrono::DateTime::parse_from_rfc3339(&r.asked)
                    .ok()?
                    .with_timezone(&Utc);
                (Utc::now() - at < AGAIN_AFTER).then(|| at + AGAIN_AFTER)
            });
            if let Some(after) = soon {
                return refuse(format!(
                    "an operator ran {policy} less than 15 minutes ago (each run applies its retention): ask again after {}",
                    after.format("%H:%M UTC")
                ));
            }
            tracing::info!(policy = %policy, asker = %asker, "an operator asks for a run");
            json(requests::hand_over(ctx, policy, asker))
        }
        Ask::Cancel { id } => {
            match requests::get(ctx, *id)? {
                None => {
                    return refuse(format!(
                        "no run {id} was handed to it (`rehydra operator status` lists them)"
                    ));
                }
                Some(r) if !r.asked_by.starts_with(ASKED_BY_OPERATOR) => {
                    return refuse(format!(
                        "run {id} was asked by {}, not by an operator: only an administrator cancels it",
                        r.asked_by
                    ));
                }
                Some(_) => {}
            }
            tracing::info!(request = id, asker = %asker, "an operator cancels a run");
            json(requests::cancel(ctx, *id))
        }
    }
}

/// Serve one connection: read its ask, answer it with `handle` (given the asker's name,
/// as the door tells it; a connection whose asker it cannot tell is refused).
fn converse<S: std::io::Read + std::io::Write>(
    stream: S,
    asker: &dyn Fn(&S) -> Option<String>,
    handle: &dyn Fn(&Ask, &str) -> Result<serde_json::Value>,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut reader = std::io::BufReader::new(stream);
    (&mut reader).take(ASK_MAX).read_until(b'\n', &mut line)?;
    let reply = match serde_json::from_slice::<Ask>(&line) {
        Ok(ask) => match asker(reader.get_ref()) {
            Some(who) => handle(&ask, &who),
            None => Err(ApiError::new(
                Code::InvalidInput,
                "the service cannot tell who is asking (the operating system did not say): connect as yourself, not anonymously",
            )),
        },
        Err(e) => Err(ApiError::new(
            Code::InvalidInput,
            format!("not a request this service understands ({e}): use a rehydra of its version"),
        )),
    };
    let mut out = match reply {
        Ok(v) => serde_json::json!({ "ok": v }),
        Err(e) => serde_json::json!({ "error": { "code": e.code, "message": e.message } }),
    }
    .to_string();
    out.push('\n');
    let mut stream = reader.into_inner();
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

/// Ask the service running on this machine, as an operator.
///
/// # Errors
/// No service answers at [`endpoint`] (or this user may not open it: the message says
/// which, and who may); the service refused (its error, as it said it).
pub fn ask<T: serde::de::DeserializeOwned>(ask: &Ask) -> Result<T> {
    let at = endpoint();
    let mut stream = door::connect(&at)?;
    let mut line =
        serde_json::to_string(ask).map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
    line.push('\n');
    let lost = |e: std::io::Error| {
        ApiError::new(
            Code::Io,
            format!("the service at {} did not answer: {e}", at.display()),
        )
    };
    stream.write_all(line.as_bytes()).map_err(lost)?;
    stream.flush().map_err(lost)?;
    // one line: read to its end, not to the connection's (a Windows server that hangs up
    // makes the next read fail, where a Unix socket's ends)
    let mut answer = Vec::new();
    std::io::BufReader::new(stream.take(ANSWER_MAX))
        .read_until(b'\n', &mut answer)
        .map_err(lost)?;
    let mut v: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| {
        ApiError::new(
            Code::Io,
            format!(
                "what answered at {} is not a Rehydra service of this version ({e})",
                at.display()
            ),
        )
    })?;
    // printed on the operator's terminal and shown in the app: no control characters
    // (escape sequences) from whatever answered
    tame(&mut v);
    if let Some(e) = v.get("error") {
        let code = serde_json::from_value(e["code"].clone()).unwrap_or(Code::Io);
        let message = e["message"].as_str().unwrap_or("the service refused");
        return Err(ApiError::new(code, format!("the service says: {message}")));
    }
    serde_json::from_value(v["ok"].clone()).map_err(|e| {
        ApiError::new(
            Code::Io,
            format!(
                "the service at {} answered in another form ({e})",
                at.display()
            ),
        )
    })
}

/// Every string in `v` on one line with no control characters.
fn tame(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = rehydra_core::one_line(s, 4096),
        serde_json::Value::Array(a) => a.iter_mut().for_each(tame),
        serde_json::Value::Object(o) => o.values_mut().for_each(tame),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_see_how_a_run_stands_without_paths_or_settings() {
        let r = ServiceRequest {
            id: 1,
            policy: "nightly".into(),
            asked: "2026-12-05T04:00:00Z".into(),
            asked_by: "operator alice (uid 1001) on vm".into(),
            state: requests::RequestState::Running,
            started: None,
            finished: None,
            progress: Some(
                "backup: 1.20 GiB of 4.00 GiB \u{2014} /home/bob/secret/plans.txt".into(),
            ),
            message: None,
        };
        assert_eq!(
            for_operators(r.clone()).progress.as_deref(),
            Some("backup: 1.20 GiB of 4.00 GiB")
        );
        let done = ServiceRequest {
            state: requests::RequestState::Succeeded,
            message: Some("succeeded (1 restore point(s), 0 warning(s), retention removed 0); copy to /srv/offsite failed: password file /etc/rehydra/copy.pw".into()),
            ..r.clone()
        };
        assert_eq!(
            for_operators(done).message.as_deref(),
            Some("succeeded (1 restore point(s), 0 warning(s), retention removed 0)")
        );
        let failed = ServiceRequest {
            state: requests::RequestState::Failed,
            message: Some(
                "failed: mail through smtp.internal:2525: password file /etc/rehydra/smtp.pw"
                    .into(),
            ),
            ..r
        };
        let m = for_operators(failed).message.unwrap();
        assert!(
            m.starts_with("failed: the job log says why") && !m.contains("smtp"),
            "{m}"
        );
    }

    #[test]
    fn what_answers_is_shown_without_control_characters() {
        let mut v = serde_json::json!({"ok": {"what": "/srv\u{1b}]8;;https://evil.example/\u{7}data", "n": [1, "a\nb"]}});
        tame(&mut v);
        assert_eq!(v["ok"]["what"], "/srv ]8;;https://evil.example/ data");
        assert_eq!(v["ok"]["n"][1], "a b");
    }

    #[test]
    fn asks_on_the_wire() {
        for (ask, line) in [
            (Ask::Overview, r#"{"ask":"overview"}"#),
            (
                Ask::Run {
                    policy: "nightly".into(),
                },
                r#"{"ask":"run","policy":"nightly"}"#,
            ),
            (Ask::Cancel { id: 3 }, r#"{"ask":"cancel","id":3}"#),
        ] {
            assert_eq!(serde_json::to_string(&ask).unwrap(), line);
            assert_eq!(serde_json::from_str::<Ask>(line).unwrap(), ask);
        }
    }

    /// One connection: a line too long, or not an ask, gets an error and nothing runs.
    #[test]
    fn a_line_that_is_no_ask_is_refused() {
        struct Pipe(std::io::Cursor<Vec<u8>>, Vec<u8>);
        impl std::io::Read for Pipe {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(b)
            }
        }
        impl std::io::Write for Pipe {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1.write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let ran = std::cell::Cell::new(0);
        let handle = |_: &Ask, who: &str| {
            ran.set(ran.get() + 1);
            Ok(serde_json::json!(who))
        };
        let mut long = vec![b' '; 5000];
        long.extend_from_slice(br#"{"ask":"overview"}"#);
        for bad in [&b"rm -rf /\n"[..], br#"{"ask":"restore"}"#, &long] {
            let mut p = Pipe(std::io::Cursor::new(bad.to_vec()), Vec::new());
            converse(&mut p, &|_| Some("someone".into()), &handle).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&p.1).unwrap();
            assert_eq!(v["error"]["code"], "invalid-input", "{v}");
        }
        assert_eq!(ran.get(), 0);
        let mut p = Pipe(
            std::io::Cursor::new(b"{\"ask\":\"overview\"}\n".to_vec()),
            Vec::new(),
        );
        converse(&mut p, &|_| Some("alice".into()), &handle).unwrap();
        assert_eq!(String::from_utf8(p.1).unwrap(), "{\"ok\":\"alice\"}\n");
        assert_eq!(ran.get(), 1);
        // one the door cannot name is refused, and nothing runs
        let mut p = Pipe(
            std::io::Cursor::new(b"{\"ask\":\"overview\"}\n".to_vec()),
            Vec::new(),
        );
        converse(&mut p, &|_| None, &handle).unwrap();
        assert!(String::from_utf8_lossy(&p.1).contains("cannot tell who is asking"));
        assert_eq!(ran.get(), 1);
    }
}
