//! What changed in the directory between two restore points, or between a restore point
//! and the live directory: objects added, deleted, moved or renamed, and changed, with
//! the attributes that changed. Objects are matched by `objectGUID`; bookkeeping the
//! directory changes by itself (USNs, logon counters, replication metadata) is ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dir;
use crate::ldif::Obj;

/// The document a backup writes: changes since the previous restore point.
pub const ITEM: &str = "changes.json";

/// Attributes the directory changes by itself.
const NOISE: [&str; 16] = [
    "uSNChanged",
    "uSNCreated",
    "whenChanged",
    "replPropertyMetaData",
    "dSCorePropagationData",
    "lastLogon",
    "lastLogonTimestamp",
    "lastLogoff",
    "logonCount",
    "badPwdCount",
    "badPasswordTime",
    "msDS-RevealedDSAs",
    "repsFrom",
    "repsTo",
    "msDS-NcType",
    "serverState",
];

/// True for an attribute worth comparing and restoring.
pub fn meaningful(attr: &str) -> bool {
    !NOISE.iter().any(|n| n.eq_ignore_ascii_case(attr))
}

/// FNV-1a, 64 bits: enough to notice a changed value (not a security boundary).
fn fnv(parts: &[Vec<u8>]) -> u64 {
    let mut sorted: Vec<&Vec<u8>> = parts.iter().collect();
    sorted.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in sorted {
        for &b in p.iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// An object reduced to what comparing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub dn: String,
    pub attrs: BTreeMap<String, u64>,
}

/// Digests of a whole restore point, by GUID.
#[derive(Debug, Clone, Default)]
pub struct Digests(pub BTreeMap<Vec<u8>, Digest>);

impl Digests {
    pub fn add(&mut self, o: &Obj) {
        let Some(g) = o.values("objectGUID").first() else {
            return;
        };
        let attrs = o
            .attrs
            .iter()
            .filter(|(k, _)| meaningful(k))
            .map(|(k, v)| (k.to_ascii_lowercase(), fnv(v)))
            .collect();
        self.0.insert(
            g.clone(),
            Digest {
                dn: o.dn.clone(),
                attrs,
            },
        );
    }
}

/// One changed object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Changed {
    pub dn: String,
    pub guid: String,
    /// Its DN before, when it moved or was renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    pub attributes: Vec<String>,
}

/// Objects added, deleted and changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Changes {
    /// What the comparison started from (a restore point's time).
    pub since: String,
    pub added: Vec<String>,
    pub deleted: Vec<String>,
    pub changed: Vec<Changed>,
}

impl Changes {
    pub fn summary(&self) -> String {
        format!(
            "since {}: {} added, {} deleted, {} changed",
            self.since,
            self.added.len(),
            self.deleted.len(),
            self.changed.len()
        )
    }
}

/// What changed from `old` to `new`.
pub fn compare(old: &Digests, new: &Digests, since: &str) -> Changes {
    let mut c = Changes {
        since: since.into(),
        ..Changes::default()
    };
    for (g, n) in &new.0 {
        match old.0.get(g) {
            None => c.added.push(n.dn.clone()),
            Some(o) => {
                let mut attrs: Vec<String> = n
                    .attrs
                    .iter()
                    .filter(|(k, v)| o.attrs.get(*k) != Some(v))
                    .map(|(k, _)| k.clone())
                    .collect();
                attrs.extend(
                    o.attrs
                        .keys()
                        .filter(|k| !n.attrs.contains_key(*k))
                        .cloned(),
                );
                attrs.sort();
                // a rename changes the naming attributes; a move only the DN
                let moved = !o.dn.eq_ignore_ascii_case(&n.dn);
                if !attrs.is_empty() || moved {
                    c.changed.push(Changed {
                        dn: n.dn.clone(),
                        guid: dir::guid_text(g).unwrap_or_default(),
                        was: moved.then(|| o.dn.clone()),
                        attributes: attrs,
                    });
                }
            }
        }
    }
    for (g, o) in &old.0 {
        if !new.0.contains_key(g) {
            c.deleted.push(o.dn.clone());
        }
    }
    c.added.sort();
    c.deleted.sort();
    c
}

/// One attribute's change for a person to read, `name: old → new`; a security
/// descriptor by the entries it lost and gained.
pub fn show_change(attr: &str, old: &[Vec<u8>], new: &[Vec<u8>]) -> String {
    if crate::security::is_descriptor(attr) {
        format!("{attr}: {}", crate::security::change(old, new))
    } else {
        format!("{attr}: {} → {}", show(old), show(new))
    }
}

/// Values for a person to read: text as it is (80 characters at most), binary by size,
/// the first five of many.
pub fn show(v: &[Vec<u8>]) -> String {
    const MOST: usize = 5;
    let mut s: Vec<String> = v
        .iter()
        .take(MOST)
        .map(|x| match std::str::from_utf8(x) {
            Ok(t) if t.chars().all(|c| !c.is_control()) => t.chars().take(80).collect(),
            _ => format!("<{} bytes>", x.len()),
        })
        .collect();
    if v.len() > MOST {
        s.push(format!("… {} values in all", v.len()));
    }
    if s.is_empty() {
        "(none)".into()
    } else {
        s.join("; ")
    }
}

/// The values of one attribute.
pub type Values = Vec<Vec<u8>>;

/// The meaningful attributes whose values differ between `old` and `new`, with both
/// sides (values compared regardless of order).
pub fn differences(old: &Obj, new: &Obj) -> Vec<(String, Values, Values)> {
    let sorted = |v: &[Vec<u8>]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let mut names: Vec<String> = old
        .attrs
        .keys()
        .chain(new.attrs.keys())
        .filter(|k| meaningful(k))
        .map(|k| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|k| {
            let (a, b) = (sorted(old.values(&k)), sorted(new.values(&k)));
            (a != b).then_some((k, a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(guid: u8, dn: &str, attrs: &[(&str, &str)]) -> Obj {
        let mut o = Obj {
            dn: dn.into(),
            ..Obj::default()
        };
        o.attrs.insert("objectGUID".into(), vec![vec![guid; 16]]);
        for (k, v) in attrs {
            o.attrs
                .entry((*k).into())
                .or_default()
                .push(v.as_bytes().to_vec());
        }
        o
    }

    fn digests(objs: &[Obj]) -> Digests {
        let mut d = Digests::default();
        for o in objs {
            d.add(o);
        }
        d
    }

    #[test]
    fn changes_name_objects_and_attributes_and_ignore_bookkeeping() {
        let old = digests(&[
            obj(1, "CN=a,DC=t", &[("mail", "a@t"), ("uSNChanged", "10")]),
            obj(
                2,
                "CN=b,DC=t",
                &[("member", "CN=a,DC=t"), ("member", "CN=c,DC=t")],
            ),
            obj(3, "CN=gone,DC=t", &[]),
            obj(4, "CN=m,OU=x,DC=t", &[("title", "x")]),
        ]);
        let new = digests(&[
            obj(1, "CN=a,DC=t", &[("mail", "a@t"), ("uSNChanged", "99")]),
            // the same members in another order: unchanged
            obj(
                2,
                "CN=b,DC=t",
                &[
                    ("member", "CN=c,DC=t"),
                    ("member", "CN=a,DC=t"),
                    ("info", "new"),
                ],
            ),
            obj(5, "CN=new,DC=t", &[]),
            obj(4, "CN=m,OU=y,DC=t", &[]),
        ]);
        let c = compare(&old, &new, "yesterday");
        assert_eq!(c.added, vec!["CN=new,DC=t"]);
        assert_eq!(c.deleted, vec!["CN=gone,DC=t"]);
        assert_eq!(c.changed.len(), 2, "{c:?}");
        assert_eq!(c.changed[0].dn, "CN=b,DC=t");
        assert_eq!(c.changed[0].attributes, vec!["info"]);
        assert_eq!(c.changed[1].was.as_deref(), Some("CN=m,OU=x,DC=t"));
        assert_eq!(c.changed[1].attributes, vec!["title"]);
        assert_eq!(
            compare(&new, &new, "now"),
            Changes {
                since: "now".into(),
                ..Changes::default()
            }
        );
    }

    #[test]
    fn differences_show_both_sides_and_ignore_order_and_bookkeeping() {
        let old = obj(
            1,
            "CN=a,DC=t",
            &[
                ("title", "Operator"),
                ("member", "x"),
                ("member", "y"),
                ("logonCount", "1"),
            ],
        );
        let new = obj(
            1,
            "CN=a,DC=t",
            &[
                ("Title", "Intern"),
                ("member", "y"),
                ("member", "x"),
                ("logonCount", "9"),
                ("mail", "a@t"),
            ],
        );
        let d = differences(&old, &new);
        let names: Vec<&str> = d.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(names, ["mail", "title"]);
        assert_eq!(show(&d[1].1), "Operator");
        assert_eq!(show(&d[1].2), "Intern");
        assert_eq!(show(&d[0].1), "(none)");
        assert_eq!(show(&[vec![0u8, 1, 2]]), "<3 bytes>");
    }
}
