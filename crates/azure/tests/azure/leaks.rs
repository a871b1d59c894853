//! Tokens never show up in `Debug` output, error messages or the status.

use std::time::Duration;

use rehydra_azure::{Identity, IdentityConfig, IdentityOptions};
use serde_json::json;

use crate::arc::{SCOPE, arc_server, arc_token};
use crate::support::{Response, Server, fake_jwt, now, options, script};

#[test]
fn debug_output_never_holds_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, opts) = arc_server(dir.path(), 3600, Duration::ZERO);
    let identity =
        Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts).unwrap();
    let token = identity.token(SCOPE).unwrap();
    let secret = arc_token();
    assert_eq!(format!("{token:?}"), "Token(…)");
    let status = identity.status(SCOPE);
    for text in [
        format!("{identity:?}"),
        format!("{status:?}"),
        format!("{:?}", token.claims()),
    ] {
        assert!(!text.contains(&secret), "{text}");
        assert!(!text.contains(secret.split('.').nth(1).unwrap()), "{text}");
    }
}

#[test]
fn errors_never_hold_a_token_a_tool_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = fake_jwt(json!({"tid": "leaky", "exp": now() + 3600}));
    // a token with an expiry az never prints, then a failure that echoes a token
    let cases = [
        format!(
            "echo '{}'",
            json!({"accessToken": token, "expires_on": "tomorrow", "tokenType": "Bearer"})
        ),
        format!(
            "echo '{}'",
            json!({"accessToken": token, "tokenType": "Bearer"})
        ),
        format!("echo 'ERROR: refresh failed for {token}' >&2\nexit 1"),
        format!("echo '{token}'"),
    ];
    for body in cases {
        script(dir.path(), "az", &body);
        let identity = Identity::new(IdentityConfig::AzureCli, options(dir.path())).unwrap();
        let err = identity.token(SCOPE).unwrap_err();
        let status = identity.status(SCOPE);
        for text in [err.to_string(), format!("{err:?}"), format!("{status:?}")] {
            assert!(!text.contains(&token), "{body}: {text}");
        }
    }
}

#[test]
fn an_arc_answer_without_expiry_is_refused_without_echoing_it() {
    let token = fake_jwt(json!({"tid": "leaky"}));
    let body = json!({"access_token": token, "expires_on": "later"});
    let server = Server::http(std::sync::Arc::new(move |_| {
        Response::json(200, body.clone())
    }));
    let dir = tempfile::tempdir().unwrap();
    let opts = IdentityOptions {
        arc_endpoint: Some(format!(
            "{}/metadata/identity/oauth2/token",
            server.url("http")
        )),
        arc_token_folder: Some(dir.path().to_owned()),
        ..options(dir.path())
    };
    let identity =
        Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts).unwrap();
    let err = identity.token(SCOPE).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("no usable expires_on"), "{text}");
    assert!(!text.contains(&token), "{text}");
}

#[cfg(all(target_os = "linux", feature = "keychain"))]
#[test]
fn an_unreachable_keychain_is_explained() {
    use std::ffi::OsString;

    use crate::support::{is_child, run_child};
    if !is_child() {
        let bus: OsString = "unix:path=/nonexistent/rehydra-test-bus".into();
        return run_child(
            "leaks::an_unreachable_keychain_is_explained",
            &[("DBUS_SESSION_BUS_ADDRESS", bus)],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = IdentityConfig::ServicePrincipalSecret {
        tenant: "t".into(),
        client_id: "c".into(),
        secret: rehydra_azure::SecretSource::Keyring {
            service: "rehydra".into(),
            user: "sp".into(),
        },
    };
    let err = Identity::new(config, options(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the OS keychain is not reachable for rehydra/sp"),
        "{err}"
    );
}
