//! The per-scope cache, counted at the server: near-expiry tokens are fetched again,
//! fresh ones are not, and concurrent callers share one fetch.

use std::time::Duration;

use rehydra_azure::{Identity, IdentityConfig};

use crate::arc::{SCOPE, arc_server, token_requests};
use crate::entra::{Expect, entra, https_options};
use crate::support::{Pki, Server, private_file};

fn arc_identity(expires_in: u64, delay: Duration) -> (tempfile::TempDir, Server, Identity) {
    let dir = tempfile::tempdir().unwrap();
    let (server, opts) = arc_server(dir.path(), expires_in, delay);
    let identity =
        Identity::new(IdentityConfig::ManagedIdentity { client_id: None }, opts).unwrap();
    (dir, server, identity)
}

#[test]
fn a_token_expiring_in_two_minutes_is_fetched_again() {
    let (_dir, server, identity) = arc_identity(120, Duration::ZERO);
    identity.token(SCOPE).unwrap();
    identity.token(SCOPE).unwrap();
    identity.token(SCOPE).unwrap();
    assert_eq!(token_requests(&server), 3);
}

#[test]
fn a_token_expiring_in_an_hour_is_reused() {
    let (_dir, server, identity) = arc_identity(3600, Duration::ZERO);
    let first = identity.token(SCOPE).unwrap();
    let clone = identity.clone();
    let second = std::thread::spawn(move || clone.token(SCOPE).unwrap())
        .join()
        .unwrap();
    assert_eq!(first.bearer(), second.bearer());
    assert_eq!(token_requests(&server), 1);
}

#[test]
fn concurrent_callers_cause_one_fetch() {
    let (_dir, server, identity) = arc_identity(3600, Duration::from_millis(400));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (identity, barrier) = (identity.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                identity.token(SCOPE).unwrap().bearer()
            })
        })
        .collect();
    let bearers: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(bearers.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(token_requests(&server), 1);
}

#[test]
fn client_secret_tokens_are_cached_too() {
    let pki = Pki::new();
    let short = Server::https(
        &pki,
        entra(Expect {
            expires_in: 120,
            ..Expect::secret()
        }),
    );
    let long = Server::https(&pki, entra(Expect::secret()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    private_file(&path, crate::entra::SECRET.as_bytes());
    for (server, expected) in [(&short, 2), (&long, 1)] {
        let config = IdentityConfig::ServicePrincipalSecret {
            tenant: crate::entra::TENANT.into(),
            client_id: crate::entra::CLIENT.into(),
            secret: rehydra_azure::SecretSource::File(path.clone()),
        };
        let identity = Identity::new(config, https_options(&pki, server, dir.path())).unwrap();
        identity.token(crate::entra::SCOPE).unwrap();
        identity.token(crate::entra::SCOPE).unwrap();
        assert_eq!(server.requests().len(), expected);
    }
}

#[test]
fn token_works_inside_another_runtime() {
    let (_dir, server, identity) = arc_identity(3600, Duration::ZERO);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let inside = identity.clone();
    let bearer = runtime.block_on(async move {
        tokio::task::spawn(async move {
            tokio::task::block_in_place(|| inside.token(SCOPE).unwrap().bearer())
        })
        .await
        .unwrap()
    });
    assert!(bearer.starts_with("Bearer "));
    assert_eq!(token_requests(&server), 1);
    // the last clone dropped on an async task: no panic
    runtime.block_on(async move { drop(identity) });
}
