//! Azure Arc against a loopback identity endpoint that runs the challenge-file handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rehydra_azure::{Identity, IdentityConfig, IdentityError, IdentityOptions, SourceKind};
use serde_json::json;

use crate::support::{Handler, Request, Response, Server, fake_jwt, now, options};

pub const SCOPE: &str = "https://management.azure.com/.default";
const KEY: &str = "c2VjcmV0LWtleS1jb250ZW50cw==";

/// The access token the Arc endpoint issues.
pub fn arc_token() -> String {
    fake_jwt(json!({"tid": "t-arc", "appid": "a-arc", "oid": "o-arc", "exp": now() + 3600}))
}

/// Where the challenge file goes: `realm(folder)` is the path sent in the challenge; the
/// endpoint writes `KEY` there when it is inside `folder`.
pub struct ArcEndpoint {
    pub folder: PathBuf,
    pub realm: Box<dyn Fn(&Path) -> PathBuf + Send + Sync>,
    pub expires_in: u64,
    pub delay: Duration,
}

/// The agent's endpoint: challenge first, token for the right key.
pub fn arc(endpoint: ArcEndpoint) -> Handler {
    Arc::new(move |req: &Request| {
        let query = req.query();
        if req.method != "GET"
            || req.path() != "/metadata/identity/oauth2/token"
            || req.header("metadata") != Some("true")
            || query.get("api-version").map(String::as_str) != Some("2020-06-01")
            || query.get("resource").map(String::as_str) != Some("https://management.azure.com")
        {
            return Response::json(
                400,
                json!({"error": "invalid_request", "error_description": format!("bad request {}", req.target)}),
            );
        }
        let realm = (endpoint.realm)(&endpoint.folder);
        match req.header("authorization") {
            None => {
                if realm.parent() == Some(endpoint.folder.as_path()) && !realm.exists() {
                    std::fs::write(&realm, KEY).unwrap();
                }
                Response::json(401, json!({"error": "unauthorized"})).with_header(
                    "WWW-Authenticate",
                    &format!("Basic realm={}", realm.display()),
                )
            }
            Some(auth) if auth == format!("Basic {KEY}") => {
                std::thread::sleep(endpoint.delay);
                let expires_on = now() + endpoint.expires_in;
                Response::json(
                    200,
                    json!({
                        "access_token": arc_token(),
                        "expires_in": endpoint.expires_in.to_string(),
                        "expires_on": expires_on.to_string(),
                        "not_before": now().to_string(),
                        "resource": "https://management.azure.com",
                        "token_type": "Bearer"
                    }),
                )
            }
            Some(_) => Response::json(401, json!({"error": "invalid_key"})),
        }
    })
}

/// An endpoint that writes its challenge files into `folder`, and options pointing at it.
pub fn arc_server(folder: &Path, expires_in: u64, delay: Duration) -> (Server, IdentityOptions) {
    let server = Server::http(arc(ArcEndpoint {
        folder: folder.to_owned(),
        realm: Box::new(|folder| folder.join(format!("{}.key", rand::random::<u64>()))),
        expires_in,
        delay,
    }));
    let opts = IdentityOptions {
        arc_endpoint: Some(format!(
            "{}/metadata/identity/oauth2/token",
            server.url("http")
        )),
        arc_token_folder: Some(folder.to_owned()),
        ..options(folder)
    };
    (server, opts)
}

/// The token requests that carried a key (the challenges are not counted).
pub fn token_requests(server: &Server) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.header("authorization").is_some())
        .count()
}

#[test]
fn arc_answers_the_challenge_with_the_key_file() {
    let tokens = tempfile::tempdir().unwrap();
    let (server, opts) = arc_server(tokens.path(), 3600, Duration::ZERO);
    let identity =
        Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts).unwrap();

    let token = identity.token(SCOPE).unwrap();
    assert_eq!(token.bearer(), format!("Bearer {}", arc_token()));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Basic {KEY}").as_str())
    );
    let status = identity.status(SCOPE);
    assert_eq!(status.source, Some(SourceKind::AzureArc));
    assert_eq!(status.claims.unwrap().tenant.as_deref(), Some("t-arc"));
}

#[cfg(unix)]
#[test]
fn realms_outside_the_token_folder_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let tokens = root.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let outside = root.path().join("outside.key");
    std::fs::write(&outside, KEY).unwrap();
    std::os::unix::fs::symlink(&outside, tokens.join("link.key")).unwrap();
    std::fs::write(tokens.join("big.key"), vec![b'a'; 4097]).unwrap();
    std::fs::write(tokens.join("note.txt"), KEY).unwrap();
    std::fs::create_dir(tokens.join("sub")).unwrap();
    std::fs::write(tokens.join("sub").join("deep.key"), KEY).unwrap();

    let cases: Vec<(PathBuf, &str)> = vec![
        ("/etc/passwd".into(), "is outside"),
        (tokens.join("..").join("outside.key"), "is outside"),
        (tokens.join("link.key"), "is outside"),
        (tokens.join("sub").join("deep.key"), "is outside"),
        (tokens.join("note.txt"), "not a .key file"),
        (tokens.join("big.key"), "larger than 4096 bytes"),
        ("relative.key".into(), "not an absolute path"),
    ];
    for (realm, words) in cases {
        let realm_for_server = realm.clone();
        let server = Server::http(arc(ArcEndpoint {
            folder: tokens.clone(),
            realm: Box::new(move |_| realm_for_server.clone()),
            expires_in: 3600,
            delay: Duration::ZERO,
        }));
        let opts = IdentityOptions {
            arc_endpoint: Some(format!(
                "{}/metadata/identity/oauth2/token",
                server.url("http")
            )),
            arc_token_folder: Some(tokens.clone()),
            ..options(root.path())
        };
        let identity =
            Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts).unwrap();
        let err = identity.token(SCOPE).unwrap_err().to_string();
        assert!(
            err.contains("refused") && err.contains(words),
            "{}: {err}",
            realm.display()
        );
        assert_eq!(
            token_requests(&server),
            0,
            "{}: a key was sent",
            realm.display()
        );
        assert!(!err.contains(KEY), "{err}");
    }
}

#[test]
fn endpoints_off_this_machine_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for endpoint in [
        "http://10.1.2.3:40342/metadata/identity/oauth2/token",
        "http://localhost.example.com/x",
        "file:///etc/passwd",
    ] {
        let opts = IdentityOptions {
            arc_endpoint: Some(endpoint.into()),
            ..options(dir.path())
        };
        let err =
            Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts).unwrap_err();
        assert!(
            matches!(err, IdentityError::Config(_))
                && err.to_string().contains("not on this machine"),
            "{endpoint}: {err}"
        );
    }
}

#[test]
fn arc_has_no_user_assigned_identities() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, opts) = arc_server(dir.path(), 3600, Duration::ZERO);
    let err = Identity::new(
        IdentityConfig::ManagedIdentity {
            client_id: Some("x".into()),
        },
        opts,
    )
    .unwrap_err();
    assert!(err.to_string().contains("system-assigned"), "{err}");
}

#[test]
fn a_stopped_agent_is_reported_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let opts = IdentityOptions {
        arc_endpoint: Some(crate::support::closed_url()),
        arc_token_folder: Some(dir.path().to_owned()),
        ..options(dir.path())
    };
    let err = Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts)
        .unwrap()
        .token(SCOPE)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Azure Arc managed identity: the Azure Arc agent is not answering"),
        "{err}"
    );
}
