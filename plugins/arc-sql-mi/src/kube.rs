//! The Kubernetes API server the admin granted (`kube=`, `http:<host>:<port>`): the URLs
//! of the Arc data services resources, and what to tell the admin when the server says
//! no. The calls are the SDK's ([`rehydra_plugin_sdk::kube`]).

/// `SqlManagedInstance` (`sql.arcdata.microsoft.com/v1`).
pub const MI_PATH: &str = "/apis/sql.arcdata.microsoft.com/v1";
/// `SqlManagedInstanceRestoreTask` (`tasks.sql.arcdata.microsoft.com/v1`).
pub const TASK_API: &str = "tasks.sql.arcdata.microsoft.com/v1";

/// URL of the instances of namespace `ns` (a checked name).
pub fn instances_url(base: &str, ns: &str) -> String {
    format!("{base}{MI_PATH}/namespaces/{ns}/sqlmanagedinstances")
}

/// URL of the restore tasks of namespace `ns`, or of task `name` there.
pub fn tasks_url(base: &str, ns: &str, name: Option<&str>) -> String {
    let mut u = format!("{base}/apis/{TASK_API}/namespaces/{ns}/sqlmanagedinstancerestoretasks");
    if let Some(n) = name {
        u.push('/');
        u.push_str(n);
    }
    u
}

/// What to tell the admin about a failing status.
pub fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "the host's credentials for this API server may not read or create these resources (a role with get, list and create on sqlmanagedinstances and sqlmanagedinstancerestoretasks)"
        }
        404 => {
            "is Azure Arc data services installed on this cluster, and does the namespace exist?"
        }
        _ => "",
    }
}
