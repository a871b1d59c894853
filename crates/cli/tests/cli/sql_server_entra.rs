//! SQL Server signed in to with the admin's Azure sign-in (Microsoft Entra ID): the host
//! sends a token for SQL's audience in the login's federated authentication extension
//! (TDS FEDAUTH), through tiberius, to the SQL Server stand-in, which takes it as SQL
//! Server does (FEDAUTHREQUIRED in PRELOGIN, the token in LOGIN7's feature extension, a
//! FEATUREEXTACK back) and accepts only a token of SQL's audience (the test's `az` marks
//! those `sql-`, as it marks Key Vault's and Kubernetes' tokens).

use serde_json::Value;

use crate::sql_server::{StandIn, database, run, text};
use crate::support::{self, Cli, json_out};

#[test]
fn sql_server_signed_in_with_the_azure_sign_in() {
    let cli = Cli::new(&["sql-server"]);
    cli.init_repo();
    let dir = cli.dir.path().join("sql");
    let tls = dir.join("tls");
    support::certificates(&tls, "sql01.test.lan");
    let sql = StandIn::start_with(&dir, &tls, |c| {
        c.args(["--entra", "admin@contoso.com"]);
    });
    // by name: the tests' set-up gives 127.0.0.1 ARM's audience (for the ARM stand-in)
    let server = sql.server().replace("127.0.0.1", "localhost");
    let ca = tls.join("ca.pem");
    let ca = ca.to_str().unwrap();

    // refused before anything is kept: a password with it, or a command target
    for extra in [
        &["--password-env", "SQL_PW"][..],
        &["--via", "local"],
        &["--login", "sa"],
    ] {
        let mut a = vec!["plugins", "sql-server", "add", &server, "--entra"];
        a.extend(extra);
        let o = run(&cli, &a);
        assert!(!o.status.success(), "{extra:?}: {}", text(&o));
    }

    // kept after signing in: the check says whom the instance took Rehydra for
    let o = run(
        &cli,
        &[
            "plugins",
            "sql-server",
            "add",
            &server,
            "--entra",
            "--ca-file",
            ca,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("as admin@contoso.com"), "{}", text(&o));
    let logins: Vec<Value> = std::fs::read_to_string(dir.join("state/logins.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["mech"], "fedauth");
    assert_eq!(logins[0]["audience_ok"], true, "a token for SQL's audience");
    let list = cli.ok(None, &["plugins", "sql-server", "list"]);
    assert!(
        list.contains("your Azure sign-in (Microsoft Entra ID)"),
        "{list}"
    );

    // a plugin's batches go through it; the plugin never sees the token
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "sql-server",
            "engine",
            &format!("sql:{server}"),
        ],
    );
    let servers = format!("servers={server}");
    let o = run(
        &cli,
        &[
            "--json",
            "plugins",
            "run",
            "sql-server",
            "discover",
            "--set",
            &servers,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let assets = json_out(&o);
    database(&assets, "sales");
    let catalog = std::fs::read(cli.dir.path().join("catalog.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&catalog).contains("sql-test-token")
            && !text(&o).contains("sql-test-token"),
        "the token is never kept or shown"
    );

    // a token of another audience (one the admin set for the host by mistake) is refused
    // by the instance, and the error says so
    cli.ok(
        None,
        &[
            "azure",
            "audience",
            "add",
            "localhost",
            "https://vault.azure.net/.default",
        ],
    );
    let o = run(&cli, &["plugins", "sql-server", "check", &server]);
    assert!(!o.status.success());
    assert!(text(&o).contains("Login failed"), "{}", text(&o));
    assert!(!text(&o).contains("test-token"), "{}", text(&o));
}
