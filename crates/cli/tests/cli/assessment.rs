//! `rehydra assess` end to end, as a consultant runs it: a read-only sweep of a cluster
//! (the stand-in node, `support/fake_node.py`) and its key vaults (the Key Vault
//! stand-in) with no repository, then joined with one; the report written as JSON, CSV,
//! HTML and PDF, the HTML opened in headless Chromium (a screenshot of each section), the
//! PDF turned into page images with `pdftoppm`; nothing secret in any of them; two
//! assessments compared.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Cli, Node, StandIn, json_out};

pub(crate) const TVM: &str = "7c6b5a49-3827-4165-9e0d-1f2a3b4c5d6e";
pub(crate) const SQL: &str = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
const SUB_A: &str = "6b2f9d1e-0000-4000-8000-000000000001";
const SUB_B: &str = "6b2f9d1e-0000-4000-8000-000000000002";

/// What must never be in a report: the Key Vault stand-in's secret values and the
/// stand-in `az`'s tokens.
const SECRETS: [&str; 7] = [
    "admin-pw-1",
    "admin-pw-3",
    "lcm-pw",
    "Password=x",
    "db-2",
    "PFX-ONE",
    "test-token",
];

pub(crate) fn vm(name: &str, id: &str, tpm: bool, size_gib: u64, used_gib: u64) -> Value {
    let path = format!("C:\\ClusterStorage\\Volume1\\{name}");
    json!({
        "Name": name, "Id": id.to_ascii_uppercase(), "State": "Running", "Generation": 2,
        "ProcessorCount": 4, "MemoryStartup": 8_589_934_592u64, "ComputerName": "HV01", "OwnerNode": "HV01",
        "IsClustered": true, "Path": path,
        "HardDrives": [{ "Path": format!("{path}\\Virtual Hard Disks\\{name}.vhdx"), "ControllerType": 1,
            "ControllerNumber": 0, "ControllerLocation": 0, "Size": size_gib << 30, "FileSize": used_gib << 30 }],
        "NetworkAdapters": [], "Checkpoints": 0, "TpmEnabled": tpm
    })
}

fn assess(cli: &Cli, node: &Node, repo: bool, args: &[&str]) -> std::process::Output {
    let mut c = cli.cmd(Some(&node.bin));
    if !repo {
        c.env_remove("REHYDRA_REPOSITORY");
    }
    c.arg("assess").args(args).output().unwrap()
}

pub(crate) fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// How many of `found` start with `prefix`.
fn count(found: &[String], prefix: &str) -> usize {
    found.iter().filter(|f| f.starts_with(prefix)).count()
}

pub(crate) fn ids(a: &Value) -> Vec<String> {
    a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh installs it)"));
    assert!(o.status.success(), "{program} {args:?}: {}", text(&o));
    o
}

/// Open the report in headless Chromium, one screenshot per section
/// (`report.html#only-<section>` shows it alone); each shows something of its own.
fn screenshots(report: &Path, dir: &Path) {
    let url = format!("file://{}", report.display());
    let profile = dir.join("chromium-profile");
    let mut seen = std::collections::HashSet::new();
    for section in rehydra_api::assessment::html::SECTIONS {
        let png = dir.join(format!("{section}.png"));
        run(
            "chromium",
            &[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                &format!("--user-data-dir={}", profile.display()),
                "--window-size=1200,900",
                &format!("--screenshot={}", png.display()),
                &format!("{url}#only-{section}"),
            ],
        );
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 4000,
            "{section}: {} bytes",
            bytes.len()
        );
        assert!(
            seen.insert(bytes.clone()),
            "the screenshot of {section} is the same as another section's"
        );
    }
}

#[test]
#[allow(clippy::too_many_lines)]
fn a_consultant_sweeps_an_estate_read_only_and_hands_over_a_report() {
    let cli = Cli::new(&[
        "hyperv-vm",
        "tvm-keys",
        "keyvault",
        "fixture",
        "cluster-files",
    ]);
    let d = cli.dir.path().to_path_buf();
    let node = Node::new(
        &d.join("node"),
        &json!({
            "vms": [vm("tvm01", TVM, true, 64, 20), vm("sql01", SQL, false, 128, 40)],
            "switches": ["ConvergedSwitch(compute)"], "keys": [TVM],
            // the cluster as Get-ClusterNode, Get-ClusterSharedVolume and Get-StoragePool
            // see it: a second node nobody asked, a volume nearly full, a degraded pool
            "facts": {
                "Computer": "HV01", "Os": "Microsoft Azure Stack HCI", "Version": "10.0.25398", "Cluster": "hci-a",
                "Registration": "Registered", "Connection": "Connected",
                "Nodes": [{"Name": "HV01", "State": "Up"}, {"Name": "HV02", "State": "Up"}],
                "Volumes": [{"Name": "Cluster Virtual Disk (Volume1)", "Path": "C:\\ClusterStorage\\Volume1",
                             "Size": 2u64 << 40, "Free": 40u64 << 30}],
                "Pools": {"Name": "SU1_Storagepool", "Health": "Warning", "Size": 8u64 << 40, "Allocated": 6u64 << 40}
            },
        }),
    );
    let kv = StandIn::start(
        "keyvault_standin.py",
        &d.join("kv"),
        &[],
        &crate::keyvault::estate(),
    );
    let kv_arm = kv.url("arm");
    for p in ["hyperv-vm", "tvm-keys"] {
        cli.ok(None, &["plugins", "grant", p, "command:powershell@local"]);
    }
    crate::keyvault::reach(&cli, &kv);
    // the fixture plugin tries to write a file where it is allowed to: the sweep refuses
    let canary = d.join("written-by-a-sweep");
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "fixture",
            &format!("files-write:{}", d.display()),
        ],
    );
    let subs = format!("keyvault:subscriptions={SUB_A},{SUB_B}");
    let kv_at = format!("keyvault:arm={kv_arm}");
    let canary_at = format!("fixture:path={}", canary.display());
    let scope: Vec<&str> = vec![
        "--set",
        "hyperv-vm:cluster=hci-a",
        "--set",
        "hyperv-vm:nodes=local",
        "--set",
        "tvm-keys:nodes=local",
        "--set",
        &subs,
        "--set",
        &kv_at,
        "--set",
        "fixture:mode=write",
        "--set",
        &canary_at,
    ];

    // ---- the plan: what would run, with which grants; nothing runs
    let mut args = vec!["--plan-only"];
    args.extend(&scope);
    let o = assess(&cli, &node, false, &args);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("will sweep hyperv-vm") && t.contains("command:powershell@local"),
        "{t}"
    );
    assert!(t.contains("will sweep keyvault"), "{t}");
    assert!(
        t.contains("commands and SQL queries run as granted"),
        "the plan says what the host cannot restrict: {t}"
    );
    assert!(
        t.contains("skips cluster-files") && t.contains("nothing is granted"),
        "{t}"
    );
    assert!(
        node.calls().is_empty() && kv.calls().is_empty(),
        "a plan runs nothing"
    );

    // ---- the sweep, no repository: one command, the four files
    let logo = d.join("logo.png");
    std::fs::write(&logo, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82").unwrap();
    let out1 = d.join("q1");
    let mut args = vec![
        "--json",
        "--out",
        out1.to_str().unwrap(),
        "--pdf",
        "--customer",
        "Contoso Ltd",
        "--consultant",
        "Fabrikam Consulting",
        "--scope",
        "Cluster hci-a and its key vaults",
        "--logo",
        logo.to_str().unwrap(),
    ];
    args.extend(&scope);
    let o = assess(&cli, &node, false, &args);
    assert_eq!(o.status.code(), Some(3), "a plugin failed: {}", text(&o));
    let a1: Value = serde_json::from_slice(&o.stdout).unwrap();
    let found = ids(&a1);
    for want in [
        format!("hyperv.tvm-key:{TVM}"),
        "rehydra.no-repository".to_string(),
        "rehydra.sweep-failed:fixture".to_string(),
        "rehydra.not-swept:cluster-files".to_string(),
    ] {
        assert!(found.contains(&want), "{want} missing: {found:?}");
    }
    assert!(
        found.iter().any(|f| f.starts_with("keyvault.expiring:")),
        "{found:?}"
    );
    // the cluster's facts, from one node
    for want in [
        "hyperv.volume-space:cluster/hci-a",
        "hyperv.pool-health:cluster/hci-a",
        "hyperv.nodes-not-listed:cluster/hci-a",
    ] {
        assert!(found.iter().any(|f| f == want), "{want} missing: {found:?}");
    }
    let cluster = a1["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "cluster/hci-a")
        .unwrap();
    assert!(
        cluster["facts"].to_string().contains("HV02 (Up)")
            && cluster["facts"].to_string().contains("10.0.25398"),
        "{cluster}"
    );
    let failed = a1["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == "fixture")
        .unwrap();
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("this call only reads"),
        "{failed}"
    );
    assert!(!canary.exists(), "the sweep wrote");
    assert!(
        kv.calls().iter().all(|c| c.starts_with("GET ")),
        "the sweep only reads Key Vault: {:?}",
        kv.calls()
    );
    assert_eq!(
        a1["summary"]["coverage"],
        json!({"protected": 0, "stale": 0, "unprotected": 0,
            "unknown": a1["assets"].as_array().unwrap().iter().filter(|r| r["status"] != "container").count()})
    );
    assert_eq!(
        a1["assets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"] == TVM)
            .count(),
        1,
        "tvm-keys and hyperv-vm both report tvm01: one row"
    );
    let vm_row = |a: &Value, id: &str| {
        a["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    let tvm = vm_row(&a1, TVM);
    assert_eq!(tvm["name"], "tvm01", "VMs by name, not only their GUID");
    assert_eq!(tvm["group"], "hci-a");
    assert_eq!(tvm["size_mib"], 20 * 1024, "Get-VHD's file size");
    assert_eq!(tvm["status"], "unknown");
    assert_eq!(a1["sizing"]["total_mib"], 60 * 1024);
    assert_eq!(a1["labels"]["customer"], "Contoso Ltd");

    // the files: no secret in any, the CSV one row per finding
    let names = [
        "assessment.json",
        "findings.csv",
        "report.html",
        "report.pdf",
    ];
    for n in names {
        let bytes = std::fs::read(out1.join(n)).unwrap();
        let s = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            assert!(!s.contains(secret), "{n} holds {secret}");
        }
    }
    let csv = std::fs::read_to_string(out1.join("findings.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + a1["findings"].as_array().unwrap().len()
    );
    // the PDF: readable text of the report, pages as images
    let pdf = out1.join("report.pdf");
    let pdf_text =
        String::from_utf8(run("pdftotext", &[pdf.to_str().unwrap(), "-"]).stdout).unwrap();
    for want in [
        "Executive summary",
        "Contoso Ltd",
        "Fabrikam Consulting",
        "Trusted launch VM",
        "tvm01",
        "SU1_Storagepool",
    ] {
        assert!(pdf_text.contains(want), "the PDF lacks {want}");
    }
    for secret in SECRETS {
        assert!(!pdf_text.contains(secret), "the PDF holds {secret}");
    }
    let pages = d.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    run(
        "pdftoppm",
        &[
            "-r",
            "50",
            "-png",
            pdf.to_str().unwrap(),
            pages.join("page").to_str().unwrap(),
        ],
    );
    let n = std::fs::read_dir(&pages).unwrap().count();
    assert!(n >= 2, "{n} page(s)");
    screenshots(&out1.join("report.html"), &d.join("shots"));
    // to look at them: REHYDRA_KEEP_REPORT=<folder>
    if let Some(keep) = std::env::var_os("REHYDRA_KEEP_REPORT") {
        let keep = Path::new(&keep);
        for (from, to) in [
            (&out1, "report"),
            (&d.join("shots"), "shots"),
            (&pages, "pages"),
        ] {
            std::fs::create_dir_all(keep.join(to)).unwrap();
            for e in std::fs::read_dir(from).unwrap().flatten() {
                if e.path().is_file() {
                    std::fs::copy(e.path(), keep.join(to).join(e.file_name())).unwrap();
                }
            }
        }
    }
    // an existing report is not replaced without --overwrite (refused before the sweep)
    let before = std::fs::read(out1.join("assessment.json")).unwrap();
    node.clear_calls();
    let o = assess(
        &cli,
        &node,
        false,
        &["--out", out1.to_str().unwrap(), "--plugin", "hyperv-vm"],
    );
    assert_eq!(o.status.code(), Some(13), "{}", text(&o));
    assert!(text(&o).contains("--overwrite"), "{}", text(&o));
    assert_eq!(std::fs::read(out1.join("assessment.json")).unwrap(), before);
    assert!(node.calls().is_empty(), "refused before anything ran");

    // ---- with the repository: one vault backed up, the other not
    cli.init_repo();
    let vault_a = format!(
        "/subscriptions/{SUB_A}/resourceGroups/rg-hci/providers/Microsoft.KeyVault/vaults/hci-a-kv"
    );
    let vault_b = format!(
        "/subscriptions/{SUB_A}/resourceGroups/rg-apps/providers/Microsoft.KeyVault/vaults/apps-kv"
    );
    let arm = format!("arm={kv_arm}");
    // someone copied the cluster's volumes as files: a folder backup of ClusterStorage
    let csv_copy = d.join("mnt/hv01-c/ClusterStorage");
    std::fs::create_dir_all(csv_copy.join("Volume1")).unwrap();
    std::fs::write(csv_copy.join("Volume1/vm01.vhdx"), b"disk").unwrap();
    cli.ok(None, &["backup", csv_copy.to_str().unwrap()]);
    let back_up = |vault: &str| {
        let o = cli.run(
            None,
            &[
                "plugins", "run", "keyvault", "backup", "--asset", vault, "--set", &arm,
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    back_up(&vault_a);
    let sweep = |out: &Path| {
        let mut args = vec![
            "--json",
            "--out",
            out.to_str().unwrap(),
            "--plugin",
            "hyperv-vm",
            "--plugin",
            "keyvault",
        ];
        args.extend(["--plugin", "tvm-keys"]);
        args.extend(&scope[..10]);
        let o = assess(&cli, &node, true, &args);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let a2 = sweep(&d.join("q2"));
    let found = ids(&a2);
    for want in [
        format!("rehydra.tvm-key-missing:{TVM}"),
        format!("rehydra.unprotected:{SQL}"),
        format!("rehydra.unprotected:{vault_b}"),
        "rehydra.no-restore-test".into(),
        "rehydra.no-offsite-copy".into(),
        format!("rehydra.clusterstorage-whole:{}", csv_copy.display()),
    ] {
        assert!(found.contains(&want), "{want} missing: {found:?}");
    }
    assert_eq!(
        count(&found, "rehydra.repository-not-immutable:"),
        1,
        "{found:?}"
    );
    assert!(
        !found.iter().any(|f| f.starts_with("hyperv.tvm-key:")
            || f == "rehydra.no-repository"
            || f.starts_with(&format!("rehydra.unprotected:{vault_a}"))),
        "judged by the repository instead: {found:?}"
    );
    assert_eq!(a2["findings"][0]["severity"], "critical", "worst first");
    assert_eq!(
        a2["summary"]["top_actions"][0]["rule"],
        "rehydra.tvm-key-missing"
    );
    assert_eq!(vm_row(&a2, &vault_a)["status"], "protected");
    assert_eq!(a2["repositories"].as_array().unwrap().len(), 1);
    assert!(a2["sizing"]["reduction_measured"].as_bool().unwrap());

    // ---- next quarter: the second vault is backed up too; the diff says what improved
    back_up(&vault_b);
    let a3 = sweep(&d.join("q3"));
    // ---- an offsite copy of the repository, joined too: the copy counts
    let offsite = d.join("offsite");
    let mut init = cli.cmd(None);
    init.env("REHYDRA_REPOSITORY", &offsite).args([
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
    assert!(init.output().unwrap().status.success());
    let mut copy = cli.cmd(None);
    copy.env("REHYDRA_COPY_PASSWORD", "pw")
        .args(["copy", "--to", offsite.to_str().unwrap()]);
    let o = copy.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut c = cli.cmd(Some(&node.bin));
    c.env("REHYDRA_COPY_PASSWORD", "pw").args([
        "--json",
        "assess",
        "--plugin",
        "keyvault",
        "--join",
        offsite.to_str().unwrap(),
        "--set",
        &subs,
        "--set",
        &kv_at,
    ]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let a4: Value = serde_json::from_slice(&o.stdout).unwrap();
    let found = ids(&a4);
    assert!(
        !found.contains(&"rehydra.no-offsite-copy".to_string()),
        "{found:?}"
    );
    assert_eq!(
        count(&found, "rehydra.repository-not-immutable:"),
        2,
        "{found:?}"
    );
    assert_eq!(a4["repositories"].as_array().unwrap().len(), 2);
    assert_eq!(
        vm_row(&a4, &vault_a)["restore_points"],
        2,
        "the vault's point and its copy"
    );

    let o = cli.run(
        None,
        &[
            "--json",
            "assess",
            "diff",
            d.join("q2/assessment.json").to_str().unwrap(),
            d.join("q3/assessment.json").to_str().unwrap(),
        ],
    );
    let diff = json_out(&o);
    let resolved: Vec<&str> = diff["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        resolved.contains(&format!("rehydra.unprotected:{vault_b}").as_str()),
        "{diff}"
    );
    assert!(diff["new"].as_array().unwrap().is_empty(), "{diff}");
    assert!(
        a3["summary"]["score"].as_u64() >= a2["summary"]["score"].as_u64(),
        "{} -> {}",
        a2["summary"]["score"],
        a3["summary"]["score"]
    );
    let o = cli.run(
        None,
        &[
            "assess",
            "diff",
            d.join("q2/assessment.json").to_str().unwrap(),
            out1.join("findings.csv").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not an assessment"), "{}", text(&o));
}

/// The same sweep over an AKS cluster (the Kubernetes API stand-in) and a SQL Server
/// instance (the TDS stand-in): what their plugins find is in the assessment, and what
/// each sent only read: GETs to the API server, SELECTs to SQL Server (the host cannot
/// restrict SQL to reads; this shows the first-party discovery keeps to them).
#[test]
fn a_sweep_reads_kubernetes_and_sql_server_too() {
    use crate::kubernetes::{AKS_AUDIENCE, Cluster, cluster_a};
    use crate::sql_server::StandIn as Sql;
    let cli = Cli::new(&["kubernetes", "sql-server"]);
    let d = cli.dir.path().to_path_buf();
    let kube = Cluster::start(&d.join("kube"), "127.0.0.3", &cluster_a());
    cli.ok(
        None,
        &["azure", "audience", "add", "127.0.0.3", AKS_AUDIENCE],
    );
    cli.ok(None, &["plugins", "grant", "kubernetes", &kube.grant()]);
    let tls = d.join("sql/tls");
    crate::support::certificates(&tls, "sql01.test.lan");
    let sql = Sql::start(&d.join("sql"), &tls);
    let server = sql.server();
    // no repository: `-r` left empty
    let sql_cli = |args: &[&str]| {
        let mut all = vec!["--repo="];
        all.extend(args);
        let o = crate::sql_server::run(&cli, &all);
        (o.status.code(), text(&o), o.stdout)
    };
    let ca = tls.join("ca.pem");
    let (code, t, _) = sql_cli(&[
        "plugins",
        "sql-server",
        "add",
        &server,
        "--login",
        "rehydra",
        "--password-env",
        "SQL_PW",
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{t}");
    cli.ok(
        None,
        &["plugins", "grant", "sql-server", &format!("sql:{server}")],
    );
    let before = sql.statements().len();
    let kube_at = format!("kubernetes:kube={}", kube.url);
    let servers = format!("sql-server:servers={server}");
    let (code, t, out) = sql_cli(&[
        "--json",
        "assess",
        "--set",
        &kube_at,
        "--set",
        "kubernetes:cluster=aks-a",
        "--set",
        &servers,
    ]);
    assert_eq!(code, Some(0), "{t}");
    let a: Value = serde_json::from_slice(&out).unwrap();
    let found = ids(&a);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("kubernetes.volume-data:")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.starts_with("sql.simple-recovery:")),
        "{found:?}"
    );
    let kinds: Vec<&str> = a["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"namespace") && kinds.contains(&"database"),
        "{kinds:?}"
    );
    assert!(
        a["assets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "database" && r["size_mib"] == 20),
        "the databases' sizes are in the sizing"
    );
    let calls = kube.calls();
    assert!(
        !calls.is_empty() && calls.iter().all(|c| c.starts_with("GET ")),
        "{calls:?}"
    );
    let sent: Vec<String> = sql.statements()[before..]
        .iter()
        .map(|s| s["sql"].as_str().unwrap().trim_start().to_ascii_uppercase())
        .collect();
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|s| s.starts_with("SELECT") || s.starts_with("WITH") || s.starts_with("SET ")),
        "{sent:?}"
    );
}
