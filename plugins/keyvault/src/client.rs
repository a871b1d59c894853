//! Key Vault's data plane (api-version 7.5) and ARM's vault resources (2025-05-01)
//! through the host's HTTP capability.
//!
//! The host adds the token (the Key Vault audience for `*.vault.azure.net`) and retries
//! idempotent requests on 429/5xx (a `PUT` of a secret too: a 5xx after the service
//! wrote it would add the version twice, which verify shows). Key Vault's `POST`s are
//! retried here on 429 and 503 only (nothing was done then), waiting what `Retry-After`
//! asks. Every list follows `nextLink`, but only on the origin it started from: a
//! hostile answer cannot send the next request (and its token) elsewhere.

use std::time::Duration;

use rehydra_plugin_sdk::azure::arm::{header, retry_after, status_code};
use rehydra_plugin_sdk::windows::clip;
use rehydra_plugin_sdk::{host, http, prelude::*};
use serde_json::Value;

/// Key Vault data plane.
pub const KV_API: &str = "7.5";
/// `Microsoft.KeyVault/vaults`: the newest stable version with examples in
/// Azure/azure-rest-api-specs (`stable/2025-05-01`).
pub const ARM_API: &str = "2025-05-01";
/// Tries of one throttled `POST`.
const POST_TRIES: u32 = 6;
/// Pages of one list at the most (a vault holds at most a few hundred thousand objects).
const MAX_PAGES: usize = 100_000;
/// Items of one list at the most.
const MAX_ITEMS: usize = 1_000_000;

/// `scheme://authority` of a URL (lower case; `:443` on https dropped, as Key Vault's own
/// nextLinks carry it), or `None` when it is not absolute.
pub use rehydra_plugin_sdk::rest::origin;

/// Key Vault's token audiences (public and sovereign clouds).
const KV_AUDIENCES: &[&str] = &[
    "vault.azure.net",
    "vault.usgovcloudapi.net",
    "vault.azure.cn",
];

/// Is `uri` a vault URI this plugin may send requests (and secret values) to? On Azure:
/// `https://<name>.vault.azure.net/` (or a sovereign cloud's suffix), nothing after the
/// host. On this machine (loopback, for tests and local stand-ins): `http(s)://` with a
/// path of names only. Never a query, fragment, user info, escape or `..`: an answer or a
/// restore point cannot turn the requests onto another object or vault.
pub fn vault_uri_ok(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    if rest.contains(['?', '#', '@', '\\', '%', ' ']) {
        return false;
    }
    let (authority, path) = rest
        .find('/')
        .map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        Some(_) => return false,
        None => (authority, None),
    };
    let host = host.to_ascii_lowercase();
    let loopback = host == "localhost"
        || (host.starts_with("127.")
            && host.split('.').count() == 4
            && host.split('.').all(|x| x.parse::<u8>().is_ok()));
    if loopback {
        return matches!(scheme, "http" | "https")
            && path.split('/').filter(|x| !x.is_empty()).all(valid_name);
    }
    scheme == "https"
        && matches!(path, "" | "/")
        && port.is_none_or(|p| p == "443")
        && KV_AUDIENCES.iter().any(|a| {
            host.strip_suffix(a)
                .and_then(|l| l.strip_suffix('.'))
                .is_some_and(valid_name)
        })
}

/// Object names: 1 to 127 letters, digits and dashes (Key Vault's rule). Anything else
/// in an answer is refused before it reaches a URL or an item name.
pub fn valid_name(s: &str) -> bool {
    (1..=127).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Version ids: 32 hex digits on Key Vault; up to 64 letters and digits accepted.
pub fn valid_version(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The service's `error.code: error.message`, or the body's start.
fn detail(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
        (Some(c), Some(m)) => match v["error"]["innererror"]["code"].as_str() {
            Some(i) => format!("{c} ({i}): {m}"),
            None => format!("{c}: {m}"),
        },
        // never the body itself: a proxy that echoes a request would echo a secret value
        _ if body.is_empty() => "no details".into(),
        _ => format!("no error document ({} bytes of something else)", body.len()),
    }
}

/// An error for a non-2xx answer, in the admin's words.
pub fn answer_error(what: &str, r: &http::Response) -> Error {
    if r.status == 401 {
        if let Some(ch) = header(&r.headers, "www-authenticate").filter(|c| c.starts_with("Bearer"))
        {
            let resource = challenge_param(ch, "resource")
                .or_else(|| challenge_param(ch, "scope"))
                .unwrap_or_default();
            // advice only for a Key Vault audience: a hostile answer cannot steer the admin
            // into giving its host another service's token
            let host = resource
                .split("://")
                .nth(1)
                .unwrap_or("")
                .trim_end_matches(['/'])
                .trim_end_matches("/.default");
            if !KV_AUDIENCES.contains(&host) {
                return Error::new(
                    ErrorCode::Denied,
                    format!(
                        "{what}: answered 401 with a challenge for `{}`, which is not Key Vault's audience",
                        clip(&resource, 100)
                    ),
                );
            }
            let tenant = challenge_param(ch, "authorization")
                .and_then(|a| {
                    a.trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            return Error::new(
                ErrorCode::Denied,
                format!(
                    "{what}: Key Vault asked for a token of {resource} in tenant {tenant} and Rehydra sent none it accepts: for a tenant other than the identity's, allow it (rehydra azure tenant allow {tenant}) with an identity that can sign in there (rehydra azure status); for a vault outside *.vault.azure.net add its audience (rehydra azure audience add <host> {}/.default)",
                    resource.trim_end_matches('/')
                ),
            );
        }
    }
    Error::new(
        status_code(r.status),
        format!("{what}: answered {}: {}", r.status, detail(&r.body)),
    )
}

/// One parameter of a `WWW-Authenticate: Bearer a="…", b="…"` challenge.
pub fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    challenge
        .trim_start_matches("Bearer")
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

/// Send one request; `POST`s are retried here when throttled.
pub fn send(method: &str, url: &str, body: Option<&Value>) -> Result<http::Response> {
    let req = http::Request {
        method: method.into(),
        url: url.into(),
        headers: if body.is_some() {
            vec![("content-type".into(), "application/json".into())]
        } else {
            vec![]
        },
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    };
    let mut attempt = 1;
    loop {
        let r = http::send(&req)?;
        let throttled = matches!(r.status, 429 | 503);
        if !(throttled && method == "POST" && attempt < POST_TRIES) {
            return Ok(r);
        }
        let wait = retry_after(&r.headers)
            .unwrap_or(Duration::from_secs(1 << attempt))
            .min(Duration::from_secs(60));
        host::log(
            host::Level::Warn,
            &format!(
                "{method} {url}: throttled ({}); try {} of {POST_TRIES} in {} s",
                r.status,
                attempt + 1,
                wait.as_secs()
            ),
        );
        if host::cancelled() {
            return Err(Error::new(ErrorCode::Cancelled, "cancelled"));
        }
        std::thread::sleep(wait);
        attempt += 1;
    }
}

/// Send and parse a 2xx JSON answer; any other status is an error naming `what`.
pub fn call(method: &str, url: &str, body: Option<&Value>, what: &str) -> Result<Value> {
    let r = send(method, url, body)?;
    if !(200..300).contains(&r.status) {
        return Err(answer_error(what, &r));
    }
    rehydra_plugin_sdk::rest::json(what, &r)
}

/// Is there such an object? `Ok(None)` on 404.
pub fn get_opt(url: &str, what: &str) -> Result<Option<Value>> {
    let r = send("GET", url, None)?;
    match r.status {
        404 => Ok(None),
        200..=299 => serde_json::from_slice(&r.body).map(Some).map_err(|e| {
            Error::new(
                ErrorCode::Failed,
                format!("{what}: the answer is not JSON ({e})"),
            )
        }),
        _ => Err(answer_error(what, &r)),
    }
}

/// Every item of a paged list (`value` + `nextLink`), staying on the first URL's origin.
pub fn list(first: &str, what: &str) -> Result<Vec<Value>> {
    let home = origin(first).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("{what}: `{first}` is not an http(s) URL"),
        )
    })?;
    let mut out = Vec::new();
    let mut next = Some(first.to_string());
    let mut seen = std::collections::HashSet::new();
    while let Some(url) = next.take() {
        if !seen.insert(url.clone()) {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: the next page is one already read; refused"),
            ));
        }
        if seen.len() > MAX_PAGES || out.len() > MAX_ITEMS {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: more than {MAX_PAGES} pages or {MAX_ITEMS} items"),
            ));
        }
        let v = call("GET", &url, None, what)?;
        match v["value"].as_array() {
            Some(items) => out.extend(items.iter().cloned()),
            None => {
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!("{what}: the answer has no `value` list"),
                ));
            }
        }
        if let Some(link) = v["nextLink"].as_str().filter(|l| !l.is_empty()) {
            if origin(link).as_deref() != Some(home.as_str()) {
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!(
                        "{what}: the next page is on another host ({}); refused",
                        clip(link, 200)
                    ),
                ));
            }
            next = Some(link.to_string());
        }
    }
    Ok(out)
}

/// `https://v.vault.azure.net/` + `secrets?api-version=7.5` (one slash between).
pub fn kv_url(vault_uri: &str, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!(
        "{}/{path}{sep}api-version={KV_API}",
        vault_uri.trim_end_matches('/')
    )
}

/// The last path segment of an object or version id.
pub fn last_segment(id: &str) -> &str {
    id.split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_as_the_service_writes_them() {
        assert_eq!(
            origin("https://myvault.vault.azure.net:443/secrets?x").as_deref(),
            Some("https://myvault.vault.azure.net")
        );
        assert_eq!(
            origin("https://MyVault.vault.azure.net/").as_deref(),
            Some("https://myvault.vault.azure.net")
        );
        assert_eq!(
            origin("http://127.0.0.2:9/kv/").as_deref(),
            Some("http://127.0.0.2:9")
        );
        assert_ne!(
            origin("https://evil.example/x"),
            origin("https://myvault.vault.azure.net/")
        );
        assert_eq!(origin("file:///etc/passwd"), None);
        assert_eq!(origin("secrets"), None);
    }

    #[test]
    fn vault_uris_name_a_vault_and_nothing_else() {
        for ok in [
            "https://kv1.vault.azure.net/",
            "https://kv1.vault.azure.net",
            "https://KV1.vault.azure.net:443/",
            "https://kv.vault.usgovcloudapi.net/",
            "http://127.0.0.2:8080/kv1/",
            "http://localhost:9/",
        ] {
            assert!(vault_uri_ok(ok), "{ok}");
        }
        for bad in [
            "https://v.vault.azure.net/deletedsecrets/CRITICAL?api-version=7.5&x=",
            "https://v.vault.azure.net/secrets/OTHER",
            "http://v.vault.azure.net/",
            "https://evil.example/",
            "https://vault.azure.net/",
            "https://a.b.vault.azure.net/",
            "https://v.vault.azure.net.evil.example/",
            "https://user@v.vault.azure.net/",
            "https://v.vault.azure.net:8443/",
            "https://v.vault.azure.net/#x",
            "http://127.0.0.2:80/kv/../x/",
            "http://127.0.0.2:80/kv%2F..",
            "ftp://127.0.0.1/",
        ] {
            assert!(!vault_uri_ok(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_key_vault_names_only() {
        assert!(valid_name("AzureStackLCMUserCredential"));
        assert!(valid_name("a-1"));
        for bad in ["", "../x", "a/b", "a b", "a%2Fb", &"x".repeat(128)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_version("4387e9f3d6e14c459867679a90fd0f79"));
        assert!(!valid_version("../4387"));
    }

    #[test]
    fn the_bearer_challenge_is_read() {
        let ch = r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#;
        assert_eq!(
            challenge_param(ch, "resource").as_deref(),
            Some("https://vault.azure.net")
        );
        let r = http::Response {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), ch.into())],
            body: vec![],
        };
        let e = answer_error("listing secrets", &r);
        assert_eq!(e.code, ErrorCode::Denied);
        assert!(
            e.message
                .contains("tenant 72f988bf-86f1-41af-91ab-2d7cd011db47"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("https://vault.azure.net/.default"),
            "{}",
            e.message
        );
    }

    #[test]
    fn urls_and_ids() {
        assert_eq!(
            kv_url("https://v.vault.azure.net/", "secrets"),
            "https://v.vault.azure.net/secrets?api-version=7.5"
        );
        assert_eq!(
            last_segment("https://v.vault.azure.net/secrets/a/0123"),
            "0123"
        );
        assert_eq!(last_segment("https://v.vault.azure.net/secrets/a"), "a");
    }
}
