//! Tokens in another tenant than the identity's own (what a bearer challenge from a vault
//! of another tenant asks for): the Azure CLI signs in there with `--tenant`, a service
//! principal at that tenant's token endpoint, each cached apart from the home token.

use std::sync::Arc;

use rehydra_azure::{Identity, IdentityConfig, SecretSource};
use serde_json::json;

use crate::entra::{CLIENT, SCOPE, SECRET, TENANT, https_options};
use crate::support::{
    Pki, Request, Response, Server, fake_jwt, now, options, private_file, script,
};

const OTHER: &str = "0a0b0c0d-1111-4222-8333-444455556666";

#[test]
fn the_azure_cli_signs_in_to_the_tenant_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let args = dir.path().join("args");
    // the token names the tenant az was asked for (its default when none)
    script(
        dir.path(),
        "az",
        &format!(
            r#"echo "$@" >> '{}'
t={TENANT}
case "$*" in *"--tenant "*) t="${{*##*--tenant }}"; t="${{t%% *}}" ;; esac
printf '{{"accessToken": "tok-%s", "expires_on": {}, "tenant": "%s", "tokenType": "Bearer"}}\n' "$t" "$t""#,
            args.display(),
            now() + 3000
        ),
    );
    let identity = Identity::new(IdentityConfig::AzureCli, options(dir.path())).unwrap();
    assert_eq!(
        identity.token(SCOPE).unwrap().secret(),
        format!("tok-{TENANT}")
    );
    let there = identity.token_in_tenant(SCOPE, OTHER).unwrap();
    assert_eq!(there.secret(), format!("tok-{OTHER}"));
    // cached apart: neither call runs az again
    assert_eq!(
        identity.token_in_tenant(SCOPE, OTHER).unwrap().secret(),
        there.secret()
    );
    assert_eq!(
        identity.token(SCOPE).unwrap().secret(),
        format!("tok-{TENANT}")
    );
    let runs = std::fs::read_to_string(&args).unwrap();
    assert_eq!(
        runs.lines().collect::<Vec<_>>(),
        [
            format!("account get-access-token -o json --scope {SCOPE}"),
            format!("account get-access-token -o json --scope {SCOPE} --tenant {OTHER}"),
        ]
    );
    // what may not stand in a token endpoint's path is refused before anything runs
    for bad in ["../evil", "a/b", "x?y=1", "", ".hidden"] {
        let e = identity.token_in_tenant(SCOPE, bad).unwrap_err();
        assert!(e.to_string().contains("not a tenant id"), "{bad}: {e}");
    }
    assert_eq!(std::fs::read_to_string(&args).unwrap(), runs);
}

#[test]
fn a_service_principal_asks_the_other_tenants_token_endpoint() {
    let pki = Pki::new();
    // each tenant's endpoint issues tokens of its own tenant, for the same client
    let handler = Arc::new(|req: &Request| {
        let tenant = req
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let form = req.form();
        let ok = req.path().ends_with("/oauth2/v2.0/token")
            && [TENANT, OTHER].contains(&tenant.as_str())
            && form.contains(&("client_secret".into(), SECRET.into()))
            && form.contains(&("client_id".into(), CLIENT.into()));
        if !ok {
            return Response::json(
                400,
                json!({"error": "invalid_request", "error_description": "AADSTS900144: test endpoint"}),
            );
        }
        let token = fake_jwt(json!({"tid": tenant, "appid": CLIENT, "exp": now() + 3599}));
        Response::json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token}),
        )
    });
    let server = Server::https(&pki, handler);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    private_file(&secret, SECRET.as_bytes());
    let config = IdentityConfig::ServicePrincipalSecret {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        secret: SecretSource::File(secret),
    };
    let identity = Identity::new(config, https_options(&pki, &server, dir.path())).unwrap();
    let there = identity.token_in_tenant(SCOPE, OTHER).unwrap();
    assert_eq!(there.claims().unwrap().tenant.as_deref(), Some(OTHER));
    let home = identity.token(SCOPE).unwrap();
    assert_eq!(home.claims().unwrap().tenant.as_deref(), Some(TENANT));
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert!(
        paths.contains(&format!("/{OTHER}/oauth2/v2.0/token")),
        "{paths:?}"
    );
}
