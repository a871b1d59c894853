//! GPO folders of SYSVOL. A GPO is an object (`groupPolicyContainer`, named by its
//! `{GUID}`) and a folder of that name under the domain's `Policies` folder in SYSVOL
//! (`GPT.INI`, the `Machine` and `User` settings, scripts).
//!
//! - `backup` with `sysvol=<folder>`: that `Policies` folder as this machine reads it (a
//!   mounted `\\<domain>\SYSVOL\<domain>\Policies`, or on a Samba DC
//!   `/var/lib/samba/sysvol/<domain>/Policies`; granted `files:`). The folder of each GPO
//!   of the domain partition is kept beside the objects as item `sysvol/{GUID}`; a GPO
//!   without one is a warning.
//! - `restore` of a GPO with `sysvol=` (granted `files-write:`): its folder is put back
//!   when the `Policies` folder lacks it. One that is there is left as it is (the plan
//!   says so): nothing in SYSVOL is overwritten.

use rehydra_plugin_sdk::files::{self, EntryKind};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};

use crate::ldif::Obj;

/// Items of GPO folders: `sysvol/{GUID}`.
pub const PREFIX: &str = "sysvol/";

/// The folder name of a GPO object (its `cn`, `{GUID}`), if `o` is one. Only a name of
/// that shape: anything else could name a path outside `Policies`.
pub fn gpo_folder(o: &Obj) -> Option<String> {
    let gpo = o
        .values("objectClass")
        .iter()
        .any(|c| c.eq_ignore_ascii_case(b"groupPolicyContainer"));
    let cn = o.text("cn")?;
    (gpo && braced_guid(&cn)).then_some(cn)
}

/// `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` in hex digits, either case.
fn braced_guid(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `name` inside the folder `root`, with the separator `root` uses.
fn inside(root: &str, name: &str) -> String {
    let sep = if root.contains('\\') && !root.contains('/') {
        '\\'
    } else {
        '/'
    };
    format!("{}{sep}{name}", root.trim_end_matches(['/', '\\']))
}

/// Keep the folders of `gpos` (their `{GUID}` names) found in `root`; returns how many.
pub fn backup(root: &str, gpos: &[String], warnings: &mut Vec<String>) -> Result<usize> {
    let entries = files::list_dir(root)?;
    let mut kept = 0;
    for (i, g) in gpos.iter().enumerate() {
        host::progress(i as u64, gpos.len() as u64, "GPO folders");
        match entries
            .iter()
            .find(|e| e.kind == EntryKind::Directory && e.name.eq_ignore_ascii_case(g))
        {
            Some(e) => {
                engine::ingest_path(&format!("{PREFIX}{g}"), &inside(root, &e.name))?;
                kept += 1;
            }
            None => warnings.push(format!(
                "GPO {g} has no folder in {root}: only its object is kept"
            )),
        }
    }
    host::info(&format!("{kept} GPO folders of {root} kept"));
    Ok(kept)
}

/// What a restore does with the SYSVOL folder of the GPO `o`, if it is one: the item and
/// where it goes, or `None` with a warning said (no `sysvol=`, no folder in the point, a
/// folder already there).
pub fn plan(
    o: &Obj,
    root: Option<&str>,
    items: &[ItemInfo],
    warnings: &mut Vec<String>,
) -> Result<Option<(String, String)>> {
    let Some(g) = gpo_folder(o) else {
        return Ok(None);
    };
    let item = format!("{PREFIX}{g}");
    let kept = items.iter().any(|i| i.name == item);
    match root {
        None if kept => warnings.push(format!(
            "the restore point holds the SYSVOL folder of GPO {g}: name sysvol=<the Policies folder> to put it back"
        )),
        None => {}
        Some(_) if !kept => warnings.push(format!(
            "the restore point holds no SYSVOL folder of GPO {g} (backed up without sysvol=): only its object comes back"
        )),
        Some(root) => {
            let to = inside(root, &g);
            match files::stat(&to) {
                Ok(_) => warnings.push(format!(
                    "{to} is there: left as it is (nothing in SYSVOL is overwritten)"
                )),
                Err(e) if e.code == ErrorCode::NotFound => return Ok(Some((item, to))),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(None)
}

/// Put a GPO folder back (the plan checked it is not there).
pub fn restore(item: &str, to: &str) -> Result<u64> {
    engine::restore_item(item, to, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gpo_objects_named_by_a_braced_guid_have_a_folder() {
        let obj = |class: &str, cn: &str| {
            let mut o = Obj::default();
            o.attrs
                .insert("objectClass".into(), vec![b"top".to_vec(), class.into()]);
            o.attrs.insert("cn".into(), vec![cn.into()]);
            o
        };
        let guid = "{31B2F340-016D-11D2-945F-00C04FB984F9}";
        assert_eq!(
            gpo_folder(&obj("groupPolicyContainer", guid)).as_deref(),
            Some(guid)
        );
        assert_eq!(gpo_folder(&obj("user", guid)), None);
        for bad in [
            "..",
            "{..}",
            "{31B2F340-016D-11D2-945F-00C04FB984F9}/..",
            "{31B2F340-016D-11D2-945F-00C04FB984F}",
            "31B2F340-016D-11D2-945F-00C04FB984F9",
            "{31B2F340-016D-11D2-945F-00C04FB984FZ}",
        ] {
            assert_eq!(gpo_folder(&obj("groupPolicyContainer", bad)), None, "{bad}");
        }
        assert_eq!(inside("/srv/Policies/", "{A}"), "/srv/Policies/{A}");
        assert_eq!(
            inside(r"E:\SYSVOL\Policies", "{A}"),
            r"E:\SYSVOL\Policies\{A}"
        );
    }
}
