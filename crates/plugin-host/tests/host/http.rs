//! The host's HTTP stack as a plugin meets it (the fixture's `http` and `arm-lro` modes
//! against small servers on loopback): retries of throttled and failed requests and
//! their limits, Azure Resource Manager long-running operations through the SDK's poller,
//! response headers the plugin must not see, and proxies from the environment (through a
//! real `tinyproxy`, in a child process, since the environment is read when the host is
//! created).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use rehydra_plugin_host::*;

/// A request the server saw.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    /// Path and query.
    target: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer to give.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn ans(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
    Answer {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
            .collect(),
        body: body.to_string(),
    }
}

/// An HTTP/1.1 server on loopback, one request per connection, answered by `handler`
/// (given the request, how many came before it, and the server's base URL).
struct Srv {
    base: String,
    port: u16,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Srv {
    fn start(handler: impl Fn(&Req, usize, &str) -> Answer + Send + 'static) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
        let (seen2, base2) = (seen.clone(), base.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                let Some(req) = read_request(&c) else {
                    continue;
                };
                let n = {
                    let mut s = seen2.lock().unwrap();
                    s.push(req.clone());
                    s.len() - 1
                };
                let a = handler(&req, n, &base2);
                let mut head = format!("HTTP/1.1 {} X\r\n", a.status);
                for (k, v) in &a.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    a.body.len()
                ));
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(a.body.as_bytes());
                let _ = c.flush();
            }
        });
        Self { base, port, seen }
    }

    /// Answers in order; a request past the script gets a 500 (and fails the test's
    /// count assertions).
    fn scripted(answers: Vec<Answer>) -> Self {
        let answers = Mutex::new(answers.into_iter().map(Some).collect::<Vec<_>>());
        Self::start(move |_, n, _| {
            answers
                .lock()
                .unwrap()
                .get_mut(n)
                .and_then(Option::take)
                .unwrap_or_else(|| ans(500, &[], "request past the script"))
        })
    }

    fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }

    fn grant(&self) -> String {
        format!("http:127.0.0.1:{}", self.port)
    }
}

fn read_request(c: &std::net::TcpStream) -> Option<Req> {
    let mut r = BufReader::new(c.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let at = Instant::now();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        target,
        headers,
        body,
        at,
    })
}

/// The plugin's log lines.
#[derive(Default)]
struct Logs(Mutex<Vec<String>>);
impl Events for Logs {
    fn log(&self, _plugin: &str, level: LogLevel, message: &str) {
        self.0.lock().unwrap().push(format!("{level:?} {message}"));
    }
}

/// Run the fixture's `discover` with `settings`, granted `srv` and holding its token.
fn call(srv: &Srv, settings: &[(&str, &str)]) -> (Result<Vec<Asset>, PluginError>, Vec<String>) {
    let h = host(false);
    let p = fixture(&h);
    let mut inv = Invocation::new(grants(&[&srv.grant()]));
    inv.credentials = Arc::new(Token);
    let logs = Arc::new(Logs::default());
    inv.events = logs.clone();
    let r = h.discover(&p, inv, &props(settings));
    let lines = logs.0.lock().unwrap().clone();
    (r, lines)
}

fn prop<'a>(a: &'a Asset, name: &str) -> Option<&'a str> {
    a.properties
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_str())
}

fn gaps(seen: &[Req]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn a_429_is_retried_after_what_retry_after_asks() {
    let srv = Srv::scripted(vec![
        ans(429, &[("Retry-After", "1")], "slow down"),
        ans(200, &[], "ok"),
    ]);
    let url = format!("{}/vaults", srv.base);
    let (r, logs) = call(&srv, &[("mode", "http"), ("url", &url)]);
    let a = r.unwrap();
    assert_eq!(prop(&a[0], "status"), Some("200"), "{a:?}");
    assert_eq!(a[0].name, "ok");
    let seen = srv.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        gaps(&seen)[0] >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for: {:?}",
        gaps(&seen)
    );
    // the token went with every try; the retry is in the plugin's log, the token is not
    assert!(
        seen.iter()
            .all(|q| q.header("authorization") == Some("Bearer s3cret-token"))
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Warn") && l.contains("HTTP 429") && l.contains("try 2 of 5")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("s3cret")), "{logs:?}");
}

#[test]
fn a_read_only_call_sends_reads_and_refuses_writes_before_they_leave() {
    let srv = Srv::scripted(vec![ans(200, &[], "ok"), ans(200, &[], "ok")]);
    let url = format!("{}/vaults", srv.base);
    let h = host(false);
    let p = fixture(&h);
    // one read-only call with these settings
    let call = |extra: &[(&str, &str)]| {
        let mut inv = Invocation::new(grants(&[&srv.grant()]));
        inv.credentials = Arc::new(Token);
        inv.read_only = true;
        let mut settings = vec![("mode", "http"), ("url", url.as_str())];
        settings.extend_from_slice(extra);
        h.discover(&p, inv, &props(&settings))
    };
    let refused = |extra: &[(&str, &str)]| call(extra).unwrap_err().to_string();
    assert_eq!(
        prop(&call(&[("method", "GET")]).unwrap()[0], "status"),
        Some("200")
    );
    assert_eq!(
        prop(&call(&[("method", "head")]).unwrap()[0], "status"),
        Some("200")
    );
    for method in ["POST", "PUT", "PATCH", "DELETE", "post"] {
        let e = refused(&[("method", method)]);
        assert!(e.contains("this call only reads"), "{method}: {e}");
    }
    // nor a write dressed as a read: an upgrade (a Kubernetes exec) or a method override
    for header in [
        "Upgrade",
        "X-HTTP-Method-Override",
        "x-http-method",
        "sec-websocket-key",
    ] {
        let e = refused(&[("header", header)]);
        assert!(e.contains("this call only reads"), "{header}: {e}");
    }
    // a GET carrying a body
    let e = refused(&[("body", "{}")]);
    assert!(e.contains("with a body"), "{e}");
    assert_eq!(srv.seen().len(), 2, "no write reached the server");
}

#[test]
fn a_get_answered_503_twice_is_retried_with_backoff() {
    let srv = Srv::scripted(vec![
        ans(503, &[], "busy"),
        ans(503, &[], "busy"),
        ans(200, &[], "ok"),
    ]);
    let url = format!("{}/things", srv.base);
    let (r, _) = call(&srv, &[("mode", "http"), ("url", &url)]);
    let a = r.unwrap();
    assert_eq!(prop(&a[0], "status"), Some("200"), "{a:?}");
    let seen = srv.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // exponential backoff from 0.8 s (±20 %): ≥ 0.64 s, then ≥ 1.28 s
    let g = gaps(&seen);
    assert!(
        g[0] >= Duration::from_millis(600) && g[1] >= Duration::from_millis(1200),
        "{g:?}"
    );
}

#[test]
fn a_post_is_retried_only_when_it_is_repeatable() {
    // without Repeatability-Request-ID a POST may not be sent twice: the plugin gets the 503
    let srv = Srv::scripted(vec![ans(503, &[], "busy"), ans(200, &[], "ok")]);
    let url = format!("{}/start", srv.base);
    let (r, _) = call(
        &srv,
        &[
            ("mode", "http"),
            ("method", "POST"),
            ("url", &url),
            ("body", r#"{"x":1}"#),
        ],
    );
    assert_eq!(prop(&r.unwrap()[0], "status"), Some("503"));
    assert_eq!(srv.seen().len(), 1, "a plain POST was sent again");

    // with it, the same POST (same body, same id) is sent again
    let srv = Srv::scripted(vec![ans(503, &[], "busy"), ans(200, &[], "ok")]);
    let url = format!("{}/start", srv.base);
    let (r, _) = call(
        &srv,
        &[
            ("mode", "http"),
            ("method", "POST"),
            ("url", &url),
            ("body", r#"{"x":1}"#),
            (
                "headers",
                "Repeatability-Request-ID: 5f0e9d8c-7b6a-4958-8372-615243342516\nRepeatability-First-Sent: Mon, 01 Dec 2025 10:00:00 GMT",
            ),
        ],
    );
    assert_eq!(prop(&r.unwrap()[0], "status"), Some("200"));
    let seen = srv.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for q in &seen {
        assert_eq!(q.method, "POST");
        assert_eq!(q.body, br#"{"x":1}"#);
        assert_eq!(
            q.header("repeatability-request-id"),
            Some("5f0e9d8c-7b6a-4958-8372-615243342516")
        );
    }
}

#[test]
fn a_retry_after_past_the_plugins_time_limit_is_not_waited_for() {
    // the fixture has 5 s: a 10 s Retry-After (under the host's 60 s cap) cannot be kept
    let srv = Srv::scripted(vec![
        ans(429, &[("Retry-After", "10")], "later"),
        ans(200, &[], "ok"),
    ]);
    let url = format!("{}/vaults", srv.base);
    let t = Instant::now();
    let (r, _) = call(&srv, &[("mode", "http"), ("url", &url)]);
    let took = t.elapsed();
    let a = r.unwrap();
    assert_eq!(prop(&a[0], "status"), Some("429"), "{a:?}");
    assert_eq!(
        prop(&a[0], "retry-after"),
        Some("10"),
        "the plugin sees why"
    );
    assert_eq!(srv.seen().len(), 1);
    assert!(took < Duration::from_secs(4), "waited {took:?}");
}

#[test]
fn an_arm_put_is_polled_through_azure_asyncoperation_to_its_result() {
    let polls = Arc::new(Mutex::new(0u32));
    let p2 = polls.clone();
    let srv = Srv::start(move |req, _, base| {
        let t = req.target.as_str();
        if req.method == "PUT" && t.starts_with("/things/a?") {
            ans(
                201,
                &[
                    (
                        "Azure-AsyncOperation",
                        &format!("{base}/operations/op1?api-version=2024-01-01"),
                    ),
                    ("Retry-After", "0"),
                ],
                r#"{"name":"a","properties":{"provisioningState":"Accepted"}}"#,
            )
        } else if req.method == "GET" && t.starts_with("/operations/op1?") {
            let mut n = p2.lock().unwrap();
            *n += 1;
            match *n {
                1 => ans(200, &[("Retry-After", "1")], r#"{"status":"InProgress"}"#),
                2 => ans(200, &[], r#"{"status":"InProgress"}"#),
                _ => ans(200, &[], r#"{"status":"Succeeded"}"#),
            }
        } else if req.method == "GET" && t.starts_with("/things/a?") {
            ans(
                200,
                &[],
                r#"{"name":"a","properties":{"provisioningState":"Succeeded","size":7}}"#,
            )
        } else {
            ans(404, &[], r#"{"error":{"code":"NotFound","message":"no"}}"#)
        }
    });
    let url = format!("{}/things/a?api-version=2024-01-01", srv.base);
    let (r, _) = call(
        &srv,
        &[
            ("mode", "arm-lro"),
            ("method", "PUT"),
            ("url", &url),
            ("body", r#"{"properties":{"size":7}}"#),
            ("poll-ms", "100"),
        ],
    );
    let a = r.unwrap();
    assert_eq!(prop(&a[0], "status"), Some("200"));
    assert_eq!(
        a[0].name, r#"{"name":"a","properties":{"provisioningState":"Succeeded","size":7}}"#,
        "the plugin gets the final resource"
    );
    let seen = srv.seen();
    let calls: Vec<String> = seen
        .iter()
        .map(|q| format!("{} {}", q.method, q.target.split('?').next().unwrap()))
        .collect();
    assert_eq!(
        calls,
        [
            "PUT /things/a",
            "GET /operations/op1",
            "GET /operations/op1",
            "GET /operations/op1",
            "GET /things/a"
        ]
    );
    assert_eq!(seen[0].body, br#"{"properties":{"size":7}}"#);
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    // Retry-After: 0 is raised to the floor (here the fixture's 100 ms), Retry-After: 1 kept
    let g = gaps(&seen);
    assert!(g[0] >= Duration::from_millis(100), "{g:?}");
    assert!(
        g[1] >= Duration::from_secs(1),
        "Retry-After: 1 between polls: {g:?}"
    );
    assert!(
        seen.iter()
            .all(|q| q.header("authorization") == Some("Bearer s3cret-token"))
    );
}

#[test]
fn a_failed_arm_operation_is_an_error_with_arms_code_and_message() {
    let srv = Srv::start(|req, _, base| {
        if req.method == "DELETE" {
            ans(
                202,
                &[(
                    "Azure-AsyncOperation",
                    &format!("{base}/operations/op2?api-version=2024-01-01"),
                )],
                "",
            )
        } else {
            ans(
                200,
                &[],
                r#"{"status":"Failed","error":{"code":"OutOfCapacity","message":"the cluster has no room"}}"#,
            )
        }
    });
    let url = format!("{}/things/b?api-version=2024-01-01", srv.base);
    let (r, _) = call(
        &srv,
        &[
            ("mode", "arm-lro"),
            ("method", "DELETE"),
            ("url", &url),
            ("poll-ms", "50"),
        ],
    );
    match r {
        Err(PluginError::Failed {
            code: ErrorCode::Failed,
            message,
            ..
        }) => assert!(
            message.contains("ended Failed")
                && message.contains("OutOfCapacity: the cluster has no room"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.seen().len(), 2, "one poll, no final GET for a DELETE");
}

#[test]
fn credentials_in_a_response_never_reach_the_plugin() {
    let srv = Srv::scripted(vec![ans(
        200,
        &[
            ("Authorization", "Bearer leaked-by-the-server"),
            ("Set-Cookie", "session=abc"),
            ("X-Ms-Request-Id", "42"),
        ],
        "hello",
    )]);
    let url = format!("{}/x", srv.base);
    let (r, _) = call(&srv, &[("mode", "http"), ("url", &url)]);
    let a = r.unwrap();
    assert_eq!(prop(&a[0], "x-ms-request-id"), Some("42"), "{a:?}");
    assert_eq!(prop(&a[0], "authorization"), None, "{a:?}");
    assert_eq!(prop(&a[0], "set-cookie"), None, "{a:?}");
    let all = format!("{a:?}");
    assert!(
        !all.contains("leaked-by-the-server") && !all.contains("session=abc"),
        "{all}"
    );
}

// ---- proxies

const CHILD: &str = "REHYDRA_HTTP_TEST_CHILD_URL";

/// Run in a child process by the proxy test, with the proxy variables it sets (they are
/// read when the host is created, and they are process-wide): one GET of the URL in
/// `REHYDRA_HTTP_TEST_CHILD_URL`, its result printed as `CHILD-RESULT <status> <body>`.
#[test]
#[ignore = "run by requests_follow_the_proxy_environment, in a child process"]
fn proxy_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    let hostport = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let h = host(false);
    let p = fixture(&h);
    let inv = Invocation::new(grants(&[&format!("http:{hostport}")]));
    match h.discover(&p, inv, &props(&[("mode", "http"), ("url", &url)])) {
        Ok(a) => println!(
            "CHILD-RESULT {} {}",
            prop(&a[0], "status").unwrap_or("?"),
            a[0].name
        ),
        Err(e) => println!("CHILD-RESULT error {e}"),
    }
}

/// `tinyproxy` on a free loopback port, logging to a temporary folder; stopped on drop.
struct Tinyproxy {
    port: u16,
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    fn start(target_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 8\n\
                 ConnectPort 443\nConnectPort {target_port}\nLogLevel Info\n\
                 LogFile \"{}\"\nPidFile \"{}\"\n",
                log.display(),
                dir.path().join("tinyproxy.pid").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("tinyproxy cannot start ({e}): run scripts/setup.sh"));
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "tinyproxy did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            child,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run [`proxy_child`] for `url` with exactly the proxy variables in `env`.
fn child(url: &str, env: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "http::proxy_child", // this module's path in the `host` test binary
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUEST_METHOD",
    ] {
        c.env_remove(v);
    }
    c.env(CHILD, url).envs(env.iter().copied());
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| l.split_once("CHILD-RESULT ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| {
            panic!(
                "the child said: {out}{}",
                String::from_utf8_lossy(&o.stderr)
            )
        })
}

#[test]
fn requests_follow_the_proxy_environment() {
    // the target answers with the Via header it got (tinyproxy adds one), or `direct`
    let srv = Srv::start(|req, _, _| ans(200, &[], req.header("via").unwrap_or("direct")));
    let proxy = Tinyproxy::start(srv.port);
    let via = format!("http://127.0.0.1:{}", proxy.port);

    // HTTP_PROXY: through tinyproxy (reqwest makes no exception for loopback targets)
    let out = child(
        &format!("{}/through-proxy", srv.base),
        &[("HTTP_PROXY", &via)],
    );
    assert!(
        out.starts_with("200 ") && out.contains("tinyproxy"),
        "not through the proxy: {out}; tinyproxy's log: {}",
        proxy.log()
    );
    assert!(
        proxy.log().contains("/through-proxy"),
        "tinyproxy's log: {}",
        proxy.log()
    );

    // NO_PROXY naming the target: straight to it
    let out = child(
        &format!("{}/no-proxy", srv.base),
        &[("HTTP_PROXY", &via), ("NO_PROXY", "127.0.0.1")],
    );
    assert_eq!(out, "200 direct");
    assert!(!proxy.log().contains("/no-proxy"), "{}", proxy.log());

    // NO_PROXY compares names as written: `localhost` is not `127.0.0.1`
    let out = child(
        &format!("http://localhost:{}/by-name", srv.port),
        &[("HTTP_PROXY", &via), ("NO_PROXY", "127.0.0.1")],
    );
    assert!(
        out.starts_with("200 ") && out.contains("tinyproxy"),
        "{out}"
    );
    assert!(proxy.log().contains("/by-name"), "{}", proxy.log());

    // without any proxy variable: direct
    let out = child(&format!("{}/plain", srv.base), &[]);
    assert_eq!(out, "200 direct");

    let paths: Vec<String> = srv.seen().iter().map(|q| q.target.clone()).collect();
    assert_eq!(
        paths,
        ["/through-proxy", "/no-proxy", "/by-name", "/plain"],
        "every request reached the target once"
    );
}
