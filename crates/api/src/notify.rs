//! Telling people what a policy run did: a webhook (a JSON body, retried), a
//! Healthchecks-style ping URL (every run, `/fail` appended on failure) and mail over SMTP
//! (STARTTLS or TLS unless the admin says otherwise). The settings are part of the policy;
//! the one secret they need (the SMTP password) is read from a file at send time, never
//! stored in the catalog, and no URL is ever repeated in an error (a webhook's URL often
//! carries its token): errors name the host only.
//!
//! The webhook body (`Content-Type: application/json`) is [`RunEvent`] serialised:
//! `event` (`policy-run`), `policy`, `repository`, `host`, `status` (`succeeded`,
//! `succeeded-with-warnings`, `failed`, `cancelled`), `started` and `finished` (RFC 3339),
//! `restore_points` (`id`, `asset`, `bytes`, `new_bytes`), `warnings`, `error`, and
//! `summary` (the same text the mail carries).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, Result};

/// When a policy tells people (the ping is sent on every run whatever this says: it is a
/// dead man's switch, and the service at the other end expects the successes).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyWhen {
    /// Only when the run failed (or was cancelled).
    #[default]
    Failure,
    /// When it failed or finished with warnings.
    Warnings,
    /// After every run.
    Always,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// STARTTLS, required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption (port 25 by default): only for a relay on this machine or a trusted
    /// network; a password is refused over it.
    None,
}

/// Mail settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Email {
    /// SMTP server, `host` or `host:port`.
    pub server: String,
    /// Connection security.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// User name for SMTP authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file whose first line is the SMTP password, read at each send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// A PEM file of extra certificate authorities to trust for this server (a company
    /// CA); the system's are trusted as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// A policy's notification settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Notify {
    /// When the webhook and the mail are sent.
    #[serde(default)]
    pub when: NotifyWhen,
    /// `http(s)://…`: the run's [`RunEvent`] is POSTed there as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// `http(s)://…`: GET after every run, with `/fail` appended when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<String>,
    /// Mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
}

/// A restore point in a [`RunEvent`].
#[derive(Debug, Clone, Serialize)]
pub struct EventPoint {
    /// Full id.
    pub id: String,
    /// Asset.
    pub asset: String,
    /// Bytes read.
    pub bytes: u64,
    /// New bytes stored.
    pub new_bytes: u64,
}

/// What a policy run did, as sent to a webhook.
#[derive(Debug, Clone, Serialize)]
pub struct RunEvent {
    /// Always `policy-run`.
    pub event: &'static str,
    /// Policy name.
    pub policy: String,
    /// The repository it backs up into.
    pub repository: String,
    /// This machine.
    pub host: String,
    /// How it ended.
    pub status: rehydra_catalog::JobStatus,
    /// Start.
    pub started: DateTime<Utc>,
    /// End.
    pub finished: DateTime<Utc>,
    /// Restore points made.
    pub restore_points: Vec<EventPoint>,
    /// Warnings (and a failed copy).
    pub warnings: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The text a person reads (the mail's body).
    pub summary: String,
}

impl RunEvent {
    /// The run of policy `policy` into `repository`, started at `started`, as told.
    #[must_use]
    pub fn of(
        policy: &str,
        repository: &str,
        started: DateTime<Utc>,
        r: &Result<crate::policies::PolicyRun>,
    ) -> Self {
        use rehydra_catalog::JobStatus as S;
        let (status, restore_points, mut warnings, error) = match r {
            Ok(run) => {
                let points = run
                    .restore_points
                    .iter()
                    .map(|rp| EventPoint {
                        id: rp.id.clone(),
                        asset: rp.asset.clone(),
                        bytes: rp.bytes,
                        new_bytes: rp.new_bytes,
                    })
                    .collect();
                let copy_error = run.copy.as_ref().and_then(|c| c.error.clone());
                let status = if copy_error.is_some() {
                    S::Failed
                } else if run.warnings.is_empty() {
                    S::Succeeded
                } else {
                    S::SucceededWithWarnings
                };
                (status, points, run.warnings.clone(), copy_error)
            }
            Err(e) if e.code == Code::Cancelled => {
                (S::Cancelled, vec![], vec![], Some(e.message.clone()))
            }
            Err(e) => (S::Failed, vec![], vec![], Some(e.message.clone())),
        };
        if status == S::Failed && !restore_points.is_empty() {
            warnings.push("the backup itself was saved; only the copy failed".into());
        }
        let mut ev = RunEvent {
            event: "policy-run",
            policy: policy.to_string(),
            repository: repository.to_string(),
            host: crate::service::requests::this_host(),
            status,
            started,
            finished: Utc::now(),
            restore_points,
            warnings,
            error,
            summary: String::new(),
        };
        ev.summary = summary(&ev);
        ev
    }

    /// The mail's subject line.
    #[must_use]
    pub fn subject(&self) -> String {
        format!(
            "[Rehydra] policy {}: {} on {}",
            self.policy,
            headline(self.status, self.warnings.len()),
            self.host
        )
    }

    /// Whether `when` asks for this run to be told.
    #[must_use]
    pub fn wanted_by(&self, when: NotifyWhen) -> bool {
        use rehydra_catalog::JobStatus as S;
        match when {
            NotifyWhen::Always => true,
            NotifyWhen::Warnings => self.status != S::Succeeded,
            NotifyWhen::Failure => matches!(self.status, S::Failed | S::Cancelled),
        }
    }
}

fn headline(status: rehydra_catalog::JobStatus, warnings: usize) -> String {
    use rehydra_catalog::JobStatus as S;
    match status {
        S::Succeeded => "succeeded".into(),
        S::SucceededWithWarnings => format!("succeeded with {warnings} warning(s)"),
        S::Failed => "FAILED".into(),
        S::Cancelled => "cancelled".into(),
        S::Running | S::Unknown => status.as_str().into(),
    }
}

/// The human summary: the outcome on the first line, then what was saved, what went
/// wrong and what to look at.
#[must_use]
pub fn summary(ev: &RunEvent) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "Rehydra policy `{}` {} on {}.\nRepository: {}\nRan {} to {} ({} s).\n",
        ev.policy,
        headline(ev.status, ev.warnings.len()),
        ev.host,
        ev.repository,
        ev.started.format("%Y-%m-%d %H:%M:%S UTC"),
        ev.finished.format("%H:%M:%S UTC"),
        (ev.finished - ev.started).num_seconds().max(0),
    );
    if let Some(e) = &ev.error {
        let _ = writeln!(s, "\nError: {e}");
    }
    for p in &ev.restore_points {
        let _ = writeln!(
            s,
            "Restore point {} of {}: {} bytes read, {} new.",
            &p.id[..p.id.len().min(8)],
            p.asset,
            p.bytes,
            p.new_bytes
        );
    }
    if !ev.warnings.is_empty() {
        s.push_str("\nWarnings:\n");
        for w in &ev.warnings {
            let _ = writeln!(s, "  - {w}");
        }
    }
    if ev.status != rehydra_catalog::JobStatus::Succeeded {
        s.push_str("\nThe job's log: rehydra catalog runs, then rehydra catalog log RUN.\n");
    }
    s
}

impl Notify {
    /// Refuse settings that cannot work, before they are saved.
    ///
    /// # Errors
    /// [`Code::InvalidInput`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        for (what, u) in [("webhook", &self.webhook), ("ping", &self.ping)] {
            if let Some(u) = u {
                http_url(what, u)?;
            }
        }
        if let Some(m) = &self.email {
            server(m)?;
            mailbox("from", &m.from)?;
            if m.to.is_empty() {
                return Err(bad("the mail needs at least one recipient (to)"));
            }
            for t in &m.to {
                mailbox("to", t)?;
            }
            if m.security == SmtpSecurity::None && m.password_file.is_some() {
                return Err(bad(
                    "an SMTP password is never sent unencrypted: use security starttls or tls",
                ));
            }
            if m.password_file.is_some() != m.username.is_some() {
                return Err(bad(
                    "SMTP authentication needs both a user name and a password file",
                ));
            }
        }
        Ok(())
    }

    /// Send what `ev` calls for. Returns one line per channel that failed (the run's
    /// outcome does not change; the caller reports them).
    #[must_use]
    pub fn send(&self, ev: &RunEvent) -> Vec<String> {
        let mut failed = Vec::new();
        let http = || rehydra_azure::http::client(Duration::from_secs(15));
        if let Some(p) = &self.ping {
            let fail = matches!(
                ev.status,
                rehydra_catalog::JobStatus::Failed | rehydra_catalog::JobStatus::Cancelled
            );
            let url = if fail { fail_url(p) } else { p.clone() };
            if let Err(e) = http()
                .map_err(|e| e.to_string())
                .and_then(|c| with_retries("ping", &url, || c.get(&url)))
            {
                failed.push(e);
            }
        }
        if !ev.wanted_by(self.when) {
            return failed;
        }
        if let Some(w) = &self.webhook {
            let body = serde_json::to_vec(ev).unwrap_or_default();
            if let Err(e) = http().map_err(|e| e.to_string()).and_then(|c| {
                with_retries("webhook", w, || {
                    c.post(w)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                })
            }) {
                failed.push(e);
            }
        }
        if let Some(m) = &self.email
            && let Err(e) = mail_within(m, ev, MAIL_DEADLINE)
        {
            failed.push(e);
        }
        failed
    }
}

/// The most a mail may take, all attempts included: lettre's timeout is per read, and a
/// server that trickles bytes would otherwise hold the service for as long as it likes.
const MAIL_DEADLINE: Duration = Duration::from_secs(90);

/// [`mail`] on a thread of its own, given up after `deadline` (the thread ends with its
/// connection's next timeout).
fn mail_within(m: &Email, ev: &RunEvent, deadline: Duration) -> std::result::Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (m2, ev2) = (m.clone(), ev.clone());
    std::thread::spawn(move || {
        let _ = tx.send(mail(&m2, &ev2));
    });
    rx.recv_timeout(deadline).unwrap_or_else(|_| {
        Err(format!(
            "mail through {}: no answer within {} s",
            m.server,
            deadline.as_secs()
        ))
    })
}

/// Healthchecks' failure signal: `/fail` appended to the path (a query stays a query).
fn fail_url(ping: &str) -> String {
    match url::Url::parse(ping) {
        Ok(mut u) => {
            let path = format!("{}/fail", u.path().trim_end_matches('/'));
            u.set_path(&path);
            u.to_string()
        }
        Err(_) => format!("{}/fail", ping.trim_end_matches('/')),
    }
}

fn bad(m: &str) -> ApiError {
    ApiError::new(Code::InvalidInput, m.to_string())
}

fn http_url(what: &str, u: &str) -> Result<url::Url> {
    let url = url::Url::parse(u).map_err(|e| {
        bad(&format!(
            "the {what} is not a URL ({e}): give http(s)://HOST/…"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(&format!("the {what} must be an http(s)://HOST/… URL")));
    }
    Ok(url)
}

/// Where a URL goes, without its path or query (they may hold a token).
fn host_of(u: &str) -> String {
    url::Url::parse(u).ok().map_or_else(
        || "an unparsable URL".into(),
        |u| {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
        },
    )
}

/// Send, retrying connection failures, 429 and 5xx (three attempts, 1 s then 2 s apart);
/// other answers are final.
fn with_retries(
    what: &str,
    url: &str,
    req: impl Fn() -> reqwest::RequestBuilder,
) -> std::result::Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("{what}: starting a runtime: {e}"))?;
    let to = host_of(url);
    let mut last = String::new();
    for attempt in 0..3u64 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(attempt));
        }
        match rt.block_on(async { req().send().await }) {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let st = r.status().as_u16();
                last = format!("{what} to {to} answered HTTP {st}");
                if !(st == 429 || st >= 500) {
                    return Err(last);
                }
            }
            // reqwest's error text names the whole URL: keep only its kind
            Err(e) => {
                last = format!(
                    "{what} to {to} failed: {}",
                    if e.is_timeout() {
                        "timed out"
                    } else if e.is_connect() {
                        "could not connect"
                    } else {
                        "the request failed"
                    }
                );
            }
        }
    }
    Err(format!("{last} (after 3 attempts)"))
}

fn server(m: &Email) -> Result<(String, u16)> {
    let default = match m.security {
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::None => 25,
    };
    let (host, port) = match m.server.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>().map_err(|_| {
                bad(&format!(
                    "the SMTP server `{}` has a bad port: give host or host:port",
                    m.server
                ))
            })?,
        ),
        None => (m.server.as_str(), default),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad(&format!(
            "the SMTP server `{}` is not a host name: give host or host:port",
            m.server
        )));
    }
    Ok((host.to_string(), port))
}

fn mailbox(what: &str, a: &str) -> Result<lettre::message::Mailbox> {
    a.parse().map_err(|e| {
        bad(&format!(
            "the mail's {what} address `{a}` is not valid ({e})"
        ))
    })
}

fn mail(m: &Email, ev: &RunEvent) -> std::result::Result<(), String> {
    use lettre::Transport as _;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let err = |e: &dyn std::fmt::Display| format!("mail through {}: {e}", m.server);
    let (host, port) = server(m).map_err(|e| e.message)?;
    let mut msg = lettre::Message::builder()
        .from(mailbox("from", &m.from).map_err(|e| e.message)?)
        .subject(ev.subject())
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    for t in &m.to {
        msg = msg.to(mailbox("to", t).map_err(|e| e.message)?);
    }
    let msg = msg.body(ev.summary.clone()).map_err(|e| err(&e))?;
    let tls = || -> std::result::Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(f) = &m.ca_file {
            let pem = std::fs::read(f).map_err(|e| err(&format!("CA file {f}: {e}")))?;
            b = b.add_root_certificate(
                Certificate::from_pem(&pem).map_err(|e| err(&format!("CA file {f}: {e}")))?,
            );
        }
        b.build_rustls().map_err(|e| err(&e))
    };
    let mut t = lettre::SmtpTransport::builder_dangerous(host.as_str())
        .port(port)
        .timeout(Some(Duration::from_secs(30)))
        .tls(match m.security {
            SmtpSecurity::Starttls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::None => Tls::None,
        });
    if let (Some(u), Some(f)) = (&m.username, &m.password_file) {
        let pw = std::fs::read_to_string(f)
            .map_err(|e| err(&format!("password file {f}: {e}")))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        t = t.credentials(lettre::transport::smtp::authentication::Credentials::new(
            u.clone(),
            pw,
        ));
    }
    let t = t.build();
    let mut last = String::new();
    for attempt in 0..3u64 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(attempt));
        }
        match t.send(&msg) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_permanent() => return Err(err(&e)),
            Err(e) => last = err(&e),
        }
    }
    Err(format!("{last} (after 3 attempts)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehydra_catalog::JobStatus;

    fn event(status: JobStatus) -> RunEvent {
        let t = DateTime::parse_from_rfc3339("2026-12-03T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut ev = RunEvent {
            event: "policy-run",
            policy: "nightly".into(),
            repository: "/srv/repo".into(),
            host: "ws01".into(),
            status,
            started: t,
            finished: t + chrono::Duration::seconds(66),
            restore_points: vec![],
            warnings: vec!["a.txt: permission denied".into()],
            error: (status == JobStatus::Failed).then(|| "cannot read /srv/data".into()),
            summary: String::new(),
        };
        ev.summary = summary(&ev);
        ev
    }

    #[test]
    fn when_decides_who_hears_what() {
        let ok = event(JobStatus::Succeeded);
        let warn = event(JobStatus::SucceededWithWarnings);
        let fail = event(JobStatus::Failed);
        assert!(!ok.wanted_by(NotifyWhen::Failure) && !warn.wanted_by(NotifyWhen::Failure));
        assert!(fail.wanted_by(NotifyWhen::Failure));
        assert!(!ok.wanted_by(NotifyWhen::Warnings) && warn.wanted_by(NotifyWhen::Warnings));
        assert!(ok.wanted_by(NotifyWhen::Always));
        assert_eq!(fail.subject(), "[Rehydra] policy nightly: FAILED on ws01");
        assert!(
            fail.summary
                .starts_with("Rehydra policy `nightly` FAILED on ws01.")
        );
        assert!(fail.summary.contains("Error: cannot read /srv/data"));
        assert!(fail.summary.contains("(66 s)"));
        assert!(fail.summary.contains("rehydra catalog log RUN"));
        assert_eq!(
            serde_json::to_value(&fail).unwrap()["status"],
            serde_json::json!("failed")
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        let mail = Email {
            server: "smtp.example.com".into(),
            security: SmtpSecurity::Starttls,
            from: "rehydra@example.com".into(),
            to: vec!["ops@example.com".into()],
            username: None,
            password_file: None,
            ca_file: None,
        };
        let ok = Notify {
            when: NotifyWhen::Failure,
            webhook: Some("https://hooks.example.com/x?token=1".into()),
            ping: Some("https://hc-ping.com/uuid".into()),
            email: Some(mail.clone()),
        };
        assert!(ok.validate().is_ok());
        let msg = |n: Notify| n.validate().unwrap_err().message;
        let mut n = ok.clone();
        n.webhook = Some("file:///etc/passwd".into());
        assert!(msg(n).contains("webhook must be an http(s)"));
        let mut n = ok.clone();
        n.email.as_mut().unwrap().to = vec!["not an address".into()];
        assert!(msg(n).contains("`not an address` is not valid"));
        let mut n = ok.clone();
        n.email.as_mut().unwrap().to.clear();
        assert!(msg(n).contains("at least one recipient"));
        let mut n = ok.clone();
        let m = n.email.as_mut().unwrap();
        m.security = SmtpSecurity::None;
        m.username = Some("u".into());
        m.password_file = Some("/etc/rehydra/smtp".into());
        assert!(msg(n).contains("never sent unencrypted"));
        let mut n = ok;
        n.email.as_mut().unwrap().server = "smtp.example.com:smtp".into();
        assert!(msg(n).contains("bad port"));
        assert_eq!(server(&mail).unwrap(), ("smtp.example.com".into(), 587));
    }

    #[test]
    fn failure_pings_append_fail_to_the_path() {
        assert_eq!(
            fail_url("https://hc-ping.com/abc"),
            "https://hc-ping.com/abc/fail"
        );
        assert_eq!(
            fail_url("https://hc-ping.com/abc/"),
            "https://hc-ping.com/abc/fail"
        );
        assert_eq!(
            fail_url("https://hc-ping.com/abc?create=1"),
            "https://hc-ping.com/abc/fail?create=1"
        );
    }

    #[test]
    fn a_mail_server_that_never_answers_is_given_up_on() {
        // it accepts the connection and says nothing (no greeting)
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let _held: Vec<_> = l.incoming().take(3).collect();
            std::thread::sleep(Duration::from_secs(60));
        });
        let m = Email {
            server: format!("127.0.0.1:{port}"),
            security: SmtpSecurity::None,
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            username: None,
            password_file: None,
            ca_file: None,
        };
        let t = std::time::Instant::now();
        let e = mail_within(&m, &event(JobStatus::Failed), Duration::from_secs(2)).unwrap_err();
        assert!(e.contains("no answer within 2 s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn errors_never_repeat_a_url_path_or_query() {
        assert_eq!(
            host_of("https://hooks.example.com:8443/services/T0/B0/SECRET?x=1"),
            "https://hooks.example.com:8443"
        );
        // nothing listens on port 9 of loopback: the error names the host, not the token
        let e = with_retries("webhook", "http://127.0.0.1:9/hook/SECRET", || {
            reqwest::Client::new().get("http://127.0.0.1:9/hook/SECRET")
        })
        .unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(
            e.contains("http://127.0.0.1:9") && e.contains("after 3 attempts"),
            "{e}"
        );
    }
}
