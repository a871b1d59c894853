//! Repositories in object storage, against real servers on loopback: Azurite (Azure Blob,
//! from npm) and moto's S3 server (from PyPI), both installed by `scripts/setup.sh` under
//! `~/.cache/rehydra`. The CLI runs with credentials only in its environment.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn cache() -> PathBuf {
    PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/rehydra")
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start(program: &Path, args: &[&str], port: u16, dir: &Path) -> Server {
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

/// Azurite's Blob service on a free port, its state in memory, with `extra` options.
pub(crate) fn azurite(dir: &Path, extra: &[&str]) -> (Server, u16) {
    let port = free_port();
    let port_arg = port.to_string();
    let mut args = vec![
        "--blobPort",
        &port_arg,
        "--inMemoryPersistence",
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
    ];
    args.extend(extra);
    let server = start(
        &cache().join("azurite/node_modules/.bin/azurite-blob"),
        &args,
        port,
        dir,
    );
    (server, port)
}

/// moto's S3 server on a free port.
pub(crate) fn moto(dir: &Path) -> (Server, u16) {
    let port = free_port();
    let server = start(
        &cache().join("venv/bin/moto_server"),
        &["-p", &port.to_string()],
        port,
        dir,
    );
    (server, port)
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
    let o = e.run(&["-r", repo, "restore-points"]);
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
        .args(["-r", repo, "restore-points"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{}", err(&o));
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
        serde_json::from_str(&e.ok(&["-r", repo, "--json", "restore-points"])).unwrap();
    assert_eq!(snaps.len(), 1);
    let o = e.run(&["-r", repo, "check", "--read-data"]);
    assert!(o.status.success(), "{}", err(&o));
}

/// The storage passes the conformance suite every backend passes (`check --storage`), and
/// leaves nothing behind.
fn conforms(e: &Env, location: &str) {
    let out = e.ok(&["-r", location, "--json", "check", "--storage"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["broken"], serde_json::json!([]), "{out}");
    let scratch = r["scratch"].as_str().unwrap();
    let o = e.run(&["-r", scratch, "restore-points"]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "the scratch prefix is empty again: {}",
        err(&o)
    );
}

#[test]
fn azure_blob_repository_on_azurite() {
    let dir = tempfile::tempdir().unwrap();
    let (_azurite, port) = azurite(dir.path(), &[]);
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
    conforms(&e, "azure://backups");
    // a container that does not exist, and a server that is down: clear errors
    let o = e.run(&["-r", "azure://nosuch/x", "restore-points"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("azure://nosuch/x"), "{}", err(&o));
    drop(_azurite);
    let o = e.run(&["-r", "azure://backups/hci01", "restore-points"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("azure://backups/hci01"), "{}", err(&o));
}

#[test]
fn s3_repository_on_moto() {
    let dir = tempfile::tempdir().unwrap();
    let (_moto, port) = moto(dir.path());
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
    conforms(&e, "s3://backups");
    let o = e.run(&["-r", "s3://backups", "restore-points"]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "the bucket's root holds no repository: {}",
        err(&o)
    );
}

/// A token shaped as Entra ID issues them for Azure Storage (Azurite's OAuth mode checks
/// the audience, issuer and validity times, not the signature).
fn storage_jwt() -> String {
    use base64::Engine;
    let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "aud": "https://storage.azure.com",
        "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "oid": "0b4f5a3e-0000-4000-8000-00000000000a", "appid": "00000000-0000-0000-0000-00000000c11e",
    });
    format!(
        "{}.{}.{}",
        b(br#"{"alg":"RS256","typ":"JWT"}"#),
        b(claims.to_string().as_bytes()),
        b(b"sig")
    )
}

/// An `azure://` repository signed in the way plugins are (here `az login`, through a
/// stand-in `az` that hands out a Storage token only when asked for that scope), on
/// Azurite over HTTPS with OAuth: no account key or SAS anywhere.
#[test]
fn azure_blob_repository_with_the_admins_identity() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a test CA and a server certificate it signed (rustls refuses a self-signed leaf)
    let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let sh = format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=rehydra-test-ca -keyout ca.key -out ca.pem 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out leaf.csr 2>/dev/null && \
         openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem 2>/dev/null"
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(&sh)
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let (_azurite, port) = azurite(
        d,
        &[
            "--oauth",
            "basic",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let conn = format!(
        "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=https://127.0.0.1:{port}/devstoreaccount1;"
    );
    let made = Command::new(cache().join("venv/bin/python"))
        .args(["-c", "import sys; from azure.storage.blob import BlobServiceClient as B; B.from_connection_string(sys.argv[1], connection_verify=False).create_container('backups')", &conn])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "creating the container: {}",
        err(&made)
    );
    let azbin = d.join("azbin");
    std::fs::create_dir(&azbin).unwrap();
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *https://storage.azure.com/.default*) ;; *) echo \"ERROR: unexpected scope: $*\" >&2; exit 1 ;; esac\nexp=$(( $(date +%s) + 3600 ))\nprintf '{{\"accessToken\": \"{}\", \"expiresOn\": \"x\", \"expires_on\": %s, \"tokenType\": \"Bearer\"}}\\n' \"$exp\"\n",
        storage_jwt()
    );
    std::fs::write(azbin.join("az"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(azbin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        azbin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let e = Env {
        dir,
        vars: vec![
            ("PATH".into(), path),
            ("SSL_CERT_FILE".into(), ca.display().to_string()),
            (
                "AZURE_STORAGE_ACCOUNT_NAME".into(),
                "devstoreaccount1".into(),
            ),
            (
                "AZURE_ENDPOINT".into(),
                format!("https://127.0.0.1:{port}/devstoreaccount1"),
            ),
        ],
    };
    e.ok(&["azure", "login", "--cli"]);
    let repo = "azure://backups/signed-in";
    e.init(repo);
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f.txt"), b"signed in, no key\n").unwrap();
    e.ok(&["-r", repo, "backup", data.to_str().unwrap()]);
    let out = e.dir.path().join("out");
    e.ok(&[
        "-r",
        repo,
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(out.join("f.txt")).unwrap(),
        b"signed in, no key\n"
    );
    // signed out (no az): a clear error that says how to sign in
    let o = e
        .cmd()
        .env("PATH", "/usr/bin:/bin")
        .args(["-r", repo, "restore-points"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err(&o).contains("signing in to Azure Storage"),
        "{}",
        err(&o)
    );
}
