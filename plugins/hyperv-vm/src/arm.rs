//! Azure Resource Manager through the host's HTTP capability (the host adds the token):
//! the Arc lookups of discovery and backup, and the logged, polled calls of rehydration.

use rehydra_plugin_sdk::{http, prelude::*, windows::clip};
use serde_json::{Value, json};

/// `Microsoft.AzureStackHCI` API version of the official examples used.
pub const HCI_API: &str = "2025-06-01-preview";
/// `Microsoft.HybridCompute/machines` API version (the first with `kind: HCI`).
pub const MACHINES_API: &str = "2023-10-03-preview";

/// One ARM endpoint; every request and response is logged and kept in `journal`.
pub struct Arm {
    base: String,
    /// Every call made, in order: method, url, request body, status, response body.
    pub journal: Vec<Value>,
    /// Seconds between polls of a resource that is still provisioning.
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
            poll_seconds: 2,
        }
    }

    fn url(&self, id: &str, api: &str) -> String {
        format!("{}{id}?api-version={api}", self.base)
    }

    /// Send one request; returns the status and the body as JSON (`null` when empty).
    fn send(
        &mut self,
        method: &str,
        id: &str,
        api: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let url = self.url(id, api);
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        rehydra_plugin_sdk::host::info(&format!(
            "ARM {method} {url}{}",
            body.map(|b| format!(" {b}")).unwrap_or_default()
        ));
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let r = http::send(&http::Request {
            method: method.into(),
            url: url.clone(),
            headers,
            body: bytes,
        })?;
        let text = String::from_utf8_lossy(&r.body);
        rehydra_plugin_sdk::host::info(&format!("ARM {} {}", r.status, clip(&text, 4000)));
        let parsed: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.to_string()))
        };
        self.journal.push(json!({
            "method": method, "url": url, "request": body, "status": r.status, "response": parsed,
        }));
        if r.status >= 400 && r.status != 404 {
            return Err(arm_error(&format!("{method} {id}"), r.status, &r.body));
        }
        Ok((r.status, parsed))
    }

    /// GET a resource: `None` on 404.
    pub fn get(&mut self, id: &str, api: &str) -> Result<Option<Value>> {
        let (status, v) = self.send("GET", id, api, None)?;
        Ok((status != 404).then_some(v))
    }

    /// PUT a resource and wait until it has provisioned (`Succeeded`); a `Failed` or
    /// `Canceled` state is an error with ARM's own status message.
    pub fn put(&mut self, id: &str, api: &str, body: &Value) -> Result<Value> {
        let (status, mut v) = self.send("PUT", id, api, Some(body))?;
        if status == 404 {
            return Err(arm_error(&format!("PUT {id}"), status, b"not found"));
        }
        for _ in 0..300 {
            match provisioning(&v) {
                "Succeeded" | "" => return Ok(v),
                "Failed" | "Canceled" => {
                    return Err(Error::new(
                        ErrorCode::Failed,
                        format!(
                            "{id} ended {}: {}",
                            provisioning(&v),
                            v.pointer("/properties/status/errorMessage")
                                .and_then(Value::as_str)
                                .unwrap_or("no message")
                        ),
                    ));
                }
                _ => {
                    if self.poll_seconds > 0 {
                        std::thread::sleep(std::time::Duration::from_secs(self.poll_seconds));
                    }
                    v = self.get(id, api)?.ok_or_else(|| {
                        Error::new(
                            ErrorCode::Failed,
                            format!("{id} disappeared while provisioning"),
                        )
                    })?;
                }
            }
        }
        Err(Error::new(
            ErrorCode::Failed,
            format!(
                "{id} is still provisioning after 300 polls; run the rehydration again to resume"
            ),
        ))
    }

    /// DELETE a resource (absent is fine).
    pub fn delete(&mut self, id: &str, api: &str) -> Result<()> {
        self.send("DELETE", id, api, None).map(|_| ())
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
    let Some(v) = arm.get(&vmi_id(sub, rg, vm), HCI_API)? else {
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
    let Some(v) = arm.get(&vmi_id(sub, rg, vm), HCI_API)? else {
        return Ok(Value::Null);
    };
    let mut nics = Vec::new();
    for id in nic_ids(&v) {
        let nic = arm.get(&id, HCI_API)?.unwrap_or(Value::Null);
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
