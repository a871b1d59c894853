//! The `kubernetes` plugin's readers of what another system wrote: a Velero backup's tar
//! stream, and the `kubernetes-index.json` of a restore point another host may have
//! written. Parsing never panics; what parses names only objects whose item names stay
//! under `objects/` and whose names could not leave a URL path.

use crate::index::Index;
use crate::objects::is_name;
use crate::tarball as velero;

fn object_names_hold(key: &str, ns: Option<&str>, name: &str) {
    assert!(is_name(name), "{name:?}");
    assert!(
        !key.is_empty() && !key.contains('/') && key != "." && key != "..",
        "{key:?}"
    );
    if let Some(ns) = ns {
        assert!(
            rehydra_plugin_sdk::kube::is_label(ns),
            "{ns:?} is not a namespace"
        );
    }
}

/// A Velero tarball, plain or gzip-compressed.
pub fn velero_tarball(data: &[u8]) {
    for parsed in [
        velero::objects_in(data, |_| true),
        velero::objects(data, |k| k != "pods"),
    ] {
        let Ok(objects) = parsed else { continue };
        for (key, ns, name) in objects.keys() {
            object_names_hold(key, ns.as_deref(), name);
        }
    }
}

/// A restore point's index.
pub fn kube_index(data: &[u8]) {
    let Ok(ix) = Index::parse(data) else {
        return;
    };
    for e in &ix.objects {
        object_names_hold(&e.key, e.namespace.as_deref(), &e.name);
        let item = e.item();
        assert!(item.starts_with("objects/"), "{item}");
        assert!(
            !item
                .split('/')
                .any(|p| p == ".." || p == "." || p.is_empty()),
            "{item}"
        );
    }
    let again = serde_json::to_vec(&ix).expect("an index serialises");
    Index::parse(&again).expect("the writer's own index parses");
}
