//! What a restore takes from the restore point: the options (`namespaces`, `objects`,
//! the maps, `existing`, `cluster-resources`, `wait-secs`), and the objects they select,
//! each with why it is restored, which decides whether `existing=replace` may touch it.
//! A cluster-wide object comes only when it belongs to what is selected, or when asked
//! for; every stored object is checked against the index entry that names it.

use std::time::Duration;

use rehydra_plugin_sdk::engine;
use rehydra_plugin_sdk::kube::{self, is_label};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::shown;
use serde_json::Value;

use crate::index::{Entry, Index};
use crate::objects::{Remap, pairs};
use crate::settings;

pub(crate) struct Options {
    pub(crate) server: String,
    pub(crate) namespaces: Vec<String>,
    pub(crate) objects: Vec<String>,
    pub(crate) remap: Remap,
    pub(crate) replace: bool,
    pub(crate) cluster_resources: bool,
    pub(crate) wait: Duration,
}

pub(crate) fn options(s: &[Property]) -> Result<Options> {
    let wait = settings::wait(s)?;
    Ok(Options {
        server: settings::server(s)?,
        namespaces: settings::namespaces("namespaces", setting(s, "namespaces"))?,
        objects: settings::list(setting(s, "objects")),
        remap: Remap {
            namespaces: pairs(
                "namespace-map",
                setting(s, "namespace-map").unwrap_or_default(),
                is_label,
            )?,
            storage_classes: pairs(
                "storage-class-map",
                setting(s, "storage-class-map").unwrap_or_default(),
                kube::is_subdomain,
            )?,
        },
        replace: setting(s, "existing") == Some("replace"),
        cluster_resources: setting(s, "cluster-resources") == Some("true"),
        wait,
    })
}

/// Why an object is restored; it decides whether `existing=replace` may replace it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// Named with `objects=`.
    Named,
    /// In a namespace the restore selects.
    Selected,
    /// Pulled in by what was selected (its namespace, a claim's volume, a custom
    /// resource's definition) or by `cluster-resources=true`: created when missing, never
    /// replaced.
    Related,
}

/// Does `o` (one of `objects=`: `resource[.group]/namespace/name` or
/// `resource[.group]/name`) name `e`? A bare resource name names its type only when no
/// other type of the restore point has that resource name.
fn names(ix: &Index, o: &str, e: &Entry) -> bool {
    let parts: Vec<&str> = o.split('/').collect();
    let (k, ns, n) = match parts.as_slice() {
        [k, ns, n] => (*k, Some(*ns), *n),
        [k, n] => (*k, None, *n),
        _ => return false,
    };
    let resource = e.key.split('.').next().unwrap_or_default();
    let key_ok = k == e.key
        || (k == resource && ix.types.iter().filter(|t| t.resource == resource).count() == 1);
    key_ok && ns == e.namespace.as_deref() && n == e.name
}

/// The entries the options select, and why each.
pub(crate) fn select<'a>(
    ix: &'a Index,
    o: &Options,
    stored: &dyn Fn(&Entry) -> Result<Value>,
) -> Result<Vec<(&'a Entry, Why)>> {
    for ns in &o.namespaces {
        if !ix.namespaces.contains(ns) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "namespace `{ns}` is not in this restore point; it holds: {}",
                    ix.namespaces.join(", ")
                ),
            ));
        }
    }
    for x in &o.objects {
        if !ix.objects.iter().any(|e| names(ix, x, e)) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "objects: `{}` is not in this restore point (write resource[.group]/namespace/name, e.g. configmaps/shop/web)",
                    shown(x, 120)
                ),
            ));
        }
    }
    let named = |e: &Entry| o.objects.iter().any(|x| names(ix, x, e));
    let in_scope = |ns: &str| o.namespaces.is_empty() || o.namespaces.iter().any(|n| n == ns);
    // namespaced objects first: what is cluster-wide follows from them
    let mut out: Vec<(&Entry, Why)> = Vec::new();
    for e in ix.objects.iter().filter(|e| e.namespace.is_some()) {
        let ns = e.namespace.as_deref().unwrap_or_default();
        if named(e) {
            out.push((e, Why::Named));
        } else if o.objects.is_empty() && in_scope(ns) {
            out.push((e, Why::Selected));
        }
    }
    let chosen = |key: &str, ns: &str, name: &str, out: &[(&Entry, Why)]| {
        out.iter()
            .any(|(x, _)| x.key == key && x.namespace.as_deref() == Some(ns) && x.name == name)
    };
    let mut cluster: Vec<(&Entry, Why)> = Vec::new();
    for e in ix.objects.iter().filter(|e| e.namespace.is_none()) {
        let why = if named(e) {
            Some(Why::Named)
        } else {
            let related = match e.key.as_str() {
                "namespaces" => {
                    in_scope(&e.name)
                        && out
                            .iter()
                            .any(|(x, _)| x.namespace.as_ref() == Some(&e.name))
                        || (o.objects.is_empty() && o.namespaces.contains(&e.name))
                        || (o.objects.is_empty() && o.namespaces.is_empty())
                }
                // with the claim it is bound to
                "persistentvolumes" => {
                    let pv = stored(e)?;
                    let r = &pv["spec"]["claimRef"];
                    chosen(
                        "persistentvolumeclaims",
                        r["namespace"].as_str().unwrap_or_default(),
                        r["name"].as_str().unwrap_or_default(),
                        &out,
                    )
                }
                // with its custom resources
                "customresourcedefinitions.apiextensions.k8s.io" => {
                    out.iter().any(|(x, _)| x.key == e.name)
                }
                _ => o.cluster_resources && o.objects.is_empty(),
            };
            related.then_some(Why::Related)
        };
        if let Some(w) = why {
            cluster.push((e, w));
        }
    }
    out.extend(cluster);
    Ok(out)
}

/// The stored object of `e`, checked against its entry.
pub(crate) fn read(e: &Entry) -> Result<Value> {
    let item = e.item();
    let obj: Value = serde_json::from_slice(&engine::read_document(&item)?)
        .map_err(|err| Error::new(ErrorCode::Failed, format!("{item} is not JSON: {err}")))?;
    let name_ok = obj["metadata"]["name"].as_str() == Some(e.name.as_str());
    let ns_ok = obj["metadata"]["namespace"].as_str() == e.namespace.as_deref();
    if !name_ok || !ns_ok {
        return Err(Error::new(
            ErrorCode::Failed,
            format!("{item} holds another object than its name says; the restore point is damaged"),
        ));
    }
    Ok(obj)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::ApiResource;
    use crate::index::Source;

    pub(crate) fn t(group: &str, resource: &str, kind: &str, namespaced: bool) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            kind: kind.into(),
            namespaced,
        }
    }

    fn e(key: &str, ns: Option<&str>, name: &str) -> Entry {
        Entry {
            key: key.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        }
    }

    /// A restore point of namespace shop, with what a full-cluster Velero backup adds.
    fn index() -> Index {
        let mut ix = Index::new(Source::default());
        ix.namespaces = vec!["shop".into(), "other".into()];
        for (ty, entry) in [
            (
                t("", "namespaces", "Namespace", false),
                e("namespaces", None, "shop"),
            ),
            (
                t("", "configmaps", "ConfigMap", true),
                e("configmaps", Some("shop"), "web"),
            ),
            (
                t("", "configmaps", "ConfigMap", true),
                e("configmaps", Some("other"), "x"),
            ),
            (
                t("acme.io", "configmaps", "ConfigMap", true),
                e("configmaps.acme.io", Some("shop"), "web"),
            ),
            (
                t("", "persistentvolumeclaims", "PersistentVolumeClaim", true),
                e("persistentvolumeclaims", Some("shop"), "data"),
            ),
            (
                t("", "persistentvolumes", "PersistentVolume", false),
                e("persistentvolumes", None, "pv-1"),
            ),
            (
                t(
                    "rbac.authorization.k8s.io",
                    "clusterrolebindings",
                    "ClusterRoleBinding",
                    false,
                ),
                e(
                    "clusterrolebindings.rbac.authorization.k8s.io",
                    None,
                    "admin-for-all",
                ),
            ),
            (
                t(
                    "apiextensions.k8s.io",
                    "customresourcedefinitions",
                    "CustomResourceDefinition",
                    false,
                ),
                e(
                    "customresourcedefinitions.apiextensions.k8s.io",
                    None,
                    "widgets.acme.io",
                ),
            ),
            (
                t("acme.io", "widgets", "Widget", true),
                e("widgets.acme.io", Some("shop"), "w"),
            ),
        ] {
            assert!(ix.add(&ty, entry));
        }
        ix.check().unwrap();
        ix
    }

    fn opts(pairs: &[(&str, &str)]) -> Options {
        let mut p = vec![("kube", "https://k:6443")];
        p.extend_from_slice(pairs);
        options(&rehydra_plugin_sdk::mock::props(&p)).unwrap()
    }

    fn chosen(ix: &Index, o: &Options) -> Vec<(String, Why)> {
        let pv =
            |_: &Entry| Ok(json!({"spec": {"claimRef": {"namespace": "shop", "name": "data"}}}));
        select(ix, o, &pv)
            .unwrap()
            .into_iter()
            .map(|(e, w)| (e.item(), w))
            .collect()
    }

    #[test]
    fn a_namespace_brings_only_what_belongs_to_it() {
        let ix = index();
        let got = chosen(&ix, &opts(&[("namespaces", "shop")]));
        let items: Vec<&str> = got.iter().map(|(i, _)| i.as_str()).collect();
        for want in [
            "objects/configmaps/shop/web.json",
            "objects/persistentvolumeclaims/shop/data.json",
            "objects/widgets.acme.io/shop/w.json",
            "objects/namespaces/_cluster/shop.json",
            "objects/persistentvolumes/_cluster/pv-1.json",
            "objects/customresourcedefinitions.apiextensions.k8s.io/_cluster/widgets.acme.io.json",
        ] {
            assert!(items.contains(&want), "{want}: {items:?}");
        }
        assert!(!items.iter().any(|i| i.contains("other")), "{items:?}");
        assert!(
            !items.iter().any(|i| i.contains("clusterrolebindings")),
            "a cluster-wide binding comes only when asked for: {items:?}"
        );
        let related = |i: &str| got.iter().any(|(x, w)| x == i && *w == Why::Related);
        assert!(
            related("objects/namespaces/_cluster/shop.json")
                && related("objects/persistentvolumes/_cluster/pv-1.json")
        );
        let all = chosen(
            &ix,
            &opts(&[("namespaces", "shop"), ("cluster-resources", "true")]),
        );
        assert!(
            all.iter()
                .any(|(i, w)| i.contains("admin-for-all") && *w == Why::Related)
        );
    }

    #[test]
    fn one_named_object_brings_its_namespace_and_nothing_else() {
        let ix = index();
        let got = chosen(&ix, &opts(&[("objects", "configmaps/shop/web")]));
        assert_eq!(
            got,
            vec![
                ("objects/configmaps/shop/web.json".to_string(), Why::Named),
                (
                    "objects/namespaces/_cluster/shop.json".to_string(),
                    Why::Related
                ),
            ],
            "a bare resource name is not another group's type of that name"
        );
        let got = chosen(&ix, &opts(&[("objects", "widgets/shop/w")]));
        assert_eq!(
            got[0],
            (
                "objects/widgets.acme.io/shop/w.json".to_string(),
                Why::Named
            )
        );
        assert!(
            select(&ix, &opts(&[("objects", "configmaps/shop/nope")]), &|_| Ok(
                Value::Null
            ))
            .is_err()
        );
        assert!(
            select(&ix, &opts(&[("namespaces", "kube-system")]), &|_| Ok(
                Value::Null
            ))
            .is_err()
        );
    }

    #[test]
    fn find_lists_the_objects_whose_name_holds_the_text() {
        let ix = index();
        let plan = crate::find::plan(&ix, " WEB ").unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "pick:configmaps/shop/web",
                "pick:configmaps.acme.io/shop/web"
            ]
        );
        assert_eq!(plan.steps[0].detail, "configmaps in namespace shop");
        let pv = crate::find::plan(&ix, "pv-1").unwrap();
        assert_eq!(pv.steps[0].id, "pick:persistentvolumes/pv-1");
        assert!(pv.steps[0].detail.ends_with("cluster-wide"));
        let none = crate::find::plan(&ix, "nothing-here").unwrap();
        assert!(
            none.steps.is_empty() && none.warnings[0].starts_with("nothing in the restore point")
        );
        assert!(crate::find::plan(&ix, " ").is_err());
        // what it lists is what objects= takes
        for id in ids {
            let o = opts(&[("objects", id.trim_start_matches("pick:"))]);
            let named = chosen(&ix, &o)
                .into_iter()
                .filter(|(_, w)| *w == Why::Named);
            assert_eq!(named.count(), 1, "{id}");
        }
    }
}
