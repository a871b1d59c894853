//! Trusted launch VMs: the guest state protection (GSP) key and the guest state files.
//!
//! A Trusted launch VM on Azure Local seals its guest state (VMGS: vTPM, UEFI variables)
//! with an AES-256 key that the cluster's MOC key vault keeps under the VM's id. Without
//! that key a restored VM cannot open its guest state; started without it, the cluster
//! generates a new key and the old state is lost for good.
//!
//! Backup, on the VM's owner node: a wrapping key (RSA-2048) is created once in the backup
//! key vault (`New-MocKey`), its public key read (`Get-MocKeyPublicKey`), and the VM's
//! key exported wrapped with it (`Export-MocKey … -size 256`). The export is checked to be
//! wrapped (an unwrapped export is refused, never stored) and kept in the restore point
//! as `gsp-key.json`, with the VMGS/VMRS files as items `vmgs`/`vmrs`.
//!
//! Restore, on the target node: checks first (VM present and off, no key of that name
//! already, the wrapping key present to unwrap), then `Import-MocKey`, confirmed with
//! `Get-MocKey`, and only then — when asked — `Start-VM`. A failed import never starts
//! the VM.
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::{join, map_path, powershell, ps_quote};
use rehydra_plugin_sdk::{engine, files};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default name of the wrapping key in the backup key vault.
const WRAP: &str = "rehydra-backup-wrap";

/// MOC key export/import document (`KeyImportExportValue` in moc-sdk-for-go): only the
/// fields this plugin checks.
#[derive(Deserialize, Debug)]
struct Export {
    #[serde(rename = "private-key", default)]
    private_key: String,
    #[serde(rename = "private-key-wrapping-info")]
    wrapping: Option<WrapInfo>,
}

#[derive(Deserialize, Debug)]
struct WrapInfo {
    #[serde(rename = "key-name", default)]
    key_name: String,
    #[serde(default)]
    enc: String,
}

/// Check that an export holds a wrapped key, never a clear one.
fn check_export(raw: &str) -> std::result::Result<Export, String> {
    let e: Export = serde_json::from_str(raw.trim().trim_start_matches('\u{feff}'))
        .map_err(|e| format!("the key export is not MOC's key JSON ({e})"))?;
    let w = e
        .wrapping
        .as_ref()
        .ok_or("the key export has no private-key-wrapping-info")?;
    if w.enc != "CKM_RSA_AES_KEY_WRAP" {
        return Err(format!(
            "the key export is not wrapped (enc `{}`); Rehydra never stores a guest state key in the clear",
            w.enc
        ));
    }
    if e.private_key.is_empty() {
        return Err("the key export holds no key".into());
    }
    Ok(e)
}

/// `gsp-key.json`: what a restore needs.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyDoc {
    vm_id: String,
    vm_name: String,
    key_vault: String,
    group: String,
    backup_key_vault: String,
    wrapping_key: String,
    wrapping_public_key: String,
    /// The wrapped export, verbatim, as `Import-MocKey -importKeyFile` takes it.
    export: String,
    key_size: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Exported {
    vm_id: String,
    vm_name: String,
    #[serde(default)]
    configuration_location: String,
    wrapping_public_key: String,
    export: String,
}

fn bad_json(node: &str, what: &str, e: &serde_json::Error) -> Error {
    Error::new(
        ErrorCode::Failed,
        format!("node {node}: {what} answered unexpected JSON ({e})"),
    )
}

/// The export script: wrapping key created once, public key read, VM key exported with it.
fn export_script(vm_id: &str, kv: &str, bkv: &str, group: &str, wrap: &str) -> String {
    format!(
        r#"$ErrorActionPreference = 'Stop'
$vm = Get-VM -Id {id}
if (-not (Get-MocKey -name {wrap} -group {group} -keyvaultName {bkv} -ErrorAction SilentlyContinue)) {{
  New-MocKey -name {wrap} -group {group} -keyvaultName {bkv} -type RSA -size 2048 | Out-Null
}}
$dir = Join-Path ([IO.Path]::GetTempPath()) ('rehydra-' + [guid]::NewGuid())
New-Item -ItemType Directory -Path $dir | Out-Null
try {{
  $pub = Join-Path $dir 'wrap.pem'; $out = Join-Path $dir 'key.json'
  Get-MocKeyPublicKey -name {wrap} -group {group} -keyvaultName {bkv} -outputFile $pub
  Export-MocKey -name $vm.Id.ToString() -group {group} -keyvaultName {kv} -wrappingKeyName {wrap} -wrappingPubKeyFile $pub -outFile $out -size 256
  [pscustomobject]@{{ VmId = $vm.Id.ToString(); VmName = $vm.Name; ConfigurationLocation = $vm.ConfigurationLocation; WrappingPublicKey = (Get-Content -Raw $pub); Export = (Get-Content -Raw $out) }} | ConvertTo-Json
}} finally {{ Remove-Item -Recurse -Force $dir }}"#,
        id = ps_quote(vm_id),
        kv = ps_quote(kv),
        bkv = ps_quote(bkv),
        group = ps_quote(group),
        wrap = ps_quote(wrap),
    )
}

/// The target node's view before an import.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Target {
    #[serde(default)]
    exists: bool,
    #[serde(default)]
    state: String,
    #[serde(default)]
    configuration_location: String,
    #[serde(default)]
    key_exists: bool,
    #[serde(default)]
    wrap_exists: bool,
}

fn probe(node: &str, vm_id: &str, d: &KeyDoc, kv: &str, group: &str) -> Result<Target> {
    let script = format!(
        r#"$ErrorActionPreference = 'Stop'
$vm = Get-VM -Id {id} -ErrorAction SilentlyContinue
[pscustomobject]@{{
  Exists = [bool]$vm; State = if ($vm) {{ $vm.State.ToString() }} else {{ '' }}; ConfigurationLocation = if ($vm) {{ $vm.ConfigurationLocation }} else {{ '' }}
  KeyExists = [bool](Get-MocKey -name {id} -group {group} -keyvaultName {kv} -ErrorAction SilentlyContinue)
  WrapExists = [bool](Get-MocKey -name {wrap} -group {group} -keyvaultName {bkv} -ErrorAction SilentlyContinue)
}} | ConvertTo-Json"#,
        id = ps_quote(vm_id),
        group = ps_quote(group),
        kv = ps_quote(kv),
        wrap = ps_quote(&d.wrapping_key),
        bkv = ps_quote(&d.backup_key_vault),
    );
    let out = powershell(node, &script, "checking the target VM and key vault")?;
    serde_json::from_slice(&out).map_err(|e| bad_json(node, "the target check", &e))
}

fn load_doc() -> Result<KeyDoc> {
    let raw = engine::read_document("gsp-key.json")?;
    serde_json::from_slice(&raw).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("gsp-key.json is not what this plugin wrote ({e})"),
        )
    })
}

/// Everything a restore does, checked.
struct Planned {
    plan: RestorePlan,
    node: String,
    vm_id: String,
    kv: String,
    group: String,
    doc: KeyDoc,
    remove_key: bool,
    guest_state: Option<String>,
    start: bool,
}

fn plan(req: &RestoreRequest) -> Result<Planned> {
    let o = &req.options;
    let doc = load_doc()?;
    let node = setting_or(o, "node", "local").to_string();
    let vm_id = setting_or(o, "vm-id", &doc.vm_id).to_ascii_lowercase();
    let kv = setting_or(o, "key-vault", &doc.key_vault).to_string();
    let group = setting_or(o, "group", &doc.group).to_string();
    let t = probe(&node, &vm_id, &doc, &kv, &group)?;
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let remove_key = flag(o, "replace-key");
    let start = flag(o, "start");
    let recovery = format!(
        "if the VM was started before its key was imported, the cluster generated a new key and its guest state cannot be opened with it: turn the VM off, remove that key (Remove-MocKey -name {vm_id} -group {group} -keyvaultName {kv}, or replace-key=true here), put the backed-up guest state back (guest-state=replace) and import again"
    );
    if !t.exists {
        blockers.push(format!(
            "no VM with id {vm_id} on node {node}: restore the VM first (hyperv-vm restore), then name its id with vm-id=…"
        ));
    } else if t.state != "Off" {
        blockers.push(format!(
            "VM {vm_id} is {}: the key is imported while it is off. {recovery}",
            t.state
        ));
    }
    if t.key_exists && !remove_key {
        blockers.push(format!(
            "a key named {vm_id} already exists in key vault {kv}. {recovery}"
        ));
    }
    if !t.wrap_exists {
        blockers.push(format!(
            "the wrapping key {} is not in key vault {} on node {node}: the exported key can only be unwrapped by the key vault whose wrapping key sealed it; restore onto the cluster that holds it",
            doc.wrapping_key, doc.backup_key_vault
        ));
    }
    let mut steps = vec![Step {
        id: "check".into(),
        title: format!("Check VM {vm_id} and key vault {kv} on {node}"),
        detail: format!(
            "VM: {}; key {vm_id}: {}; wrapping key {}: {}",
            if t.exists {
                t.state.as_str()
            } else {
                "missing"
            },
            if t.key_exists { "exists" } else { "absent" },
            doc.wrapping_key,
            if t.wrap_exists { "present" } else { "missing" }
        ),
        depends_on: vec![],
    }];
    let mut last = "check".to_string();
    if remove_key && t.key_exists {
        steps.push(Step {
            id: "remove-key".into(),
            title: "Remove the wrongly generated key (consented)".into(),
            detail: format!("Remove-MocKey -name {vm_id} -group {group} -keyvaultName {kv}"),
            depends_on: vec![last.clone()],
        });
        last = "remove-key".into();
    }
    let map = setting_or(o, "path-map", "");
    let guest_state = match setting_or(o, "guest-state", "keep") {
        "keep" => {
            warnings.push("the VM keeps the guest state file it has now (guest-state=replace puts the backed-up VMGS back, which a VM re-created by New-VM needs for its old vTPM contents)".into());
            None
        }
        "replace" => {
            let win = join(
                &join(&t.configuration_location, "Virtual Machines"),
                &format!("{}.vmgs", vm_id.to_ascii_uppercase()),
            );
            let local = map_path(map, &win)?;
            steps.push(Step {
                id: "guest-state".into(),
                title: "Put the backed-up guest state (VMGS) back".into(),
                detail: format!(
                    "vmgs to {win} (written here as {local}), replacing the VM's current one"
                ),
                depends_on: vec![last.clone()],
            });
            last = "guest-state".into();
            Some(local)
        }
        other => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("guest-state={other}: choose keep or replace"),
            ));
        }
    };
    steps.push(Step {
        id: "import-key".into(),
        title: format!("Import the guest state key as {vm_id}"),
        detail: format!(
            "Import-MocKey -name {vm_id} -importKeyFile <the wrapped export> -group {group} -keyvaultName {kv} -type AES -size {}; then Get-MocKey confirms it",
            doc.key_size
        ),
        depends_on: vec![last],
    });
    if start {
        steps.push(Step {
            id: "start-vm".into(),
            title: format!("Start VM {vm_id}"),
            detail: "Start-VM, only after the import succeeded".into(),
            depends_on: vec!["import-key".into()],
        });
    } else {
        warnings.push("the VM is left off (start=true starts it after the import)".into());
    }
    Ok(Planned {
        plan: RestorePlan {
            steps,
            warnings,
            blockers,
        },
        node,
        vm_id,
        kv,
        group,
        doc,
        remove_key: remove_key && t.key_exists,
        guest_state,
        start,
    })
}

fn execute(p: Planned) -> Result<RestoreReport> {
    p.plan.go_ahead()?;
    let (id, group, kv) = (ps_quote(&p.vm_id), ps_quote(&p.group), ps_quote(&p.kv));
    let mut bytes = 0;
    if p.remove_key {
        powershell(
            &p.node,
            &format!(
                "$ErrorActionPreference = 'Stop'\nRemove-MocKey -name {id} -group {group} -keyvaultName {kv}"
            ),
            "removing the wrongly generated key",
        )?;
    }
    if let Some(local) = &p.guest_state {
        bytes += engine::restore_item("vmgs", local, true)?;
    }
    let import = format!(
        r#"$ErrorActionPreference = 'Stop'
$f = Join-Path ([IO.Path]::GetTempPath()) ('rehydra-' + [guid]::NewGuid() + '.json')
Set-Content -Path $f -Value {export} -NoNewline
try {{
  Import-MocKey -name {id} -importKeyFile $f -group {group} -keyvaultName {kv} -type AES -size {size}
}} finally {{ Remove-Item -Force $f }}
if (-not (Get-MocKey -name {id} -group {group} -keyvaultName {kv})) {{ throw 'the key is not in the key vault after Import-MocKey' }}
'imported'"#,
        export = ps_quote(&p.doc.export),
        size = p.doc.key_size,
    );
    if let Err(e) = powershell(
        &p.node,
        &import,
        &format!("importing the guest state key of VM {}", p.vm_id),
    ) {
        return Err(Error::new(
            e.code,
            format!(
                "{} — the VM was NOT started: started without its key it would generate a new one and lose its guest state. Fix the cause and run this restore again",
                e.message
            ),
        ));
    }
    rehydra_plugin_sdk::host::info(&format!(
        "imported the guest state key of VM {} into {}",
        p.vm_id, p.kv
    ));
    if p.start {
        powershell(
            &p.node,
            &format!("$ErrorActionPreference = 'Stop'\nStart-VM -VM (Get-VM -Id {id})"),
            &format!("starting VM {}", p.vm_id),
        )?;
        rehydra_plugin_sdk::host::info(&format!("started VM {}", p.vm_id));
    }
    Ok(RestoreReport {
        bytes,
        warnings: p.plan.warnings,
    })
}

struct TvmKeys;

impl Plugin for TvmKeys {
    fn describe() -> PluginInfo {
        rehydra_plugin_sdk::describe_from_manifest!()
    }

    /// Settings: `nodes` (comma-separated command targets). Assets: the VMs with a vTPM.
    fn discover(s: Vec<Property>) -> Result<Vec<Asset>> {
        let mut out = Vec::new();
        for node in setting_or(&s, "nodes", "local")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let raw = powershell(
                node,
                "$ErrorActionPreference = 'Stop'\nGet-VM | Where-Object { (Get-VMSecurity -VM $_).TpmEnabled } | ForEach-Object { [pscustomobject]@{ Id = $_.Id.ToString(); Name = $_.Name; State = $_.State.ToString(); ConfigurationLocation = $_.ConfigurationLocation } } | ConvertTo-Json",
                "listing Trusted launch VMs",
            )?;
            let text = String::from_utf8_lossy(&raw);
            let text = text.trim().trim_start_matches('\u{feff}');
            if text.is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(text).map_err(|e| bad_json(node, "the VM list", &e))?;
            let vms = if v.is_array() {
                v.as_array().cloned().unwrap_or_default()
            } else {
                vec![v]
            };
            for vm in vms {
                let s = |k: &str| {
                    vm.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                out.push(Asset {
                    kind: "vm".into(),
                    id: s("Id").to_ascii_lowercase(),
                    name: s("Name"),
                    parent: None,
                    properties: vec![
                        Property {
                            name: "owner-node".into(),
                            value: node.to_string(),
                        },
                        Property {
                            name: "state".into(),
                            value: s("State"),
                        },
                        Property {
                            name: "configuration".into(),
                            value: s("ConfigurationLocation"),
                        },
                    ],
                    flags: ProtectionFlags::TRUSTED_LAUNCH,
                });
            }
        }
        Ok(out)
    }

    /// Options: `node` (the VM's owner node), `key-vault` and `group` (the MOC key vault
    /// holding the VM's key), `backup-key-vault` (where the wrapping key lives; default
    /// the same), `wrapping-key` (default `rehydra-backup-wrap`), `path-map`.
    fn backup(req: BackupRequest) -> Result<BackupReport> {
        let o = &req.options;
        let node = setting_or(o, "node", "local");
        let kv = require(
            o,
            "key-vault",
            "the MOC key vault that holds the VM's guest state key",
        )?;
        let group = require(o, "group", "the MOC group of that key vault")?;
        let bkv = setting_or(o, "backup-key-vault", kv);
        let wrap = setting_or(o, "wrapping-key", WRAP);
        let raw = powershell(
            node,
            &export_script(&req.asset.id, kv, bkv, group, wrap),
            &format!("exporting the guest state key of VM {}", req.asset.id),
        )?;
        let x: Exported =
            serde_json::from_slice(&raw).map_err(|e| bad_json(node, "the key export", &e))?;
        let e = check_export(&x.export)
            .map_err(|m| Error::new(ErrorCode::Failed, format!("VM {}: {m}", req.asset.id)))?;
        if let Some(w) = &e.wrapping
            && !w.key_name.is_empty()
            && w.key_name != wrap
        {
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "the key export names wrapping key `{}`, not `{wrap}`",
                    w.key_name
                ),
            ));
        }
        // guest state files: the VMGS must come along, the VMRS exists only for some states
        let dir = join(&x.configuration_location, "Virtual Machines");
        let map = setting_or(o, "path-map", "");
        let mut warnings = Vec::new();
        for (item, ext, required) in [("vmgs", "vmgs", true), ("vmrs", "VMRS", false)] {
            let win = join(&dir, &format!("{}.{ext}", x.vm_id.to_ascii_uppercase()));
            let local = map_path(map, &win)?;
            if files::stat(&local).is_err() {
                if required {
                    return Err(Error::new(
                        ErrorCode::NotFound,
                        format!(
                            "the guest state file {win} (here {local}) cannot be read; check path-map and the files grant"
                        ),
                    ));
                }
                warnings.push(format!(
                    "no {ext} file for VM {} ({win}); it exists only while the VM runs or is saved",
                    x.vm_name
                ));
                continue;
            }
            engine::ingest_file(item, &local)?;
        }
        let doc = KeyDoc {
            vm_id: x.vm_id.to_ascii_lowercase(),
            vm_name: x.vm_name,
            key_vault: kv.into(),
            group: group.into(),
            backup_key_vault: bkv.into(),
            wrapping_key: wrap.into(),
            wrapping_public_key: x.wrapping_public_key,
            export: x.export,
            key_size: 256,
        };
        let body =
            serde_json::to_vec(&doc).map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
        engine::put_document("gsp-key.json", &body)?;
        Ok(BackupReport {
            consistency: "crash".into(),
            warnings,
        })
    }

    /// Options: `node` (target), `vm-id` (the restored VM's id; default the original),
    /// `key-vault`, `group`, `replace-key=true`, `guest-state=keep|replace`, `path-map`,
    /// `start=true`.
    fn plan_restore(req: RestoreRequest) -> Result<RestorePlan> {
        Ok(plan(&req)?.plan)
    }

    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        execute(plan(&req)?)
    }

    /// Restorable only with a readable, wrapped key and the guest state file.
    fn verify(req: RestoreRequest) -> Result<VerifyReport> {
        let asset = Some(req.restore_point.asset.clone());
        let mut findings = Vec::new();
        let mut bad = |title: &str, detail: String| {
            findings.push(Finding {
                rule: "tvm.not-restorable".into(),
                severity: Severity::Critical,
                asset: asset.clone(),
                title: title.into(),
                detail,
                recommendation: "back the VM's key up again; until then this Trusted launch VM cannot be restored".into(),
            });
        };
        match load_doc() {
            Err(e) => bad("no guest state key: not restorable", e.message),
            Ok(d) => {
                if let Err(m) = check_export(&d.export) {
                    bad("guest state key unusable: not restorable", m);
                }
            }
        }
        let items = engine::items()?;
        if !items.iter().any(|i| i.name == "vmgs") {
            bad(
                "no guest state file (VMGS): not restorable",
                "the restore point has no vmgs item".into(),
            );
        }
        Ok(VerifyReport::of(findings))
    }
}

rehydra_plugin_sdk::export_plugin!(TvmKeys);

#[cfg(test)]
mod tests {
    #[test]
    fn clear_keys_are_refused() {
        let clear = r#"{"public-key":"","private-key":"AAAA","private-key-wrapping-info":{"key-name":"","public-key":"","enc":"NO_KEY_WRAP"}}"#;
        assert!(
            super::check_export(clear)
                .unwrap_err()
                .contains("not wrapped")
        );
        let wrapped = clear.replace("NO_KEY_WRAP", "CKM_RSA_AES_KEY_WRAP");
        assert!(super::check_export(&wrapped).is_ok());
        assert!(super::check_export("{}").is_err());
    }
}
