//! A vault of another tenant (a customer's directory reached as a guest, or through Azure
//! Lighthouse): its bearer challenge names that tenant and the host answers it with a
//! token of that tenant (the stand-in `az` signs in there with `--tenant`), for reads and
//! writes alike. A challenge for another audience is not followed, and a tenant the
//! account cannot sign in to is named with Entra's reason.

use crate::keyvault::{SUB_A, estate, reach, values};
use crate::support::{Cli, StandIn, json_out};

const PARTNER: &str = "0a0b0c0d-1111-4222-8333-444455556666";

#[test]
fn a_vault_of_another_tenant_is_reached_with_that_tenants_token() {
    let cli = Cli::new(&["keyvault"]);
    cli.init_repo();
    let mut st = estate();
    st["vaults"]["apps-kv"]["tenant"] = PARTNER.into();
    st["throttle_every"] = 0.into();
    let kv = StandIn::start("keyvault_standin.py", &cli.dir.path().join("kv"), &[], &st);
    let arm = format!("arm={}", kv.url("arm"));
    reach(&cli, &kv);
    let apps = format!(
        "/subscriptions/{SUB_A}/resourceGroups/rg-apps/providers/Microsoft.KeyVault/vaults/apps-kv"
    );
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "keyvault"];
        a.extend(args);
        cli.run(None, &a)
    };
    // ---- not allowed yet: the challenge is handed back, and the plugin names the tenant
    let denied = run(&["backup", "--asset", &apps, "--set", &arm]);
    assert_ne!(denied.status.code(), Some(0));
    let said = String::from_utf8_lossy(&denied.stderr).to_string();
    assert!(
        said.contains(&format!("rehydra azure tenant allow {PARTNER}")),
        "{said}"
    );
    let o = cli.run(None, &["azure", "tenant", "allow", "../x"]);
    assert_eq!(o.status.code(), Some(2), "not a tenant");
    cli.ok(None, &["azure", "tenant", "allow", PARTNER]);
    assert!(cli.ok(None, &["azure", "tenant", "list"]).contains(PARTNER));
    kv.clear_calls();
    let status = |calls: &[String], code: &str| {
        calls
            .iter()
            .filter(|c| c.contains(" vault /apps-kv") && c.ends_with(code))
            .count()
    };

    // ---- backed up: one 401 (the home tenant's token), answered, then that tenant's token
    let o = run(&[
        "backup",
        "--asset",
        &apps,
        "--set",
        &arm,
        "--set",
        "portable=true",
    ]);
    let point = json_out(&o);
    let point = point.get("restore_point").unwrap_or(&point)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let calls = kv.calls();
    assert_eq!(status(&calls, " 401"), 1, "{calls:?}");
    assert!(status(&calls, " 200") >= 3, "{calls:?}");
    assert!(
        calls
            .iter()
            .find(|c| c.contains(" vault "))
            .is_some_and(|c| c.ends_with(" 401")),
        "the first request carried the home tenant's token: {calls:?}"
    );

    // ---- restored into it after the secret was deleted and purged: writes go the same way
    kv.edit(|s| {
        s["vaults"]["apps-kv"]["secrets"]
            .as_object_mut()
            .unwrap()
            .remove("db-password");
    });
    kv.clear_calls();
    json_out(&run(&[
        "restore",
        &point,
        "--target",
        "-",
        "--set",
        &arm,
        "--set",
        "object=secrets/db-password",
    ]));
    assert_eq!(
        values(&kv.state(), "apps-kv", "db-password"),
        ["db-1", "db-2"]
    );
    assert!(
        kv.calls()
            .iter()
            .any(|c| c.starts_with("PUT vault /apps-kv/secrets/db-password") && c.ends_with(" 200"))
            || kv.calls().iter().any(
                |c| c.starts_with("POST vault /apps-kv/secrets/restore") && c.ends_with(" 200")
            ),
        "{:?}",
        kv.calls()
    );

    // ---- a tenant the account cannot sign in to: named, with Entra's reason
    std::fs::write(cli.azbin().join("az-refused"), format!("{PARTNER}\n")).unwrap();
    let o = run(&["backup", "--asset", &apps, "--set", &arm]);
    assert_ne!(o.status.code(), Some(0));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        said.contains(&format!("wants a token of tenant {PARTNER}"))
            && said.contains("AADSTS50020"),
        "{said}"
    );
    std::fs::remove_file(cli.azbin().join("az-refused")).unwrap();

    // ---- a challenge for another audience is never followed: no token of another tenant
    // is asked for, and the plugin says which audience was asked
    kv.edit(|s| {
        s["vaults"]["apps-kv"]["challenge_resource"] = "https://management.azure.com".into()
    });
    kv.clear_calls();
    let o = run(&["backup", "--asset", &apps, "--set", &arm]);
    assert_ne!(o.status.code(), Some(0));
    let said = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("not Key Vault's audience"), "{said}");
    assert_eq!(
        status(&kv.calls(), " 401"),
        1,
        "sent once, not again: {:?}",
        kv.calls()
    );
}
