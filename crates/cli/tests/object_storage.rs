//! Repositories in object storage, against real servers on loopback: Azurite (Azure Blob,
//! from npm) and moto's S3 server (from PyPI), both installed by `scripts/setup.sh` under
//! `~/.cache/rehydra`. The CLI runs with credentials only in its environment.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/rehydra")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(program: &Path, args: &[&str], port: u16, dir: &Path) -> Server {
    assert!(
        program.exists(),
        "{} is missing: run scripts/setup.sh (it installs Azurite and moto)",
        program.display()
    );
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the server");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{} did not start",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server(child)
}

struct Env {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Env {
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rehydra"));
        c.env("REHYDRA_PASSWORD", "object pw")
            .env("REHYDRA_CACHE_DIR", self.dir.path().join("cache"))
            .env("REHYDRA_CATALOG", self.dir.path().join("catalog.db"))
            .env_remove("REHYDRA_REPOSITORY")
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("rehydra runs")
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rehydra {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Env {
    /// A new repository with cheap key derivation (the same password everywhere).
    fn init(&self, repo: &str) {
        self.ok(&[
            "-r",
            repo,
            "init",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
        ]);
    }
    /// `rehydra copy` from one repository to another.
    fn copy(&self, from: &str, to: &str) {
        let o = self
            .cmd()
            .env("REHYDRA_COPY_PASSWORD", "object pw")
            .args(["-r", from, "copy", "--to", to])
            .output()
            .unwrap();
        assert!(o.status.success(), "copy {from} -> {to}: {}", err(&o));
    }
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The same life cycle on any location: init, backups, restore, check, copy both ways,
/// retention and prune, and the errors a user meets.
fn life_cycle(e: &Env, repo: &str, other_empty: &str) {
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(data.join("big.bin"), &bytes).unwrap();
    std::fs::write(data.join("sub/note.txt"), b"hello object storage\n").unwrap();
    let d = data.to_str().unwrap();
    let o = e.run(&["-r", repo, "snapshots"]);
    assert_eq!(o.status.code(), Some(10), "no repository yet: {}", err(&o));
    e.ok(&[
        "-r",
        repo,
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "1",
    ]);
    let o = e.run(&[
        "-r",
        repo,
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("not empty"), "{}", err(&o));
    e.ok(&["-r", repo, "backup", d]);
    std::fs::write(data.join("sub/note.txt"), b"changed\n").unwrap();
    e.ok(&["-r", repo, "backup", d]);
    let o = e
        .cmd()
        .env("REHYDRA_PASSWORD", "wrong")
        .args(["-r", repo, "snapshots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(11), "{}", err(&o));
    let out = e.dir.path().join("restored");
    e.ok(&[
        "-r",
        repo,
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), bytes);
    assert_eq!(
        std::fs::read(out.join("sub/note.txt")).unwrap(),
        b"changed\n"
    );
    let o = e.run(&["-r", repo, "check", "--read-data"]);
    assert!(o.status.success(), "{}", err(&o));
    // copy into a local repository and back into another prefix
    let local = e.dir.path().join("local");
    let l = local.to_str().unwrap();
    e.init(l);
    e.copy(repo, l);
    e.init(other_empty);
    e.copy(l, other_empty);
    let out2 = e.dir.path().join("restored2");
    e.ok(&[
        "-r",
        other_empty,
        "restore",
        "latest",
        "--target",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(out2.join("big.bin")).unwrap(), bytes);
    // retention and prune free space in the bucket, the rest stays restorable
    e.ok(&["-r", repo, "forget", "--keep-last", "1", "--prune"]);
    let snaps: Vec<serde_json::Value> =
        serde_json::from_str(&e.ok(&["-r", repo, "--json", "snapshots"])).unwrap();
    assert_eq!(snaps.len(), 1);
    let o = e.run(&["-r", repo, "check", "--read-data"]);
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn azure_blob_repository_on_azurite() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _azurite = start(
        &cache().join("azurite/node_modules/.bin/azurite-blob"),
        &[
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        port,
        dir.path(),
    );
    // containers are made by the storage admin, not by rehydra
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    );
    let made = Command::new(cache().join("venv/bin/python"))
        .args(["-c", "import sys; from azure.storage.blob import BlobServiceClient as B; c = B.from_connection_string(sys.argv[1]); [c.create_container(n) for n in ('backups', 'second')]", &conn])
        .status()
        .unwrap();
    assert!(
        made.success(),
        "creating containers (azure-storage-blob in the venv)"
    );
    let e = Env {
        dir,
        vars: vec![
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            (
                "AZURITE_BLOB_STORAGE_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ),
        ],
    };
    life_cycle(&e, "azure://backups/hci01", "azure://second/copy");
    // a container that does not exist, and a server that is down: clear errors
    let o = e.run(&["-r", "azure://nosuch/x", "snapshots"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("azure://nosuch/x"), "{}", err(&o));
    drop(_azurite);
    let o = e.run(&["-r", "azure://backups/hci01", "snapshots"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("azure://backups/hci01"), "{}", err(&o));
}

#[test]
fn s3_repository_on_moto() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _moto = start(
        &cache().join("venv/bin/moto_server"),
        &["-p", &port.to_string()],
        port,
        dir.path(),
    );
    for bucket in ["backups", "second"] {
        let ok = Command::new("curl")
            .args([
                "-sf",
                "-X",
                "PUT",
                &format!("http://127.0.0.1:{port}/{bucket}"),
            ])
            .status()
            .unwrap();
        assert!(ok.success(), "creating bucket {bucket}");
    }
    let e = Env {
        dir,
        vars: vec![
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT".into(), format!("http://127.0.0.1:{port}")),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ],
    };
    life_cycle(&e, "s3://backups/hci01", "s3://second/copy");
    let o = e.run(&["-r", "s3://backups", "snapshots"]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "the bucket's root holds no repository: {}",
        err(&o)
    );
}
