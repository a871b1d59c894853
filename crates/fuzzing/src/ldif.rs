//! The LDIF reader and writer of the `active-directory` plugin, compiled here from the
//! plugin's own source: the plugin depends only on the SDK, and this module only on std
//! and base64, so the fuzz build stays free of the SDK.

#[path = "../../../plugins/active-directory/src/ldif.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod parser;

/// A restore point's LDIF may come from another host: parsing never panics, and every
/// object that parses (with names the writer accepts) comes back unchanged through the
/// writer and the parser.
pub fn ldif(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(objs) = parser::parse(text) else {
        return;
    };
    for o in &objs {
        if !o.attrs.keys().all(|k| parser::valid_name(k)) {
            continue;
        }
        let mut out = String::new();
        parser::write(o, &mut out);
        let back = parser::parse(&out)
            .unwrap_or_else(|e| panic!("the writer's own LDIF does not parse ({e:?}):\n{out}"));
        assert_eq!(
            back.as_slice(),
            std::slice::from_ref(o),
            "round trip of:\n{out}"
        );
    }
}
