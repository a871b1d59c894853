//! The Azure CLI and Azure Developer CLI sources: `azure_identity`'s credentials run
//! through our process runner, which bounds each run and kills the whole process tree
//! when it takes too long (`az` is a Python program started by a shell script, so killing
//! only the shell would leave it running with our pipes open).

use std::ffi::{OsStr, OsString};
use std::io;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialOptions, Executor,
};

use crate::config::IdentityOptions;
use crate::error::IdentityError;
use crate::status::SourceKind;

/// Runs a command with a time limit and an optional `PATH`.
#[derive(Debug)]
pub(crate) struct TimedExecutor {
    timeout: Duration,
    path: Option<OsString>,
}

#[async_trait::async_trait]
impl Executor for TimedExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> io::Result<Output> {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = &self.path {
            command.env("PATH", path);
        }
        // its own process group, so a timeout can kill the shell and everything it started
        #[cfg(unix)]
        command.process_group(0);
        let child = command.spawn()?;
        let pid = child.id();
        let mut wait = std::pin::pin!(child.wait_with_output());
        match tokio::time::timeout(self.timeout, &mut wait).await {
            Ok(output) => output,
            Err(_) => {
                // the tree first (Windows finds it through the living parent); the child itself
                // is killed when `wait` is dropped on return
                if let Some(pid) = pid {
                    kill_tree(pid).await;
                }
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "did not answer within {} s and was stopped",
                        self.timeout.as_secs_f32()
                    ),
                ))
            }
        }
    }
}

#[cfg(unix)]
async fn kill_tree(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(windows)]
async fn kill_tree(pid: u32) {
    let _ = tokio::process::Command::new("taskkill")
        .args(["/T", "/F", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

#[cfg(not(any(unix, windows)))]
async fn kill_tree(_pid: u32) {}

fn executor(opts: &IdentityOptions) -> Arc<dyn Executor> {
    Arc::new(TimedExecutor {
        timeout: opts.cli_timeout,
        path: opts.cli_path.clone(),
    })
}

/// The account signed in to `az`, in its default tenant or in `tenant`.
pub(crate) fn azure_cli(
    opts: &IdentityOptions,
    tenant: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, IdentityError> {
    let options = AzureCliCredentialOptions {
        executor: Some(executor(opts)),
        tenant_id: tenant.map(str::to_owned),
        ..Default::default()
    };
    let credential = AzureCliCredential::new(Some(options))
        .map_err(|e| IdentityError::Config(crate::reason::plain(SourceKind::AzureCli, &e)))?;
    Ok(credential)
}

/// The account signed in to `azd`, in its default tenant or in `tenant`.
pub(crate) fn azure_developer_cli(
    opts: &IdentityOptions,
    tenant: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, IdentityError> {
    let options = AzureDeveloperCliCredentialOptions {
        executor: Some(executor(opts)),
        tenant_id: tenant.map(str::to_owned),
    };
    let credential = AzureDeveloperCliCredential::new(Some(options)).map_err(|e| {
        IdentityError::Config(crate::reason::plain(SourceKind::AzureDeveloperCli, &e))
    })?;
    Ok(credential)
}
