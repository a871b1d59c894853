//! Rehydra desktop app: a thin Tauri shell. Every command (`commands.rs`, and by screen
//! `repositories.rs`, `service.rs`, `assessment.rs`) is a few lines calling
//! `rehydra-api`, the same crate the CLI calls; progress streams over Tauri channels;
//! errors reach the UI as `{code, message}`.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod assessment;
mod bindings;
mod commands;
mod progress;
mod repositories;
mod service;
mod state;
mod tray;
mod update;

fn main() {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        eprintln!(
            "rehydra-app: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); the desktop app needs one. \
             Everything it does, the CLI does too: run `rehydra --help`."
        );
        std::process::exit(2);
    }
    // Windows: the app draws through the Edge WebView2 runtime; without it, say so
    // (Tauri would stop with a panic nobody sees: the app has no console)
    if cfg!(windows)
        && let Err(e) = tauri::webview_version()
    {
        fatal(&format!(
            "Rehydra's desktop app needs the Microsoft Edge WebView2 runtime, which is not installed here ({e}). \
             Install it from https://developer.microsoft.com/microsoft-edge/webview2/ and start the app again. \
             Everything the app does, the command line does too: run `rehydra --help`."
        ));
    }
    let state = state::App::from_env();
    // a catalog named on the command line (the Windows "Rehydra (service)" shortcut) that
    // cannot be opened: said at once, rather than as errors on every screen
    if state.catalog_given
        && let Err(e) = rehydra_api::job_runs(&state.ctx, 1)
    {
        fatal(&format!(
            "the catalog given with --catalog cannot be opened: {} (the Windows service's catalog opens only for an administrator: start the app with \"Run as administrator\")",
            e.message
        ));
    }
    rehydra_api::logging::init(&state.ctx);
    let app = tauri::Builder::default()
        // its own commands are not granted to the window (no `updater:` permission in the
        // capabilities): only `update.rs`'s, with the build's key, reach it
        .plugin(tauri_plugin_updater::Builder::new().build())
        .manage(state)
        .setup(|app| {
            // a desktop with no tray (Linux without the AppIndicator library, which the
            // tray loads at run time and panics without) runs the app without the icon
            let handle = app.handle().clone();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tray::install(&handle))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("no tray icon: {e}"),
                Err(_) => tracing::warn!("no tray icon: the desktop's AppIndicator library (libayatana-appindicator3) could not be loaded"),
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            repositories::default_location,
            repositories::repo_create,
            repositories::repo_connect,
            repositories::repo_status,
            repositories::repos_open,
            repositories::repo_switch,
            repositories::repo_close,
            repositories::repo_recent,
            repositories::repo_check,
            repositories::storage_check,
            commands::restore_points,
            commands::inventory,
            commands::discover,
            commands::backup_folder,
            commands::plugin_backup,
            commands::policies_list,
            commands::policy_save,
            service::service_status,
            service::service_hand_over,
            service::service_requests,
            service::service_cancel,
            service::operator_overview,
            service::operator_run,
            service::operator_cancel,
            update::update_check,
            update::update_install,
            commands::policy_remove,
            commands::copy_target_unlock,
            commands::copy_targets_unlocked,
            commands::policy_run,
            commands::cancel_job,
            commands::job_history,
            commands::job_log,
            commands::restore_plan,
            commands::restore_run,
            commands::instant_start,
            commands::instant_list,
            commands::verify_restore_point,
            commands::plugins_list,
            commands::plugin_info,
            commands::plugin_grant,
            commands::plugin_revoke,
            commands::directories_list,
            commands::directory_add,
            commands::directory_check,
            commands::directory_remove,
            commands::sql_servers_list,
            commands::sql_server_add,
            commands::sql_server_check,
            commands::sql_server_remove,
            commands::kube_clusters_list,
            commands::kube_cluster_add,
            commands::kube_cluster_remove,
            commands::targets_list,
            commands::target_add,
            commands::target_refresh,
            commands::target_remove,
            commands::azure_status,
            commands::azure_settings,
            commands::azure_set_identity,
            assessment::assessment_plan,
            assessment::assessment_run,
            assessment::assessment_save,
        ])
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|_, _| {}),
        Err(e) => fatal(&format!("cannot start: {e}")),
    }
}

/// Say why the app cannot start (on standard error, and on Windows in a message box)
/// and exit with 1.
fn fatal(msg: &str) -> ! {
    eprintln!("rehydra-app: {msg}");
    #[cfg(windows)]
    #[allow(unsafe_code)]
    {
        let wide = |s: &str| s.encode_utf16().chain([0]).collect::<Vec<u16>>();
        let (text, title) = (wide(msg), wide("Rehydra"));
        // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call; no owner window
        unsafe {
            windows_sys::Win32::UI::WindowsAndMessaging::MessageBoxW(
                std::ptr::null_mut(),
                text.as_ptr(),
                title.as_ptr(),
                windows_sys::Win32::UI::WindowsAndMessaging::MB_ICONERROR,
            );
        }
    }
    std::process::exit(1);
}
