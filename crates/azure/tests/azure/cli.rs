//! The Azure CLI and azd sources with stand-in `az` and `azd` scripts first (and alone)
//! on the PATH they are run with.

use std::path::Path;
use std::time::{Duration, Instant};

use rehydra_azure::{Identity, IdentityConfig, IdentityOptions, SourceKind};
use serde_json::json;

use crate::support::{fake_jwt, now, options, script};

const SCOPE: &str = "https://management.azure.com/.default";

/// What `az account get-access-token -o json` prints.
fn az_output(token: &str, expires_on: u64) -> String {
    json!({
        "accessToken": token,
        "expiresOn": "2030-01-01 00:00:00.000000",
        "expires_on": expires_on,
        "subscription": "00000000-1111-2222-3333-444444444444",
        "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "tokenType": "Bearer"
    })
    .to_string()
}

fn user_token() -> String {
    fake_jwt(json!({
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "upn": "admin@contoso.com",
        "oid": "aaaaaaaa-0000-0000-0000-000000000001",
        "exp": now() + 3000
    }))
}

fn identity(config: IdentityConfig, dir: &Path) -> Identity {
    Identity::new(config, options(dir)).unwrap()
}

#[test]
fn az_gives_the_signed_in_users_token() {
    let dir = tempfile::tempdir().unwrap();
    let args = dir.path().join("args");
    let token = user_token();
    let expires = now() + 3000;
    script(
        dir.path(),
        "az",
        &format!(
            "echo \"$@\" >> '{}'\n/bin/cat <<'EOF'\n{}\nEOF",
            args.display(),
            az_output(&token, expires)
        ),
    );
    let identity = identity(IdentityConfig::AzureCli, dir.path());

    let got = identity.token(SCOPE).unwrap();
    assert_eq!(got.bearer(), format!("Bearer {token}"));
    assert_eq!(
        got.expires
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        expires
    );
    let status = identity.status(SCOPE);
    assert_eq!(status.source, Some(SourceKind::AzureCli));
    assert_eq!(
        status.claims.unwrap().user.as_deref(),
        Some("admin@contoso.com")
    );
    let args = std::fs::read_to_string(args).unwrap();
    assert_eq!(
        args.trim(),
        format!("account get-access-token -o json --scope {SCOPE}"),
        "one run only"
    );
}

#[test]
fn az_not_signed_in_says_run_az_login() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "az",
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1",
    );
    let status = identity(IdentityConfig::AzureCli, dir.path()).status(SCOPE);
    assert_eq!(status.source, None);
    assert_eq!(
        status.attempts[0].failure.as_deref(),
        Some("az: please run 'az login'")
    );
    assert_eq!(
        status.error.as_deref(),
        Some("Azure CLI: az: please run 'az login'")
    );
}

#[test]
fn az_missing_says_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let err = identity(IdentityConfig::AzureCli, dir.path())
        .token(SCOPE)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Azure CLI: az is not installed (not found on PATH)"
    );
}

#[cfg(unix)]
#[test]
fn a_hanging_az_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    script(
        dir.path(),
        "az",
        &format!("/bin/sleep 60 &\necho $! > '{}'\nwait", pid_file.display()),
    );
    let opts = IdentityOptions {
        cli_timeout: Duration::from_secs(1),
        ..options(dir.path())
    };
    let identity = Identity::new(IdentityConfig::AzureCli, opts).unwrap();

    let started = Instant::now();
    let err = identity.token(SCOPE).unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("az did not answer within 1 s"), "{err}");

    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(5);
    // gone, or a zombie waiting for a reaper (the grandchild was reparented)
    while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(
            Instant::now() < deadline,
            "the az child {} still runs",
            pid.trim()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn azd_gives_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = user_token();
    let output = json!({"token": token, "expiresOn": "2030-01-01T00:00:00Z"});
    script(
        dir.path(),
        "azd",
        &format!("/bin/cat <<'EOF'\n{output}\nEOF"),
    );
    let got = identity(IdentityConfig::AzureDeveloperCli, dir.path())
        .token(SCOPE)
        .unwrap();
    assert_eq!(got.bearer(), format!("Bearer {token}"));
    assert_eq!(
        got.expires
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_893_456_000
    );
}

#[test]
fn azd_not_signed_in_says_run_azd_auth_login() {
    let dir = tempfile::tempdir().unwrap();
    let message = json!({"type": "consoleMessage", "timestamp": "2025-01-01T00:00:00Z", "data": {"message": "\nERROR: not logged in, run `azd auth login` to login\n"}});
    script(
        dir.path(),
        "azd",
        &format!("/bin/cat >&2 <<'EOF'\n{message}\nEOF\nexit 1"),
    );
    let err = identity(IdentityConfig::AzureDeveloperCli, dir.path())
        .token(SCOPE)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Azure Developer CLI: azd: please run 'azd auth login'"
    );
}
