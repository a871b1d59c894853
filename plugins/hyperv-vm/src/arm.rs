//! Azure Resource Manager through the host's HTTP capability (the host adds the token and
//! retries throttled or failed requests): the Arc lookups of discovery and backup, and
//! the logged, journaled calls of rehydration, whose long-running operations are waited
//! for with the SDK's poller (`Azure-AsyncOperation`, `Operation-Location`, `Location`,
//! else the resource's provisioning state; `Retry-After` honoured).
//!
//! API versions: GA wherever the resource type has one and the exact request sent is
//! valid in it (checked against Azure/azure-rest-api-specs); a preview only where the
//! request needs something no GA version has. Each constant says which and why.

use std::time::Duration;

use rehydra_plugin_sdk::azure::arm as lro;
use rehydra_plugin_sdk::{http, prelude::*, windows::clip};
use serde_json::{Value, json};

/// `Microsoft.AzureStackHCI/virtualMachineInstances` (GET, PUT, DELETE): GA. The stable
/// spec (`specification/azurestackhci/resource-manager/Microsoft.AzureStackHCI/StackHCIVM/
/// stable/2024-01-01/virtualMachineInstances.json`) has everything read and sent:
/// `storageProfile.osDisk.id`, `dataDisks[].id`, `vmConfigStoragePathId`,
/// `hardwareProfile.vmSize` `Custom` with `processors`/`memoryMB`,
/// `networkProfile.networkInterfaces[].id`, `securityProfile.enableTPM`,
/// `uefiSettings.secureBootEnabled` and `securityType`.
pub const VMI_API: &str = "2024-01-01";
/// `Microsoft.AzureStackHCI/networkInterfaces` GET (the Arc VM's NICs at backup, and the
/// resume check of rehydration): GA (`stable/2024-01-01/networkInterfaces.json` has
/// `ipConfigurations[].properties.subnet.id`, tags and `provisioningState`).
pub const NIC_GET_API: &str = "2024-01-01";
/// `Microsoft.AzureStackHCI/networkInterfaces` PUT with `createFromLocal`: preview only.
/// The GA `stable/2024-01-01/networkInterfaces.json` has no `createFromLocal`; the request
/// matches the official example `preview/2025-06-01-preview/examples/
/// NetworkInterfaces__CreateOrUpdate_CreateFromLocal.json`.
pub const NIC_CREATE_API: &str = "2025-06-01-preview";
/// `Microsoft.AzureStackHCI/virtualHardDisks` GET (resume check of rehydration): GA
/// (`stable/2024-01-01/virtualHardDisks.json`: tags, `provisioningState`).
pub const VHD_GET_API: &str = "2024-01-01";
/// `Microsoft.AzureStackHCI/virtualHardDisks` PUT with `createFromLocal`: preview only.
/// The GA `stable/2024-01-01/virtualHardDisks.json` has `containerId`, `diskFileFormat`,
/// `dynamic` and `hyperVGeneration` but no `createFromLocal`; the request matches
/// `preview/2025-06-01-preview/examples/VirtualHardDisks__CreateOrUpdate_CreateFromLocal.json`.
pub const VHD_CREATE_API: &str = "2025-06-01-preview";
/// `Microsoft.AzureStackHCI/logicalNetworks` GET (does the target exist): GA
/// (`stable/2024-01-01/logicalNetworks.json`).
pub const LNET_API: &str = "2024-01-01";
/// `Microsoft.AzureStackHCI/storageContainers` GET (does the target exist): GA
/// (`stable/2024-01-01/storageContainers.json`).
pub const STORAGE_CONTAINER_API: &str = "2024-01-01";
/// `Microsoft.HybridCompute/machines` (PUT with `kind: HCI` and a system-assigned
/// identity, GET, DELETE): GA. `kind` (`AVS`, `AWS`, `EPS`, `GCP`, `HCI`, `SCVMM`,
/// `VMware`) is in the stable `specification/hybridcompute/resource-manager/
/// Microsoft.HybridCompute/stable/2024-07-10/HybridCompute.json` (and in 2025-01-13); it
/// first came in previews (2023-10-03-preview). 2024-07-10 is the version Azure's own
/// Arc-VM-on-Azure-Local deployment modules use for this machine resource.
pub const MACHINES_API: &str = "2024-07-10";
/// `Microsoft.ExtendedLocation/customLocations` GET (does the target exist): GA, the only
/// stable version (`specification/extendedlocation/resource-manager/
/// Microsoft.ExtendedLocation/stable/2021-08-15/customlocations.json`).
pub const CUSTOM_LOCATION_API: &str = "2021-08-15";

/// One ARM endpoint; every request and response is logged and kept in `journal`.
pub struct Arm {
    base: String,
    /// Every call made, in order (polls included): method, url, request body, status,
    /// response body.
    pub journal: Vec<Value>,
    /// Seconds between polls of a running operation when ARM does not say
    /// (`Retry-After`); also the floor when shorter than the SDK's.
    pub poll_seconds: u64,
}

fn arm_error(what: &str, status: u16, body: &[u8]) -> Error {
    Error::new(
        if status == 401 || status == 403 {
            ErrorCode::Denied
        } else {
            ErrorCode::Failed
        },
        format!(
            "Azure Resource Manager answered {status} for {what}: {}",
            clip(&String::from_utf8_lossy(body), 400)
        ),
    )
}

impl Arm {
    /// ARM at `base` (`https://management.azure.com` unless a setting says otherwise).
    pub fn new(base: Option<&str>) -> Self {
        Self {
            base: base
                .unwrap_or("https://management.azure.com")
                .trim_end_matches('/')
                .to_string(),
            journal: Vec::new(),
            poll_seconds: 10,
        }
    }

    fn url(&self, id: &str, api: &str) -> String {
        format!("{}{id}?api-version={api}", self.base)
    }

    /// One HTTP exchange, logged (request and answer) and journaled; any status is
    /// returned as it came.
    fn exchange(&mut self, req: &http::Request) -> Result<http::Response> {
        let sent = (!req.body.is_empty()).then(|| String::from_utf8_lossy(&req.body).into_owned());
        rehydra_plugin_sdk::host::info(&format!(
            "ARM {} {}{}",
            req.method,
            req.url,
            sent.as_deref().map(|b| format!(" {b}")).unwrap_or_default()
        ));
        let r = http::send(req)?;
        let text = String::from_utf8_lossy(&r.body);
        rehydra_plugin_sdk::host::info(&format!("ARM {} {}", r.status, clip(&text, 4000)));
        let parse = |t: &str| -> Value {
            if t.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string()))
            }
        };
        self.journal.push(json!({
            "method": req.method, "url": req.url, "request": sent.as_deref().map(parse),
            "status": r.status, "response": parse(&text),
        }));
        Ok(r)
    }

    /// How rehydration waits for ARM: `poll_seconds` unless ARM says, at most 5 minutes
    /// per operation (the plugin's call has 10).
    fn lro_options(&self) -> lro::Options {
        lro::Options {
            max_wait: Duration::from_secs(300),
            max_polls: 300,
            ..lro::Options::default()
        }
        .with_interval(Duration::from_secs(self.poll_seconds))
    }

    /// Send `method` to resource `id` and wait for the operation to finish.
    fn send_and_wait(
        &mut self,
        method: &str,
        id: &str,
        api: &str,
        body: Option<&Value>,
    ) -> Result<http::Response> {
        let url = self.url(id, api);
        let opts = self.lro_options();
        let bytes = body.map(|b| b.to_string().into_bytes());
        lro::send_and_wait_with(
            |r| self.exchange(r),
            lro::pause,
            method,
            &url,
            bytes.as_deref(),
            &opts,
        )
    }

    /// GET a resource: `None` on 404.
    pub fn get(&mut self, id: &str, api: &str) -> Result<Option<Value>> {
        let url = self.url(id, api);
        let r = self.exchange(&http::Request {
            method: "GET".into(),
            url,
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
        })?;
        match r.status {
            404 => Ok(None),
            s if s >= 300 => Err(arm_error(&format!("GET {id}"), s, &r.body)),
            _ => Ok(Some(serde_json::from_slice(&r.body).unwrap_or(Value::Null))),
        }
    }

    /// PUT a resource and wait until ARM has provisioned it; a `Failed` or `Canceled`
    /// operation is an error with ARM's own code and message. Returns the resource.
    pub fn put(&mut self, id: &str, api: &str, body: &Value) -> Result<Value> {
        let r = self.send_and_wait("PUT", id, api, Some(body))?;
        Ok(serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// DELETE a resource and wait until it is gone (absent is fine).
    pub fn delete(&mut self, id: &str, api: &str) -> Result<()> {
        match self.send_and_wait("DELETE", id, api, None) {
            Err(e) if e.code == ErrorCode::NotFound => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

/// `properties.provisioningState`, or "" when the resource has none.
pub fn provisioning(v: &Value) -> &str {
    v.pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The Arc VM resource id of machine `vm`.
pub fn vmi_id(sub: &str, rg: &str, machine: &str) -> String {
    format!(
        "{}/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default",
        machine_id(sub, rg, machine)
    )
}

/// The `Microsoft.HybridCompute/machines` resource id.
pub fn machine_id(sub: &str, rg: &str, machine: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines/{machine}"
    )
}

/// An `Microsoft.AzureStackHCI` resource id in a resource group.
pub fn hci_id(sub: &str, rg: &str, kind: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.AzureStackHCI/{kind}/{name}"
    )
}

/// What ARM knows about a VM that is an Arc VM.
pub struct ArcVm {
    pub id: String,
    pub custom_location: String,
    pub nics: Vec<String>,
    pub security_type: String,
    pub tpm: bool,
}

/// The Arc VM behind Hyper-V VM `vm`, if it is one.
pub fn lookup(arm: &mut Arm, sub: &str, rg: &str, vm: &str) -> Result<Option<ArcVm>> {
    let Some(v) = arm.get(&vmi_id(sub, rg, vm), VMI_API)? else {
        return Ok(None);
    };
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Some(ArcVm {
        id: s("/id"),
        custom_location: s("/extendedLocation/name"),
        nics: nic_ids(&v),
        security_type: s("/properties/securityProfile/securityType"),
        tpm: v
            .pointer("/properties/securityProfile/enableTPM")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }))
}

fn nic_ids(vmi: &Value) -> Vec<String> {
    vmi.pointer("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| n.get("id").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What a rehydration elsewhere needs to know about an Arc VM: its resource, custom
/// location, and per NIC the logical networks it is attached to. `null` for a local VM.
pub fn identity(arm: &mut Arm, sub: &str, rg: &str, vm: &str) -> Result<Value> {
    let Some(v) = arm.get(&vmi_id(sub, rg, vm), VMI_API)? else {
        return Ok(Value::Null);
    };
    let mut nics = Vec::new();
    for id in nic_ids(&v) {
        let nic = arm.get(&id, NIC_GET_API)?.unwrap_or(Value::Null);
        let lnets: Vec<&str> = nic
            .pointer("/properties/ipConfigurations")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.pointer("/properties/subnet/id").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        nics.push(json!({ "id": id, "logicalNetworks": lnets, "found": !nic.is_null() }));
    }
    Ok(json!({
        "id": v.pointer("/id"),
        "customLocation": v.pointer("/extendedLocation/name"),
        "location": v.get("location"),
        "networkInterfaces": nics,
        "resource": v,
    }))
}
