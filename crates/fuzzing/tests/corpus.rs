//! Every fuzz target on every test run, without libFuzzer or an instrumented build: its
//! seeds — made by the real writers (a repository's config, manifest, index and pack
//! header, a content map) and the real tools (qemu-img, sfdisk, the built plugins) — and
//! a few thousand seeded mutations of them (bit flips, boundary bytes, truncations,
//! repeats, splices). A local `fuzz/corpus/<target>` or `fuzz/artifacts/<target>` (left by
//! `scripts/fuzz.sh`) is replayed too, so a crash found there stays found.
//!
//! A body panics when the code under test breaks its promise; the panic fails the test
//! with the target's name and the mutation's number (the same seed gives the same inputs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rehydra_core::backend::{FileKind, LocalBackend};
use rehydra_core::{
    Extent, InitOptions, Item, ItemKind, KdfParams, MapWriter, Node, NodeKind, OpenOptions,
    PluginRef, Repository, RestorePoint, Summary,
};
use rehydra_test_support::run;

/// This package's folder as cargo gives it when it runs the test (a binary built from
/// another checkout sharing the build folder would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

fn body(name: &str) -> fn(&[u8]) {
    rehydra_fuzzing::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

/// One mutation of `input`, in place.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = input.len();
    match rng.gen_range(0..6) {
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] = [0, 0xff, 0x7f, 0x80, 1, b'\n', b'"'][rng.gen_range(0..7)];
        }
        2 if len > 0 => {
            // a u32 at a random place set to a boundary value (counts, offsets, lengths)
            let i = rng.gen_range(0..len);
            let v: u32 = [0, 1, u32::MAX, u32::MAX / 2 + 1, 0x1000][rng.gen_range(0..5)];
            for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                if let Some(x) = input.get_mut(i + k) {
                    *x = b;
                }
            }
        }
        3 => input.truncate(rng.gen_range(0..=len)),
        4 if len > 0 => {
            let a = rng.gen_range(0..len);
            let b = rng.gen_range(a..=len.min(a + 64));
            let piece = input[a..b].to_vec();
            let at = rng.gen_range(0..=len);
            input.splice(at..at, piece);
        }
        _ => {
            // the tail of another seed spliced on
            let other = &seeds[rng.gen_range(0..seeds.len())];
            let from = rng.gen_range(0..=other.len());
            let at = rng.gen_range(0..=len);
            input.truncate(at);
            input.extend_from_slice(&other[from..other.len().min(from + 4096)]);
        }
    }
}

/// The seeds, then `runs` mutations of them, then any local corpus or artifacts.
fn exercise(name: &str, seeds: Vec<Vec<u8>>, runs: usize) {
    let f = body(name);
    assert!(!seeds.is_empty(), "{name}: no seeds");
    for s in &seeds {
        f(s);
    }
    let mut rng = StdRng::seed_from_u64(0x5eed ^ name.len() as u64);
    for run in 0..runs {
        let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..=4) {
            mutate(&mut rng, &mut input, &seeds);
        }
        let outcome = std::panic::catch_unwind(|| f(&input));
        assert!(
            outcome.is_ok(),
            "{name}: mutation {run} broke the target's promise (input of {} bytes)",
            input.len()
        );
    }
    let fuzz = rehydra_test_support::workspace().join("fuzz");
    for dir in ["corpus", "artifacts"] {
        let Ok(rd) = std::fs::read_dir(fuzz.join(dir).join(name)) else {
            continue;
        };
        for e in rd.flatten().take(500) {
            if let Ok(bytes) = std::fs::read(e.path()) {
                f(&bytes);
            }
        }
    }
}

/// A repository with one backup, for the format's seeds.
fn repository(dir: &Path) -> Repository {
    let backend = Arc::new(LocalBackend::new(dir.join("repo")));
    backend.create_layout().unwrap();
    let opts = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        ..InitOptions::default()
    };
    Repository::init(backend, b"pw", opts, OpenOptions::default()).unwrap()
}

fn content_map() -> Vec<u8> {
    let mut w = MapWriter::new(Vec::new());
    w.node(Node {
        kind: NodeKind::Dir,
        mode: 0o755,
        ..Node::default()
    })
    .unwrap();
    w.node(Node {
        path: "a.txt".into(),
        kind: NodeKind::File,
        mode: 0o644,
        size: 20,
        ..Node::default()
    })
    .unwrap();
    w.extent(Extent::Data(rehydra_core::Id([7; 32]), 16))
        .unwrap();
    w.extent(Extent::Zero(4)).unwrap();
    w.node(Node {
        path: "l".into(),
        kind: NodeKind::Symlink,
        target: Some("a.txt".into()),
        ..Node::default()
    })
    .unwrap();
    w.finish().unwrap()
}

fn restore_point() -> RestorePoint {
    RestorePoint {
        version: 1,
        id: None,
        time: chrono::Utc::now(),
        workload: "files".into(),
        asset: "/srv".into(),
        plugin: PluginRef {
            id: "builtin".into(),
            version: "0".into(),
        },
        consistency: "crash".into(),
        hostname: "h".into(),
        items: vec![Item {
            name: "tree".into(),
            kind: ItemKind::Tree,
            size: 20,
            map: vec![rehydra_core::Id([1; 32])],
        }],
        parent: None,
        tags: vec!["daily".into()],
        summary: Summary::default(),
        copied_from: None,
    }
}

/// An index body and a pack header body laid out as `docs/repository-format.md` says.
fn index_and_pack_header() -> (Vec<u8>, Vec<u8>) {
    let mut index = b"RHIX\x01".to_vec();
    index.extend_from_slice(&2u32.to_le_bytes());
    index.extend_from_slice(&[3; 32]);
    index.extend_from_slice(&[4; 32]);
    index.extend_from_slice(&2u32.to_le_bytes());
    let mut pack = b"RHPK\x01".to_vec();
    pack.extend_from_slice(&2u32.to_le_bytes());
    for (k, (off, len)) in [(0u32, 100u32), (100, 60)].into_iter().enumerate() {
        index.extend_from_slice(&[k as u8 + 9; 32]);
        pack.extend_from_slice(&[k as u8 + 9; 32]);
        for v in [k as u32, off, len, len - 28] {
            index.extend_from_slice(&v.to_le_bytes());
        }
        for v in [off, len, len - 28] {
            pack.extend_from_slice(&v.to_le_bytes());
        }
        index.push(1);
        pack.push(1);
    }
    (index, pack)
}

#[test]
fn format_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let config = repo.backend().read(FileKind::Config, "config").unwrap();
    exercise("config", vec![config.to_vec(), b"{}".to_vec()], 3000);
    let map = content_map();
    exercise("content_map", vec![map], 3000);
    let manifest = serde_json::to_vec(&restore_point()).unwrap();
    exercise("manifest", vec![manifest], 3000);
    let (index, pack) = index_and_pack_header();
    exercise("index_file", vec![index], 3000);
    exercise("pack_header", vec![pack], 3000);
}

/// The files ending in `.ext` of `tests/fixtures/<folder>`: at least three.
fn fixtures(folder: &str, ext: &str) -> Vec<Vec<u8>> {
    let dir = manifest_dir().join("../../tests/fixtures").join(folder);
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().is_some_and(|x| x == ext)).then(|| std::fs::read(p).unwrap())
        })
        .collect();
    assert!(
        seeds.len() >= 3,
        "the .{ext} fixtures are in {}",
        dir.display()
    );
    seeds
}

#[test]
fn arc_sql_mi_answers() {
    // ARM's official examples, a Kubernetes list of the CRD's shape, database ids
    let mut seeds = fixtures("arc-sql-mi", "json");
    seeds.push(
        br#"{"kind": "SqlManagedInstanceList", "items": [{"metadata": {"name": "sqlmi1", "namespace": "arc"},
            "spec": {"tier": "BusinessCritical", "replicas": 3, "backup": {"retentionPeriodInDays": 7}},
            "status": {"state": "Ready", "primaryEndpoint": "10.0.0.4,31433", "readyReplicas": "3/3"}}]}"#
            .to_vec(),
    );
    seeds.push(b"arc/sqlmi1/Sales DB".to_vec());
    exercise("arc_sql_mi", seeds, 3000);
}

#[test]
fn directory_ldif() {
    // Samba's own tombstones and reanimated objects, and what the plugin writes
    let mut seeds = fixtures("active-directory", "ldif");
    seeds.push(b"dn: CN=a\\,b,DC=t\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\nmember;range=0-1: x\n description: folded\n\n".to_vec());
    exercise("ldif", seeds, 3000);
}

#[test]
fn security_descriptors() {
    // Samba's own descriptors of a domain root, a user and an OU given an extra entry
    let seeds = fixtures("active-directory", "sd");
    exercise("security_descriptor", seeds, 3000);
}

#[test]
fn sql_chain_documents() {
    use sql_common::chain::{Backup, Kind};
    use sql_common::model::{ChainDoc, Kept};
    use sql_common::tsql::DbFile;
    // what the SQL plugins write: a full, a differential and logs, with and without forks
    let t0 = 1_796_000_000_000_i64;
    let b = |id: &str, kind, first: u128, last: u128, base: u128, minutes: i64| Backup {
        id: id.into(),
        kind,
        first_lsn: first,
        last_lsn: last,
        checkpoint_lsn: first + 1,
        database_backup_lsn: base,
        differential_base_lsn: (kind == Kind::Diff).then_some(base),
        fork: Some("6f9619ff-8b86-d011-b42d-00c04fc964ff".into()),
        first_fork: (minutes % 2 == 0).then(|| "6f9619ff-8b86-d011-b42d-00c04fc964ff".into()),
        start: t0 + minutes * 60_000,
        finish: t0 + minutes * 60_000 + 1_500,
        copy_only: kind == Kind::Full,
        ours: true,
    };
    let history = [
        b(
            "full",
            Kind::Full,
            34_000_000_016_000_037,
            34_000_000_020_000_001,
            0,
            0,
        ),
        b(
            "log1",
            Kind::Log,
            34_000_000_016_000_037,
            34_000_000_030_000_001,
            34_000_000_016_000_038,
            5,
        ),
        b(
            "diff",
            Kind::Diff,
            34_000_000_031_000_001,
            34_000_000_032_000_001,
            34_000_000_016_000_038,
            9,
        ),
        b(
            "log2",
            Kind::Log,
            34_000_000_030_000_001,
            34_000_000_040_000_001,
            34_000_000_016_000_038,
            10,
        ),
        b(
            "log3",
            Kind::Log,
            34_000_000_040_000_001,
            34_000_000_040_000_001,
            34_000_000_016_000_038,
            15,
        ),
    ];
    let doc = |n: usize| ChainDoc {
        format: 1,
        server: "sql01\\PROD".into(),
        database: "Sales $(x) ü".into(),
        recovery: "FULL".into(),
        group: Some("6c5e0b7a-5c64-4d0e-9a43-0d4f1d1b2a01".into()),
        files: vec![
            DbFile {
                logical: "Sales".into(),
                kind: "ROWS".into(),
                physical: "D:\\Data\\Sales.mdf".into(),
            },
            DbFile {
                logical: "Sales_log".into(),
                kind: "LOG".into(),
                physical: "L:\\Log\\Sales_log.ldf".into(),
            },
        ],
        backups: history[..n]
            .iter()
            .map(|h| Kept::new(&format!("backups/{}.bak", h.id), h, "D:\\Backup\\x.bak"))
            .collect(),
    };
    let seeds: Vec<Vec<u8>> = (1..=history.len())
        .map(|n| serde_json::to_vec_pretty(&doc(n)).unwrap())
        .collect();
    for s in &seeds {
        ChainDoc::parse(s).expect("the writer's seeds parse");
    }
    exercise("sql_chain", seeds, 3000);
}

#[test]
fn restore_of_hostile_maps() {
    let seeds = [
        "d a\nf a/x\nl b>@\nd b/c\nf b/c/x\n",
        "d ..\nf ../x\nf /etc/x\nd a\nd a\nf a/y\n",
        "l a>@\nf a/x\nl c>../../outside\nf c\n",
    ];
    exercise(
        "restore_map",
        seeds.iter().map(|s| s.as_bytes().to_vec()).collect(),
        150,
    );
}

fn image(dir: &Path, name: &str, make: &[&[&str]]) -> Vec<u8> {
    let path = dir.join(name);
    for cmd in make {
        let args: Vec<String> = cmd[1..]
            .iter()
            .map(|a| a.replace("{}", path.to_str().unwrap()))
            .collect();
        run(Command::new(cmd[0]).args(&args));
    }
    std::fs::read(&path).unwrap()
}

#[test]
fn disk_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vhdx = image(
        d,
        "a.vhdx",
        &[
            &[
                "qemu-img",
                "create",
                "-q",
                "-f",
                "vhdx",
                "-o",
                "subformat=dynamic,block_size=1M",
                "{}",
                "8M",
            ],
            &[
                "qemu-io",
                "-f",
                "vhdx",
                "-c",
                "write -q -P 0x5a 2M 1M",
                "{}",
            ],
        ],
    );
    exercise("vhdx", vec![vhdx], 300);
    let vhd = image(
        d,
        "a.vhd",
        &[
            &["qemu-img", "create", "-q", "-f", "vpc", "{}", "4M"],
            &["qemu-io", "-f", "vpc", "-c", "write -q -P 0x5a 0 64k", "{}"],
        ],
    );
    exercise("vhd", vec![vhd], 400);
    let qcow2 = image(
        d,
        "a.qcow2",
        &[
            &[
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-o",
                "cluster_size=512",
                "{}",
                "64k",
            ],
            &[
                "qemu-io",
                "-f",
                "qcow2",
                "-c",
                "write -q -P 0x5a 1k 2k",
                "-c",
                "write -q -z 8k 1k",
                "{}",
            ],
        ],
    );
    exercise("qcow2", vec![qcow2], 1500);
    let table = |label: &str, size: &str, spec: &str| -> Vec<u8> {
        let path = d.join(label);
        run(Command::new("truncate").args(["-s", size, path.to_str().unwrap()]));
        let mut child = Command::new("sfdisk")
            .args(["-q", path.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("sfdisk (scripts/setup.sh installs it)");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), spec.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "sfdisk {label}");
        std::fs::read(&path).unwrap()
    };
    let gpt = table(
        "gpt",
        "1M",
        "label: gpt\nstart=64, size=256\nstart=512, size=128\n",
    );
    let mbr = table(
        "mbr",
        "256K",
        "label: dos\nstart=8, size=64, type=83\nstart=100, size=300, type=5\nstart=120, size=50, type=7\n",
    );
    exercise("partitions", vec![gpt, mbr], 1500);
}

#[test]
fn plugin_files() {
    let built: PathBuf = rehydra_test_support::built_plugins();
    let mut seeds = Vec::new();
    for name in ["example-files.wasm", "fixture.wasm"] {
        seeds.push(std::fs::read(built.join(name)).unwrap());
    }
    exercise("plugin_package", seeds, 300);
}

/// A tar stream of `(path, body)` entries, and a symlink when `link`.
fn tar_of(entries: &[(&str, &[u8])], link: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in entries {
        let mut h = tar::Header::new_gnu();
        // the name written raw: the builder refuses `..`, a hostile writer does not
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *body).unwrap();
    }
    if link {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(
            &mut h,
            "resources/configmaps/namespaces/a/l.json",
            "/etc/passwd",
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn velero_tarballs() {
    // Velero's layout (format 1.1: classic and preferred-version folders), plain and gzipped
    let cm = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"},"data":{"a":"b"}}"#;
    let dep = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{}}"#;
    let ns = br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}"#;
    let plain = tar_of(
        &[
            ("metadata/version", b"1.1.0"),
            ("resources/configmaps/namespaces/shop/c.json", cm),
            (
                "resources/configmaps/v1-preferredversion/namespaces/shop/c.json",
                cm,
            ),
            ("resources/deployments.apps/namespaces/shop/web.json", dep),
            ("resources/namespaces/cluster/shop.json", ns),
        ],
        false,
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let seeds = vec![
        plain,
        gz.finish().unwrap(),
        tar_of(&[("resources/configmaps/namespaces/../x.json", cm)], true),
    ];
    exercise("velero_tarball", seeds, 3000);
}

#[test]
fn kubernetes_indexes() {
    let ix = br#"{"format":1,"source":{"kind":"cluster","cluster":"aks-a","server":"https://10.0.0.5:6443","selector":"app=shop","velero":null},"namespaces":["shop"],"types":[{"group":"","version":"v1","resource":"namespaces","kind":"Namespace","namespaced":false},{"group":"","version":"v1","resource":"configmaps","kind":"ConfigMap","namespaced":true},{"group":"apps","version":"v1","resource":"deployments","kind":"Deployment","namespaced":true}],"objects":[{"key":"namespaces","namespace":null,"name":"shop"},{"key":"configmaps","namespace":"shop","name":"web"},{"key":"deployments.apps","namespace":"shop","name":"web"}],"claims":[{"namespace":"shop","name":"data","storage_class":"fast","size":"5Gi","data":false}]}"#;
    let velero = br#"{"format":1,"source":{"kind":"velero","cluster":"aks-a","velero":["nightly","2026-11-02T01:00:00Z","Completed"]},"namespaces":["legacy"],"types":[{"group":"","version":"v1","resource":"persistentvolumes","kind":"PersistentVolume","namespaced":false}],"objects":[{"key":"persistentvolumes","name":"pv-1"}],"claims":[]}"#;
    exercise("kube_index", vec![ix.to_vec(), velero.to_vec()], 3000);
}
