//! Clusters from Azure Resource Manager: the Arc-connected clusters of the subscriptions
//! named (`Microsoft.Kubernetes/connectedClusters`), and for AKS on Azure Local their
//! provisioned cluster (`Microsoft.HybridContainerService/provisionedClusterInstances/default`:
//! Kubernetes version, control plane, node pools). A connected cluster that is not AKS
//! answers 404 there, and is listed from its connected-cluster resource alone.

use rehydra_plugin_sdk::azure::resources::{self, DEFAULT_ARM};
use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{endpoint, number, text};
use serde_json::Value;

use crate::settings::{self, is_cluster};

/// api-version of `Microsoft.Kubernetes/connectedClusters`.
pub const CONNECTED_API: &str = "2026-03-01";
/// api-version of `Microsoft.HybridContainerService`.
pub const HYBRID_API: &str = "2024-01-01";

/// The ARM id of a connected cluster: `/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Kubernetes/connectedClusters/<name>`.
fn is_cluster_id(id: &str) -> bool {
    let p: Vec<&str> = id.split('/').collect();
    matches!(p.as_slice(), ["", s, sub, r, rg, pr, "Microsoft.Kubernetes", c, name]
        if s.eq_ignore_ascii_case("subscriptions") && resources::is_subscription(sub)
            && r.eq_ignore_ascii_case("resourceGroups") && resources::is_resource_group(rg)
            && pr.eq_ignore_ascii_case("providers") && c.eq_ignore_ascii_case("connectedClusters")
            && is_cluster(name))
}

/// The cluster assets of `subscriptions=` (and `resource-groups=`).
///
/// # Errors
/// Malformed settings, or an ARM answer that is not a list.
pub fn clusters(s: &[Property]) -> Result<Vec<Asset>> {
    let base = endpoint("arm", setting_or(s, "arm", DEFAULT_ARM))?;
    let groups = settings::list(setting(s, "resource-groups"));
    let mut out = Vec::new();
    for sub in settings::list(setting(s, "subscriptions")) {
        let urls = if groups.is_empty() {
            vec![resources::list_url(
                &base,
                &sub,
                None,
                "Microsoft.Kubernetes/connectedClusters",
                CONNECTED_API,
            )?]
        } else {
            groups
                .iter()
                .map(|g| {
                    resources::list_url(
                        &base,
                        &sub,
                        Some(g),
                        "Microsoft.Kubernetes/connectedClusters",
                        CONNECTED_API,
                    )
                })
                .collect::<Result<_>>()?
        };
        for url in urls {
            for c in resources::list(&url, &format!("listing the connected clusters of {sub}"))? {
                if let Some(a) = asset(&base, &c)? {
                    out.push(a);
                }
            }
        }
    }
    Ok(out)
}

fn asset(base: &str, c: &Value) -> Result<Option<Asset>> {
    let (Some(id), Some(name)) = (text(&c["id"], 400), text(&c["name"], 100)) else {
        return Ok(None);
    };
    if !is_cluster_id(id) || !id.ends_with(&format!("/{name}")) {
        return Ok(None);
    }
    let p = &c["properties"];
    let t = |v: &Value| text(v, 100).unwrap_or_default().to_string();
    let mut props = vec![
        property("arm-id", id),
        property("location", t(&c["location"])),
        property("distribution", t(&p["distribution"])),
        property("kubernetes-version", t(&p["kubernetesVersion"])),
        property(
            "nodes",
            number(&p["totalNodeCount"], 100_000)
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        property("provisioning-state", t(&p["provisioningState"])),
        property("agent-state", t(&p["arcAgentProfile"]["agentState"])),
    ];
    let url = format!(
        "{base}{id}/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default?api-version={HYBRID_API}"
    );
    if let Some(pc) = kube::get(
        &url,
        &format!("reading the provisioned cluster of {name}"),
        kube::no_hint,
    )? {
        let pp = &pc["properties"];
        props.push(property("aks-arc", "true"));
        props.push(property("kubernetes-version", t(&pp["kubernetesVersion"])));
        props.push(property(
            "control-plane",
            format!(
                "{}×{}",
                number(&pp["controlPlane"]["count"], 100).unwrap_or(0),
                t(&pp["controlPlane"]["vmSize"])
            ),
        ));
        let pools: Vec<String> = pp["agentPoolProfiles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{}:{}×{}",
                    t(&a["name"]),
                    number(&a["count"], 10_000).unwrap_or(0),
                    t(&a["vmSize"])
                )
            })
            .collect();
        props.push(property("node-pools", pools.join(",")));
    }
    // the provisioned cluster's version is the one that counts: later entries win
    let mut seen = std::collections::HashSet::new();
    props.reverse();
    props.retain(|p| seen.insert(p.name.clone()));
    props.reverse();
    Ok(Some(Asset {
        kind: "cluster".into(),
        id: name.to_string(),
        name: name.to_string(),
        parent: None,
        properties: props,
        flags: ProtectionFlags::ARC_MANAGED,
    }))
}

/// Fold ARM's view of a cluster into the API server's of the same name, or add it.
pub fn merge(assets: &mut Vec<Asset>, from_arm: Vec<Asset>) {
    for a in from_arm {
        match assets
            .iter_mut()
            .find(|x| x.kind == "cluster" && x.id == a.id)
        {
            Some(x) => {
                for p in a.properties {
                    if !x.properties.iter().any(|q| q.name == p.name) {
                        x.properties.push(p);
                    }
                }
                x.flags |= a.flags;
            }
            None => assets.push(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use rehydra_plugin_sdk::mock::{MockHost, props, response};
    use serde_json::json;

    use super::*;

    fn example(file: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/aks-kubernetes/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["responses"]["200"]["body"].clone()
    }

    #[test]
    fn clusters_come_from_the_official_examples_with_their_provisioned_cluster() {
        const SUB: &str = "1bfbb5d0-917e-4346-9026-1d3b344417f5";
        let base = "https://management.azure.com";
        let list = format!(
            "{base}/subscriptions/{SUB}/resourceGroups/k8sc-rg/providers/Microsoft.Kubernetes/connectedClusters?api-version={CONNECTED_API}"
        );
        // the example's two items are one cluster twice; the second page (ARM's nextLink,
        // on ARM's own host) holds the single-cluster example
        let mut first = example("connectedclusters-GetClustersByResourceGroupExample.json");
        let next = format!("{list}&$skiptoken=2");
        first["nextLink"] = next.clone().into();
        let mut one = example("connectedclusters-GetClusterExample.json");
        one["name"] = "aks-b".into();
        one["id"] = format!("/subscriptions/{SUB}/resourceGroups/k8sc-rg/providers/Microsoft.Kubernetes/connectedClusters/aks-b").into();
        let second = json!({"value": [one]});
        let provisioned = example("hybridcontainerservice-GetProvisionedClusterInstance.json");
        let host = MockHost::new()
            .grant("http:management.azure.com")
            .http_answer("GET", &list, response(200, first.to_string()))
            .http_answer("GET", &next, response(200, second.to_string()))
            .on_http(move |r| {
                Ok(if r.url.contains("/connectedClusters/aks-b/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default?api-version=2024-01-01") {
                    response(200, provisioned.to_string())
                } else {
                    response(404, r#"{"error":{"code":"NotFound","message":"not an AKS cluster"}}"#)
                })
            });
        let assets = host
            .run(rehydra_plugin_sdk::mock::Verb::Discover, || {
                clusters(&props(&[
                    ("subscriptions", SUB),
                    ("resource-groups", "k8sc-rg"),
                ]))
            })
            .unwrap();
        let ids: Vec<&str> = assets.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["connectedCluster1", "connectedCluster1", "aks-b"]);
        let get = |a: &Asset, n: &str| {
            a.properties
                .iter()
                .find(|p| p.name == n)
                .map(|p| p.value.clone())
                .unwrap_or_default()
        };
        assert_eq!(get(&assets[0], "distribution"), "AKS");
        assert_eq!(
            get(&assets[0], "aks-arc"),
            "",
            "404: an Arc cluster that is not AKS"
        );
        let b = &assets[2];
        assert_eq!(get(b, "aks-arc"), "true");
        assert_eq!(
            get(b, "kubernetes-version"),
            "v1.20.5",
            "the provisioned cluster's version wins"
        );
        assert_eq!(get(b, "node-pools"), "default-nodepool-1:1×Standard_A4_v2");
        assert_eq!(get(b, "agent-state"), "Failed");
        let findings = crate::inventory::assess(&assets, &[]).unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f.rule == "kubernetes.arc-agent" && f.asset.as_deref() == Some("aks-b"))
        );
        // a nextLink to another host is refused, not followed with the token
        let mut away = example("connectedclusters-GetClustersByResourceGroupExample.json");
        away["nextLink"] = "https://serviceRoot/subscriptions/subId/x".into();
        let host = MockHost::new()
            .grant("http:management.azure.com")
            .http_answer("GET", &list, response(200, away.to_string()))
            .on_http(|_| Ok(response(404, "{}")));
        let e = host
            .run(rehydra_plugin_sdk::mock::Verb::Discover, || {
                clusters(&props(&[
                    ("subscriptions", SUB),
                    ("resource-groups", "k8sc-rg"),
                ]))
            })
            .unwrap_err();
        assert!(e.message.contains("another host"), "{}", e.message);
        assert!(!is_cluster_id(
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/a"
        ));
    }
}
