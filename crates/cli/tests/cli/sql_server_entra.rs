//! SQL Server signed in to with the admin's Azure sign-in (Microsoft Entra ID): the host
//! sends a token for SQL's audience in the login's federated authentication extension
//! (TDS FEDAUTH), through tiberius, to the SQL Server stand-in, which takes it as SQL
//! Server does (FEDAUTHREQUIRED in PRELOGIN, the token in LOGIN7's feature extension, a
//! FEATUREEXTACK back) and accepts only a token of SQL's audience (the test's `az` marks
//! those `sql-`, as it marks Key Vault's and Kubernetes' tokens).

use serde_json::Value;

use crate::sql_server::{StandIn, database, plugin, run, text};
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
    // (the tests' set-up gives 127.0.0.1 ARM's audience for plugins' HTTPS, which a SQL
    // Server's sign-in never uses: it is sent Azure SQL's)
    let server = sql.server();
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
    let o = plugin(&cli, &["discover", "--set", &servers]);
    assert!(o.status.success(), "{}", text(&o));
    let assets = json_out(&o);
    database(&assets, "sales");
    for f in ["catalog.db", "catalog.db-wal"] {
        let kept = std::fs::read(cli.dir.path().join(f)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&kept).contains("sql-test-token"),
            "the token is never kept ({f})"
        );
    }
    assert!(!text(&o).contains("sql-test-token"), "nor shown");

    // an audience of anything but Azure SQL is refused before anything is sent or kept
    let signed_in = || {
        std::fs::read_to_string(dir.join("state/logins.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    let before = signed_in();
    let o = run(
        &cli,
        &[
            "plugins",
            "sql-server",
            "add",
            "sql02.test.lan",
            "--entra",
            "--audience",
            "https://management.azure.com/.default",
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is not an audience of Azure SQL"),
        "{}",
        text(&o)
    );
    assert_eq!(signed_in(), before, "the refused add signed in nowhere");
    assert!(
        !cli.ok(None, &["plugins", "sql-server", "list"])
            .contains("sql02")
    );
}
