//! `rehydra`: back up and restore Azure Local / Hyper-V workloads from the command line.

mod args;
mod commands;
mod output;
mod password;
mod plugins;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let (code, msg) = match e.downcast_ref::<rehydra_api::ApiError>() {
                Some(api) => (api.code.exit_code(), api.message.clone()),
                None => (1, format!("{e:#}")),
            };
            eprintln!("error: {msg}");
            code
        }
    };
    std::process::exit(code);
}
