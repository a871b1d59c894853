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
mod sql_server;

use clap::Parser;

fn main() {
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
