//! The behaviour every [`Backend`] must have, as one suite: the local folder runs it in
//! this crate's tests, Azure Blob (Azurite) and S3 (moto) in the CLI's object-storage
//! tests, and a partner's backend can run it too. It needs an empty repository location.

use crate::{Backend, FileKind, StorageErrorKind};

const KINDS: [FileKind; 6] = [
    FileKind::Key,
    FileKind::Pack,
    FileKind::Index,
    FileKind::RestorePoint,
    FileKind::Lock,
    FileKind::PrunePlan,
];

fn name() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

fn kind_of<T>(r: crate::Result<T>) -> Option<StorageErrorKind> {
    r.err().map(|e| e.kind())
}

/// Run every check against `b`; returns the broken rules (empty when it conforms).
pub fn check(b: &dyn Backend) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |ok: bool, rule: String| {
        if !ok {
            bad.push(rule);
        }
    };
    let loc = b.location();

    // whole files of every kind: written, read back, sized, listed in their own kind only
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let mut made = Vec::new();
    for (i, kind) in KINDS.into_iter().enumerate() {
        let n = name();
        let data: Vec<u8> = match i {
            0 => Vec::new(),
            1 => big.clone(),
            _ => format!("{kind:?} {n}").into_bytes(),
        };
        if let Err(e) = b.create(kind, &n, &data) {
            expect(false, format!("{loc}: create {kind:?}: {e}"));
            continue;
        }
        expect(
            b.read(kind, &n).ok().as_deref() == Some(&data[..]),
            format!("{kind:?}: read returns what create stored"),
        );
        expect(
            b.size(kind, &n).ok() == Some(data.len() as u64),
            format!("{kind:?}: size is the stored length"),
        );
        made.push((kind, n, data));
    }
    for (kind, n, data) in &made {
        let listed = b.list(*kind).unwrap_or_default();
        expect(
            listed
                .iter()
                .any(|f| &f.name == n && f.size == data.len() as u64),
            format!("{kind:?}: list names the file (without any folder) with its size"),
        );
        for other in KINDS.into_iter().filter(|k| k != kind) {
            expect(
                !b.list(other)
                    .unwrap_or_default()
                    .iter()
                    .any(|f| &f.name == n),
                format!("{kind:?}: a file is listed in its own kind only (seen in {other:?})"),
            );
        }
    }

    // the config: one file at the top, listed as `config`
    let cfg = b"{\"conformance\":true}".to_vec();
    expect(
        b.create(FileKind::Config, "config", &cfg).is_ok(),
        "config: create".into(),
    );
    expect(
        b.list(FileKind::Config)
            .unwrap_or_default()
            .iter()
            .any(|f| f.name == "config"),
        "config: listed".into(),
    );

    // never overwrite: a second create fails as AlreadyExists and the first content stays
    expect(
        kind_of(b.create(FileKind::Config, "config", b"other"))
            == Some(StorageErrorKind::AlreadyExists),
        "create of an existing name fails with AlreadyExists".into(),
    );
    expect(
        b.read(FileKind::Config, "config").ok() == Some(cfg),
        "a refused create leaves the existing file as it was".into(),
    );

    // ranges: inside, at the very end, and past it (Truncated, never short data)
    if let Some((kind, n, data)) = made.iter().find(|(k, _, _)| *k == FileKind::Pack) {
        let (off, len) = (1_000_003u64, 65_536u32);
        expect(
            b.read_range(*kind, n, off, len).ok().as_deref()
                == Some(&data[off as usize..off as usize + len as usize]),
            "read_range returns exactly the bytes asked".into(),
        );
        let end = data.len() as u64 - 10;
        expect(
            b.read_range(*kind, n, end, 10).ok().as_deref() == Some(&data[end as usize..]),
            "read_range reaches the last byte".into(),
        );
        expect(
            kind_of(b.read_range(*kind, n, end, 11)) == Some(StorageErrorKind::Truncated),
            "read_range past the end fails with Truncated".into(),
        );
    }

    // missing files
    let ghost = name();
    expect(
        kind_of(b.read(FileKind::Index, &ghost)) == Some(StorageErrorKind::Missing),
        "read of a missing file fails with Missing".into(),
    );
    expect(
        kind_of(b.size(FileKind::Index, &ghost)) == Some(StorageErrorKind::Missing),
        "size of a missing file fails with Missing".into(),
    );
    expect(
        kind_of(b.read_range(FileKind::Pack, &ghost, 0, 1)) == Some(StorageErrorKind::Missing),
        "read_range of a missing file fails with Missing".into(),
    );

    // remove: gone afterwards, and removing what is not there is fine
    for (kind, n, _) in &made {
        expect(b.remove(*kind, n).is_ok(), format!("{kind:?}: remove"));
        expect(
            kind_of(b.read(*kind, n)) == Some(StorageErrorKind::Missing),
            format!("{kind:?}: a removed file reads as Missing"),
        );
        expect(
            !b.list(*kind)
                .unwrap_or_default()
                .iter()
                .any(|f| &f.name == n),
            format!("{kind:?}: a removed file is no longer listed"),
        );
    }
    expect(
        b.remove(FileKind::Lock, &ghost).is_ok(),
        "removing a missing file succeeds".into(),
    );
    expect(
        b.clean_leftovers(std::time::Duration::ZERO).is_ok(),
        "clean_leftovers runs".into(),
    );
    expect(
        b.remove(FileKind::Config, "config").is_ok(),
        "config: remove".into(),
    );
    bad
}
