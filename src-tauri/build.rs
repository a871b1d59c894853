//! Tauri's build step: reads `tauri.conf.json`, and declares the app's commands so that
//! each needs an explicit permission in `capabilities/` (nothing is allowed by default).
fn main() {
    let commands = &[
        "default_location",
        "repo_create",
        "repo_connect",
        "repo_status",
        "repo_check",
        "restore_points",
        "storage_check",
        "inventory",
        "discover",
        "backup_folder",
        "plugin_backup",
        "policies_list",
        "policy_save",
        "policy_remove",
        "copy_target_unlock",
        "copy_targets_unlocked",
        "policy_run",
        "cancel_job",
        "job_history",
        "job_log",
        "restore_plan",
        "restore_run",
        "instant_start",
        "instant_list",
        "verify_restore_point",
        "plugins_list",
        "plugin_info",
        "plugin_grant",
        "plugin_revoke",
        "directories_list",
        "directory_add",
        "directory_check",
        "directory_remove",
        "sql_servers_list",
        "sql_server_add",
        "sql_server_check",
        "sql_server_remove",
        "targets_list",
        "target_add",
        "target_remove",
        "azure_status",
        "azure_settings",
        "azure_set_identity",
    ];
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(commands)),
    )
    .expect("tauri build step");
}
