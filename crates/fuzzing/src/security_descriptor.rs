//! The security descriptor reader of the `active-directory` plugin, compiled here from
//! the plugin's own source (it uses only std).

#[path = "../../../plugins/active-directory/src/security.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod security;

/// A restore point's `nTSecurityDescriptor` may come from another host: reading it, and
/// naming what changed between it and anything else, never panics; a descriptor that
/// reads is counted right, and its entries are never longer than what its bytes can say.
pub fn security_descriptor(data: &[u8]) {
    let whole = [data.to_vec()];
    let d = security::parse(data);
    let half = data.len() / 2;
    let (a, b) = ([data[..half].to_vec()], [data[half..].to_vec()]);
    for (x, y) in [
        (&a[..], &b[..]),
        (&whole[..], &a[..]),
        (&[][..], &whole[..]),
    ] {
        let said = security::change(x, y);
        assert!(!said.is_empty());
    }
    let Some(d) = d else { return };
    let said = security::change(&[], &whole);
    let n = d.dacl.clone().flatten().map_or(0, |e| e.len());
    assert_eq!(said, format!("(none) → {n} entries"));
    // no entry is made up: each names a type, flags and fields as read
    for e in d.dacl.into_iter().flatten().flatten() {
        assert!(e.starts_with('(') && e.ends_with(')'), "{e}");
        // a SID's 4-byte sub-authority takes at most 11 characters
        assert!(e.len() <= 3 * data.len() + 64, "{e}");
    }
}
