//! Azure Resource Manager's `Microsoft.AzureArcData/sqlManagedInstances` (api-version
//! 2026-01-01, the newest stable with examples), listed per subscription or per resource
//! group through the SDK's [`resources`].

use rehydra_plugin_sdk::azure::resources;
use rehydra_plugin_sdk::prelude::*;

pub use resources::{DEFAULT_ARM, list};

/// The api-version of `Microsoft.AzureArcData`.
pub const API: &str = "2026-01-01";

/// The first page URL of the instances of `sub` (and resource group `rg`).
///
/// # Errors
/// `invalid-input` for a malformed subscription or resource group.
pub fn instances_url(arm: &str, sub: &str, rg: Option<&str>) -> Result<String> {
    resources::list_url(
        arm,
        sub,
        rg,
        "Microsoft.AzureArcData/sqlManagedInstances",
        API,
    )
}
