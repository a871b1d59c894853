//! Reading the directory: the root DSE, whole subtrees page by page, one object by
//! GUID (deleted ones too), and the identifiers Active Directory keeps in binary.

use rehydra_plugin_sdk::ldap::{self, Controls, Query, Scope};
use rehydra_plugin_sdk::prelude::*;

use crate::ldif::Obj;

/// Entries per page (Active Directory's default `MaxPageSize`).
const PAGE: u32 = 1000;

fn obj(e: ldap::Entry) -> Obj {
    let mut o = Obj {
        dn: e.dn,
        ..Obj::default()
    };
    for a in e.attributes {
        o.attrs.entry(a.name).or_default().extend(a.values);
    }
    o
}

/// Every object `filter` finds under `base`, with `attributes` (empty: all user ones).
pub fn search(
    directory: &str,
    base: &str,
    scope: Scope,
    filter: &str,
    attributes: &[&str],
    controls: Controls,
    mut each: impl FnMut(Obj) -> Result<()>,
) -> Result<()> {
    let q = Query {
        base: base.into(),
        scope,
        filter: filter.into(),
        attributes: attributes.iter().map(|a| (*a).to_string()).collect(),
        controls,
    };
    ldap::search_all(directory, &q, PAGE, |e| each(obj(e)))
}

/// Object `dn` with `attributes`; `None` when there is no such object.
pub fn read(directory: &str, dn: &str, attributes: &[&str]) -> Result<Option<Obj>> {
    let mut found = None;
    let searched = search(
        directory,
        dn,
        Scope::Base,
        "(objectClass=*)",
        attributes,
        Controls::empty(),
        |o| {
            found.get_or_insert(o);
            Ok(())
        },
    );
    match searched {
        Ok(()) => Ok(found),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The root DSE (naming contexts, functional levels, highest committed USN …).
pub fn root_dse(directory: &str) -> Result<Obj> {
    read(directory, "", &["*", "+"])?.ok_or_else(|| Error {
        code: ErrorCode::Failed,
        message: format!("directory `{directory}` sent no root DSE"),
    })
}

/// The object with `guid` under `base`, live or deleted (a tombstone, or with the Recycle
/// Bin a deleted object), with its security descriptor (owner, group, DACL) where the
/// bind account may read it.
pub fn by_guid(directory: &str, base: &str, guid: &[u8]) -> Result<Option<Obj>> {
    one_by_guid(
        directory,
        base,
        guid,
        &[
            "*",
            "isDeleted",
            "isRecycled",
            "lastKnownParent",
            "nTSecurityDescriptor",
        ],
        Controls::SECURITY_DESCRIPTOR,
    )
}

/// Whether the directory holds the object with `guid` (under `base`), and if so whether
/// it is deleted: `isDeleted` alone is read.
pub fn deleted_by_guid(directory: &str, base: &str, guid: &[u8]) -> Result<Option<bool>> {
    let o = one_by_guid(directory, base, guid, &["isDeleted"], Controls::empty())?;
    Ok(o.map(|o| {
        o.text("isDeleted")
            .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
    }))
}

/// `attributes` of the object with `guid`, live or deleted, with the `more` controls.
fn one_by_guid(
    directory: &str,
    base: &str,
    guid: &[u8],
    attributes: &[&str],
    more: Controls,
) -> Result<Option<Obj>> {
    let filter = format!("(objectGUID={})", escape_bytes(guid));
    let mut found = None;
    search(
        directory,
        base,
        Scope::Subtree,
        &filter,
        attributes,
        Controls::SHOW_DELETED | Controls::SHOW_RECYCLED | more,
        |o| {
            found.get_or_insert(o);
            Ok(())
        },
    )?;
    Ok(found)
}

/// Bytes as an LDAP filter value (`\xx` each).
pub fn escape_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

pub use crate::security::{guid_text, sid_text};

/// The parent DN of `dn` (after its first unescaped comma).
pub fn parent(dn: &str) -> Option<&str> {
    let b = dn.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b',' => return Some(&dn[i + 1..]),
            _ => i += 1,
        }
    }
    None
}

/// The first RDN of `dn` (`CN=Bob Jones`).
pub fn rdn(dn: &str) -> &str {
    parent(dn).map_or(dn, |p| &dn[..dn.len() - p.len() - 1])
}

/// True if `dn` is `base` or lies below it (compared without case).
pub fn within(dn: &str, base: &str) -> bool {
    // walk the parents (escaped commas are not separators), so `CN=x\,OU=a,DC=t` is not
    // under `OU=a,DC=t`
    let mut cur = Some(dn);
    while let Some(d) = cur {
        if d.eq_ignore_ascii_case(base) {
            return true;
        }
        cur = parent(d);
    }
    false
}

/// Values of `name` including those the directory sends in ranges (`member;range=0-1499`
/// for large groups): the rest is asked for until the range ends with `*`.
pub fn complete_ranges(directory: &str, o: &mut Obj) -> Result<()> {
    let ranged: Vec<String> = o
        .attrs
        .keys()
        .filter(|k| k.contains(";range="))
        .cloned()
        .collect();
    for key in ranged {
        let Some((name, range)) = key.split_once(";range=") else {
            continue;
        };
        let mut values = o.attrs.remove(&key).unwrap_or_default();
        let mut end = range
            .split_once('-')
            .map(|(_, e)| e.to_string())
            .unwrap_or_default();
        let mut rounds = 0;
        while end != "*" {
            let next: u64 = end.parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorCode::Failed,
                    format!("{}: the directory sent the range `{key}`", o.dn),
                )
            })? + 1;
            rounds += 1;
            if rounds > 100_000 {
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!("{}: too many ranges of {name}", o.dn),
                ));
            }
            let ask = format!("{name};range={next}-*");
            let got = read(directory, &o.dn, &[&ask])?.ok_or_else(|| {
                Error::new(
                    ErrorCode::Failed,
                    format!("{}: gone while the ranges of {name} were read", o.dn),
                )
            })?;
            let Some((k, v)) = got.attrs.into_iter().find(|(k, _)| {
                k.to_ascii_lowercase()
                    .starts_with(&format!("{};range=", name.to_ascii_lowercase()))
            }) else {
                break;
            };
            values.extend(v);
            end = k
                .rsplit_once('-')
                .map(|(_, e)| e.to_string())
                .unwrap_or_else(|| "*".into());
        }
        o.attrs.entry(name.to_string()).or_default().extend(values);
    }
    Ok(())
}

/// Depth of a DN (its number of RDNs), so parents sort before children.
pub fn depth(dn: &str) -> usize {
    let mut n = 1;
    let mut cur = dn;
    while let Some(p) = parent(cur) {
        n += 1;
        cur = p;
    }
    n
}

/// The domain's DNS name from its naming context (`DC=test,DC=lan` → `test.lan`).
pub fn dns_name(nc: &str) -> String {
    nc.split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("dc")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_read_as_windows_shows_them() {
        // 97d65296-d28a-488b-9b11-e3040fd2929d, as the directory stores it
        let g = [
            0x96, 0x52, 0xd6, 0x97, 0x8a, 0xd2, 0x8b, 0x48, 0x9b, 0x11, 0xe3, 0x04, 0x0f, 0xd2,
            0x92, 0x9d,
        ];
        assert_eq!(
            guid_text(&g).unwrap(),
            "97d65296-d28a-488b-9b11-e3040fd2929d"
        );
        assert_eq!(guid_text(&g[..15]), None);
        let sid = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0];
        assert_eq!(sid_text(&sid).unwrap(), "S-1-5-32-544");
        assert_eq!(sid_text(&sid[..15]), None);
        assert_eq!(sid_text(&[1]), None);
    }

    #[test]
    fn dns_walk_respects_escaped_commas() {
        let dn = r"CN=Jones\, Bob,OU=Staff,DC=test,DC=lan";
        assert_eq!(parent(dn), Some("OU=Staff,DC=test,DC=lan"));
        assert_eq!(rdn(dn), r"CN=Jones\, Bob");
        assert_eq!(depth(dn), 4);
        assert!(within(dn, "ou=staff,dc=test,dc=lan"));
        assert!(!within(
            "OU=Staffing,DC=test,DC=lan",
            "OU=Staff,DC=test,DC=lan"
        ));
        assert_eq!(dns_name("DC=Test,DC=lan"), "test.lan");
    }
}
