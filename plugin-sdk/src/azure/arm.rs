//! Azure Resource Manager long-running operations (LROs), polled the way the Azure SDKs
//! poll them, so every plugin waits for ARM the same way.
//!
//! A `PUT`, `PATCH`, `POST` or `DELETE` that ARM answers `201`/`202` (or `200` with a
//! `properties.provisioningState` that is not terminal) is still running. It is watched
//! through, in this order:
//!
//! 1. `Azure-AsyncOperation`: a status monitor whose body has `status`;
//! 2. `Operation-Location`: the same kind of monitor;
//! 3. `Location`: `202` while running, any other `2xx` when done;
//! 4. for `PUT`/`PATCH` only, the resource itself (`properties.provisioningState`).
//!
//! A `202` to a `DELETE` or `POST` without any of these headers is an error (ARM's
//! contract requires one). `Succeeded`, `Failed` and `Canceled` are terminal (in any
//! case); `Failed` and `Canceled` become errors carrying ARM's `error.code` and
//! `error.message`. The result: for `PUT`/`PATCH` a `GET` of the original URL; for
//! `POST` a `GET` of the initial `Location` when there is one (ARM's default
//! `final-state-via`), else the monitor's last answer; for `DELETE` the last answer.
//!
//! Between polls the helper waits what `Retry-After` (seconds, or `retry-after-ms` /
//! `x-ms-retry-after-ms`) asks, else [`Options::default_interval`], never less than
//! [`Options::min_interval`], with [`std::thread::sleep`]: the host counts the wait
//! against the plugin's time limit and ends it when the user cancels. Polls are bounded
//! by [`Options::max_polls`] and [`Options::max_wait`]; an operation still running then
//! is an error that says so (ARM keeps working on it).
//!
//! The host already retries throttled (`429`) and failed (`5xx`) requests; a poll that
//! still gets one of those is treated as "still running" and polled again, within the
//! same bounds.
//!
//! ```ignore
//! use rehydra_plugin_sdk::azure::arm;
//! let url = format!("https://management.azure.com{id}?api-version=2024-01-01");
//! let vm = arm::send_and_wait("PUT", &url, Some(body.as_bytes()), &arm::Options::default())?;
//! ```
//!
//! The pieces ([`begin`], [`Poller::on_poll`], [`retry_after`], [`state`] …) work on plain
//! data, so the logic is tested without a host; [`send_and_wait_with`] takes the sending
//! and the waiting as closures (to log or journal every exchange, or to test).

use std::time::Duration;

use serde_json::Value;

use crate::{Error, ErrorCode, Result, http};

/// Where the result of a finished operation comes from: ARM's
/// `x-ms-long-running-operation-options.final-state-via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalStateVia {
    /// ARM's default: `PUT`/`PATCH` GET the original URL; `POST` GETs the initial
    /// `Location` if there was one, else takes the monitor's last answer.
    #[default]
    Default,
    /// GET the initial answer's `Location` (if there was one; else as [`Self::Default`]).
    Location,
    /// GET the original URL.
    OriginalUri,
    /// No final GET: the status monitor's last answer is the result.
    AzureAsyncOperation,
}

/// How to wait for an operation.
#[derive(Debug, Clone)]
pub struct Options {
    /// Headers sent with the request and with every poll (`accept: application/json` is
    /// added when absent, and `content-type: application/json` when there is a body).
    pub headers: Vec<(String, String)>,
    /// Wait between polls when ARM does not say (`Retry-After`). Default 10 s.
    pub default_interval: Duration,
    /// Shortest wait between polls, whatever ARM says. Default 1 s.
    pub min_interval: Duration,
    /// At most this many polls. Default 120.
    pub max_polls: u32,
    /// At most this much waiting, all polls together. Default 10 minutes.
    pub max_wait: Duration,
    /// Where the result comes from.
    pub final_state_via: FinalStateVia,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            default_interval: Duration::from_secs(10),
            min_interval: Duration::from_secs(1),
            max_polls: 120,
            max_wait: Duration::from_secs(600),
            final_state_via: FinalStateVia::Default,
        }
    }
}

impl Options {
    /// These options with `d` as the default wait between polls (and as the floor, when
    /// shorter than the current one).
    #[must_use]
    pub fn with_interval(mut self, d: Duration) -> Self {
        self.default_interval = d;
        self.min_interval = self.min_interval.min(d);
        self
    }
}

/// Where an operation's state shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Monitor {
    /// `Azure-AsyncOperation`: a status resource with `status`.
    AzureAsyncOperation(String),
    /// `Operation-Location`: a status resource with `status` (and `resourceLocation`).
    OperationLocation(String),
    /// `Location`: `202` while running, another `2xx` when done.
    Location(String),
    /// The resource itself (`PUT`/`PATCH`): `properties.provisioningState`.
    Resource(String),
}

impl Monitor {
    /// The URL polled.
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            Self::AzureAsyncOperation(u)
            | Self::OperationLocation(u)
            | Self::Location(u)
            | Self::Resource(u) => u,
        }
    }
}

/// A state as ARM names it, sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Anything not terminal (`Accepted`, `InProgress`, `Creating`, `Deleting` …).
    Running,
    /// `Succeeded`.
    Succeeded,
    /// `Failed`.
    Failed,
    /// `Canceled` (or `Cancelled`).
    Canceled,
}

/// Sort an ARM `status` / `provisioningState` value (case does not matter).
#[must_use]
pub fn state(s: &str) -> State {
    let s = s.trim();
    if s.eq_ignore_ascii_case("succeeded") {
        State::Succeeded
    } else if s.eq_ignore_ascii_case("failed") {
        State::Failed
    } else if s.eq_ignore_ascii_case("canceled") || s.eq_ignore_ascii_case("cancelled") {
        State::Canceled
    } else {
        State::Running
    }
}

/// The value of header `name` (any case), if present and not empty.
#[must_use]
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// What the answer asks to wait: `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds)
/// or `Retry-After` in seconds. (The HTTP-date form is not used by ARM and is ignored.)
#[must_use]
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    for ms in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(v) = header(headers, ms).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(v));
        }
    }
    header(headers, "retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// How long to wait before the next poll after an answer with `headers`.
#[must_use]
pub fn poll_interval(headers: &[(String, String)], opts: &Options) -> Duration {
    retry_after(headers)
        .unwrap_or(opts.default_interval)
        .max(opts.min_interval)
}

fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// `properties.provisioningState` of a resource body, if it has one.
#[must_use]
pub fn provisioning_state(body: &[u8]) -> Option<String> {
    json(body)?
        .pointer("/properties/provisioningState")?
        .as_str()
        .map(String::from)
}

/// `status` of an operation-status body, if it has one.
#[must_use]
pub fn operation_status(body: &[u8]) -> Option<String> {
    json(body)?.get("status")?.as_str().map(String::from)
}

/// ARM's error in a body: `error.code` and `error.message` (also at the top level, as
/// some status monitors put them, or in Azure Local's `properties.status`).
#[must_use]
pub fn arm_error(body: &[u8]) -> Option<(String, String)> {
    let v = json(body)?;
    let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(String::from);
    [
        ("/error/code", "/error/message"),
        ("/code", "/message"),
        (
            "/properties/status/errorCode",
            "/properties/status/errorMessage",
        ),
    ]
    .iter()
    .find_map(|(c, m)| match (s(&v, c), s(&v, m)) {
        (None, None) => None,
        (c, m) => Some((c.unwrap_or_default(), m.unwrap_or_default())),
    })
}

fn clip(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

/// The URL without its query (for messages).
fn short(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// ARM's own words for an answer: `code: message`, else the start of the body.
fn detail(body: &[u8]) -> String {
    match arm_error(body) {
        Some((c, m)) if !c.is_empty() && !m.is_empty() => format!("{c}: {m}"),
        Some((c, m)) => format!("{c}{m}"),
        None if body.is_empty() => "no details".into(),
        None => clip(&String::from_utf8_lossy(body), 400),
    }
}

/// The error code for an Azure service's HTTP failure status (ARM and data planes alike).
#[must_use]
pub fn status_code(status: u16) -> ErrorCode {
    match status {
        401 | 403 => ErrorCode::Denied,
        404 => ErrorCode::NotFound,
        400 | 409 | 412 | 422 => ErrorCode::InvalidInput,
        408 | 429 | 500..=599 => ErrorCode::Unavailable,
        _ => ErrorCode::Failed,
    }
}

/// The error for an HTTP failure answer to `what`.
#[must_use]
pub fn http_error(what: &str, r: &http::Response) -> Error {
    Error::new(
        status_code(r.status),
        format!(
            "Azure Resource Manager answered {} to {what}: {}",
            r.status,
            detail(&r.body)
        ),
    )
}

fn ended(what: &str, st: &str, body: &[u8]) -> Error {
    Error::new(
        ErrorCode::Failed,
        format!("{what} ended {st}: {}", detail(body)),
    )
}

/// What an initial answer means.
#[derive(Debug)]
pub enum Lro {
    /// Finished (synchronously): this is the result.
    Done(http::Response),
    /// Still running: poll, first after the given wait.
    Pending(Poller, Duration),
}

/// What a poll's answer means.
#[derive(Debug)]
pub enum Progress {
    /// Still running: poll again after this wait.
    Running(Duration),
    /// Finished: GET this URL for the result (then [`Poller::on_final`]).
    Fetch(String),
    /// Finished: this is the result.
    Done(http::Response),
}

/// A running operation, between polls.
#[derive(Debug, Clone)]
pub struct Poller {
    method: String,
    url: String,
    monitor: Monitor,
    location: Option<String>,
    resource_location: Option<String>,
    final_state_via: FinalStateVia,
}

/// Read the initial answer to `method url`: finished, failed, or how to watch it.
///
/// # Errors
/// An HTTP error (`4xx`/`5xx`, with ARM's code and message), a status ARM never sends
/// for these methods, a synchronous `Failed`/`Canceled`, a `202` to `DELETE`/`POST`
/// without a polling header, or a polling URL that is not absolute.
pub fn begin(method: &str, url: &str, initial: http::Response, opts: &Options) -> Result<Lro> {
    let m = method.trim().to_ascii_uppercase();
    let what = format!("{m} {}", short(url));
    let s = initial.status;
    if s >= 400 {
        return Err(http_error(&what, &initial));
    }
    if !matches!(s, 200 | 201 | 202 | 204) {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "Azure Resource Manager answered {s} to {what}, which is not an answer to a {m}"
            ),
        ));
    }
    if s == 204 {
        return Ok(Lro::Done(initial));
    }
    // an operation that ended at once says so in the body (no polling needed)
    if s != 202 {
        match provisioning_state(&initial.body) {
            Some(st) => match state(&st) {
                State::Succeeded => return Ok(Lro::Done(initial)),
                State::Failed | State::Canceled => return Err(ended(&what, &st, &initial.body)),
                State::Running => {}
            },
            None if s == 200 => return Ok(Lro::Done(initial)),
            None => {}
        }
    }
    let h = |n: &str| header(&initial.headers, n).map(String::from);
    let location = h("location");
    let monitor = if let Some(u) = h("azure-asyncoperation") {
        Monitor::AzureAsyncOperation(u)
    } else if let Some(u) = h("operation-location") {
        Monitor::OperationLocation(u)
    } else if let Some(u) = location.clone() {
        Monitor::Location(u)
    } else if m == "PUT" || m == "PATCH" {
        Monitor::Resource(url.to_string())
    } else if s == 202 {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "Azure Resource Manager accepted {what} (202) without Azure-AsyncOperation, Operation-Location or Location: there is nothing to watch it through"
            ),
        ));
    } else {
        return Ok(Lro::Done(initial));
    };
    for u in [Some(monitor.url()), location.as_deref()]
        .into_iter()
        .flatten()
    {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "Azure Resource Manager gave {what} a polling URL that is not absolute: {u}"
                ),
            ));
        }
    }
    let wait = poll_interval(&initial.headers, opts);
    Ok(Lro::Pending(
        Poller {
            method: m,
            url: url.to_string(),
            monitor,
            location,
            resource_location: None,
            final_state_via: opts.final_state_via,
        },
        wait,
    ))
}

/// Statuses the host retries already; a poll that still gets one just polls again.
fn transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

impl Poller {
    /// How the operation is watched.
    #[must_use]
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The URL to poll (GET).
    #[must_use]
    pub fn poll_url(&self) -> &str {
        self.monitor.url()
    }

    fn what(&self) -> String {
        format!("{} {}", self.method, short(&self.url))
    }

    /// Read one poll's answer.
    ///
    /// # Errors
    /// The operation ended `Failed`/`Canceled` (with ARM's code and message), the monitor
    /// answered an HTTP error or a body without a status, or the resource vanished.
    pub fn on_poll(&mut self, r: http::Response, opts: &Options) -> Result<Progress> {
        let wait = poll_interval(&r.headers, opts);
        if transient(r.status) {
            return Ok(Progress::Running(wait));
        }
        let what = self.what();
        match &self.monitor {
            Monitor::AzureAsyncOperation(u) | Monitor::OperationLocation(u) => {
                if !(200..300).contains(&r.status) {
                    return Err(http_error(
                        &format!("the status of {what} ({})", short(u)),
                        &r,
                    ));
                }
                let st = operation_status(&r.body).ok_or_else(|| {
                    Error::new(
                        ErrorCode::Failed,
                        format!(
                            "the status of {what} ({}) has no `status`: {}",
                            short(u),
                            clip(&String::from_utf8_lossy(&r.body), 400)
                        ),
                    )
                })?;
                match state(&st) {
                    State::Running => Ok(Progress::Running(wait)),
                    State::Failed | State::Canceled => Err(ended(&what, &st, &r.body)),
                    State::Succeeded => {
                        if matches!(self.monitor, Monitor::OperationLocation(_)) {
                            self.resource_location = json(&r.body)
                                .and_then(|v| v.get("resourceLocation")?.as_str().map(String::from))
                                .filter(|l| l.starts_with("https://") || l.starts_with("http://"));
                        }
                        Ok(self.finish(r))
                    }
                }
            }
            Monitor::Location(u) => match r.status {
                202 => Ok(Progress::Running(wait)),
                200..=299 => Ok(self.finish(r)),
                _ => Err(http_error(&format!("{what} (at {})", short(u)), &r)),
            },
            Monitor::Resource(_) => {
                if r.status == 404 {
                    return Err(Error::new(
                        ErrorCode::NotFound,
                        format!("{what}: the resource disappeared while it was provisioning"),
                    ));
                }
                if !(200..300).contains(&r.status) {
                    return Err(http_error(&format!("GET {}", short(&self.url)), &r));
                }
                match provisioning_state(&r.body)
                    .as_deref()
                    .map(|s| (s, state(s)))
                {
                    None | Some((_, State::Succeeded)) => Ok(Progress::Done(r)),
                    Some((_, State::Running)) => Ok(Progress::Running(wait)),
                    Some((st, _)) => Err(ended(&what, st, &r.body)),
                }
            }
        }
    }

    /// The operation succeeded with `last` as the monitor's last answer: where the result is.
    fn finish(&self, last: http::Response) -> Progress {
        let via = self.final_state_via;
        match self.method.as_str() {
            "PUT" | "PATCH" => match (via, &self.location) {
                (FinalStateVia::AzureAsyncOperation, _) => Progress::Done(last),
                (FinalStateVia::Location, Some(l)) => Progress::Fetch(l.clone()),
                _ => Progress::Fetch(self.url.clone()),
            },
            "POST" => match via {
                FinalStateVia::AzureAsyncOperation => Progress::Done(last),
                FinalStateVia::OriginalUri => Progress::Fetch(self.url.clone()),
                FinalStateVia::Default | FinalStateVia::Location => {
                    if matches!(self.monitor, Monitor::Location(_)) {
                        Progress::Done(last)
                    } else if let Some(l) =
                        self.location.as_ref().or(self.resource_location.as_ref())
                    {
                        Progress::Fetch(l.clone())
                    } else {
                        Progress::Done(last)
                    }
                }
            },
            _ => Progress::Done(last),
        }
    }

    /// Read the answer to the final GET.
    ///
    /// # Errors
    /// It is an HTTP error.
    pub fn on_final(&self, r: http::Response) -> Result<http::Response> {
        if r.status >= 300 {
            return Err(http_error(
                &format!("the result of {} (GET)", self.what()),
                &r,
            ));
        }
        Ok(r)
    }
}

/// Wait `d` for the next poll: first checks whether the user cancelled (then
/// [`ErrorCode::Cancelled`]), then sleeps (the host ends the sleep at the time limit).
///
/// # Errors
/// The user cancelled.
pub fn pause(d: Duration) -> Result<()> {
    if crate::host::cancelled() {
        return Err(Error::new(
            ErrorCode::Cancelled,
            "cancelled while waiting for Azure Resource Manager",
        ));
    }
    std::thread::sleep(d);
    Ok(())
}

/// Send `method url` (with `body`, JSON) through the host and wait until ARM finishes the
/// operation; returns the result (see the module documentation).
///
/// # Errors
/// The request or a poll failed, the operation ended `Failed`/`Canceled`, it is still
/// running after the bounds of `opts`, or the user cancelled.
pub fn send_and_wait(
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    opts: &Options,
) -> Result<http::Response> {
    send_and_wait_with(http::send, pause, method, url, body, opts)
}

fn with_defaults(headers: &[(String, String)], body: bool) -> Vec<(String, String)> {
    let mut h = headers.to_vec();
    if header(&h, "accept").is_none() {
        h.push(("accept".into(), "application/json".into()));
    }
    if body && header(&h, "content-type").is_none() {
        h.push(("content-type".into(), "application/json".into()));
    }
    h
}

/// [`send_and_wait`] with the sending and the waiting supplied: `send` makes one HTTP
/// exchange (e.g. [`http::send`] plus logging), `wait` waits between polls (e.g.
/// [`pause`]).
///
/// # Errors
/// As [`send_and_wait`], and whatever `send` or `wait` return.
pub fn send_and_wait_with(
    mut send: impl FnMut(&http::Request) -> Result<http::Response>,
    mut wait: impl FnMut(Duration) -> Result<()>,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    opts: &Options,
) -> Result<http::Response> {
    let initial = send(&http::Request {
        method: method.to_string(),
        url: url.to_string(),
        headers: with_defaults(&opts.headers, body.is_some()),
        body: body.map(<[u8]>::to_vec).unwrap_or_default(),
    })?;
    let (mut poller, mut next) = match begin(method, url, initial, opts)? {
        Lro::Done(r) => return Ok(r),
        Lro::Pending(p, w) => (p, w),
    };
    let get = |u: &str| http::Request {
        method: "GET".into(),
        url: u.to_string(),
        headers: with_defaults(&opts.headers, false),
        body: Vec::new(),
    };
    let mut waited = Duration::ZERO;
    for _ in 0..opts.max_polls {
        if waited + next > opts.max_wait {
            break;
        }
        wait(next)?;
        waited += next;
        let r = send(&get(poller.poll_url()))?;
        match poller.on_poll(r, opts)? {
            Progress::Running(w) => next = w,
            Progress::Done(r) => return Ok(r),
            Progress::Fetch(u) => return poller.on_final(send(&get(&u))?),
        }
    }
    Err(Error::new(
        ErrorCode::Unavailable,
        format!(
            "{} {} is still running after {} s of waiting; Azure Resource Manager carries on with it (watch {}), so run this again later",
            poller.method,
            short(url),
            waited.as_secs(),
            short(poller.poll_url())
        ),
    ))
}

#[cfg(test)]
mod tests;
