//! The `http` capability: requests to granted hosts (and ports), credentials added by the
//! host, never seen by the plugin.
//!
//! One HTTP stack (`reqwest`, rustls; `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` honoured;
//! redirects never followed). A request that may safely be sent again (an idempotent
//! method, or a `POST` carrying `Repeatability-Request-ID`, Azure's repeatable-request
//! header) is retried on 408, 429, 500, 502, 503 and 504 and on connection failures, at
//! most [`ATTEMPTS`] times, waiting what `Retry-After` (or `x-ms-retry-after-ms`) asks,
//! else an exponential backoff; every wait counts against the plugin's time limit and
//! ends when the user cancels.

use std::time::Duration;

use rehydra_plugin_rules::http::{
    self as rules, ATTEMPTS, BODY_MAX, HIDDEN_RESPONSE_HEADERS, WAIT_MAX, retry_after,
    retryable_status,
};

use super::{Res, State, blocking, err};
use crate::bindings::rehydra::plugin::http;
use crate::dto::ErrorCode;
use crate::limits::Budget;
use crate::policy::CapabilityKind;
use crate::{Credentials, Events, HostTls, LogLevel};

const HTTP_TIMEOUT_MAX: Duration = Duration::from_secs(120);

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(20))
        .user_agent(concat!("rehydra/", env!("CARGO_PKG_VERSION")))
}

/// The client every plugin request goes through: rustls with the system's roots (so
/// `SSL_CERT_FILE` works), proxies from the environment, no redirects.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    builder()
        .build()
        .map_err(|e| format!("starting the HTTP client: {e}"))
}

/// A client with `tls`: only its CAs trusted (when it names some), its client
/// certificate presented. The error never holds key material.
fn tls_client(tls: &HostTls) -> Result<reqwest::Client, String> {
    let mut b = builder();
    if let Some(ca) = &tls.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(ca)
            .map_err(|e| format!("the CA certificates are not PEM: {e}"))?;
        if certs.is_empty() {
            return Err("the CA certificates hold no certificate".into());
        }
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some(id) = &tls.identity_pem {
        let id = reqwest::Identity::from_pem(id).map_err(|_| {
            "the client certificate or its key is not PEM (or they do not match)".to_string()
        })?;
        b = b.identity(id);
    }
    b.build().map_err(|e| {
        // the causes say what is wrong with the certificates; they never hold key material
        let mut m = format!("starting the HTTP client: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            m.push_str(&format!(": {s}"));
            src = s.source();
        }
        m
    })
}

impl http::Host for State {
    fn send(&mut self, req: http::Request) -> Res<http::Response> {
        self.enter()?;
        let url = url::Url::parse(&req.url).map_err(|e| {
            err(
                ErrorCode::InvalidInput,
                format!("`{}` is not a URL: {e}", req.url),
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(
                ErrorCode::InvalidInput,
                "a URL may not carry a user name or password: the host adds the credentials",
            ));
        }
        let default_port = rules::default_port(url.scheme())?;
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(default_port);
        let allowed = if self.grants.host(&host, port, default_port) {
            Ok(())
        } else if port == default_port {
            Err(format!(
                "host `{host}` is not granted (rehydra plugins grant {} http:{host})",
                self.plugin
            ))
        } else {
            Err(format!(
                "host `{host}` port {port} is not granted (rehydra plugins grant {} http:{host}:{port})",
                self.plugin
            ))
        };
        let target = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        self.check(CapabilityKind::Http, &target, allowed)?;
        // a read may not carry a write either: a protocol upgrade (a Kubernetes exec over
        // a GET), or a method override
        let upgrade = req.headers.iter().any(|(n, v)| {
            let n = n.trim().to_ascii_lowercase();
            n == "upgrade"
                || (n == "connection" && v.to_ascii_lowercase().contains("upgrade"))
                || n.starts_with("sec-websocket-")
                || matches!(
                    n.as_str(),
                    "x-http-method-override" | "x-http-method" | "x-method-override"
                )
        });
        if upgrade {
            self.writable(
                CapabilityKind::Http,
                &target,
                &format!(
                    "{} {} with an upgrade or method-override header",
                    req.method,
                    url.path()
                ),
            )?;
        }
        let read = matches!(
            req.method.to_ascii_uppercase().as_str(),
            "GET" | "HEAD" | "OPTIONS"
        );
        if read && !req.body.is_empty() {
            self.writable(
                CapabilityKind::Http,
                &target,
                &format!("{} {} with a body", req.method, url.path()),
            )?;
        }
        if !read {
            self.writable(
                CapabilityKind::Http,
                &target,
                &format!("{} {}", req.method, url.path()),
            )?;
        }
        if let Some(reason) = rules::forbidden_header(&req.headers) {
            self.check(CapabilityKind::Http, &target, Err(reason))?;
        }
        let request = Outgoing::new(&req, url, host.clone(), port)?;
        self.audit(
            CapabilityKind::Http,
            &target,
            true,
            &format!("{} {}", req.method, request.url.path()),
        );
        // a server's own TLS (its CA, a client certificate) only ever over TLS
        let tls = if request.url.scheme() == "https" {
            self.credentials
                .tls(&host, port)
                .map_err(|e| err(ErrorCode::Unavailable, format!("{target}: {e}")))?
        } else {
            None
        };
        let client = match tls {
            None => self.http.clone(),
            Some(tls) => {
                let key = format!("{host}:{port}");
                match self.tls_clients.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let c = tls_client(&tls)
                            .map_err(|e| err(ErrorCode::Unavailable, format!("{target}: {e}")))?;
                        self.tls_clients.insert(key, c.clone());
                        c
                    }
                }
            }
        };
        let credentials = self.credentials.clone();
        let (budget, events, plugin) = (
            self.budget.clone(),
            self.events.clone(),
            self.plugin.clone(),
        );
        blocking(move || {
            block_on(request.send(
                &client,
                credentials.as_ref(),
                &budget,
                events.as_ref(),
                &plugin,
            ))
        })
    }
}

/// A checked request, ready to be sent (and sent again).
struct Outgoing {
    method: reqwest::Method,
    url: url::Url,
    host: String,
    port: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    retryable: bool,
}

impl Outgoing {
    fn new(req: &http::Request, url: url::Url, host: String, port: u16) -> Res<Self> {
        let bad = |m: String| err(ErrorCode::InvalidInput, m);
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| bad(format!("`{}` is not an HTTP method", req.method)))?;
        if method == reqwest::Method::TRACE || method == reqwest::Method::CONNECT {
            return Err(bad(format!("{method} is not a method plugins may send")));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (n, v) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(n.trim().as_bytes())
                .map_err(|_| bad(format!("`{n}` is not a header name")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| bad(format!("the value of header `{n}` is not allowed")))?;
            headers.append(name, value);
        }
        let retryable =
            rules::idempotent(method.as_str()) || headers.contains_key("repeatability-request-id");
        Ok(Self {
            method,
            url,
            host,
            port,
            headers,
            body: req.body.clone(),
            retryable,
        })
    }

    /// Credentials only travel encrypted, or stay on this machine.
    fn may_carry_credentials(&self) -> bool {
        self.url.scheme() == "https"
            || self.url.host().is_some_and(|h| match h {
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
                url::Host::Domain(d) => d == "localhost",
            })
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        credentials: &dyn Credentials,
        budget: &Budget,
        events: &dyn Events,
        plugin: &str,
    ) -> Res<http::Response> {
        let mut attempt = 1;
        // the answer to a bearer challenge (a token of the tenant a vault asked for)
        let mut answer: Option<String> = None;
        let mut challenged = false;
        loop {
            // a token is asked for on every try: one that expired meanwhile is refreshed
            let auth = if !self.may_carry_credentials() {
                None
            } else if answer.is_some() {
                answer.clone()
            } else {
                credentials
                    .authorization_at(self.url.scheme(), &self.host, self.port)
                    .map_err(|e| err(ErrorCode::Unavailable, e))?
            };
            let timeout = budget.remaining().min(HTTP_TIMEOUT_MAX);
            if timeout.is_zero() {
                return Err(err(ErrorCode::Failed, "the plugin's time limit is used up"));
            }
            let mut rb = client
                .request(self.method.clone(), self.url.clone())
                .headers(self.headers.clone())
                .body(self.body.clone())
                .timeout(timeout);
            if let Some(a) = &auth {
                // marked sensitive: never printed, never indexed by HTTP/2 header compression
                let mut v = reqwest::header::HeaderValue::from_str(a).map_err(|_| {
                    err(
                        ErrorCode::Unavailable,
                        "the credential for this host is not a header value",
                    )
                })?;
                v.set_sensitive(true);
                rb = rb.header(reqwest::header::AUTHORIZATION, v);
            }
            let outcome = match rb.send().await {
                Ok(resp) => Ok(read(resp, &self.host).await?),
                Err(e) => Err(e),
            };
            // a 401 whose challenge the credentials answer (another tenant's token): sent
            // once more with the answer, before anything else (the server did nothing)
            if let (Ok(r), Some(sent), false) = (&outcome, &auth, challenged)
                && r.status == 401
            {
                // every challenge the server made, as one header value
                let challenges: Vec<&str> = r
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                    .map(|(_, v)| v.as_str())
                    .collect();
                challenged = true;
                let answered = if challenges.is_empty() {
                    None
                } else {
                    credentials
                        .answer_challenge(
                            self.url.scheme(),
                            &self.host,
                            self.port,
                            &challenges.join(", "),
                        )
                        .map_err(|e| err(ErrorCode::Unavailable, e))?
                };
                if let Some(a) = answered.filter(|a| a != sent) {
                    events.log(
                        plugin,
                        LogLevel::Info,
                        &format!(
                            "{} {}: answered its bearer challenge (a token of the tenant it named); sent once more",
                            self.method, self.host
                        ),
                    );
                    answer = Some(a);
                    continue;
                }
            }
            let wait = match &outcome {
                Ok(r) if self.retryable && retryable_status(r.status) => {
                    Some(retry_after(&r.headers).unwrap_or_else(|| backoff(attempt)))
                }
                Err(e)
                    if self.retryable && (e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    Some(backoff(attempt))
                }
                _ => None,
            };
            match (wait, outcome) {
                (Some(w), outcome)
                    if attempt < ATTEMPTS && w <= WAIT_MAX && w < budget.remaining() =>
                {
                    let why = match &outcome {
                        Ok(r) => format!("HTTP {}", r.status),
                        Err(e) => e.to_string(),
                    };
                    events.log(
                        plugin,
                        LogLevel::Warn,
                        &format!(
                            "{} {}: {why}; try {} of {ATTEMPTS} in {:.1} s",
                            self.method,
                            self.host,
                            attempt + 1,
                            w.as_secs_f64()
                        ),
                    );
                    budget_sleep(budget, w).await?;
                    attempt += 1;
                }
                (_, Ok(r)) => return Ok(r),
                (_, Err(e)) => {
                    return Err(err(ErrorCode::Unavailable, format!("{}: {e}", self.host)));
                }
            }
        }
    }
}

/// Exponential backoff from 0.8 s, with ±20 % jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 0.8 * f64::from(1u32 << (attempt - 1).min(6));
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    Duration::from_secs_f64(base * jitter)
}

/// Sleep `d`, but end with an error as soon as the call is cancelled or out of time.
async fn budget_sleep(budget: &Budget, d: Duration) -> Res<()> {
    let until = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < until {
        budget
            .check()
            .map_err(|stop| super::stop_err(stop, budget))?;
        tokio::time::sleep(Duration::from_millis(50).min(until - tokio::time::Instant::now()))
            .await;
    }
    Ok(())
}

/// Status, visible headers and a body of at most 64 MiB.
async fn read(mut resp: reqwest::Response, host: &str) -> Res<http::Response> {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(n, _)| !HIDDEN_RESPONSE_HEADERS.contains(&n.as_str()))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| err(ErrorCode::Unavailable, format!("{host}: {e}")))?
    {
        if body.len() + chunk.len() > BODY_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("response from {host} is larger than 64 MiB"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(http::Response {
        status,
        headers,
        body,
    })
}

/// Drive `fut` to completion from blocking host code: on the host's runtime when the
/// call runs on one (inside `block_in_place`), else on a small runtime of its own.
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(fut),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime starts")
            .block_on(fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter() {
        assert!(
            backoff(1) >= Duration::from_millis(640) && backoff(1) <= Duration::from_millis(960)
        );
        assert!(backoff(3) >= Duration::from_millis(2560));
    }
}
