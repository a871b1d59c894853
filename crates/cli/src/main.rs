//! `rehydra`: back up and restore Azure Local / Hyper-V workloads from the command line.

mod args;
mod assess;
mod azure;
mod catalog;
mod commands;
mod directory;
mod files;
mod keys;
mod kube_cluster;
mod operator;
mod output;
mod password;
mod plugins;
mod policy;
mod service;
mod sql_server;

use clap::Parser;

/// Whether a panic is Rust's `println!` failing because whoever read our standard output
/// went away: EPIPE (32) on Unix, ERROR_NO_DATA (232) or ERROR_PIPE_NOT_CONNECTED (233)
/// on Windows. Any other write error (a full disk under a redirect) still panics loudly.
fn is_closed_stdout(payload: &(dyn std::any::Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.starts_with("failed printing to stdout")
        && ["os error 32)", "os error 232)", "os error 233)"]
            .iter()
            .any(|e| msg.contains(e))
}

/// The exit code of a failed command: its API error's (whatever context was added on
/// the way), else 1.
pub(crate) fn exit_code_of(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<rehydra_api::ApiError>()
        .map_or(1, |api| output::exit_code(api.code))
}

/// `rehydra restore-points | head -1`: when the reader goes away, the panic unwinds (every
/// lock, temporary file and catalog job is closed on the way, as for any error) and the
/// process ends quietly with 141 (128 + SIGPIPE, what a shell reports). SIGPIPE itself
/// stays ignored, so a plugin command or a socket that closes is an error the code
/// handles, not a silent kill in the middle of a backup.
fn main() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout(info.payload()) {
            default(info);
        }
    }));
    let cli = args::Cli::parse();
    // the Windows service also writes its lines to the Event Log
    #[cfg(windows)]
    let extra = matches!(
        cli.command,
        args::Command::Service {
            windows_service: true,
            ..
        }
    )
    .then(service::event_log)
    .flatten();
    #[cfg(not(windows))]
    let extra = None;
    rehydra_api::logging::init_with(&commands::context(&cli), extra);
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::run(cli))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            // the API error's code survives any context added on the way (`{e:#}` shows both)
            let api = e.downcast_ref::<rehydra_api::ApiError>();
            eprintln!("error: {e:#}");
            if let Some(hint) = api.and_then(|a| a.hint) {
                eprintln!("hint: {}", output::hint(hint));
            }
            exit_code_of(&e)
        }
        Err(p) if is_closed_stdout(p.as_ref()) => 141,
        Err(p) => std::panic::resume_unwind(p),
    };
    std::process::exit(code);
}
