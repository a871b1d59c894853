use std::collections::HashSet;

use chrono::{Duration, Utc};

use super::*;
use crate::plugins::{Asset, Finding};

fn asset(
    id: &str,
    name: &str,
    kind: &str,
    parent: Option<&str>,
    flags: &[&str],
    mib: Option<u64>,
) -> Asset {
    Asset {
        kind: kind.into(),
        id: id.into(),
        name: name.into(),
        parent: parent.map(Into::into),
        properties: mib
            .map(|m| Property {
                name: "size-mib".into(),
                value: m.to_string(),
            })
            .into_iter()
            .collect(),
        flags: flags.iter().map(|f| (*f).to_string()).collect(),
    }
}

fn finding(rule: &str, severity: &str, asset: &str) -> Finding {
    Finding {
        rule: rule.into(),
        severity: severity.into(),
        asset: Some(asset.into()),
        title: format!("{rule} title"),
        detail: format!("{rule} evidence"),
        recommendation: format!("{rule} fix"),
    }
}

fn estate() -> Vec<Discovery> {
    vec![Discovery {
        plugin: "hyperv-vm".into(),
        assets: vec![
            asset("cluster/c1", "c1", "cluster", None, &[], None),
            asset("node/n1", "n1", "node", Some("cluster/c1"), &[], None),
            asset(
                "tvm",
                "tvm01",
                "vm",
                Some("node/n1"),
                &["trusted-launch"],
                Some(40_960),
            ),
            asset(
                "tvm2",
                "tvm02",
                "vm",
                Some("node/n1"),
                &["trusted-launch"],
                Some(20_480),
            ),
            asset(
                "plain",
                "<script>alert(1)</script>",
                "vm",
                Some("node/n1"),
                &[],
                None,
            ),
        ],
        findings: vec![
            finding("hyperv.tvm-key", "high", "tvm"),
            finding("hyperv.tvm-key", "high", "tvm2"),
            finding("hyperv.checkpoints", "low", "plain"),
        ],
    }]
}

fn point(id: &str, asset: &str, workload: &str, hours_ago: i64) -> crate::RestorePointDto {
    let mut p = crate::RestorePointDto::made(id, asset, workload, hours_ago, Utc::now());
    p.new_bytes = 1 << 30;
    p
}

fn swept() -> Vec<Swept> {
    vec![
        Swept {
            plugin: "hyperv-vm".into(),
            status: "swept".into(),
            detail: String::new(),
            assets: 5,
            findings: 3,
        },
        Swept {
            plugin: "keyvault".into(),
            status: "failed".into(),
            detail: "vault.example: 403 Forbidden".into(),
            assets: 0,
            findings: 0,
        },
    ]
}

fn facts(last_restore_days: Option<i64>, copying: usize) -> RepositoryFacts {
    RepositoryFacts {
        id: "abcd1234".into(),
        full_id: "abcd1234-full".into(),
        location: "/srv/repo".into(),
        kind: "local folder".into(),
        restore_points: 3,
        reduction_ratio: 2.0,
        stored_bytes: 0,
        last_restore: last_restore_days.map(|d| Utc::now() - Duration::days(d)),
        copying_policies: copying,
        policies: 1,
    }
}

fn rules_of(a: &Assessment) -> Vec<&str> {
    a.findings.iter().map(|f| f.id.as_str()).collect()
}

#[test]
fn without_a_repository_nothing_is_called_unprotected_and_plugin_rules_stand() {
    let a = judge(&estate(), swept(), None, &Options::default(), Utc::now());
    let ids = rules_of(&a);
    assert!(
        ids.contains(&"hyperv.tvm-key:tvm") && ids.contains(&"hyperv.tvm-key:tvm2"),
        "{ids:?}"
    );
    assert!(ids.contains(&"rehydra.no-repository"), "{ids:?}");
    assert!(ids.contains(&"rehydra.sweep-failed:keyvault"), "{ids:?}");
    assert!(
        !ids.iter().any(|i| i.starts_with("rehydra.unprotected")),
        "{ids:?}"
    );
    assert_eq!(a.summary.coverage.unknown, 3, "{:?}", a.summary.coverage);
    assert_eq!(a.assets.iter().find(|r| r.id == "tvm").unwrap().group, "c1");
    // worst first
    assert_eq!(a.findings[0].severity, "high");
    assert_eq!(a.sizing.total_mib, 61_440);
    assert_eq!(a.sizing.unsized_assets, 1);
    assert!(!a.sizing.reduction_measured);
}

#[test]
fn a_joined_repository_judges_what_it_can_answer() {
    let joined = Joined {
        // tvm is backed up with its key, tvm2 without; plain has nothing
        points: vec![
            point("p1", "tvm", "hyperv-vm", 2),
            point("p2", "tvm", "tvm-keys", 2),
            point("p3", "tvm2", "hyperv-vm", 50),
        ],
        restored: HashSet::new(),
        repos: vec![facts(Some(90), 0)],
        primary: 0,
    };
    let a = judge(
        &estate(),
        swept(),
        Some(&joined),
        &Options::default(),
        Utc::now(),
    );
    let ids = rules_of(&a);
    assert!(
        !ids.iter().any(|i| i.starts_with("hyperv.tvm-key")),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"rehydra.tvm-key-missing:tvm"),
        "its key is backed up: {ids:?}"
    );
    for want in [
        "rehydra.tvm-key-missing:tvm2",
        "rehydra.rpo-missed:tvm2",
        "rehydra.unprotected:plain",
        "rehydra.no-restore-test",
        "rehydra.no-offsite-copy",
        "rehydra.repository-not-immutable:abcd1234",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    assert_eq!(
        a.findings[0].rule, "rehydra.tvm-key-missing",
        "critical first"
    );
    let c = &a.summary.coverage;
    assert_eq!(
        (c.protected, c.stale, c.unprotected, c.unknown),
        (1, 1, 1, 0)
    );
    assert_eq!(a.summary.top_actions[0].rule, "rehydra.tvm-key-missing");
    assert!(a.summary.top_actions.len() <= 5);
    assert!(
        a.sizing.reduction_measured && a.sizing.change_measured,
        "{:?}",
        a.sizing
    );
    assert_eq!(a.sizing.protected_mib, 61_440);

    // a recent restore and a copy take those findings away
    let joined = Joined {
        repos: vec![facts(Some(3), 1)],
        ..joined
    };
    let b = judge(
        &estate(),
        swept(),
        Some(&joined),
        &Options::default(),
        Utc::now(),
    );
    let ids = rules_of(&b);
    assert!(
        !ids.contains(&"rehydra.no-restore-test") && !ids.contains(&"rehydra.no-offsite-copy"),
        "{ids:?}"
    );
    assert!(b.summary.score > a.summary.score);

    let d = diff::diff(&a, &b);
    let resolved: Vec<&str> = d.resolved.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        resolved,
        ["rehydra.no-offsite-copy", "rehydra.no-restore-test"]
    );
    assert!(d.new.is_empty() && d.changed.is_empty());
    assert_eq!(d.unchanged, b.findings.len());
    assert_eq!(d.score, (a.summary.score, b.summary.score));
}

#[test]
fn score_weighs_rules_not_repetition() {
    let f = |rule: &str, sev: &str, n: usize| {
        (0..n)
            .map(|i| FindingRow {
                id: format!("{rule}:{i}"),
                rule: rule.into(),
                severity: sev.into(),
                source: "x".into(),
                asset: Some(i.to_string()),
                asset_name: None,
                title: String::new(),
                evidence: String::new(),
                recommendation: String::new(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rules::score(&[]), 100);
    assert_eq!(rules::score(&f("a", "high", 1)), 90);
    assert_eq!(rules::score(&f("a", "high", 3)), 85);
    assert_eq!(rules::score(&f("a", "high", 50)), 80, "capped at four more");
    assert_eq!(rules::score(&f("a", "info", 50)), 100);
    let all: Vec<FindingRow> = (0..9)
        .flat_map(|i| f(&format!("r{i}"), "critical", 1))
        .collect();
    assert_eq!(rules::score(&all), 0);
    assert_eq!(
        [95, 90, 80, 75, 70, 60, 45, 10].map(rules::grade),
        ["A", "A", "B", "B", "C", "C", "D", "F"]
    );
}

#[test]
fn the_report_escapes_the_estates_words_and_fetches_nothing() {
    let mut a = judge(&estate(), swept(), None, &Options::default(), Utc::now());
    a.labels.customer = "Contoso & <Partners>".into();
    let h = html::render(&a);
    assert!(
        !h.contains("<script>alert(1)"),
        "a hostile asset name is escaped"
    );
    assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(h.contains("Contoso &amp; &lt;Partners&gt;"));
    assert!(h.contains("default-src 'none'"));
    assert!(
        !h.contains("<script") && !h.contains("http://") && !h.contains("https://"),
        "self-contained"
    );
    for id in html::SECTIONS {
        assert!(h.contains(&format!("<section id=\"{id}\"")), "section {id}");
        assert!(
            h.contains(&format!("<i id=\"only-{id}\"")),
            "section {id} alone"
        );
    }
}

#[test]
fn csv_cells_never_become_formulas() {
    let mut e = estate();
    e[0].assets[4].name = "=HYPERLINK(\"http://x\")".into();
    let a = judge(&e, swept(), None, &Options::default(), Utc::now());
    let text = String::from_utf8(report::csv(&a).unwrap()).unwrap();
    assert!(
        text.starts_with(
            "id,severity,rule,source,asset,asset_name,title,evidence,recommendation\n"
        )
    );
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");
    let rows = csv::Reader::from_reader(text.as_bytes()).records().count();
    assert_eq!(rows, a.findings.len());
}

#[test]
fn files_are_not_replaced_without_consent_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let a = judge(&estate(), swept(), None, &Options::default(), Utc::now());
    let written = report::write(&a, dir.path(), false, false).unwrap();
    assert_eq!(written.len(), 3);
    let e = report::write(&a, dir.path(), false, false).unwrap_err();
    assert_eq!(e.code, Code::TargetExists, "{e}");
    assert!(e.message.contains("--overwrite"), "{e}");
    report::write(&a, dir.path(), false, true).unwrap();
    let back = Assessment::read(&dir.path().join(report::JSON)).unwrap();
    assert_eq!(back.findings, a.findings);
    // not an assessment, or a newer one: said so
    std::fs::write(dir.path().join("x.json"), br#"{"format": 9}"#).unwrap();
    let e = Assessment::read(&dir.path().join("x.json")).unwrap_err();
    assert!(e.message.contains("format 9"), "{e}");
    std::fs::write(dir.path().join("y.json"), b"[]").unwrap();
    assert!(Assessment::read(&dir.path().join("y.json")).is_err());
}

#[test]
fn a_logo_is_a_png_or_a_jpeg() {
    assert_eq!(
        Logo::from_bytes(b"\x89PNG\r\n\x1a\n....").unwrap().mime,
        "image/png"
    );
    assert_eq!(
        Logo::from_bytes(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap().mime,
        "image/jpeg"
    );
    let e = Logo::from_bytes(b"<svg onload='x()'/>").unwrap_err();
    assert!(e.message.contains("neither a PNG nor a JPEG"), "{e}");
    assert!(Logo::from_bytes(&vec![0x89; Logo::MAX + 1]).is_err());
}

#[test]
fn a_plugin_cannot_pass_for_the_product_nor_hide_its_own_findings() {
    let mut e = estate();
    e[0].findings
        .push(finding("rehydra.unprotected", "high", "plain"));
    let mut gap = finding("sql.log-gap", "high", "plain");
    e[0].findings.push(gap.clone());
    gap.detail = "another gap".into();
    e[0].findings.push(gap.clone());
    e[0].findings.push(gap);
    e[0].assets[4].name = "evil\u{1b}]52;c;x\u{7}name".into();
    let a = judge(&e, swept(), None, &Options::default(), Utc::now());
    let ids = rules_of(&a);
    assert!(
        ids.contains(&"hyperv-vm/rehydra.unprotected:plain"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"rehydra.unprotected:plain"), "{ids:?}");
    let gaps: Vec<&&str> = ids
        .iter()
        .filter(|i| i.starts_with("sql.log-gap"))
        .collect();
    assert_eq!(
        gaps,
        [&"sql.log-gap:plain", &"sql.log-gap:plain#2"],
        "the same finding twice is one, different ones are kept"
    );
    let row = a.assets.iter().find(|r| r.id == "plain").unwrap();
    assert!(!row.name.chars().any(char::is_control), "{:?}", row.name);
}

#[test]
fn one_asset_two_plugins_is_one_row_and_a_key_backup_does_not_protect_the_vm() {
    let mut e = estate();
    // tvm-keys reports the Trusted launch VMs too, under the same ids, without a tree
    e.push(Discovery {
        plugin: "tvm-keys".into(),
        assets: vec![
            asset("tvm", "tvm01", "vm", None, &["trusted-launch"], Some(1)),
            asset("tvm2", "tvm02", "vm", None, &["trusted-launch"], None),
        ],
        findings: vec![],
    });
    let mut key = point("k1", "tvm2", "tvm-keys", 1);
    key.plugin_id = "tvm-keys".into();
    let mut vm = point("v1", "tvm", "hyperv-vm", 1);
    vm.plugin_id = "hyperv-vm".into();
    let mut vm_key = point("k2", "tvm", "tvm-keys", 1);
    vm_key.plugin_id = "tvm-keys".into();
    let joined = Joined {
        points: vec![key, vm, vm_key],
        restored: HashSet::new(),
        repos: vec![facts(Some(1), 1)],
        primary: 0,
    };
    let a = judge(&e, swept(), Some(&joined), &Options::default(), Utc::now());
    assert_eq!(a.assets.iter().filter(|r| r.id == "tvm").count(), 1);
    let tvm = a.assets.iter().find(|r| r.id == "tvm").unwrap();
    assert_eq!(
        (tvm.group.as_str(), tvm.size_mib),
        ("c1", Some(40_960)),
        "the row in the tree, its own size"
    );
    assert_eq!(a.sizing.total_mib, 61_440, "counted once");
    let tvm2 = a.assets.iter().find(|r| r.id == "tvm2").unwrap();
    assert_eq!(
        tvm2.status, "unprotected",
        "its key is backed up, the VM is not"
    );
    let ids = rules_of(&a);
    assert!(ids.contains(&"rehydra.unprotected:tvm2"), "{ids:?}");
    assert!(
        !ids.iter().any(|i| i.starts_with("rehydra.tvm-key-missing")),
        "both keys are backed up: {ids:?}"
    );
    let c = &a.summary.coverage;
    assert_eq!((c.protected, c.unprotected), (1, 2), "{c:?}");
}

#[test]
fn sizes_past_belief_are_not_counted_and_sums_do_not_overflow() {
    let mut e = estate();
    e[0].assets[2].properties[0].value = u64::MAX.to_string();
    e[0].assets[3].properties[0].value = (1u64 << 40).to_string();
    let mut o = Options::default();
    o.thresholds.retention_days = u32::MAX;
    o.thresholds.daily_change_percent = 100.0;
    let a = judge(&e, swept(), None, &o, Utc::now());
    assert_eq!(
        a.assets.iter().find(|r| r.id == "tvm").unwrap().size_mib,
        None
    );
    assert_eq!(a.sizing.total_mib, 1 << 40);
    assert_eq!(a.sizing.repository_mib, u64::MAX, "saturates");
}

#[test]
fn clusterstorage_copied_whole_is_found_by_its_paths() {
    let joined = |asset: &str| Joined {
        points: vec![point("p", asset, "files", 1)],
        restored: HashSet::new(),
        repos: vec![facts(Some(1), 1)],
        primary: 0,
    };
    for (path, whole) in [
        ("\\\\hv01\\c$\\ClusterStorage", true),
        ("C:\\ClusterStorage\\", true),
        ("/mnt/hv01/ClusterStorage/Volume1", true),
        ("C:\\ClusterStorage\\Volume1\\vm01", false),
        ("C:\\ClusterStorage\\Infrastructure_1\\ArcHci", false),
        ("/srv/MyClusterStorageNotes", false),
        ("\\\\hv01\\ClusterStorage$", true),
        ("\\\\?\\C:\\ClusterStorage", true),
        ("C:\\ClusterStorage. ", true),
        ("C:\\ClusterStorage\\Volume1\\..", true),
        ("D:\\Archive\\ClusterStorage", false),
        ("C:\\ClusterStorage\\Volume1\\ClusterStorage\\x", false),
    ] {
        let a = judge(
            &estate(),
            swept(),
            Some(&joined(path)),
            &Options::default(),
            Utc::now(),
        );
        let found = rules_of(&a)
            .iter()
            .any(|i| i.starts_with("rehydra.clusterstorage-whole"));
        assert_eq!(found, whole, "{path}");
    }
}

#[test]
fn two_repositories_are_judged_together() {
    let mut all = Joined {
        points: vec![point("p1", "tvm", "hyperv-vm", 2)],
        restored: HashSet::new(),
        repos: vec![facts(None, 0)],
        primary: 1,
    };
    let one = judge(
        &estate(),
        swept(),
        Some(&all),
        &Options::default(),
        Utc::now(),
    );
    let ids = rules_of(&one);
    assert!(
        ids.contains(&"rehydra.no-offsite-copy") && ids.contains(&"rehydra.no-restore-test"),
        "{ids:?}"
    );
    // the offsite copy, tested recently: its points are copies
    let mut copy = point("c1", "tvm", "hyperv-vm", 1);
    copy.copied_from = Some("p1".into());
    copy.copied_from_repository = Some("abcd1234-full".into());
    let mut offsite = facts(Some(2), 0);
    offsite.id = "ffff0000".into();
    offsite.full_id = "ffff0000-full".into();
    offsite.kind = "S3".into();
    all.add(Joined {
        points: vec![copy],
        restored: HashSet::new(),
        repos: vec![offsite],
        primary: 0,
    })
    .unwrap();
    let two = judge(
        &estate(),
        swept(),
        Some(&all),
        &Options::default(),
        Utc::now(),
    );
    let ids = rules_of(&two);
    assert!(
        !ids.contains(&"rehydra.no-offsite-copy") && !ids.contains(&"rehydra.no-restore-test"),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"rehydra.repository-not-immutable:abcd1234")
            && ids.contains(&"rehydra.repository-not-immutable:ffff0000"),
        "{ids:?}"
    );
    assert_eq!(two.repositories.len(), 2);
    assert_eq!(
        two.assets
            .iter()
            .find(|r| r.id == "tvm")
            .unwrap()
            .restore_points,
        2
    );
}

#[test]
fn a_repository_joined_twice_is_refused_and_a_key_alone_protects_no_vm() {
    let one = || Joined {
        points: vec![point("p1", "tvm", "hyperv-vm", 2)],
        restored: HashSet::new(),
        repos: vec![facts(None, 0)],
        primary: 1,
    };
    let mut all = one();
    let e = all.add(one()).unwrap_err();
    assert!(e.message.contains("joined already"), "{e}");
    // tvm-keys swept, hyperv-vm not: its VM row, with only the key backed up, is unprotected
    let keys_only = vec![Discovery {
        plugin: "tvm-keys".into(),
        assets: vec![asset("tvm", "tvm01", "vm", None, &["trusted-launch"], None)],
        findings: vec![],
    }];
    let mut key = point("k1", "tvm", "tvm-keys", 1);
    key.plugin_id = "tvm-keys".into();
    let j = Joined {
        points: vec![key],
        restored: HashSet::new(),
        repos: vec![facts(Some(1), 1)],
        primary: 1,
    };
    let a = judge(
        &keys_only,
        swept(),
        Some(&j),
        &Options::default(),
        Utc::now(),
    );
    assert_eq!(a.assets[0].status, "unprotected", "{:?}", a.assets[0]);
    // a plugin reporting a VM's id as another kind does not take its row
    let mut e = estate();
    e.insert(
        0,
        Discovery {
            plugin: "aaa-x".into(),
            assets: vec![asset(
                "tvm",
                "decoy",
                "node",
                Some("cluster/c1"),
                &[],
                Some(1),
            )],
            findings: vec![],
        },
    );
    let a = judge(&e, swept(), None, &Options::default(), Utc::now());
    let vm = a
        .assets
        .iter()
        .find(|r| r.id == "tvm" && r.kind == "vm")
        .unwrap();
    assert_eq!((vm.name.as_str(), vm.size_mib), ("tvm01", Some(40_960)));
}

#[test]
fn a_domain_whose_newest_point_is_older_than_its_tombstone_lifetime_is_critical() {
    let mut domain = asset(
        "contoso.local@dc1",
        "contoso.local",
        "domain",
        None,
        &[],
        None,
    );
    domain.properties.push(Property {
        name: "tombstone-lifetime-days".into(),
        value: "60".into(),
    });
    let estate = vec![Discovery {
        plugin: "active-directory".into(),
        assets: vec![domain],
        findings: vec![],
    }];
    let judged = |days_ago: i64| {
        let joined = Joined {
            points: vec![point(
                "p1",
                "contoso.local@dc1",
                "active-directory",
                days_ago * 24,
            )],
            restored: HashSet::new(),
            repos: vec![facts(Some(1), 1)],
            primary: 0,
        };
        judge(
            &estate,
            vec![],
            Some(&joined),
            &Options::default(),
            Utc::now(),
        )
    };
    let old = judged(61);
    let f = old
        .findings
        .iter()
        .find(|f| f.id == "rehydra.older-than-tombstone:contoso.local@dc1")
        .unwrap_or_else(|| panic!("{:?}", rules_of(&old)));
    assert_eq!(f.severity, "critical");
    assert!(
        f.evidence.contains("61 days ago") && f.evidence.contains("lifetime is 60 days"),
        "{}",
        f.evidence
    );
    assert_eq!(
        old.findings[0].rule, "rehydra.older-than-tombstone",
        "worst first"
    );
    let recent = judged(59);
    assert!(
        !rules_of(&recent)
            .iter()
            .any(|i| i.starts_with("rehydra.older-than-tombstone")),
        "{:?}",
        rules_of(&recent)
    );
}
