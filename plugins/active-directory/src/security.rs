//! Security identifiers, GUIDs and security descriptors as people read them.
//!
//! A descriptor (`nTSecurityDescriptor`, self-relative, MS-DTYP 2.4.6) is rendered in
//! SDDL's shape and exactly: owner, group, the DACL's flags and each of its entries with
//! type, flags, rights, object types and trustee SID, so a plan can say which entries a
//! rollback adds and removes. Rights known to Active Directory are written as SDDL's
//! letters (`RPWP`), a mask with any other bit in hex; SIDs stay numeric. A descriptor
//! from a restore point is untrusted: every offset, size and count is checked, and one
//! that does not parse is shown by its size. Only `std`, so the fuzz targets compile this
//! file as it is.

/// Most sub-authorities a SID has (`SID_MAX_SUB_AUTHORITIES`).
const SUB_AUTHORITIES_MAX: u8 = 15;

/// A SID as text (`S-1-5-21-…`): exactly one SID, no bytes left over.
pub fn sid_text(b: &[u8]) -> Option<String> {
    let (&rev, rest) = b.split_first()?;
    let (&count, rest) = rest.split_first()?;
    if count > SUB_AUTHORITIES_MAX {
        return None;
    }
    let (auth, subs) = rest.split_at_checked(6)?;
    if subs.len() != usize::from(count) * 4 {
        return None;
    }
    let authority = auth.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let mut s = format!("S-{rev}-{authority}");
    for c in subs.chunks_exact(4) {
        s.push_str(&format!(
            "-{}",
            u32::from_le_bytes([c[0], c[1], c[2], c[3]])
        ));
    }
    Some(s)
}

/// A GUID as Active Directory shows it (the first three fields little-endian).
pub fn guid_text(b: &[u8]) -> Option<String> {
    let b: &[u8; 16] = b.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

/// True for the attribute that holds an object's security descriptor.
pub fn is_descriptor(attr: &str) -> bool {
    attr.eq_ignore_ascii_case("nTSecurityDescriptor")
}

/// A security descriptor's owner, group and DACL, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub owner: Option<String>,
    pub group: Option<String>,
    /// The DACL's control flags as SDDL writes them (`P`, `AR`, `AI`).
    pub dacl_flags: String,
    /// `None`: no DACL at all; `Some(None)`: a NULL DACL (no access control);
    /// otherwise its entries, in order.
    pub dacl: Option<Option<Vec<String>>>,
}

const SE_DACL_PRESENT: u16 = 0x0004;
const DACL_FLAGS: [(u16, &str); 3] = [(0x1000, "P"), (0x0100, "AR"), (0x0400, "AI")];
const DACL_BITS: u16 = 0x1000 | 0x0100 | 0x0400;
const ACE_FLAGS: [(u8, &str); 7] = [
    (0x01, "OI"),
    (0x02, "CI"),
    (0x04, "NP"),
    (0x08, "IO"),
    (0x10, "ID"),
    (0x40, "SA"),
    (0x80, "FA"),
];
const RIGHTS: [(u32, &str); 17] = [
    (0x0000_0001, "CC"),
    (0x0000_0002, "DC"),
    (0x0000_0004, "LC"),
    (0x0000_0008, "SW"),
    (0x0000_0010, "RP"),
    (0x0000_0020, "WP"),
    (0x0000_0040, "DT"),
    (0x0000_0080, "LO"),
    (0x0000_0100, "CR"),
    (0x0001_0000, "SD"),
    (0x0002_0000, "RC"),
    (0x0004_0000, "WD"),
    (0x0008_0000, "WO"),
    (0x1000_0000, "GA"),
    (0x2000_0000, "GX"),
    (0x4000_0000, "GW"),
    (0x8000_0000, "GR"),
];
/// ACE types and their SDDL names; the object types carry a flags word and GUIDs.
const ACE_TYPES: [(u8, &str, bool); 16] = [
    (0x00, "A", false),
    (0x01, "D", false),
    (0x02, "AU", false),
    (0x03, "AL", false),
    (0x05, "OA", true),
    (0x06, "OD", true),
    (0x07, "OU", true),
    (0x08, "OL", true),
    (0x09, "XA", false),
    (0x0a, "XD", false),
    (0x0b, "ZA", true),
    (0x0c, "ZD", true),
    (0x0d, "XU", false),
    (0x0f, "ZU", true),
    (0x11, "ML", false),
    (0x12, "RA", false),
];

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The SID at the start of `b`, and its length.
fn sid_in(b: &[u8]) -> Option<(String, usize)> {
    let len = 8 + usize::from(*b.get(1)?) * 4;
    Some((sid_text(b.get(..len)?)?, len))
}

/// The SID at offset `at` of the descriptor (0: none).
fn sid_at(b: &[u8], at: u32) -> Option<Option<String>> {
    if at == 0 {
        return Some(None);
    }
    Some(Some(sid_in(b.get(usize::try_from(at).ok()?..)?)?.0))
}

fn flags_text<T: Copy + Into<u32>>(v: T, names: &[(T, &str)]) -> String {
    let mut left: u32 = v.into();
    let mut s = String::new();
    for &(bit, name) in names {
        if left & bit.into() != 0 {
            s.push_str(name);
            left &= !bit.into();
        }
    }
    if left != 0 {
        s.push_str(&format!("0x{left:x}"));
    }
    s
}

/// Rights as SDDL letters, or the whole mask in hex when a bit has no letter.
fn rights_text(mask: u32) -> String {
    let known = RIGHTS.iter().fold(0u32, |a, (bit, _)| a | bit);
    if mask & !known != 0 {
        return format!("0x{mask:08x}");
    }
    RIGHTS
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// One ACE (header included) as SDDL writes it; an unknown type, or a body that does not
/// hold what its type says, in hex.
fn ace_text(ace: &[u8]) -> String {
    let (kind, flags, body) = (ace[0], ace[1], &ace[4..]);
    let raw = || {
        let hex: String = body.iter().map(|x| format!("{x:02x}")).collect();
        format!("(0x{kind:02x};{};{hex})", flags_text(flags, &ACE_FLAGS))
    };
    let Some(&(_, name, object)) = ACE_TYPES.iter().find(|(t, _, _)| *t == kind) else {
        return raw();
    };
    let parsed = || -> Option<String> {
        let mask = u32_at(body, 0)?;
        let (mut at, mut ot, mut iot) = (4usize, String::new(), String::new());
        if object {
            let which = u32_at(body, 4)?;
            if which & !3 != 0 {
                return None;
            }
            at = 8;
            if which & 1 != 0 {
                ot = guid_text(body.get(at..at + 16)?)?;
                at += 16;
            }
            if which & 2 != 0 {
                iot = guid_text(body.get(at..at + 16)?)?;
                at += 16;
            }
        }
        let (sid, len) = sid_in(body.get(at..)?)?;
        let extra = body.len() - at - len;
        let tail = if extra > 0 {
            let hex: String = body[at + len..]
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect();
            format!(";{hex}")
        } else {
            String::new()
        };
        Some(format!(
            "({name};{};{};{ot};{iot};{sid}{tail})",
            flags_text(flags, &ACE_FLAGS),
            rights_text(mask)
        ))
    };
    parsed().unwrap_or_else(raw)
}

/// Read a self-relative security descriptor; `None` when it is not one.
pub fn parse(b: &[u8]) -> Option<Descriptor> {
    if b.len() < 20 || b[0] != 1 {
        return None;
    }
    let control = u16_at(b, 2)?;
    let owner = sid_at(b, u32_at(b, 4)?)?;
    let group = sid_at(b, u32_at(b, 8)?)?;
    let dacl_at = usize::try_from(u32_at(b, 16)?).ok()?;
    let dacl = if control & SE_DACL_PRESENT == 0 {
        None
    } else if dacl_at == 0 {
        Some(None)
    } else {
        let acl = b.get(dacl_at..)?;
        let size = usize::from(u16_at(acl, 2)?);
        let count = u16_at(acl, 4)?;
        let acl = acl.get(..size)?;
        let mut at = 8usize;
        let mut entries = Vec::new();
        for _ in 0..count {
            let len = usize::from(u16_at(acl, at + 2)?);
            if len < 4 {
                return None;
            }
            entries.push(ace_text(acl.get(at..at + len)?));
            at += len;
        }
        Some(Some(entries))
    };
    Some(Descriptor {
        owner,
        group,
        dacl_flags: flags_text(control & DACL_BITS, &DACL_FLAGS),
        dacl,
    })
}

/// What changed from `old` to `new` (values of `nTSecurityDescriptor`), for a person:
/// the owner, the group, the DACL's flags and the entries it lost and gained.
pub fn change(old: &[Vec<u8>], new: &[Vec<u8>]) -> String {
    let read = |v: &[Vec<u8>]| -> Result<Option<Descriptor>, String> {
        match v.first() {
            None => Ok(None),
            Some(b) => parse(b)
                .map(Some)
                .ok_or_else(|| format!("<{} bytes, not a security descriptor>", b.len())),
        }
    };
    let (a, b) = match (read(old), read(new)) {
        (Ok(Some(a)), Ok(Some(b))) => (a, b),
        (a, b) => {
            let side = |r: Result<Option<Descriptor>, String>| match r {
                Ok(None) => "(none)".to_string(),
                Ok(Some(d)) => format!("{} entries", d.entries().len()),
                Err(e) => e,
            };
            return format!("{} → {}", side(a), side(b));
        }
    };
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none)".into());
    let mut parts = Vec::new();
    if a.owner != b.owner {
        parts.push(format!("owner {} → {}", opt(&a.owner), opt(&b.owner)));
    }
    if a.group != b.group {
        parts.push(format!("group {} → {}", opt(&a.group), opt(&b.group)));
    }
    if a.dacl_flags != b.dacl_flags {
        let f = |s: &str| {
            if s.is_empty() {
                "(none)".to_string()
            } else {
                s.to_string()
            }
        };
        parts.push(format!(
            "DACL flags {} → {}",
            f(&a.dacl_flags),
            f(&b.dacl_flags)
        ));
    }
    match (&a.dacl, &b.dacl) {
        (Some(Some(x)), Some(Some(y))) => {
            let (gone, came) = (missing(x, y), missing(y, x));
            let (gone_inherited, gone): (Vec<&str>, Vec<&str>) =
                gone.into_iter().partition(|e| inherited(e));
            let (came_inherited, came): (Vec<&str>, Vec<&str>) =
                came.into_iter().partition(|e| inherited(e));
            if !gone.is_empty() {
                parts.push(format!("DACL entries removed: {}", listed(&gone)));
            }
            if !came.is_empty() {
                parts.push(format!("DACL entries added: {}", listed(&came)));
            }
            // listed too: access checks do not care where an entry came from
            if !gone_inherited.is_empty() {
                parts.push(format!(
                    "inherited entries removed: {}",
                    listed(&gone_inherited)
                ));
            }
            if !came_inherited.is_empty() {
                parts.push(format!(
                    "inherited entries added: {}",
                    listed(&came_inherited)
                ));
            }
            if !gone_inherited.is_empty() || !came_inherited.is_empty() {
                parts.push(
                    "inherited entries follow the parent's descriptor: roll the parent back to change them".into(),
                );
            }
            if parts.is_empty() && x != y {
                parts.push("DACL: the same entries in another order".into());
            }
        }
        (x, y) if x != y => parts.push(format!("DACL {} → {}", a.dacl_text(), b.dacl_text())),
        _ => {}
    }
    if parts.is_empty() {
        let size = |v: &[Vec<u8>]| v.first().map_or(0, Vec::len);
        return format!(
            "changed outside the owner, group and DACL ({} → {} bytes)",
            size(old),
            size(new)
        );
    }
    parts.join("; ")
}

impl Descriptor {
    fn entries(&self) -> &[String] {
        match &self.dacl {
            Some(Some(e)) => e,
            _ => &[],
        }
    }

    fn dacl_text(&self) -> String {
        match &self.dacl {
            None => "absent".into(),
            Some(None) => "NULL (no access control)".into(),
            Some(Some(e)) => format!("{} entries", e.len()),
        }
    }
}

/// Entries of `from` that `to` lacks (as many times as they are missing), in order.
fn missing<'a>(from: &'a [String], to: &[String]) -> Vec<&'a str> {
    let mut left: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for e in to {
        *left.entry(e.as_str()).or_default() += 1;
    }
    from.iter()
        .map(String::as_str)
        .filter(|e| match left.get_mut(e) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

/// True for an entry the directory inherited from the parent (flag `ID`).
fn inherited(entry: &str) -> bool {
    entry.split(';').nth(1).is_some_and(|f| f.contains("ID"))
}

/// Why `values` (of `nTSecurityDescriptor`, from a restore point) must not be written
/// back, if they must not: none, several, unreadable, without an owner, without a DACL
/// (which would leave the object open to everyone), or a protected DACL holding inherited
/// entries (which no directory writes: the directory would keep them as its own).
pub fn refusal(values: &[Vec<u8>]) -> Option<&'static str> {
    let [one] = values else {
        return Some(if values.is_empty() {
            "the restore point holds none"
        } else {
            "the restore point holds several"
        });
    };
    match parse(one) {
        None => Some("the restore point's value is not a security descriptor"),
        Some(d) if d.owner.is_none() => Some("the restore point's descriptor names no owner"),
        Some(Descriptor {
            dacl: Some(Some(entries)),
            dacl_flags,
            ..
        }) => (dacl_flags.contains('P') && entries.iter().any(|e| inherited(e))).then_some(
            "the restore point's descriptor is protected yet holds inherited entries, which no directory writes",
        ),
        Some(_) => Some(
            "the restore point's descriptor has no DACL, which would give everyone every right",
        ),
    }
}

/// Every entry, none left out: an entry a plan does not show could be one that grants.
fn listed(entries: &[&str]) -> String {
    entries.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(sub: &[u32]) -> Vec<u8> {
        let mut s = vec![1, sub.len() as u8, 0, 0, 0, 0, 0, 5];
        for x in sub {
            s.extend(x.to_le_bytes());
        }
        s
    }

    fn ace(kind: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut a = vec![kind, flags];
        a.extend(((body.len() + 4) as u16).to_le_bytes());
        a.extend(body);
        a
    }

    fn allow(mask: u32, who: &[u32]) -> Vec<u8> {
        let mut b = mask.to_le_bytes().to_vec();
        b.extend(sid(who));
        ace(0, 0x02, &b)
    }

    fn descriptor(control: u16, owner: &[u32], aces: &[Vec<u8>]) -> Vec<u8> {
        let o = sid(owner);
        let mut acl_body: Vec<u8> = aces.concat();
        let mut acl = vec![4, 0];
        acl.extend(((acl_body.len() + 8) as u16).to_le_bytes());
        acl.extend((aces.len() as u16).to_le_bytes());
        acl.extend([0, 0]);
        acl.append(&mut acl_body);
        let mut d = vec![1, 0];
        d.extend((control | 0x8004).to_le_bytes());
        d.extend(20u32.to_le_bytes());
        d.extend(0u32.to_le_bytes());
        d.extend(0u32.to_le_bytes());
        d.extend(((20 + o.len()) as u32).to_le_bytes());
        d.extend(&o);
        d.extend(acl);
        d
    }

    #[test]
    fn descriptors_read_as_sddl_exactly() {
        let guid: Vec<u8> = (0u8..16).collect();
        let mut obj = 0x10u32.to_le_bytes().to_vec();
        obj.extend(1u32.to_le_bytes());
        obj.extend(&guid);
        obj.extend(sid(&[11]));
        let d = descriptor(
            0x1400,
            &[32, 544],
            &[
                allow(0x000f_01ff, &[21, 1, 2, 3, 512]),
                ace(0x05, 0x12, &obj),
                allow(0x0000_0200, &[18]),
                ace(0x42, 0, &[1, 2, 3]),
            ],
        );
        let p = parse(&d).unwrap();
        assert_eq!(p.owner.as_deref(), Some("S-1-5-32-544"));
        assert_eq!(p.group, None);
        assert_eq!(p.dacl_flags, "PAI");
        assert_eq!(
            p.entries(),
            [
                "(A;CI;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;S-1-5-21-1-2-3-512)",
                "(OA;CIID;RP;03020100-0504-0706-0809-0a0b0c0d0e0f;;S-1-5-11)",
                // a bit without a letter: the whole mask in hex
                "(A;CI;0x00000200;;;S-1-5-18)",
                "(0x42;;010203)",
            ]
        );
        // hostile sizes and offsets: no panic, no descriptor
        assert_eq!(parse(&d[..19]), None);
        // at most 15 sub-authorities
        assert_eq!(sid_text(&sid(&[1; 15])).map(|s| s.len()), Some(35));
        assert_eq!(sid_text(&sid(&[1; 16])), None);
        for cut in 20..d.len() {
            let _ = parse(&d[..cut]);
        }
        let mut bad = d.clone();
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&bad), None);
        let mut zero = d.clone();
        let at = 20 + 16 + 8 + 2;
        zero[at..at + 2].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(parse(&zero), None, "an ACE of size 0");
    }

    /// The fixture's folder (`tests/fixtures/active-directory` of the workspace).
    fn fixture(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/active-directory");
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn samba_descriptors_read_as_samba_writes_them() {
        let d = parse(&fixture("samba-4.17-ou-staff-everyone-added.sd")).unwrap();
        let sddl = String::from_utf8(fixture("samba-4.17-ou-staff-everyone-added.sddl")).unwrap();
        // Samba's DACL part: `D:AI(…)(…)…` up to the SACL
        let dacl = sddl.split("D:").nth(1).unwrap().split("S:").next().unwrap();
        assert_eq!(d.dacl_flags, "AI");
        let theirs: Vec<&str> = dacl
            .trim_start_matches("AI")
            .trim_matches(['(', ')', '\n'])
            .split(")(")
            .collect();
        let ours = d.entries();
        assert_eq!(ours.len(), theirs.len(), "{ours:?}");
        assert_eq!(ours.len(), 30);
        let domain = d
            .owner
            .as_deref()
            .unwrap()
            .rsplit_once('-')
            .unwrap()
            .0
            .to_string();
        assert!(
            domain.starts_with("S-1-5-21-"),
            "owner Domain Admins: {:?}",
            d.owner
        );
        let alias = |a: &str| -> String {
            match a {
                "WD" => "S-1-1-0".into(),
                "SY" => "S-1-5-18".into(),
                "AU" => "S-1-5-11".into(),
                "ED" => "S-1-5-9".into(),
                "PS" => "S-1-5-10".into(),
                "BA" => "S-1-5-32-544".into(),
                "AO" => "S-1-5-32-548".into(),
                "PO" => "S-1-5-32-550".into(),
                "RU" => "S-1-5-32-554".into(),
                "DA" => format!("{domain}-512"),
                "EA" => format!("{domain}-519"),
                sid => sid.into(),
            }
        };
        let letters = |r: &str| {
            let mut v: Vec<String> = r
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into())
                .collect();
            v.sort();
            v
        };
        for (o, t) in ours.iter().zip(&theirs) {
            let o: Vec<&str> = o.trim_matches(['(', ')']).split(';').collect();
            let t: Vec<&str> = t.split(';').collect();
            assert_eq!(
                (o[0], o[1], o[3], o[4]),
                (t[0], t[1], t[3], t[4]),
                "{o:?} {t:?}"
            );
            assert_eq!(letters(o[2]), letters(t[2]), "{o:?} {t:?}");
            assert_eq!(o[5], alias(t[5]), "{o:?} {t:?}");
        }
        assert_eq!(ours[0], "(A;CI;RPWP;;;S-1-1-0)");
        for f in ["samba-4.17-domain-root.sd", "samba-4.17-user-carol.sd"] {
            let d = parse(&fixture(f)).unwrap();
            assert!(d.entries().len() > 10, "{f}: {d:?}");
            assert!(
                !d.entries().iter().any(|e| e.starts_with("(0x")),
                "{f}: {d:?}"
            );
        }
    }

    #[test]
    fn a_change_names_the_entries_removed_and_added() {
        let admins = allow(0x000f_01ff, &[21, 1, 2, 3, 512]);
        let everyone = allow(0x30, &[]);
        let old = descriptor(0, &[32, 544], &[admins.clone(), everyone.clone()]);
        let new = descriptor(0x1000, &[32, 544], &[admins.clone(), allow(0x10, &[11])]);
        assert_eq!(
            change(std::slice::from_ref(&old), &[new]),
            "DACL flags (none) → P; DACL entries removed: (A;CI;RPWP;;;S-1-5); DACL entries added: (A;CI;RP;;;S-1-5-11)"
        );
        let swapped = descriptor(0, &[32, 544], &[everyone.clone(), admins.clone()]);
        assert_eq!(
            change(std::slice::from_ref(&old), &[swapped]),
            "DACL: the same entries in another order"
        );
        let other_owner = descriptor(0, &[21, 1, 2, 3, 1105], &[]);
        assert!(
            change(std::slice::from_ref(&old), &[other_owner])
                .starts_with("owner S-1-5-32-544 → S-1-5-21-1-2-3-1105; DACL entries removed: ")
        );
        assert_eq!(
            change(&[], std::slice::from_ref(&old)),
            "(none) → 2 entries"
        );
        assert_eq!(
            change(&[vec![9; 7]], std::slice::from_ref(&old)),
            "<7 bytes, not a security descriptor> → 2 entries"
        );
        // inherited entries follow the parent: counted, with what to do
        let mut inh = allow(0x10, &[11]);
        inh[1] = 0x12;
        let with_inherited = descriptor(0, &[32, 544], &[admins.clone(), everyone.clone(), inh]);
        assert_eq!(
            change(
                std::slice::from_ref(&old),
                std::slice::from_ref(&with_inherited)
            ),
            "inherited entries added: (A;CIID;RP;;;S-1-5-11); inherited entries follow the parent's descriptor: roll the parent back to change them"
        );
        assert_eq!(refusal(std::slice::from_ref(&with_inherited)), None);
        // protected, yet with an inherited entry: made up, refused
        let mut protected = with_inherited.clone();
        protected[3] |= 0x10;
        assert_eq!(parse(&protected).unwrap().dacl_flags, "P");
        assert!(refusal(&[protected]).unwrap().contains("protected"));
        assert!(refusal(&[]).is_some() && refusal(&[old.clone(), old.clone()]).is_some());
        assert!(refusal(&[vec![1; 30]]).is_some());
        let mut no_dacl = old.clone();
        no_dacl[2] &= !0x04;
        assert_eq!(parse(&no_dacl).unwrap().dacl, None);
        assert!(refusal(&[no_dacl]).unwrap().contains("no DACL"));
        let mut null_dacl = old.clone();
        null_dacl[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&null_dacl).unwrap().dacl, Some(None));
        assert!(refusal(&[null_dacl]).is_some());
        let mut padded = old.clone();
        padded.push(0);
        assert_eq!(
            change(std::slice::from_ref(&old), &[padded]),
            format!(
                "changed outside the owner, group and DACL ({} → {} bytes)",
                old.len(),
                old.len() + 1
            )
        );
    }
}
