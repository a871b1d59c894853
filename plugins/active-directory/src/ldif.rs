//! LDIF (RFC 2849) content records: how a restore point keeps directory objects, readable
//! by an admin and by `ldapadd`/`ldifde`.
//!
//! Written: `dn:` and every value as `name: text` when it is safe text, else `name::
//! base64`; lines folded at 76 characters. Read: the same plus comments, `version:`,
//! folded lines and CRLF. A restore point may come from another host: the parser
//! refuses what it does not understand (URL values, change records, missing `dn:`) with
//! the line number, and never panics.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// A directory object: its DN and attributes (names as the directory spells them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Obj {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Obj {
    /// The values of `name` (any case).
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The first value of `name` as text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.values(name)
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of `name` as text.
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.values(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// True if `objectClass` has `class`.
    pub fn is(&self, class: &str) -> bool {
        self.values("objectClass")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(class.as_bytes()))
    }
}

/// A value that may be written as plain text (RFC 2849 SAFE-STRING).
fn safe(v: &[u8]) -> bool {
    match v.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => {
            v.last() != Some(&b' ')
                && std::str::from_utf8(v).is_ok()
                && v.iter()
                    .all(|&b| b != 0 && b != b'\n' && b != b'\r' && b < 0x80)
        }
    }
}

fn fold(line: &str, out: &mut String) {
    let mut rest = line;
    let mut first = true;
    while !rest.is_empty() {
        let width = if first { 76 } else { 75 };
        let mut end = rest.len().min(width);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if !first {
            out.push(' ');
        }
        out.push_str(&rest[..end]);
        out.push('\n');
        rest = &rest[end..];
        first = false;
    }
}

fn line(name: &str, v: &[u8], out: &mut String) {
    let l = if safe(v) {
        format!("{name}: {}", String::from_utf8_lossy(v))
    } else {
        format!("{name}:: {}", B64.encode(v))
    };
    fold(&l, out);
}

/// An attribute name LDIF can carry (letters, digits, `-`, `.`, `;` options).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b';' || b == b'.')
}

/// One object as an LDIF record (ending in a blank line).
pub fn write(o: &Obj, out: &mut String) {
    line("dn", o.dn.as_bytes(), out);
    for (name, values) in &o.attrs {
        for v in values {
            line(name, v, out);
        }
    }
    out.push('\n');
}

/// A record that could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Every record of `text`.
///
/// # Errors
/// A line that is not `name: value`, `name:: base64`, a comment or a continuation; a
/// record without `dn:` first; URL values (`name:<`); change records.
pub fn parse(text: &str) -> Result<Vec<Obj>, ParseError> {
    // unfold: a line starting with one space continues the previous one
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = raw.strip_prefix(' ') {
            match lines.last_mut() {
                Some((_, prev)) if !prev.is_empty() && !prev.starts_with('#') => {
                    prev.push_str(cont);
                }
                Some((_, prev)) if prev.starts_with('#') => {}
                _ => {
                    return Err(ParseError {
                        line: i + 1,
                        reason: "a continuation line with nothing to continue".into(),
                    });
                }
            }
        } else {
            lines.push((i + 1, raw.to_string()));
        }
    }
    let mut out = Vec::new();
    let mut cur: Option<Obj> = None;
    // inside a search reference (`ref:` records, as ldapsearch and ldbsearch print them)
    let mut skipping = false;
    for (n, l) in lines {
        if l.starts_with('#') {
            continue;
        }
        if l.is_empty() {
            if let Some(o) = cur.take() {
                out.push(o);
            }
            skipping = false;
            continue;
        }
        if skipping || (cur.is_none() && l.starts_with("ref:")) {
            skipping = true;
            continue;
        }
        let err = |reason: &str| ParseError {
            line: n,
            reason: reason.into(),
        };
        let (name, value) = l.split_once(':').ok_or_else(|| err("not `name: value`"))?;
        let value = if let Some(b) = value.strip_prefix(':') {
            B64.decode(b.trim())
                .map_err(|_| err("the value is not base64"))?
        } else if value.starts_with('<') {
            return Err(err("URL values are not read"));
        } else {
            value.strip_prefix(' ').unwrap_or(value).as_bytes().to_vec()
        };
        if !valid_name(name) {
            return Err(err("not an attribute name"));
        }
        match &mut cur {
            None if name.eq_ignore_ascii_case("version") && out.is_empty() => {}
            None if name.eq_ignore_ascii_case("dn") => {
                let dn = String::from_utf8(value).map_err(|_| err("the DN is not UTF-8"))?;
                cur = Some(Obj {
                    dn,
                    attrs: BTreeMap::new(),
                });
            }
            None => return Err(err("a record must start with `dn:`")),
            Some(_) if name.eq_ignore_ascii_case("changetype") => {
                return Err(err("change records are not read"));
            }
            Some(_) if name.eq_ignore_ascii_case("dn") => {
                return Err(err("a second `dn:` in one record"));
            }
            Some(o) => {
                // attribute names keep the spelling of their first appearance
                let key = o
                    .attrs
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(name))
                    .cloned()
                    .unwrap_or_else(|| name.to_string());
                o.attrs.entry(key).or_default().push(value);
            }
        }
    }
    if let Some(o) = cur {
        out.push(o);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(dn: &str, attrs: &[(&str, &[u8])]) -> Obj {
        let mut o = Obj {
            dn: dn.into(),
            ..Obj::default()
        };
        for (n, v) in attrs {
            o.attrs.entry((*n).into()).or_default().push(v.to_vec());
        }
        o
    }

    #[test]
    fn objects_round_trip_with_binary_and_long_values() {
        let long = "x".repeat(300);
        let objs = vec![
            obj(
                "CN=Ünïcode User,OU=Staff,DC=test,DC=lan",
                &[
                    ("objectGUID", &[0, 1, 2, 255, 10, 13]),
                    ("description", long.as_bytes()),
                    ("cn", "Ünïcode User".as_bytes()),
                    ("member", b"CN=a,DC=test"),
                    ("member", b"CN=b,DC=test"),
                    ("empty", b""),
                    ("lead", b" space"),
                ],
            ),
            obj("DC=test,DC=lan", &[("objectClass", b"domain")]),
        ];
        let mut text = String::new();
        for o in &objs {
            write(o, &mut text);
        }
        assert!(text.lines().all(|l| l.len() <= 77), "{text}");
        assert_eq!(parse(&text).unwrap(), objs);
    }

    #[test]
    fn samba_tombstones_parse() {
        let text =
            include_str!("../../../tests/fixtures/active-directory/samba-4.17-bob-tombstone.ldif");
        let objs = parse(text).unwrap();
        assert_eq!(objs.len(), 1);
        let bob = &objs[0];
        assert!(
            bob.dn.starts_with("CN=Bob Jones\\0ADEL:97d65296"),
            "{}",
            bob.dn
        );
        assert!(bob.dn.ends_with(",CN=Deleted Objects,DC=test,DC=lan"));
        assert_eq!(bob.text("isDeleted").as_deref(), Some("TRUE"));
        assert_eq!(
            bob.text("lastKnownParent").as_deref(),
            Some("CN=Users,DC=test,DC=lan")
        );
        assert_eq!(
            bob.text("cn").unwrap(),
            "Bob Jones\nDEL:97d65296-d28a-488b-9b11-e3040fd2929d"
        );
        assert!(
            bob.values("memberOf").is_empty(),
            "stripped without the Recycle Bin"
        );
        let alice = parse(include_str!(
            "../../../tests/fixtures/active-directory/samba-4.17-alice-after-reanimate.ldif"
        ))
        .unwrap();
        // the entry, then (after three skipped referrals) its replication metadata
        assert_eq!(alice.len(), 2);
        assert!(alice[0].values("isDeleted").is_empty());
        assert_eq!(alice[0].text("givenName").as_deref(), Some("Alice"));
        assert!(!alice[1].values("replPropertyMetaData").is_empty());
        let container = parse(include_str!(
            "../../../tests/fixtures/active-directory/samba-4.17-deleted-objects-container.ldif"
        ))
        .unwrap();
        assert!(container[0].dn.starts_with("CN=Deleted Objects,"));
    }

    #[test]
    fn hostile_records_are_refused_by_line() {
        for (text, line) in [
            ("cn: x\n", 1),
            ("dn: a\nfoo\n", 2),
            ("dn: a\nx:: !!!\n", 2),
            ("dn: a\nx:< file:///etc/passwd\n", 2),
            ("dn: a\nchangetype: delete\n", 2),
            (" cont\n", 1),
            ("dn: a\nbad name: v\n", 2),
            ("dn: a\ndn: b\n", 2),
        ] {
            assert_eq!(parse(text).unwrap_err().line, line, "{text:?}");
        }
        assert_eq!(parse("version: 1\n\n# c\n dn: ignored\n").unwrap(), vec![]);
    }
}
