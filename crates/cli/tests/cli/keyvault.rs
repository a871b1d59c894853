//! The keyvault plugin end to end through the CLI, against the Key Vault stand-in
//! (`support/keyvault_standin.py`: the official 7.5 shapes, the bearer challenge, paging,
//! 429s, 409s, the subscription/geography rule of backup blobs).

use serde_json::{Value, json};

use crate::support::{self, Cli, StandIn, json_out};

pub(crate) const SUB_A: &str = "6b2f9d1e-0000-4000-8000-000000000001";
const SUB_B: &str = "6b2f9d1e-0000-4000-8000-000000000002";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn version(id: &str, value: &str, created: i64, extra: Value) -> Value {
    let mut v = json!({"id": id, "value": value, "attributes": {"enabled": true, "created": created, "updated": created}, "tags": {}});
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            if k == "attributes" {
                for (ak, av) in x.as_object().unwrap() {
                    m["attributes"][ak] = av.clone();
                }
            } else {
                m.insert(k.clone(), x.clone());
            }
        }
    }
    v
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Two vaults of an Azure Local deployment in subscription A (westus), an empty one in
/// subscription B (northeurope) to rebuild into.
pub(crate) fn estate() -> Value {
    let soon = now() + 20 * 86_400;
    let cert_versions = json!([
        {"id": "c0000000000000000000000000000001", "x5t": "t1", "cer": "MIIC1", "attributes": {"enabled": true, "created": 1_700_000_000, "updated": 1_700_000_000, "exp": now() + 400 * 86_400}},
        {"id": "c0000000000000000000000000000002", "x5t": "t2", "cer": "MIIC2", "attributes": {"enabled": true, "created": 1_700_000_100, "updated": 1_700_000_100, "exp": now() + 700 * 86_400}}
    ]);
    json!({
        "tenant": TENANT,
        "throttle_every": 9,
        "vaults": {
            "hci-a-kv": {
                "subscription": SUB_A, "resourceGroup": "rg-hci", "location": "westus", "geography": "US",
                "softDelete": true, "purgeProtection": false,
                "secrets": {
                    "LocalAdminCredential": {"versions": [
                        version("a0000000000000000000000000000001", "admin-pw-1", 1_690_000_000, json!({})),
                        version("a0000000000000000000000000000002", "admin-pw-2", 1_690_000_100, json!({"contentType": "text/plain"})),
                        version("a0000000000000000000000000000003", "admin-pw-3", 1_690_000_200, json!({"attributes": {"exp": soon}, "tags": {"rotated": "yes"}}))
                    ]},
                    "AzureStackLCMUserCredential": {"versions": [
                        version("b0000000000000000000000000000001", "lcm-old", 1_690_000_000, json!({"attributes": {"enabled": false}})),
                        version("b0000000000000000000000000000002", "lcm-pw", 1_690_000_300, json!({}))
                    ]},
                    "app-conn": {"versions": [
                        version("d0000000000000000000000000000001", "Server=sql;Password=x", 1_690_000_400, json!({"contentType": "text/plain", "tags": {"app": "erp"}}))
                    ]},
                    "web-cert": {"managed": true, "versions": [
                        {"id": "c0000000000000000000000000000001", "value": "PFX-ONE", "contentType": "application/x-pkcs12", "attributes": {"enabled": true, "created": 1_700_000_000, "updated": 1_700_000_000}},
                        {"id": "c0000000000000000000000000000002", "value": "PFX-TWO", "contentType": "application/x-pkcs12", "attributes": {"enabled": true, "created": 1_700_000_100, "updated": 1_700_000_100}}
                    ]}
                },
                "keys": {"data-key": {"versions": [
                    {"id": "e0000000000000000000000000000001", "kty": "RSA-HSM", "attributes": {"enabled": true, "created": 1_690_000_000, "updated": 1_690_000_000}}
                ]}},
                "certificates": {"web-cert": {"versions": cert_versions, "policy": {"key_props": {"exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": false}, "secret_props": {"contentType": "application/x-pkcs12"}, "issuer": {"name": "Self"}}}}
            },
            "apps-kv": {
                "subscription": SUB_A, "resourceGroup": "rg-apps", "location": "westus2", "geography": "US",
                "softDelete": true, "purgeProtection": true,
                "secrets": {"db-password": {"versions": [
                    version("f0000000000000000000000000000001", "db-1", 1_690_000_000, json!({})),
                    version("f0000000000000000000000000000002", "db-2", 1_690_000_100, json!({}))
                ]}}
            },
            "dr-kv": {
                "subscription": SUB_B, "resourceGroup": "rg-dr", "location": "northeurope", "geography": "Europe",
                "softDelete": true, "purgeProtection": true
            }
        }
    })
}

/// Let the keyvault plugin reach the stand-in's ARM and vaults.
fn grant(cli: &Cli, kv: &StandIn) {
    let (kv_arm, kv_vault) = (kv.url("arm"), kv.url("vault"));
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "keyvault",
            "engine",
            &format!("http:{}", kv_arm.trim_start_matches("http://")),
            &format!("http:{}", kv_vault.trim_start_matches("http://")),
        ],
    );
}

/// [`grant`], and give the vaults' host Key Vault's audience (as `*.vault.azure.net` has
/// it).
pub(crate) fn reach(cli: &Cli, kv: &StandIn) {
    grant(cli, kv);
    vault_audience(cli);
}

/// Give the stand-in vaults' host Key Vault's audience.
fn vault_audience(cli: &Cli) {
    cli.ok(
        None,
        &[
            "azure",
            "audience",
            "add",
            "127.0.0.2",
            "https://vault.azure.net/.default",
        ],
    );
}

pub(crate) fn values(st: &Value, vault: &str, secret: &str) -> Vec<String> {
    st["vaults"][vault]["secrets"][secret]["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[allow(clippy::too_many_lines)]
fn key_vaults_backed_up_and_restored_in_place_and_elsewhere() {
    if !support::plugins_built().join("keyvault.wasm").is_file() {
        panic!("build the plugins first: cargo xtask plugins");
    }
    let cli = Cli::new(&["keyvault"]);
    cli.init_repo();
    let kv = StandIn::start(
        "keyvault_standin.py",
        &cli.dir.path().join("kv"),
        &[],
        &estate(),
    );
    let arm = format!("arm={}", kv.url("arm"));
    let vid = |sub: &str, rg: &str, name: &str| {
        format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"
        )
    };
    let hci = vid(SUB_A, "rg-hci", "hci-a-kv");
    let apps = vid(SUB_A, "rg-apps", "apps-kv");
    let dr = vid(SUB_B, "rg-dr", "dr-kv");
    grant(&cli, &kv);
    let subs = format!("subscriptions={SUB_A},{SUB_B}");
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "keyvault"];
        a.extend(args);
        cli.run(None, &a)
    };

    // ---- no Key Vault audience for the stand-in's host yet: the bearer challenge comes
    // back and discovery says which tenant and audience the vault wants
    let assets = json_out(&run(&["discover", "--set", &subs, "--set", &arm]));
    let vault = |assets: &Value, name: &str| {
        assets
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "vault" && a["name"] == name)
            .unwrap_or_else(|| panic!("no vault {name}: {assets}"))
            .clone()
    };
    let prop = |a: &Value, n: &str| {
        a["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    let a = vault(&assets, "hci-a-kv");
    assert_eq!(prop(&a, "reachable").as_deref(), Some("false"), "{a}");
    let why = prop(&a, "unreachable-reason").unwrap();
    assert!(
        why.contains(TENANT) && why.contains("https://vault.azure.net/.default"),
        "{why}"
    );
    assert!(
        kv.calls()
            .iter()
            .any(|c| c.contains(" vault ") && c.ends_with(" 401"))
    );
    vault_audience(&cli);

    // ---- discover: three vaults over two ARM pages, objects with versions, expiry
    let assets = json_out(&run(&["discover", "--set", &subs, "--set", &arm]));
    let a = vault(&assets, "hci-a-kv");
    assert_eq!(prop(&a, "reachable").as_deref(), Some("true"), "{a}");
    assert_eq!(
        prop(&a, "deployment").as_deref(),
        Some("true"),
        "the Azure Local deployment vault is flagged"
    );
    assert_eq!(
        prop(&vault(&assets, "apps-kv"), "deployment").as_deref(),
        Some("false")
    );
    assert_eq!(
        prop(&vault(&assets, "dr-kv"), "subscription").as_deref(),
        Some(SUB_B)
    );
    let admin = assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "LocalAdminCredential")
        .unwrap();
    assert_eq!(admin["parent"], hci.as_str());
    assert_eq!(
        prop(admin, "versions").as_deref(),
        Some("3"),
        "three versions over two pages"
    );
    assert!(
        prop(admin, "expires-in-days")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            <= 20
    );
    let key = assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "data-key")
        .unwrap();
    assert_eq!(prop(key, "key-type").as_deref(), Some("RSA-HSM"));
    let cert = assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "certificate" && a["name"] == "web-cert")
        .unwrap();
    assert_eq!(prop(cert, "issuer").as_deref(), Some("Self"), "{cert}");
    assert_eq!(prop(cert, "exportable").as_deref(), Some("true"));
    assert!(
        kv.calls().iter().any(|c| c.ends_with(" 429")),
        "the stand-in throttled"
    );

    // ---- assess: the expiring deployment secret, the vault without purge protection
    let findings = json_out(&run(&["assess", "--set", &subs, "--set", &arm]));
    let f = findings.to_string();
    let expiring = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "keyvault.expiring")
        .unwrap_or_else(|| panic!("{f}"));
    assert!(
        expiring["title"]
            .as_str()
            .unwrap()
            .contains("LocalAdminCredential"),
        "{expiring}"
    );
    assert_eq!(
        expiring["severity"], "high",
        "a deployment secret expiring is high"
    );
    assert!(f.contains("keyvault.no-purge-protection"), "{f}");

    // ---- back up both vaults with portable copies
    let backup = |id: &str, portable: bool| {
        let p = format!("portable={portable}");
        json_out(&run(&["backup", "--asset", id, "--set", &arm, "--set", &p]))
    };
    let first = backup(&hci, true);
    let snap_hci = first.get("restore_point").unwrap_or(&first)["id"]
        .as_str()
        .unwrap()
        .to_string();
    backup(&apps, true);
    let posts = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| c.starts_with("POST vault") && c.ends_with("/backup 200"))
            .count()
    };
    // an object is its own item; the backup op ran for each non-managed object
    assert!(posts(&kv.calls()) >= 5, "{:?}", kv.calls());

    // ---- again, unchanged: nothing asked of the Backup operation
    kv.clear_calls();
    backup(&hci, true);
    assert_eq!(
        posts(&kv.calls()),
        0,
        "unchanged objects are carried forward: {:?}",
        kv.calls()
    );
    // a new version of one secret: only that one is backed up again
    kv.edit(|s| {
        s["vaults"]["hci-a-kv"]["secrets"]["app-conn"]["versions"]
            .as_array_mut()
            .unwrap()
            .push(version(
                "d0000000000000000000000000000002",
                "Server=sql;Password=y",
                1_690_000_500,
                json!({"contentType": "text/plain"}),
            ));
    });
    kv.clear_calls();
    let latest = backup(&hci, true);
    let snap_latest = latest.get("restore_point").unwrap_or(&latest)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(posts(&kv.calls()), 1, "{:?}", kv.calls());

    // ---- a secret deleted and purged in the vault: restored from the point, all versions
    kv.edit(|s| {
        s["vaults"]["hci-a-kv"]["secrets"]
            .as_object_mut()
            .unwrap()
            .remove("app-conn");
    });
    let one = |snap: &str, extra: &[&str]| {
        let mut a = vec!["restore", snap, "--target", "-", "--set", &arm];
        a.extend(extra);
        run(&a)
    };
    let plan = json_out(&one(
        &snap_latest,
        &["--set", "object=secrets/app-conn", "--plan-only"],
    ));
    assert!(plan.to_string().contains("Restore operation"), "{plan}");
    assert!(
        kv.state()["vaults"]["hci-a-kv"]["secrets"]["app-conn"].is_null(),
        "a plan writes nothing"
    );
    json_out(&one(&snap_latest, &["--set", "object=secrets/app-conn"]));
    assert_eq!(
        values(&kv.state(), "hci-a-kv", "app-conn"),
        ["Server=sql;Password=x", "Server=sql;Password=y"]
    );

    // ---- soft-deleted: recovered, and the plan says so; live objects are kept
    kv.edit(|s| {
        let o = s["vaults"]["hci-a-kv"]["secrets"]
            .as_object_mut()
            .unwrap()
            .remove("AzureStackLCMUserCredential")
            .unwrap();
        let mut o = o;
        o["deletedDate"] = json!(now());
        s["vaults"]["hci-a-kv"]["deleted"] = json!({"secrets": {"AzureStackLCMUserCredential": o}});
    });
    let out = json_out(&one(&snap_latest, &[]));
    let text = out.to_string();
    assert!(
        text.contains("soft-deleted") && text.contains("already exists"),
        "{text}"
    );
    let st = kv.state();
    assert_eq!(
        values(&st, "hci-a-kv", "AzureStackLCMUserCredential"),
        ["lcm-old", "lcm-pw"]
    );
    assert!(
        st["vaults"]["hci-a-kv"]["deleted"]["secrets"]
            .as_object()
            .unwrap()
            .is_empty()
    );

    // ---- soft-deleted, with consent to purge: purged, then restored from the point
    kv.edit(|s| {
        let mut o = s["vaults"]["hci-a-kv"]["secrets"]
            .as_object_mut()
            .unwrap()
            .remove("app-conn")
            .unwrap();
        o["deletedDate"] = json!(now());
        o["versions"].as_array_mut().unwrap().truncate(1);
        s["vaults"]["hci-a-kv"]["deleted"]["secrets"]["app-conn"] = o;
    });
    let plan = json_out(&one(
        &snap_latest,
        &[
            "--set",
            "object=secrets/app-conn",
            "--set",
            "purge=true",
            "--plan-only",
        ],
    ));
    assert!(plan.to_string().contains("PURGE"), "{plan}");
    json_out(&one(
        &snap_latest,
        &["--set", "object=secrets/app-conn", "--set", "purge=true"],
    ));
    let st = kv.state();
    assert_eq!(
        values(&st, "hci-a-kv", "app-conn"),
        ["Server=sql;Password=x", "Server=sql;Password=y"]
    );
    assert!(st["vaults"]["hci-a-kv"]["deleted"]["secrets"]["app-conn"].is_null());

    // ---- an object the identity may not back up: reported, the others saved (exit 3)
    kv.edit(|s| s["deny_backup"] = json!(["keys/data-key"]));
    kv.edit(|s| {
        s["vaults"]["hci-a-kv"]["keys"]["data-key"]["versions"][0]["attributes"]["updated"] =
            json!(1_690_000_999)
    });
    let o = run(&["backup", "--asset", &hci, "--set", &arm]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "saved with warnings: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("key data-key: not backed up") && text.contains("ForbiddenByRbac"),
        "{text}"
    );
    kv.edit(|s| s["deny_backup"] = json!([]));
    // the inventory says so: the key is only in older restore points of its vault
    let inv = json_out(&cli.run(
        None,
        &[
            "--json",
            "inventory",
            "--discover",
            "keyvault",
            "--set",
            &subs,
            "--set",
            &arm,
        ],
    ));
    let key = inv
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == format!("{hci}/keys/data-key"))
        .unwrap_or_else(|| panic!("{inv}"));
    assert!(
        key["flags"]
            .to_string()
            .contains("not-in-newest-restore-point"),
        "{key}"
    );

    // ---- into another subscription and region: the Backup operation cannot go there
    let to_dr = format!("vault={dr}");
    let o = one(&snap_latest, &["--set", &to_dr, "--set", "mode=backup"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("use mode=portable"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // portable: the HSM key cannot move, named before anything is written
    kv.clear_calls();
    let o = one(&snap_latest, &["--set", &to_dr]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && e.contains("key data-key (RSA-HSM) cannot leave Key Vault"),
        "{e}"
    );
    assert!(
        !kv.calls()
            .iter()
            .any(|c| c.starts_with("PUT") || c.starts_with("POST")),
        "nothing written: {:?}",
        kv.calls()
    );
    // leaving what cannot move out: secrets with every readable version in order, the certificate imported
    json_out(&one(
        &snap_latest,
        &["--set", &to_dr, "--set", "unportable=leave-out"],
    ));
    let st = kv.state();
    assert_eq!(
        values(&st, "dr-kv", "LocalAdminCredential"),
        ["admin-pw-1", "admin-pw-2", "admin-pw-3"]
    );
    assert_eq!(
        values(&st, "dr-kv", "AzureStackLCMUserCredential"),
        ["lcm-pw"],
        "a disabled version has no readable value"
    );
    assert_eq!(
        st["vaults"]["dr-kv"]["secrets"]["LocalAdminCredential"]["versions"][2]["tags"]["rotated"],
        "yes"
    );
    assert_eq!(
        st["vaults"]["dr-kv"]["certificates"]["web-cert"]["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(values(&st, "dr-kv", "web-cert"), ["PFX-ONE", "PFX-TWO"]);
    assert!(
        st["vaults"]["dr-kv"]["keys"].is_null()
            || st["vaults"]["dr-kv"]["keys"]
                .as_object()
                .unwrap()
                .is_empty()
    );

    // verify checks the vault it is pointed at: dr-kv holds every portable value, and
    // lacks the key that could not move (and the disabled version that had no value)
    let o = run(&["verify", &snap_latest, "--set", &to_dr, "--set", &arm]);
    assert_eq!(
        o.status.code(),
        Some(14),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        v.contains("key data-key is in the restore point but not in vault dr-kv")
            && v.contains("AzureStackLCMUserCredential has 1 versions in the vault, 2")
            && !v.contains("keyvault.verify.value"),
        "{v}"
    );

    // ---- one version, under another name
    let o = json_out(&one(
        &snap_hci,
        &[
            "--set",
            "object=secrets/LocalAdminCredential",
            "--set",
            "version=a0000000000000000000000000000001",
            "--set",
            "rename=LocalAdminCredential-old",
        ],
    ));
    assert!(o.to_string().contains("re-create version"), "{o}");
    assert_eq!(
        values(&kv.state(), "hci-a-kv", "LocalAdminCredential-old"),
        ["admin-pw-1"]
    );

    // ---- one policy protects every vault the subscriptions have, new ones included
    let disc = [format!("subscriptions={SUB_A}"), arm.clone()];
    let o = cli.run(
        None,
        &[
            "policy",
            "add",
            "all-vaults",
            "--plugin",
            "keyvault",
            "--asset-kind",
            "vault",
            "--discover-set",
            &disc[0],
            "--discover-set",
            &disc[1],
            "--set",
            "portable=true",
            "--set",
            &arm,
            "--keep-last",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli.run(
        None,
        &[
            "policy",
            "add",
            "bad",
            "--plugin",
            "keyvault",
            "--asset-kind",
            "vault",
            "--discover-set",
            "no-such=1",
        ],
    );
    assert!(
        !o.status.success(),
        "a discover setting the plugin does not declare is refused when saved"
    );
    let list = json_out(&cli.run(None, &["--json", "policy", "list"]));
    assert_eq!(list[0]["policy"]["what"]["kind"], "discovered", "{list}");
    let runs = json_out(&cli.run(None, &["--json", "policy", "run", "all-vaults"]));
    let mut assets: Vec<&str> = runs[0]["restore_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["asset"].as_str().unwrap())
        .collect();
    assets.sort_unstable();
    assert_eq!(
        assets,
        [apps.as_str(), hci.as_str()],
        "both vaults of subscription A, not B's: {runs}"
    );

    // ---- verify: equal, then a value changed behind our back
    let v = json_out(&run(&["verify", &snap_latest]));
    assert_eq!(v["ok"], true, "{v}");
    kv.edit(|s| {
        s["vaults"]["hci-a-kv"]["secrets"]["LocalAdminCredential"]["versions"][0]["value"] =
            json!("tampered")
    });
    let o = run(&["verify", &snap_latest]);
    assert_eq!(o.status.code(), Some(14), "a failed verification exits 14");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v.to_string().contains("keyvault.verify.value"), "{v}");
}
