//! `rehydra`: back up and restore Azure Local / Hyper-V workloads from the command line.

mod args;
mod azure;
mod catalog;
mod commands;
mod directory;
mod files;
mod keys;
mod output;
mod password;
mod plugins;
mod policy;
mod service;
mod sql_server;

use clap::Parser;

/// `rehydra restore-points | head -1`: when whoever reads our standard output goes away,
/// stop quietly with 141 (128 + SIGPIPE, what a shell reports for a pipe that closed)
/// instead of a panic message. Rust's `println!` panics on that write error; SIGPIPE
/// itself stays ignored, so a plugin command or a socket that closes is still an error
/// the code handles, not a silent kill in the middle of a backup.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // EPIPE (32) on Unix; ERROR_NO_DATA (232) on Windows; any other write error (a
        // full disk under a redirect) still panics loudly
        if msg.starts_with("failed printing to stdout")
            && (msg.contains("os error 32)") || msg.contains("os error 232)"))
        {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    quiet_on_closed_stdout();
    let cli = args::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // the API error's code survives any context added on the way (`{e:#}` shows both)
            let api = e.downcast_ref::<rehydra_api::ApiError>();
            eprintln!("error: {e:#}");
            if let Some(hint) = api.and_then(|a| a.hint) {
                eprintln!("hint: {}", output::hint(hint));
            }
            api.map_or(1, |api| api.code.exit_code())
        }
    };
    std::process::exit(code);
}
