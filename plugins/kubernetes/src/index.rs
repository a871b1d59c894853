//! The restore point's index (`kubernetes-index.json`): where the objects came from,
//! their types, one entry per object document, and the claims whose data is (not yet)
//! kept. A restore reads it first and trusts nothing in it: every entry is checked
//! against the item name it must have, and every object against its entry.

use rehydra_plugin_sdk::engine;
use rehydra_plugin_sdk::kube::is_label;
use rehydra_plugin_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{ApiResource, is_resource, is_version, type_key};
use crate::objects::{is_name, item};

/// Item name of the index.
pub const ITEM: &str = "kubernetes-index.json";
/// The index format this build writes and reads.
const FORMAT: u32 = 1;
/// Entries of one index at the most.
const MAX_ENTRIES: usize = 500_000;

/// Where the objects came from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Source {
    /// `cluster` (read through the API) or `velero` (imported).
    pub kind: String,
    pub cluster: String,
    /// The API server read (for `cluster`).
    #[serde(default)]
    pub server: Option<String>,
    /// The label selector applied, if any.
    #[serde(default)]
    pub selector: Option<String>,
    /// The Velero backup's name, start time and phase (for `velero`).
    #[serde(default)]
    pub velero: Option<(String, String, String)>,
}

/// One stored object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// `resource[.group]` of its type.
    pub key: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

impl Entry {
    pub fn item(&self) -> String {
        item(&self.key, self.namespace.as_deref(), &self.name)
    }
}

/// A claim, and whether its data is in the restore point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub storage_class: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    /// A block volume (`volumeMode: Block`): its data is never copied.
    #[serde(default)]
    pub block: bool,
    /// Its files are in the restore point, as item `volumes/<namespace>/<name>`.
    pub data: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    pub source: Source,
    /// The namespaces backed up.
    pub namespaces: Vec<String>,
    /// The type of every stored object.
    pub types: Vec<ApiResource>,
    pub objects: Vec<Entry>,
    pub claims: Vec<Claim>,
    /// Item names of `objects`, to store each once.
    #[serde(skip)]
    seen: std::collections::HashSet<String>,
}

impl Index {
    pub fn new(source: Source) -> Self {
        Self {
            format: FORMAT,
            source,
            namespaces: vec![],
            types: vec![],
            objects: vec![],
            claims: vec![],
            seen: std::collections::HashSet::new(),
        }
    }

    /// Record `t` as the type of a stored object (once).
    pub fn add_type(&mut self, t: &ApiResource) {
        if !self.types.iter().any(|x| x.key() == t.key()) {
            self.types.push(t.clone());
        }
    }

    /// Index `entry` of type `t`; `false` when it is indexed already.
    pub fn add(&mut self, t: &ApiResource, entry: Entry) -> bool {
        if !self.seen.insert(entry.item()) {
            return false;
        }
        self.add_type(t);
        self.objects.push(entry);
        true
    }

    /// The type `key` of this index.
    pub fn type_of(&self, key: &str) -> Option<&ApiResource> {
        self.types.iter().find(|t| t.key() == key)
    }

    /// Store the index.
    ///
    /// # Errors
    /// The engine's.
    pub fn store(&self) -> Result<()> {
        let body =
            serde_json::to_vec(self).map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
        engine::put_document(ITEM, &body)?;
        Ok(())
    }

    /// The index of the restore point being restored or verified, checked.
    ///
    /// # Errors
    /// `not-found` without one (not a restore point of this plugin), `failed` when it is
    /// malformed or names objects it cannot hold.
    pub fn load() -> Result<Self> {
        let body = engine::read_document(ITEM).map_err(|e| {
            Error::new(
                e.code,
                format!(
                    "{ITEM}: {} (is this a restore point of the kubernetes plugin?)",
                    e.message
                ),
            )
        })?;
        Self::parse(&body)
    }

    /// An index from its bytes, checked.
    ///
    /// # Errors
    /// `failed` when it is malformed or names objects it cannot hold.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let ix: Index = serde_json::from_slice(body)
            .map_err(|e| Error::new(ErrorCode::Failed, format!("{ITEM} is malformed: {e}")))?;
        ix.check()?;
        Ok(ix)
    }

    /// Every name and type well formed, every object of a namespace the index holds.
    ///
    /// # Errors
    /// `failed` naming the first that is not.
    pub fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::new(ErrorCode::Failed, format!("{ITEM}: {why}")));
        if self.format != FORMAT {
            return bad(format!(
                "format {} is not the one this plugin reads ({FORMAT}); use the plugin version that made it",
                self.format
            ));
        }
        if self.objects.len() > MAX_ENTRIES {
            return bad(format!("more than {MAX_ENTRIES} objects"));
        }
        for ns in &self.namespaces {
            if !is_label(ns) {
                return bad(format!(
                    "a namespace `{}` is not a Kubernetes name",
                    shown(ns)
                ));
            }
        }
        for t in &self.types {
            let ok = is_resource(&t.resource)
                && (t.group.is_empty() || rehydra_plugin_sdk::kube::is_subdomain(&t.group))
                && is_version(&t.version)
                && !t.kind.is_empty()
                && t.kind.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return bad(format!(
                    "a type `{}` is malformed",
                    shown(&type_key(&t.resource, &t.group))
                ));
            }
        }
        for e in &self.objects {
            let Some(t) = self.type_of(&e.key) else {
                return bad(format!(
                    "an object's type `{}` is not among the index's types",
                    shown(&e.key)
                ));
            };
            let ns_ok = match (&e.namespace, t.namespaced) {
                (Some(ns), true) => is_label(ns) && self.namespaces.contains(ns),
                (None, false) => true,
                _ => false,
            };
            if !ns_ok || !is_name(&e.name) {
                return bad(format!(
                    "the object `{}` has a malformed name or namespace",
                    shown(&e.item())
                ));
            }
        }
        Ok(())
    }
}

fn shown(s: &str) -> String {
    rehydra_plugin_sdk::rest::shown(s, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix() -> Index {
        let mut ix = Index::new(Source {
            kind: "cluster".into(),
            cluster: "aks-a".into(),
            ..Source::default()
        });
        ix.namespaces.push("shop".into());
        ix.add_type(&ApiResource {
            group: String::new(),
            version: "v1".into(),
            resource: "configmaps".into(),
            kind: "ConfigMap".into(),
            namespaced: true,
        });
        ix.objects.push(Entry {
            key: "configmaps".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        });
        ix
    }

    #[test]
    fn a_hostile_index_is_refused() {
        assert!(ix().check().is_ok());
        assert_eq!(ix().objects[0].item(), "objects/configmaps/shop/web.json");
        let mut a = ix();
        a.objects[0].namespace = Some("../../etc".into());
        assert!(a.check().is_err());
        let mut b = ix();
        b.objects[0].name = "../x".into();
        assert!(b.check().is_err());
        let mut c = ix();
        c.objects[0].namespace = None; // a namespaced type without a namespace
        assert!(c.check().is_err());
        let mut d = ix();
        d.types[0].resource = "configmaps/../x".into();
        assert!(d.check().is_err());
        let mut e = ix();
        e.objects[0].key = "secrets".into();
        assert!(e.check().is_err());
        let mut g = ix();
        g.objects[0].namespace = Some("kube-system".into()); // not a namespace it backed up
        assert!(g.check().is_err());
        let mut f = ix();
        f.format = 2;
        assert!(f.check().unwrap_err().message.contains("format 2"));
    }
}
