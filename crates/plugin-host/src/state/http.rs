//! The `http` capability: requests to granted hosts (and ports), credentials added by the
//! host, never seen by the plugin.

use std::io::Read;
use std::time::Duration;

use super::{Res, State, blocking, err};
use crate::bindings::rehydra::plugin::http;
use crate::dto::ErrorCode;
use crate::policy::CapabilityKind;

const HTTP_BODY_MAX: u64 = 64 << 20;
const HTTP_TIMEOUT_MAX: Duration = Duration::from_secs(120);

/// Request headers only the host sets: credentials, and `Host` (which would send a
/// granted host's credentials to whatever virtual host the plugin names).
const FORBIDDEN_REQUEST_HEADERS: [&str; 4] =
    ["authorization", "proxy-authorization", "cookie", "host"];
const HIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "authorization"];

impl http::Host for State {
    fn send(&mut self, req: http::Request) -> Res<http::Response> {
        self.enter()?;
        let url = url::Url::parse(&req.url).map_err(|e| {
            err(
                ErrorCode::InvalidInput,
                format!("`{}` is not a URL: {e}", req.url),
            )
        })?;
        let default_port = match url.scheme() {
            "https" => 443,
            "http" => 80,
            other => {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("only http and https are supported, not `{other}`"),
                ));
            }
        };
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
        if let Some((name, _)) = req.headers.iter().find(|(n, _)| {
            FORBIDDEN_REQUEST_HEADERS.contains(&n.trim().to_ascii_lowercase().as_str())
        }) {
            let reason = format!(
                "plugins may not set the `{name}` header; the host addresses and authenticates requests"
            );
            self.check(CapabilityKind::Http, &target, Err(reason))?;
        }
        let timeout = self.budget.remaining().min(HTTP_TIMEOUT_MAX);
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(timeout)
            .build();
        let mut r = agent.request(&req.method, url.as_str());
        for (n, v) in &req.headers {
            r = r.set(n, v);
        }
        let loopback = url.host().is_some_and(|h| match h {
            url::Host::Ipv4(a) => a.is_loopback(),
            url::Host::Ipv6(a) => a.is_loopback(),
            url::Host::Domain(d) => d == "localhost",
        });
        self.audit(
            CapabilityKind::Http,
            &target,
            true,
            &format!("{} {}", req.method, url.path()),
        );
        let credentials = self.credentials.clone();
        blocking(move || {
            // credentials only travel encrypted (or stay on this machine)
            if (url.scheme() == "https" || loopback)
                && let Some(auth) = credentials.authorization(&host)
            {
                r = r.set("Authorization", &auth);
            }
            let resp = match r.send_bytes(&req.body) {
                Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
                Err(e) => return Err(err(ErrorCode::Unavailable, format!("{host}: {e}"))),
            };
            let status = resp.status();
            let headers = resp
                .headers_names()
                .into_iter()
                .filter(|n| !HIDDEN_RESPONSE_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
                .flat_map(|n| {
                    resp.all(&n)
                        .into_iter()
                        .map(|v| (n.clone(), v.to_string()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut body = Vec::new();
            resp.into_reader()
                .take(HTTP_BODY_MAX + 1)
                .read_to_end(&mut body)
                .map_err(|e| err(ErrorCode::Unavailable, format!("{host}: {e}")))?;
            if body.len() as u64 > HTTP_BODY_MAX {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("response from {host} is larger than 64 MiB"),
                ));
            }
            Ok(http::Response {
                status,
                headers,
                body,
            })
        })
    }
}
