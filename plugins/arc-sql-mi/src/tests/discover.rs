use rehydra_plugin_sdk::host::Level;
use rehydra_plugin_sdk::mock::{MockHost, props, response};
use rehydra_plugin_sdk::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Value, json};

use super::support::*;
use crate::ArcSqlMi;

fn prop<'a>(a: &'a Asset, name: &str) -> &'a str {
    a.properties
        .iter()
        .find(|p| p.name == name)
        .map_or("", |p| p.value.as_str())
}

#[test]
fn the_urls_match_what_the_crds_declare() {
    // group, served version and plural of both resources the plugin uses
    for needle in [
        "name: sqlmanagedinstances.sql.arcdata.microsoft.com",
        "group: sql.arcdata.microsoft.com",
        "plural: sqlmanagedinstances",
        "name: sqlmanagedinstancerestoretasks.tasks.sql.arcdata.microsoft.com",
        "group: tasks.sql.arcdata.microsoft.com",
        "plural: sqlmanagedinstancerestoretasks",
        "kind: SqlManagedInstanceRestoreTask",
    ] {
        assert!(CRDS.contains(needle), "{needle}");
    }
    assert!(
        LIST_URL.ends_with("/apis/sql.arcdata.microsoft.com/v1/namespaces/arc/sqlmanagedinstances")
    );
    assert_eq!(
        crate::kube::tasks_url(KUBE, "arc", None),
        "https://10.0.0.5:6443/apis/tasks.sql.arcdata.microsoft.com/v1/namespaces/arc/sqlmanagedinstancerestoretasks"
    );
}

#[test]
fn kubernetes_lists_are_read_across_pages_and_databases_through_the_endpoint() {
    let sim = Sim::new(&[
        ("sales", "FULL"),
        ("bad\u{1b}]0;x\u{7}", "FULL"),
        ("staging", "SIMPLE"),
    ]);
    sim.borrow_mut().own_backup("sales", "D");
    sim.borrow_mut().own_backup("sales", "L");
    let token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6ODEzMDAsInN0YXJ0IjoibWkxXHUwMDAwIn0=";
    let hostile = cr("arc", "../../etc", json!({}), json!({}));
    let mi2 = cr(
        "arc",
        "sqlmi2",
        json!({"tier": "BusinessCritical", "replicas": 3, "backup": {"retentionPeriodInDays": 0}}),
        json!({"state": "Updating", "readyReplicas": "2/3", "primaryEndpoint": "10.0.0.4,31434"}),
    );
    let mock = MockHost::new()
        .grant("http:10.0.0.5:6443")
        .grant(&format!("sql:{SERVER}"))
        .http_answer("GET", &format!("{LIST_URL}?limit=100"), response(200, page(vec![ready_gp("arc", "sqlmi1"), hostile], Some(token))))
        .http_answer(
            "GET",
            &format!("{LIST_URL}?limit=100&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6ODEzMDAsInN0YXJ0IjoibWkxXHUwMDAwIn0%3D"),
            response(200, page(vec![mi2], None)),
        )
        .on_sql({
            let s = sim.clone();
            move |q| s.borrow_mut().answer(q)
        });
    let assets = mock
        .discover::<ArcSqlMi>(props(&[
            ("kube", "https://10.0.0.5:6443/"),
            ("namespaces", "arc"),
            ("servers", &format!("arc/sqlmi1={SERVER}")),
        ]))
        .unwrap();
    let urls: Vec<String> = mock.http_requests().iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls.len(), 2, "two pages: {urls:?}");
    let ids: Vec<&str> = assets.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "arc/sqlmi1",
            "arc/sqlmi1/sales",
            "arc/sqlmi1/staging",
            "arc/sqlmi2"
        ]
    );
    let mi1 = &assets[0];
    assert_eq!(prop(mi1, "tier"), "GeneralPurpose");
    assert_eq!(prop(mi1, "replicas"), "1");
    assert_eq!(prop(mi1, "retention-days"), "7");
    assert_eq!(prop(mi1, "state"), "Ready");
    assert_eq!(prop(mi1, "endpoint"), "10.0.0.4,31433");
    assert_eq!(prop(mi1, "sql-endpoint"), SERVER);
    assert!(
        prop(mi1, "built-in-backups")
            .starts_with("/var/opt/mssql/backups in pod sqlmi1-0, on the cluster's own storage")
    );
    let sales = &assets[1];
    assert_eq!(
        (sales.kind.as_str(), sales.parent.as_deref()),
        ("database", Some("arc/sqlmi1"))
    );
    assert_eq!(prop(sales, "recovery-model"), "FULL");
    assert_eq!(
        prop(sales, "last-full"),
        "2026-12-01T10:05:00.000 (instance)"
    );
    assert_eq!(
        prop(sales, "built-in-window"),
        "from 2026-12-01T10:05:00.000 to 2026-12-01T10:10:00.000 (the instance's clock: its own backups as msdb lists them, within its 7 day(s) of retention)"
    );
    assert_eq!(
        prop(&assets[2], "built-in-window"),
        "none: msdb lists no full backup the instance took itself in /var/opt/mssql/backups"
    );
    assert_eq!(prop(&assets[2], "recovery-model"), "SIMPLE");
    let mi2 = &assets[3];
    assert_eq!(
        (
            prop(mi2, "tier"),
            prop(mi2, "replicas"),
            prop(mi2, "retention-days")
        ),
        ("BusinessCritical", "3", "0")
    );
    assert_eq!(
        prop(mi2, "built-in-backups"),
        "off (retentionPeriodInDays 0)"
    );
    assert_eq!(
        prop(mi2, "sql-endpoint"),
        "",
        "no endpoint configured, no databases read"
    );
    // the hostile resource and the hostile database name are skipped, and said so, escaped
    let warns: Vec<String> = mock
        .logs()
        .into_iter()
        .filter(|(l, _)| *l == Level::Warn)
        .map(|(_, m)| m)
        .collect();
    assert!(
        warns
            .iter()
            .any(|w| w.contains("`../../etc`") && w.contains("skipped")),
        "{warns:?}"
    );
    assert!(
        warns.iter().any(|w| w.contains("bad\\u{1b}]0;x\\u{7}")),
        "{warns:?}"
    );
    assert!(warns.iter().all(|w| !w.contains('\u{1b}')));
}

#[test]
fn an_expired_continue_token_is_a_clear_error() {
    let mock = MockHost::new()
        .grant("http:10.0.0.5:6443")
        .http_answer(
            "GET",
            &format!("{LIST_URL}?limit=100"),
            response(200, page(vec![ready_gp("arc", "sqlmi1")], Some("tok1"))),
        )
        .http_answer(
            "GET",
            &format!("{LIST_URL}?limit=100&continue=tok1"),
            response(410, gone()),
        );
    let e = mock
        .discover::<ArcSqlMi>(props(&[("kube", KUBE), ("namespaces", "arc")]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert!(
        e.message.contains("namespace arc")
            && e.message.contains("410 Gone")
            && e.message
                .contains("Expired: The provided continue parameter is too old")
            && e.message.contains("Run it again"),
        "{}",
        e.message
    );
}

#[test]
fn a_continue_token_seen_twice_ends_the_list() {
    let mock = MockHost::new()
        .grant("http:10.0.0.5:6443")
        .on_http(|_| Ok(response(200, page(vec![], Some("same")))));
    let e = mock
        .discover::<ArcSqlMi>(props(&[("kube", KUBE), ("namespaces", "arc")]))
        .unwrap_err();
    assert!(e.message.contains("seen before"), "{}", e.message);
    assert_eq!(mock.http_requests().len(), 2);
}

#[test]
fn hostile_settings_are_refused_before_any_request() {
    for (k, v) in [
        ("namespaces", "arc/../kube-system"),
        ("namespaces", "Arc"),
        ("kube", "https://10.0.0.5:6443/api?x="),
    ] {
        let mock = MockHost::new().grant("http:10.0.0.5:6443");
        let mut s = vec![("kube", KUBE), ("namespaces", "arc")];
        s.retain(|(n, _)| *n != k);
        s.push((k, v));
        let e = mock.discover::<ArcSqlMi>(props(&s)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{k}={v}");
        assert!(mock.http_requests().is_empty());
    }
    let e = MockHost::new()
        .discover::<ArcSqlMi>(props(&[]))
        .unwrap_err();
    assert!(e.message.contains("kube=") && e.message.contains("subscriptions="));
}

const SUB: &str = "00000000-1111-2222-3333-444444444444";

#[test]
fn arm_lists_follow_next_link_on_their_origin_only() {
    let rg_url = format!(
        "https://management.azure.com/subscriptions/{SUB}/resourceGroups/testrg/providers/Microsoft.AzureArcData/sqlManagedInstances?api-version=2026-01-01"
    );
    let next = format!("{rg_url}&$skiptoken=page2");
    let mut first = arm_example("list-rg");
    first["nextLink"] = next.clone().into();
    let second = json!({"value": [arm_example("get")]});
    let mock = MockHost::new()
        .grant("http:management.azure.com")
        .http_answer(
            "GET",
            &rg_url,
            response(200, serde_json::to_vec(&first).unwrap()),
        )
        .http_answer(
            "GET",
            &next,
            response(200, serde_json::to_vec(&second).unwrap()),
        );
    let assets = mock
        .discover::<ArcSqlMi>(props(&[
            ("subscriptions", SUB),
            ("resource-groups", "testrg"),
        ]))
        .unwrap();
    let ids: Vec<&str> = assets.iter().map(|a| a.id.as_str()).collect();
    // names from the ids' last segment (the examples' `name` differs from it)
    assert_eq!(
        ids,
        [
            "sqlManagedInstance1",
            "sqlManagedInstance2",
            "testsqlManagedInstance"
        ]
    );
    let a = &assets[1];
    assert_eq!(
        (prop(a, "tier"), prop(a, "replicas"), prop(a, "state")),
        ("GeneralPurpose", "1", "unknown")
    );
    assert!(
        prop(a, "arm-id")
            .ends_with("/Microsoft.AzureArcData/sqlManagedInstances/sqlManagedInstance2")
    );
    assert!(prop(a, "namespace").starts_with("unknown"));

    // a nextLink to another host is refused, the token never sent there
    let mut evil = arm_example("list-sub");
    evil["nextLink"] = "https://attacker.example/steal".into();
    let sub_url = format!(
        "https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.AzureArcData/sqlManagedInstances?api-version=2026-01-01"
    );
    let mock = MockHost::new()
        .grant("http:management.azure.com")
        .grant("http:attacker.example")
        .http_answer(
            "GET",
            &sub_url,
            response(200, serde_json::to_vec(&evil).unwrap()),
        );
    let e = mock
        .discover::<ArcSqlMi>(props(&[("subscriptions", SUB)]))
        .unwrap_err();
    assert!(e.message.contains("another host"), "{}", e.message);
    assert_eq!(mock.http_requests().len(), 1);
}

#[test]
fn kubernetes_and_arm_views_of_one_instance_merge() {
    let sub_url = format!(
        "https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.AzureArcData/sqlManagedInstances?api-version=2026-01-01"
    );
    let mut body = arm_example("list-sub");
    // the first example names the instance the cluster knows as arc/sqlmanagedinstance1
    let list = body["value"].as_array_mut().unwrap();
    list.truncate(1);
    let mock = MockHost::new()
        .grant("http:management.azure.com")
        .grant("http:10.0.0.5:6443")
        .http_answer(
            "GET",
            &format!("{LIST_URL}?limit=100"),
            response(
                200,
                page(vec![ready_gp("arc", "sqlmanagedinstance1")], None),
            ),
        )
        .http_answer(
            "GET",
            &sub_url,
            response(200, serde_json::to_vec(&body).unwrap()),
        );
    let assets = mock
        .discover::<ArcSqlMi>(props(&[
            ("kube", KUBE),
            ("namespaces", "arc"),
            ("subscriptions", SUB),
        ]))
        .unwrap();
    assert_eq!(
        assets.len(),
        1,
        "{:?}",
        assets.iter().map(|a| &a.id).collect::<Vec<_>>()
    );
    assert_eq!(assets[0].id, "arc/sqlmanagedinstance1");
    assert!(
        prop(&assets[0], "arm-id").contains("/subscriptions/00000000-1111-2222-3333-444444444444/")
    );
}

/// The API server listing `items` in one page, and `sim` behind the instance's endpoint.
fn one_page(sim: &Rc<RefCell<Sim>>, items: Vec<Value>) -> MockHost {
    let s = sim.clone();
    MockHost::new()
        .grant("http:10.0.0.5:6443")
        .grant(&format!("sql:{SERVER}"))
        .http_answer(
            "GET",
            &format!("{LIST_URL}?limit=100"),
            response(200, page(items, None)),
        )
        .on_sql(move |q| s.borrow_mut().answer(q))
}

#[test]
fn assess_flags_what_puts_the_databases_at_risk() {
    let sim = Sim::new(&[("sales", "FULL"), ("staging", "SIMPLE")]);
    {
        let mut s = sim.borrow_mut();
        s.own_backup("sales", "D");
        s.own_backup("sales", "L");
        // a log backup that is not in msdb any more (another tool, deleted history): a gap
        s.own_backup("sales", "L");
        s.msdb.remove(1);
        s.own_backup("staging", "D");
    }
    let down = cr(
        "arc",
        "sqlmi2",
        json!({"tier": "GeneralPurpose", "replicas": 1, "backup": {"retentionPeriodInDays": 0}}),
        json!({"state": "Error"}),
    );
    let bc = cr(
        "arc",
        "sqlmi1",
        json!({"tier": "BusinessCritical", "replicas": 3}),
        json!({"state": "Ready"}),
    );
    let mock = one_page(&sim, vec![bc, down]);
    let f = mock
        .assess::<ArcSqlMi>(
            vec![],
            props(&[
                ("kube", KUBE),
                ("namespaces", "arc"),
                ("servers", &format!("arc/sqlmi1={SERVER}")),
            ]),
        )
        .unwrap();
    let got: Vec<(&str, &str, Severity)> = f
        .iter()
        .map(|x| {
            (
                x.asset.as_deref().unwrap_or(""),
                x.rule.as_str(),
                x.severity,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("arc/sqlmi1", "arcsqlmi.backups-on-cluster", Severity::High),
            ("arc/sqlmi1/sales", "arcsqlmi.log-gap", Severity::High),
            (
                "arc/sqlmi1/staging",
                "arcsqlmi.simple-recovery",
                Severity::High
            ),
            ("arc/sqlmi2", "arcsqlmi.not-ready", Severity::High),
            ("arc/sqlmi2", "arcsqlmi.pitr-off", Severity::High),
            ("arc/sqlmi2", "arcsqlmi.single-replica", Severity::Medium),
            ("arc/sqlmi2", "arcsqlmi.no-sql-endpoint", Severity::Info),
        ]
    );
    let on_cluster = &f[0];
    assert!(on_cluster.detail.contains("7 day(s)") && on_cluster.detail.contains("pod sqlmi1-0"));
    assert!(f[3].detail.contains("`Error`"));
    assert!(
        f.iter()
            .all(|x| !x.recommendation.is_empty() && !x.title.is_empty())
    );
}

#[test]
fn a_full_older_than_the_newest_backups_read_still_counts() {
    // a week of logs every 5 minutes after the full: more than the 2,000 newest backups
    // the history reads, so only msdb's whole record shows the full
    let sim = Sim::new(&[("sales", "FULL"), ("fresh", "FULL")]);
    {
        let mut s = sim.borrow_mut();
        s.own_backup("sales", "D");
        for _ in 0..2016 {
            s.own_backup("sales", "L");
        }
    }
    let mi = cr(
        "arc",
        "sqlmi1",
        json!({"tier": "GeneralPurpose", "replicas": 1}),
        json!({"state": "Ready"}),
    );
    let mock = one_page(&sim, vec![mi]);
    let settings = props(&[
        ("kube", KUBE),
        ("namespaces", "arc"),
        ("servers", &format!("arc/sqlmi1={SERVER}")),
    ]);
    let f = mock.assess::<ArcSqlMi>(vec![], settings.clone()).unwrap();
    let no_full: Vec<&str> = f
        .iter()
        .filter(|x| x.rule == "arcsqlmi.no-full-backup")
        .map(|x| x.asset.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(no_full, ["arc/sqlmi1/fresh"], "{f:#?}");
    // and the window reaches back to that full: 7 days of retention before the newest log
    let assets = mock.discover::<ArcSqlMi>(settings).unwrap();
    let sales = assets.iter().find(|a| a.id == "arc/sqlmi1/sales").unwrap();
    assert_eq!(
        prop(sales, "built-in-window"),
        "from 2026-12-01T10:05:00.000 to 2026-12-08T10:05:00.000 (the instance's clock: its own backups as msdb lists them, within its 7 day(s) of retention)"
    );
}
