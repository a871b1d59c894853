//! The `arc-sql-mi` plugin's readers of what a Kubernetes API server and Azure Resource
//! Manager answer (a `SqlManagedInstance` item or list, an ARM `sqlManagedInstances`
//! resource or list) and of the database asset ids a restore point carries. Parsing never
//! panics; what parses names only Kubernetes names, so nothing it yields can leave a URL
//! path, become a kubectl option or a second namespace.

use serde_json::Value;

use crate::instance::{Instance, from_arm, from_cr, merge};
use crate::names::{is_label, parse_db};

/// What every instance the readers accept holds to.
fn instance_holds(i: &Instance) {
    assert!(
        !i.name.is_empty()
            && i.name.len() <= 63
            && i.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{:?}",
        i.name
    );
    if let Some(ns) = &i.namespace {
        assert!(is_label(ns), "{ns:?}");
        let url = crate::kube::instances_url("https://k8s.local:6443", ns);
        assert!(
            !url.contains("..") && !url.contains(['?', '#', ' ']),
            "{url}"
        );
    }
    assert!(i.key().matches('/').count() <= 1, "{}", i.key());
    for t in [&i.tier, &i.state, &i.endpoint, &i.ready_replicas]
        .into_iter()
        .flatten()
    {
        assert!(t.chars().count() <= 256, "{t:?}");
    }
    assert!(i.retention() <= 3650, "{}", i.retention());
}

/// The body: the bytes as a database id, and as a Kubernetes or ARM answer.
pub fn arc_sql_mi(data: &[u8]) {
    if let Ok(id) = std::str::from_utf8(data)
        && let Ok(db) = parse_db(id)
    {
        assert!(is_label(&db.namespace) && is_label(&db.instance), "{db:?}");
        assert_eq!(db.id(), id, "an id reads back as written");
        assert!(
            !db.database.chars().any(char::is_control) && !db.database.contains("$("),
            "{db:?}"
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // a Kubernetes list has `items`, an ARM list `value`; else one resource
    let items: Vec<&Value> = match (v["items"].as_array(), v["value"].as_array()) {
        (Some(a), _) | (None, Some(a)) => a.iter().collect(),
        (None, None) => vec![&v],
    };
    let (mut kube, mut arm) = (Vec::new(), Vec::new());
    for it in items {
        if let Ok(i) = from_cr("arc", it) {
            instance_holds(&i);
            assert_eq!(i.namespace.as_deref(), Some("arc"), "the namespace listed");
            kube.push(i);
        }
        if let Ok(i) = from_arm(it) {
            instance_holds(&i);
            arm.push(i);
        }
    }
    for i in merge(kube, arm) {
        instance_holds(&i);
    }
}
