//! Velero backups imported straight from their bucket, as Velero's object-store plugins
//! lay them out (`<prefix>/backups/<name>/velero-backup.json` and `<name>.tar.gz`): moto's
//! S3 server and Azurite, on loopback. The plugin names `s3://…` and `azure://…` paths;
//! the host reads the objects with the credentials in its environment.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::kubernetes::{AKS_AUDIENCE, Cluster, cluster_b, done, kube_cli, text, velero_backup};
use crate::object_storage::{azurite, cache, moto};
use crate::support::Cli;

const NAME: &str = "nightly-20261102010000";

/// The files of the backup folder `folder`, as (file name, path).
fn files(folder: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    v.sort();
    v
}

fn run(cli: &Cli, env: &[(String, String)], args: &[&str]) -> Output {
    cli.cmd(None)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["--json", "plugins", "run", "kubernetes"])
        .args(args)
        .output()
        .unwrap()
}

fn restore_point(o: &Output) -> String {
    let v = done(o);
    assert!(
        v.to_string().contains(&format!(
            "imported Velero backup {NAME} taken 2026-11-02T01:00:00Z"
        )),
        "{v}"
    );
    v.get("restore_point").unwrap_or(&v)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn velero_backups_are_imported_from_their_s3_bucket_and_restored() {
    let cli = kube_cli();
    let (_moto, port) = moto(cli.dir.path());
    let s3 = format!("http://127.0.0.1:{port}");
    let put = |key: &str, file: &Path| {
        let ok = Command::new("curl")
            .args(["-sf", "-T"])
            .arg(file)
            .arg(format!("{s3}/velero/{key}"))
            .status()
            .unwrap();
        assert!(ok.success(), "uploading {key}");
    };
    let ok = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{s3}/velero")])
        .status()
        .unwrap();
    assert!(ok.success(), "creating the bucket");
    // two nightly backups under Velero's prefix `aks`, and what else a bucket holds
    let folder = velero_backup(&cli.dir.path().join("velero"));
    for name in [NAME, "nightly-20261103010000"] {
        for (file, path) in files(&folder) {
            put(&format!("aks/backups/{name}/{file}"), &path);
        }
    }
    let big = cli.dir.path().join("big.tar.gz");
    std::fs::write(&big, vec![0u8; (16 << 20) + 1]).unwrap();
    put("aks/big.tar.gz", &big);
    put("other/secret.json", &folder.join("velero-backup.json"));
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", s3.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let velero = format!("velero=s3://velero/aks/backups/{NAME}");
    let import = |v: &str| run(&cli, &env, &["backup", "--asset", "aks-a", "--set", v]);

    // ---- nothing of the bucket granted yet: denied, saying what to grant
    cli.ok(None, &["plugins", "grant", "kubernetes", "engine"]);
    let o = import(&velero);
    assert!(
        !o.status.success() && text(&o).contains("files:s3://velero/aks/backups/nightly-"),
        "{}",
        text(&o)
    );
    cli.ok(
        None,
        &["plugins", "grant", "kubernetes", "files:s3://velero/aks"],
    );
    let o = cli.run(
        None,
        &[
            "plugins",
            "grant",
            "kubernetes",
            "files-write:s3://velero/aks",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("read-only"),
        "{}",
        text(&o)
    );

    // ---- the prefix itself names its backups; one is imported a run
    let o = import("velero=s3://velero/aks");
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("2 backup folder(s)")
            && t.contains(&format!("velero=s3://velero/aks/backups/{NAME}")),
        "{t}"
    );
    let vid = restore_point(&import(&velero));

    // ---- a listing longer than a page (1000) is read to its end
    let many = Command::new(cache().join("venv/bin/python"))
        .args([
            "-c",
            "import sys, boto3\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
             for i in range(1200):\n\
             \x20   s3.put_object(Bucket='velero', Key=f'aks/backups/bulk-{i:04}/velero-backup.json', Body=b'{}')",
            &s3,
        ])
        .status()
        .unwrap();
    assert!(
        many.success(),
        "uploading with boto3 (moto's dependency, in the venv)"
    );
    let t = text(&import("velero=s3://velero/aks"));
    assert!(t.contains("1202 backup folder(s)"), "{t}");

    // ---- outside the grant, a climbing path, an object over 16 MiB: refused
    for (v, says) in [
        (
            "velero=s3://velero/other",
            "outside the object-storage folders",
        ),
        ("velero=s3://velero/aks/backups/../../other", "`..`"),
        ("velero=s3://velero/aks/big.tar.gz", "more than 16777216"),
        (
            "velero=s3://velero/aks/backups/nightly-19990101000000",
            "not found",
        ),
    ] {
        let o = import(v);
        assert!(
            !o.status.success() && text(&o).contains(says),
            "{v}: {}",
            text(&o)
        );
    }
    let audit = cli.ok(None, &["--json", "plugins", "audit"]);
    assert!(
        audit.contains(&format!("s3://velero/aks/backups/{NAME}/{NAME}.tar.gz")),
        "reads of object storage are audited, as requests: {audit}"
    );

    // ---- restored into a cluster through the same plan as any restore point
    let b = Cluster::start(&cli.dir.path().join("b"), "127.0.0.5", &cluster_b());
    cli.ok(None, &["plugins", "grant", "kubernetes", &b.grant()]);
    cli.ok(
        None,
        &["azure", "audience", "add", "127.0.0.5", AKS_AUDIENCE],
    );
    done(&run(
        &cli,
        &[],
        &[
            "restore",
            &vid,
            "--target",
            "-",
            "--set",
            &b.kube(),
            "--set",
            "wait-secs=20",
            "--set",
            "namespaces=legacy",
        ],
    ));
    let cm = b
        .object("ConfigMap", Some("legacy"), "ledger-config")
        .unwrap();
    assert_eq!(cm["data"]["mode"], "preferred", "{cm}");
    assert!(b.object("Deployment", Some("legacy"), "ledger").is_some());
}

#[test]
fn velero_backups_are_imported_from_their_azure_container() {
    let cli = kube_cli();
    let (_azurite, port) = azurite(cli.dir.path(), &[]);
    let folder = velero_backup(&cli.dir.path().join("velero"));
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    );
    let mut upload = Command::new(cache().join("venv/bin/python"));
    upload.args([
        "-c",
        "import sys, os; from azure.storage.blob import BlobServiceClient as B\n\
         c = B.from_connection_string(sys.argv[1]).create_container('velero')\n\
         for f in sorted(os.listdir(sys.argv[2])):\n\
         \x20   c.upload_blob(sys.argv[3] + f, open(os.path.join(sys.argv[2], f), 'rb').read())",
        &conn,
    ]);
    upload
        .arg(&folder)
        .arg(format!("velero-backups/backups/{NAME}/"));
    assert!(
        upload.status().unwrap().success(),
        "uploading (azure-storage-blob in the venv)"
    );
    let env: Vec<(String, String)> = vec![
        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
        (
            "AZURITE_BLOB_STORAGE_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "kubernetes",
            "engine",
            "files:azure://velero/velero-backups",
        ],
    );
    let vid = restore_point(&run(
        &cli,
        &env,
        &[
            "backup",
            "--asset",
            "aks-a",
            "--set",
            &format!("velero=azure://velero/velero-backups/backups/{NAME}"),
        ],
    ));
    let all: Value = serde_json::from_str(&cli.ok(None, &["--json", "restore-points"])).unwrap();
    let point = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == vid.as_str())
        .cloned();
    let items = point.unwrap_or_else(|| panic!("no {vid}: {all}"))["items"].to_string();
    assert!(
        items.contains("objects/deployments.apps/legacy/ledger.json"),
        "{items}"
    );
}
