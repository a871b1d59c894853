//! `rehydra key`: the repository's key slots.

use anyhow::Result;
use rehydra_api::KdfParams;

use crate::args::{Cli, KeyCommand};
use crate::commands::*;
use crate::output::json;
use crate::password;

pub(crate) fn run(cli: &Cli, k: &KeyCommand) -> Result<i32> {
    let mut s = open(cli)?;
    let kdf = KdfParams::default();
    match k {
        KeyCommand::List => {
            let keys = s.keys()?;
            if cli.json {
                json(&keys)?;
            } else {
                for k in keys {
                    println!(
                        "{} {:<8} {:<20} {} {}",
                        if k.current { "*" } else { " " },
                        &k.id[..8],
                        k.hostname,
                        k.created,
                        k.label
                    );
                }
            }
        }
        KeyCommand::Add {
            label,
            new_password_file,
        } => {
            let pw = password::new(new_password_file.as_deref(), None)?;
            let id = s.add_key(&pw, kdf, label)?;
            done(cli, "added key slot", &id)?;
        }
        KeyCommand::Remove { id } => {
            let id = s.remove_key(id)?;
            done(cli, "removed key slot", &id)?;
        }
        KeyCommand::Passwd { new_password_file } => {
            let pw = password::new(new_password_file.as_deref(), None)?;
            let id = s.change_password(&pw, kdf)?;
            done(cli, "password changed; new key slot", &id)?;
        }
    }
    Ok(0)
}
