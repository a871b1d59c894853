//! Kubernetes clusters reached through the admin's kubeconfig (`rehydra plugins
//! kube-cluster`), end to end: the kubernetes plugin against the API server stand-in over
//! HTTPS with the test CA, signed in with a client certificate, then a token; unsafe
//! kubeconfigs refused; nothing of the kubeconfig kept in the catalog.

use serde_json::json;

use crate::kubernetes::{Cluster, cluster_b, done, kube_cli, text};
use crate::support::{self, json_out};

#[test]
fn a_cluster_reached_with_the_client_certificate_or_token_of_a_kubeconfig() {
    use base64::Engine as _;
    let cli = kube_cli();
    let tls = cli.dir.path().join("tls");
    support::certificates(&tls, "aks-c.contoso.local");
    support::client_certificate(&tls);
    let p = |f: &str| tls.join(f).display().to_string();
    let mut state = cluster_b();
    state["tls"] = json!({"cert": p("srv.pem"), "key": p("srv.key"), "client_ca": p("ca.pem")});
    state["tokens"] = json!(["s3cr3t-token"]);
    state["objects"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    let c = Cluster::start(&cli.dir.path().join("c"), "127.0.0.1", &state);
    assert!(c.url.starts_with("https://127.0.0.1:"), "{}", c.url);
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "kubernetes",
            "engine",
            &c.grant().replace("https://", ""),
        ],
    );
    let discover = || {
        cli.run(
            None,
            &[
                "--json",
                "plugins",
                "run",
                "kubernetes",
                "discover",
                "--set",
                &c.kube(),
                "--set",
                "cluster=aks-c",
            ],
        )
    };
    // the cluster's own CA is not one this machine trusts
    let o = discover();
    assert!(!o.status.success(), "{}", text(&o));

    // the admin's kubeconfig: the cluster's CA, a client certificate, a token, an unsafe one
    let b64 = |f: &str| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(tls.join(f)).unwrap())
    };
    let kubeconfig = cli.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: admin\nclusters:\n- name: aks-c\n  cluster:\n    server: {url}\n    certificate-authority: tls/ca.pem\n- name: aks-c-insecure\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: admin\n  context: {{cluster: aks-c, user: admin}}\n- name: ops\n  context: {{cluster: aks-c, user: ops}}\n- name: careless\n  context: {{cluster: aks-c-insecure, user: ops}}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n- name: ops\n  user:\n    token: s3cr3t-token\n",
            url = c.url,
            cert = b64("client.pem"),
            key = b64("client.key"),
        ),
    )
    .unwrap();
    let k = kubeconfig.to_str().unwrap();
    let o = cli.run(
        None,
        &[
            "plugins",
            "kube-cluster",
            "add",
            "aks-c",
            "--kubeconfig",
            k,
            "--context",
            "careless",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("skips TLS verification"),
        "{}",
        text(&o)
    );
    let added = cli.ok(
        None,
        &["plugins", "kube-cluster", "add", "aks-c", "--kubeconfig", k],
    );
    assert!(
        added.contains(&c.url) && added.contains("client certificate"),
        "{added}"
    );
    let assets = json_out(&discover()).to_string();
    assert!(
        assets.contains("aks-c/shop"),
        "signed in with the client certificate: {assets}"
    );
    done(&cli.run(
        None,
        &[
            "--json",
            "plugins",
            "run",
            "kubernetes",
            "backup",
            "--asset",
            "aks-c/shop",
            "--set",
            &c.kube(),
            "--set",
            "cluster=aks-c",
        ],
    ));

    // the token of another context
    cli.ok(
        None,
        &[
            "plugins",
            "kube-cluster",
            "add",
            "aks-c",
            "--kubeconfig",
            k,
            "--context",
            "ops",
        ],
    );
    let listed = json_out(&cli.run(None, &["--json", "plugins", "kube-cluster", "list"]));
    assert_eq!(listed[0]["sign_in"], "token", "{listed}");
    assert!(json_out(&discover()).to_string().contains("aks-c/shop"));
    // a kubeconfig that stops reading (here: others may now change it) fails the requests
    // to its server with the reason, rather than letting them go out without its CA
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = discover();
    assert!(
        !o.status.success() && text(&o).contains("may be changed by other users"),
        "{}",
        text(&o)
    );
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(json_out(&discover()).to_string().contains("aks-c/shop"));
    // the catalog keeps where the kubeconfig is, never what it holds
    let catalog = std::fs::read(cli.dir.path().join("catalog.db")).unwrap();
    for secret in ["s3cr3t-token", "PRIVATE KEY"] {
        assert!(
            !catalog
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} in the catalog"
        );
    }
    cli.ok(None, &["plugins", "kube-cluster", "remove", "aks-c"]);
    assert!(
        !discover().status.success(),
        "without it, the cluster's CA is not trusted again"
    );
}
