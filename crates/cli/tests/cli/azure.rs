//! `rehydra azure`: sign-in choices kept in the catalog (never a secret), and a status that
//! says who is signed in, which subscriptions that identity sees (ARM's paged listing,
//! served on loopback with the official shape), and why each source failed.

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::{self, Cli};
use serde_json::Value;

/// A JWT-shaped token (header.payload.signature) with the claims `az` tokens carry.
fn jwt(claims: &Value) -> String {
    use base64::Engine;
    let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b(br#"{"alg":"RS256","typ":"JWT"}"#),
        b(claims.to_string().as_bytes()),
        b(b"signature")
    )
}

/// `az` printing `token` for an hour.
fn az_with(dir: &Path, token: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let script = format!(
        "#!/bin/sh\nexp=$(( $(date +%s) + 3600 ))\nprintf '{{\"accessToken\": \"{token}\", \"expiresOn\": \"%s\", \"expires_on\": %s, \"subscription\": \"s\", \"tenant\": \"t\", \"tokenType\": \"Bearer\"}}\\n' \"$(date -d @$exp '+%Y-%m-%d %H:%M:%S.000000')\" \"$exp\"\n"
    );
    std::fs::write(dir.join("az"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// ARM's subscription list in two pages (`nextLink`), only for `Bearer <token>`; records
/// the authorization of every request.
fn arm_subscriptions(token: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s2, b2) = (seen.clone(), base.clone());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let (path, auth) = support::read_head(&mut BufReader::new(c.try_clone().unwrap()));
            s2.lock().unwrap().push(auth.clone());
            let sub = |id: &str, name: &str| serde_json::json!({"id": format!("/subscriptions/{id}"), "subscriptionId": id, "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "displayName": name, "state": "Enabled", "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "Internal_2014-09-01", "spendingLimit": "Off"}, "authorizationSource": "RoleBased"});
            let (status, body) = if auth != format!("Bearer {token}") {
                (
                    "401 Unauthorized",
                    serde_json::json!({"error": {"code": "AuthenticationFailed", "message": "Authentication failed."}}),
                )
            } else if path.starts_with("/subscriptions?api-version=2022-12-01&page=2") {
                (
                    "200 OK",
                    serde_json::json!({"value": [sub("6b2f9d1e-0000-4000-8000-000000000002", "hci-dr")]}),
                )
            } else if path == "/subscriptions?api-version=2022-12-01" {
                (
                    "200 OK",
                    serde_json::json!({"value": [sub("6b2f9d1e-0000-4000-8000-000000000001", "hci-prod")], "nextLink": format!("{b2}/subscriptions?api-version=2022-12-01&page=2")}),
                )
            } else {
                (
                    "404 Not Found",
                    serde_json::json!({"error": {"code": "NotFound"}}),
                )
            };
            let b = body.to_string();
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                b.len()
            );
            let _ = c.read(&mut [0u8; 1]);
        }
    });
    (base, seen)
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn status_names_the_identity_its_tenant_and_subscriptions() {
    let cli = Cli::new(&[]);
    let token = jwt(&serde_json::json!({
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "upn": "admin@contoso.com",
        "oid": "0b4f5a3e-0000-4000-8000-00000000000a",
        "exp": 4102444800u64,
    }));
    az_with(&cli.azbin(), &token);
    let (arm, seen) = arm_subscriptions(token.clone());
    cli.ok(None, &["azure", "endpoint", &arm]);
    let st = json(&cli.run(None, &["--json", "azure", "status"]));
    assert_eq!(st["source"], "Azure CLI", "{st}");
    assert_eq!(st["tenant"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(st["user"], "admin@contoso.com");
    let names: Vec<&str> = st["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hci-prod", "hci-dr"], "both pages: {st}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    // the text form says the same in words, and never shows the token
    let text = cli.ok(None, &["azure", "status"]);
    assert!(
        text.contains("user admin@contoso.com through Azure CLI"),
        "{text}"
    );
    assert!(!text.contains(&token) && !st.to_string().contains(&token));
}

#[test]
fn with_no_identity_status_says_why_for_each_source() {
    let cli = Cli::new(&[]);
    cli.ok(None, &["azure", "logout"]); // the automatic chain
    // no az on this PATH, no service principal in the environment, no managed identity
    std::fs::remove_file(cli.azbin().join("az")).unwrap();
    let o = cli
        .cmd(None)
        .args(["--json", "azure", "status"])
        .env("PATH", "/usr/bin:/bin")
        .env(
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:9/metadata/identity/oauth2/token",
        )
        .env("IMDS_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st = json(&o);
    assert!(st["source"].is_null(), "{st}");
    let attempts = st["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 3, "{st}");
    assert!(
        attempts
            .iter()
            .all(|a| a["failure"].as_str().is_some_and(|f| !f.is_empty())),
        "every source says why: {st}"
    );
    assert!(st.to_string().contains("az"), "{st}");
}

#[test]
fn login_choices_are_kept_and_checked() {
    let cli = Cli::new(&[]);
    // a world-readable secret file is refused before it is ever used
    let secret = cli.dir.path().join("sp-secret");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "azure",
        "login",
        "--service-principal",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--client-id",
        "00000000-0000-0000-0000-00000000c11e",
        "--secret-file",
        secret.to_str().unwrap(),
    ];
    let o = cli.run(None, &args);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("readable"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    cli.ok(None, &args);
    // the catalog keeps where the secret is, never the secret
    let db = std::fs::read(cli.dir.path().join("catalog.db")).unwrap();
    assert!(!db.windows(12).any(|w| w == b"s3cr3t-value"));
    let st = json(&cli.run(None, &["--json", "azure", "status"]));
    assert!(
        st["configured"]
            .as_str()
            .unwrap()
            .contains("service principal 00000000-0000-0000-0000-00000000c11e"),
        "{st}"
    );
    cli.ok(None, &["azure", "logout"]);
    let st = json(&cli.run(None, &["--json", "azure", "status"]));
    assert!(
        st["configured"].as_str().unwrap().starts_with("automatic"),
        "{st}"
    );
    // extra audiences: added, listed, removed; a malformed one is refused
    cli.ok(
        None,
        &[
            "azure",
            "audience",
            "add",
            "*.hub.contoso.local",
            "https://management.hub.contoso.local/.default",
        ],
    );
    let list = cli.ok(None, &["azure", "audience", "list"]);
    assert!(list.contains("*.hub.contoso.local"), "{list}");
    assert!(
        !cli.run(None, &["azure", "audience", "add", "bad host", "x"])
            .status
            .success()
    );
    cli.ok(
        None,
        &["azure", "audience", "remove", "*.hub.contoso.local"],
    );
    assert!(
        !cli.run(
            None,
            &["azure", "audience", "remove", "*.hub.contoso.local"]
        )
        .status
        .success()
    );
    // an ARM endpoint must be https off this machine
    assert!(
        !cli.run(
            None,
            &["azure", "endpoint", "http://management.contoso.com"]
        )
        .status
        .success()
    );
}
