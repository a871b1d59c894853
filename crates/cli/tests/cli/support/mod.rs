//! Shared by the VM workload tests: the `rehydra` binary with plugins installed, a
//! stand-in Hyper-V node (`fake_node.py` as `pwsh`), and an Azure Resource Manager replay
//! server that checks request bodies against the official examples.
#![allow(dead_code)]

pub mod samba;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// This package's folder as cargo gives it when it runs the test (a binary built from
/// another checkout sharing the build folder would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

pub fn root() -> PathBuf {
    manifest_dir().join("../..")
}

pub use rehydra_test_support::built_plugins as plugins_built;

pub fn fixture(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures").join(rel)).unwrap())
        .unwrap()
}

/// The binary with a catalog, a plugin folder and the given plugins installed.
pub struct Cli {
    pub dir: tempfile::TempDir,
}

impl Cli {
    pub fn new(plugins: &[&str]) -> Self {
        let c = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(c.dir.path().join("plugins")).unwrap();
        stand_in_az(&c.azbin());
        let key = rehydra_test_support::dev_key();
        c.ok(None, &["plugins", "trust", "rehydra-dev", &key]);
        for p in plugins {
            let file = plugins_built().join(format!("{p}.wasm"));
            c.ok(None, &["plugins", "install", file.to_str().unwrap()]);
            assert!(
                c.dir
                    .path()
                    .join("plugins")
                    .join(format!("{p}.wasm"))
                    .is_file(),
                "plugins install writes into the first plugin folder given"
            );
        }
        // Azure sign-in as an admin does it (`az login`), and the replay server on
        // loopback gets ARM's token audience
        c.ok(None, &["azure", "login", "--cli"]);
        c.ok(
            None,
            &[
                "azure",
                "audience",
                "add",
                "127.0.0.1",
                "https://management.azure.com/.default",
            ],
        );
        c
    }

    /// Where the stand-in `az` lives (first on every command's PATH).
    pub fn azbin(&self) -> std::path::PathBuf {
        self.dir.path().join("azbin")
    }

    /// Make the stand-in `az` hand out tokens that expire within a minute, numbered
    /// `test-token-1`, `test-token-2`… (every request then needs a fresh one).
    pub fn short_lived_tokens(&self, on: bool) {
        let flag = self.azbin().join("az-short");
        if on {
            std::fs::write(flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }
    pub fn cmd(&self, path: Option<&Path>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rehydra"));
        let sys = std::env::var("PATH").unwrap_or_default();
        c.env("REHYDRA_CATALOG", self.dir.path().join("catalog.db"))
            .env("REHYDRA_PLUGIN_PATH", self.dir.path().join("plugins"))
            .env("HOME", self.dir.path())
            .env("REHYDRA_REPOSITORY", self.dir.path().join("repo"))
            .env("REHYDRA_PASSWORD", "pw")
            .env("REHYDRA_CACHE_DIR", self.dir.path().join("cache"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.azbin().display(),
                    path.map_or(sys.clone(), |p| format!("{}:{sys}", p.display()))
                ),
            )
            .stdin(Stdio::null());
        c
    }
    pub fn run(&self, path: Option<&Path>, args: &[&str]) -> Output {
        self.cmd(path).args(args).output().unwrap()
    }
    pub fn ok(&self, path: Option<&Path>, args: &[&str]) -> String {
        let o = self.run(path, args);
        assert!(
            o.status.success(),
            "rehydra {args:?}: {}{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    pub fn init_repo(&self) {
        self.ok(
            None,
            &["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"],
        );
    }
}

/// A stand-in Azure CLI in `dir`: `az account get-access-token` printing what the real
/// one prints (`accessToken`, `expiresOn` in local time, `expires_on`, `subscription`,
/// `tenant`, `tokenType`): `test-token` for an hour, or, with the `az-short` flag file,
/// numbered tokens that expire within a minute; Key Vault's audience gets them prefixed
/// `vault-`.
fn stand_in_az(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"#!/bin/sh
dir=$(dirname "$0")
case "$*" in *get-access-token*) ;; *) echo "stand-in az: $*" >&2; exit 2 ;; esac
now=$(date +%s)
if [ -f "$dir/az-short" ]; then
  n=$(( $(cat "$dir/az-count" 2>/dev/null || echo 0) + 1 )); echo $n > "$dir/az-count"
  tok="test-token-$n"; exp=$((now + 60))
else
  tok="test-token"; exp=$((now + 3600))
fi
# a token names its audience, as a real one does in `aud`: the Key Vault and Kubernetes
# stand-ins check it (6dae42f8-…: the Entra server app of AKS clusters), and the SQL Server
# stand-in checks a database.windows.net one
case "$*" in *vault.azure.net*) tok="vault-$tok" ;; *6dae42f8-4368-4678-94ff-3960e28e3630*) tok="aks-$tok" ;; *database.windows.net*) tok="sql-$tok" ;; esac
# and its tenant, as `tid` does: `@tenant` when one other than the home tenant is asked
# for; the tenants listed in az-refused are ones the account cannot sign in to
tenant=72f988bf-86f1-41af-91ab-2d7cd011db47
case "$*" in *"--tenant "*)
  tenant="${*##*--tenant }"; tenant="${tenant%% *}"
  if grep -qx "$tenant" "$dir/az-refused" 2>/dev/null; then
    echo "ERROR: AADSTS50020: User account 'admin@contoso.com' from identity provider 'https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/' does not exist in tenant '$tenant' and cannot access the application in that tenant." >&2
    exit 1
  fi
  tok="$tok@$tenant" ;;
esac
printf '{"accessToken": "%s", "expiresOn": "%s", "expires_on": %s, "subscription": "%s", "tenant": "%s", "tokenType": "Bearer"}
'   "$tok" "$(date -d "@$exp" '+%Y-%m-%d %H:%M:%S.000000')" "$exp"   "6b2f9d1e-0000-4000-8000-000000000001" "$tenant"
"#;
    let az = dir.join("az");
    std::fs::write(&az, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in's folder: `state.json`, which it reads on every request (so a test edits it
/// to change the stand-in), and `calls.log`, one line per request.
pub struct StateFiles(PathBuf);

impl StateFiles {
    pub fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.0.join("state.json")).unwrap()).unwrap()
    }

    /// Replace the state (written whole, then renamed into place).
    pub fn set_state(&self, v: &Value) {
        let tmp = self.0.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap()).unwrap();
        std::fs::rename(tmp, self.0.join("state.json")).unwrap();
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut s = self.state();
        f(&mut s);
        self.set_state(&s);
    }

    /// The requests so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.0.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.0.join("calls.log"));
    }
}

/// A stand-in node: a folder with `pwsh` (fake_node.py), its state and its call log.
pub struct Node {
    pub bin: PathBuf,
    files: StateFiles,
}

impl std::ops::Deref for Node {
    type Target = StateFiles;
    fn deref(&self) -> &StateFiles {
        &self.files
    }
}

impl Node {
    pub fn new(dir: &Path, state: &Value) -> Self {
        let bin = dir.to_path_buf();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(
            manifest_dir().join("tests/cli/support/fake_node.py"),
            bin.join("pwsh"),
        )
        .unwrap();
        std::fs::set_permissions(
            bin.join("pwsh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let n = Self {
            files: StateFiles(bin.clone()),
            bin,
        };
        n.set_state(state);
        n
    }
    /// The calls so far (first word of each log line), and the full lines.
    pub fn log(&self) -> Vec<String> {
        self.calls()
    }
    pub fn clear_log(&self) {
        self.clear_calls();
    }
}

/// One request the ARM replay server saw.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub api: String,
    pub body: Value,
    pub auth: String,
    pub status: u16,
}

/// An ARM replay server: resources in memory, PUT bodies checked against the official
/// examples (`tests/fixtures/arm`), a PUT answered `Accepted` and the next GET
/// `Succeeded`, like ARM's asynchronous provisioning; a GET of a collection
/// (`…/providers/<namespace>/<type>` of a subscription or resource group) lists its
/// resources one a page, with ARM's `nextLink` (`$skiptoken`).
/// The request line's path and the `Authorization` header of one HTTP/1.1 request head.
pub fn read_head(r: &mut impl BufRead) -> (String, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
    let mut auth = String::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':')
            && n.eq_ignore_ascii_case("authorization")
        {
            auth = v.trim().to_string();
        }
    }
    (path, auth)
}

pub struct Arm {
    pub base: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub resources: Arc<Mutex<HashMap<String, Value>>>,
    /// Path fragments whose next PUT fails with 500 (once each).
    pub fail_put: Arc<Mutex<Vec<String>>>,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Leaf paths (`a.b[].c`) and their JSON types.
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, &'static str)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                leaves(x, &format!("{prefix}[]"), out);
            }
        }
        _ => out.push((prefix.to_string(), type_of(v))),
    }
}

/// Fields the OpenAPI (stable/2024-01-01 and 2025-06-01-preview
/// virtualMachineInstances.json) defines but the examples leave out.
const VMI_EXTRA: &[&str] = &[
    "properties.hardwareProfile.processors",
    "properties.hardwareProfile.memoryMB",
    "properties.storageProfile.dataDisks[].id",
    "properties.securityProfile.securityType",
];

/// Check a PUT body against the official example for that resource type.
pub fn check_shape(kind: &str, body: &Value) -> Result<(), String> {
    let (example, extra): (Value, &[&str]) = match kind {
        "virtualHardDisks" => (
            fixture("arm/VirtualHardDisks__CreateOrUpdate_CreateFromLocal.json"),
            &[],
        ),
        "networkInterfaces" => (
            fixture("arm/NetworkInterfaces__CreateOrUpdate_CreateFromLocal.json"),
            &[],
        ),
        "virtualMachineInstances" => (
            fixture(
                "arm/VirtualMachineInstances_CreateOrUpdate_Put_Virtual_Machine_Instance_With_Os_Disk.json",
            ),
            VMI_EXTRA,
        ),
        "machines" => {
            // Microsoft.HybridCompute machines: location, kind HCI, system identity
            return if body["location"].is_string()
                && body["kind"] == "HCI"
                && body["identity"]["type"] == "SystemAssigned"
            {
                Ok(())
            } else {
                Err(format!(
                    "machine body lacks location / kind HCI / identity: {body}"
                ))
            };
        }
        other => return Err(format!("no PUT of {other} is expected")),
    };
    let req = &example["parameters"]["resource"];
    let mut want = Vec::new();
    leaves(req, "", &mut want);
    let mut allowed = want.clone();
    for code in ["200", "201"] {
        leaves(&example["responses"][code]["body"], "", &mut allowed);
    }
    let mut have = Vec::new();
    leaves(body, "", &mut have);
    for (p, t) in &want {
        if !have.iter().any(|(q, u)| q == p && u == t) {
            return Err(format!(
                "field {p} ({t}) of the official example is missing"
            ));
        }
    }
    for (p, t) in &have {
        let known = allowed.iter().any(|(q, u)| q == p && u == t)
            || extra.contains(&p.as_str())
            || p.starts_with("tags.");
        if !known {
            return Err(format!(
                "field {p} ({t}) is in neither the example nor the spec list"
            ));
        }
    }
    Ok(())
}

fn resource_kind(path: &str) -> &str {
    if path.contains("/virtualMachineInstances/") {
        "virtualMachineInstances"
    } else if path.contains("/Microsoft.AzureStackHCI/") {
        path.split("/Microsoft.AzureStackHCI/")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or("")
    } else if path.contains("/Microsoft.HybridCompute/machines/") {
        "machines"
    } else {
        "other"
    }
}

/// Page `skip` (one resource a page) of the collection `key` (lower case), and the next
/// page's number; None when `key` is not a collection.
fn list_page(
    res: &HashMap<String, Value>,
    key: &str,
    skip: usize,
) -> Option<(Vec<Value>, Option<usize>)> {
    let (scope, kind) = key.split_once("/providers/")?;
    if kind.split('/').count() != 2 || !scope.starts_with("/subscriptions/") {
        return None;
    }
    let mut all: Vec<(&String, &Value)> = res
        .iter()
        .filter(|(k, _)| {
            k.starts_with(&format!("{scope}/"))
                && k.split_once("/providers/")
                    .and_then(|(_, rest)| rest.rsplit_once('/'))
                    .is_some_and(|(t, n)| t == kind && !n.is_empty())
        })
        .collect();
    all.sort_by_key(|(k, _)| *k);
    let page = all
        .get(skip)
        .map(|(_, v)| (*v).clone())
        .into_iter()
        .collect();
    Some((page, (skip + 1 < all.len()).then_some(skip + 1)))
}

impl Arm {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = Self {
            base: format!("http://127.0.0.1:{}", l.local_addr().unwrap().port()),
            calls: Arc::default(),
            resources: Arc::default(),
            fail_put: Arc::default(),
        };
        let (calls, res, fail) = (s.calls.clone(), s.resources.clone(), s.fail_put.clone());
        let base = s.base.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split(' ');
                let method = parts.next().unwrap_or_default().to_string();
                let target = parts.next().unwrap_or_default().to_string();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let arg = |k: &str| {
                    query
                        .split('&')
                        .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
                        .unwrap_or_default()
                        .to_string()
                };
                let api = arg("api-version");
                let (mut auth, mut len) = (String::new(), 0usize);
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                    match k.to_ascii_lowercase().as_str() {
                        "authorization" => auth = v.trim().to_string(),
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let mut raw = vec![0; len];
                r.read_exact(&mut raw).unwrap();
                let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                let key = path.to_ascii_lowercase();
                let (status, answer) = {
                    let mut res = res.lock().unwrap();
                    match method.as_str() {
                        "GET" => match res.get_mut(&key) {
                            Some(v) => {
                                let out = v.clone();
                                if v["properties"]["provisioningState"] == "Accepted" {
                                    v["properties"]["provisioningState"] = json!("Succeeded");
                                }
                                (200, out)
                            }
                            None => {
                                let token = arg("$skiptoken");
                                let skip = if token.is_empty() {
                                    Ok(0)
                                } else {
                                    token.parse()
                                };
                                match skip.map(|n| list_page(&res, &key, n)) {
                                    Err(_) => (
                                        400,
                                        json!({"error": {"code": "InvalidSkipToken", "message": "The skip token is not valid."}}),
                                    ),
                                    Ok(Some((items, more))) => {
                                        let mut page = json!({"value": items});
                                        if let Some(n) = more {
                                            page["nextLink"] = json!(format!(
                                                "{base}{path}?api-version={api}&$skiptoken={n}"
                                            ));
                                        }
                                        (200, page)
                                    }
                                    Ok(None) => (
                                        404,
                                        json!({"error": {"code": "ResourceNotFound", "message": "The Resource was not found."}}),
                                    ),
                                }
                            }
                        },
                        "PUT" => {
                            let kind = resource_kind(path);
                            let mut f = fail.lock().unwrap();
                            if let Some(i) = f.iter().position(|frag| path.contains(frag.as_str()))
                            {
                                f.remove(i);
                                (
                                    500,
                                    json!({"error": {"code": "InternalServerError", "message": "injected failure"}}),
                                )
                            } else if let Err(why) = check_shape(kind, &body) {
                                (
                                    400,
                                    json!({"error": {"code": "InvalidRequestContent", "message": why}}),
                                )
                            } else {
                                let mut v = body.clone();
                                v["id"] = json!(path);
                                v["name"] = json!(path.rsplit('/').next().unwrap_or_default());
                                if v.get("properties").is_none() {
                                    v["properties"] = json!({});
                                }
                                v["properties"]["provisioningState"] = json!("Accepted");
                                res.insert(key.clone(), v.clone());
                                (201, v)
                            }
                        }
                        "DELETE" => match res.remove(&key) {
                            Some(_) => (200, Value::Null),
                            None => (204, Value::Null),
                        },
                        _ => (405, Value::Null),
                    }
                };
                calls.lock().unwrap().push(Call {
                    method,
                    path: path.to_string(),
                    api,
                    body,
                    auth,
                    status,
                });
                let text = if answer.is_null() {
                    String::new()
                } else {
                    answer.to_string()
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        s
    }
    pub fn put_resource(&self, id: &str, v: Value) {
        self.resources
            .lock()
            .unwrap()
            .insert(id.to_ascii_lowercase(), v);
    }
    pub fn get(&self, id: &str) -> Option<Value> {
        self.resources
            .lock()
            .unwrap()
            .get(&id.to_ascii_lowercase())
            .cloned()
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// The JSON a successful `--json` run printed (the run failing, or printing something
/// else, fails the test with what it printed).
pub fn json_out(o: &std::process::Output) -> Value {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// A test CA (`ca.pem`) and a server certificate for 127.0.0.1 and `dns` (`srv.pem`,
/// `srv.key`) in `tls`, made with openssl.
pub fn certificates(tls: &Path, dns: &str) {
    certificates_for(tls, &format!("DNS:{dns},DNS:localhost,IP:127.0.0.1"), dns);
}

/// [`certificates`] naming only what `names` says (`subjectAltName`), `dns` its CN.
pub fn certificates_for(tls: &Path, names: &str, dns: &str) {
    let tls = tls.to_path_buf();
    std::fs::create_dir_all(&tls).unwrap();
    let ssl = |args: &[&str]| {
        rehydra_test_support::run(Command::new("openssl").current_dir(&tls).args(args));
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Rehydra test CA",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        &format!("/CN={dns}"),
    ]);
    std::fs::write(tls.join("ext"), format!("subjectAltName={names}\n")).unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(tls.join("srv.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A client certificate `client.pem` / `client.key` signed by the test CA in `tls`.
pub fn client_certificate(tls: &Path) {
    let ssl = |args: &[&str]| {
        rehydra_test_support::run(Command::new("openssl").current_dir(tls).args(args));
    };
    ssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/O=system:masters/CN=rehydra-backup",
    ]);
    // a v3 certificate for client authentication, as a cluster's CA issues them
    std::fs::write(tls.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "2",
        "-extfile",
        "client.ext",
    ]);
}

/// A stand-in service (a Python script in this folder) with its state in `DIR/state.json`
/// (read by it on every request, so a test edits it to change the service) and one line
/// per request in `DIR/calls.log`; the first line it prints is a JSON object of its URLs.
pub struct StandIn {
    pub dir: PathBuf,
    files: StateFiles,
    child: std::process::Child,
    /// What it printed first.
    pub urls: Value,
}

impl std::ops::Deref for StandIn {
    type Target = StateFiles;
    fn deref(&self) -> &StateFiles {
        &self.files
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    /// Start `script` (in `support/`) on `dir` with `args`, its state `state`.
    pub fn start(script: &str, dir: &Path, args: &[&str], state: &Value) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("state.json"),
            serde_json::to_vec_pretty(state).unwrap(),
        )
        .unwrap();
        let mut child = Command::new("python3")
            .arg(root().join("crates/cli/tests/cli/support").join(script))
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let urls = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{script}: {e}: {line}"));
        Self {
            dir: dir.to_path_buf(),
            files: StateFiles(dir.to_path_buf()),
            child,
            urls,
        }
    }

    /// The URL it printed as `name`.
    pub fn url(&self, name: &str) -> String {
        self.urls[name].as_str().unwrap().to_string()
    }
}
