//! The chain ([`IdentityConfig::Auto`]): each test runs again in a child process whose
//! environment has no Azure variables but the ones the test sets.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use rehydra_azure::{
    Attempt, Identity, IdentityConfig, IdentityError, IdentityOptions, SourceKind,
};

use crate::arc::{SCOPE, arc_server, arc_token};
use crate::entra::{CLIENT, Expect, SECRET, TENANT, entra, issued_token};
use crate::support::{Pki, Server, is_child, options, run_child, script};

fn failed(source: SourceKind, why: &str) -> Attempt {
    Attempt {
        source,
        failure: Some(why.to_owned()),
    }
}

#[test]
fn auto_falls_through_to_arc_and_says_why() {
    if !is_child() {
        return run_child("chain::auto_falls_through_to_arc_and_says_why", &[]);
    }
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "az",
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1",
    );
    let (_server, opts) = arc_server(dir.path(), 3600, Duration::ZERO);
    let identity = Identity::new(IdentityConfig::Auto, opts).unwrap();

    let status = identity.status(SCOPE);
    assert_eq!(status.source, Some(SourceKind::AzureArc));
    assert_eq!(
        status.attempts,
        [
            failed(
                SourceKind::Environment,
                "AZURE_TENANT_ID and AZURE_CLIENT_ID are not set"
            ),
            failed(SourceKind::AzureCli, "az: please run 'az login'"),
            failed(
                SourceKind::AzureDeveloperCli,
                "azd is not installed (not found on PATH)"
            ),
            Attempt {
                source: SourceKind::AzureArc,
                failure: None
            },
        ]
    );
    assert_eq!(
        identity.token(SCOPE).unwrap().bearer(),
        format!("Bearer {}", arc_token())
    );
}

#[test]
fn auto_with_nothing_lists_every_reason_quickly() {
    if !is_child() {
        return run_child("chain::auto_with_nothing_lists_every_reason_quickly", &[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::new(IdentityConfig::Auto, options(dir.path())).unwrap();
    let started = Instant::now();
    let err = identity.token(SCOPE).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let IdentityError::NoIdentity { attempts } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        attempts,
        &[
            failed(
                SourceKind::Environment,
                "AZURE_TENANT_ID and AZURE_CLIENT_ID are not set"
            ),
            failed(
                SourceKind::AzureCli,
                "az is not installed (not found on PATH)"
            ),
            failed(
                SourceKind::AzureDeveloperCli,
                "azd is not installed (not found on PATH)"
            ),
            failed(
                SourceKind::Imds,
                "no managed identity endpoint on this machine"
            ),
        ]
    );
    assert!(err.to_string().starts_with(
        "no Azure identity could be used: environment service principal: AZURE_TENANT_ID"
    ));
    let status = identity.status(SCOPE);
    assert_eq!((status.source, status.attempts.len()), (None, 4));
}

#[test]
fn auto_uses_the_environment_service_principal_trusting_ssl_cert_file() {
    if !is_child() {
        let pki = Pki::new();
        let server = Server::https(&pki, entra(Expect::secret()));
        let env: [(&str, OsString); 5] = [
            ("AZURE_TENANT_ID", TENANT.into()),
            ("AZURE_CLIENT_ID", CLIENT.into()),
            ("AZURE_CLIENT_SECRET", SECRET.into()),
            ("AZURE_AUTHORITY_HOST", server.url("https").into()),
            ("SSL_CERT_FILE", pki.ca_file().into()),
        ];
        run_child(
            "chain::auto_uses_the_environment_service_principal_trusting_ssl_cert_file",
            &env,
        );
        assert_eq!(server.requests().len(), 1);
        return;
    }
    // no extra roots: the test CA is trusted only through SSL_CERT_FILE
    let dir = tempfile::tempdir().unwrap();
    let opts = IdentityOptions {
        extra_roots: Vec::new(),
        ..options(dir.path())
    };
    let identity = Identity::new(IdentityConfig::Auto, opts).unwrap();
    let status = identity.status(crate::entra::SCOPE);
    assert_eq!(status.source, Some(SourceKind::Environment), "{status:?}");
    assert_eq!(
        status.attempts,
        [Attempt {
            source: SourceKind::Environment,
            failure: None
        }]
    );
    assert_eq!(
        identity.token(crate::entra::SCOPE).unwrap().bearer(),
        format!("Bearer {}", issued_token(CLIENT))
    );
}

#[test]
fn the_chosen_source_is_kept() {
    if !is_child() {
        return run_child("chain::the_chosen_source_is_kept", &[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("az-works");
    let token = crate::support::fake_jwt(serde_json::json!({"tid": "t"}));
    let output = serde_json::json!({"accessToken": token, "expires_on": crate::support::now() + 60, "tokenType": "Bearer"});
    script(
        dir.path(),
        "az",
        &format!(
            "if [ -e '{}' ]; then echo '{output}'; else echo 'ERROR: Please run az login' >&2; exit 1; fi",
            flag.display()
        ),
    );
    // Arc tokens that are always near expiry: every call fetches again
    let (server, opts) = arc_server(dir.path(), 120, Duration::ZERO);
    let identity = Identity::new(IdentityConfig::Auto, opts).unwrap();
    assert_eq!(identity.status(SCOPE).source, Some(SourceKind::AzureArc));
    // az now works, but the identity in use stays the Arc machine's
    std::fs::write(&flag, "").unwrap();
    let other = Identity::new(IdentityConfig::Auto, options(dir.path())).unwrap();
    assert_eq!(other.status(SCOPE).source, Some(SourceKind::AzureCli));
    assert_eq!(identity.status(SCOPE).source, Some(SourceKind::AzureArc));
    assert_eq!(crate::arc::token_requests(&server), 2);
}
