//! The Windows service `Rehydra`: what `service install` registers with the service
//! control manager (SCM), the SCM's entry point, and `service uninstall`.
//!
//! The service is this same `rehydra.exe`, started by the SCM with the settings written
//! out on its command line when it was installed (the catalog, repository and password
//! file as absolute paths; never a password, so `sc qc Rehydra` shows nothing secret) and
//! `service --windows-service`, which hands the process to the SCM. It then runs the
//! console service's loop ([`super::serve`]) until the SCM says stop or shutdown, and
//! reports the loop's exit code as its service-specific exit code. Its lines go to the
//! JSON log next to the catalog (nobody reads a service's standard error).

use std::ffi::OsString;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser as _;
use rehydra_api as api;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{RunArgs, say};
use crate::args::{Cli, Command};
use crate::commands::context;

/// The service's name, as `net start`, `sc` and the Services console know it.
pub(crate) const NAME: &str = "Rehydra";
const DISPLAY_NAME: &str = "Rehydra backup service";
/// The service's Event Log source (in the Application log).
const EVENT_SOURCE: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\Rehydra";
/// The message file of the source: "%1" for every event id, so the Event Viewer shows
/// the line as it is. It is the .NET Framework 4's, part of every Windows Rehydra runs on
/// (what .NET's own event sources use).
const EVENT_MESSAGES: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";
/// ERROR_SERVICE_DOES_NOT_EXIST
const NOT_INSTALLED: i32 = 1060;
/// How long a stop may take: the job in progress is cancelled first (systemd's
/// TimeoutStopSec of the Linux unit).
const STOP_WAIT: Duration = Duration::from_secs(300);

fn scm(what: &str) -> impl FnOnce(windows_service::Error) -> anyhow::Error + '_ {
    move |e| {
        let denied =
            matches!(&e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(5));
        let cause = match &e {
            windows_service::Error::Winapi(io) => io.to_string(),
            other => other.to_string(),
        };
        anyhow::anyhow!(
            "{what}: {cause}{}",
            if denied {
                " (run it from a prompt opened with \"Run as administrator\")"
            } else {
                ""
            }
        )
    }
}

fn is_not_installed(e: &windows_service::Error) -> bool {
    matches!(e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(NOT_INSTALLED))
}

/// An absolute form of a path given on this command line (the service does not start in
/// this folder).
fn absolute(p: &std::path::Path) -> Result<OsString> {
    Ok(std::path::absolute(p)
        .with_context(|| format!("{}: no absolute form", p.display()))?
        .into_os_string())
}

/// `%ProgramData%\Rehydra` (the known folder, not the environment variable, which a
/// user's programs can set for the admin's console).
fn machine_root() -> Result<std::path::PathBuf> {
    known_folders::get_known_folder_path(known_folders::KnownFolder::ProgramData)
        .map(|d| d.join("Rehydra"))
        .context("Windows does not say where ProgramData is")
}

/// `%ProgramData%\Rehydra\service`: the service's catalog, log and lock.
fn machine_folder() -> Result<std::path::PathBuf> {
    Ok(machine_root()?.join("service"))
}

/// Whether `path` is `folder` or below it, as Windows compares names (case aside).
fn within(path: &std::path::Path, folder: &std::path::Path) -> bool {
    let lower = |p: &std::path::Path| p.to_string_lossy().to_lowercase();
    let (p, f) = (lower(path), lower(folder));
    let f = f.trim_end_matches('\\');
    p == f || p.starts_with(&format!("{f}\\"))
}

/// Make `folder` Rehydra's: never through a link or junction (a user who made one first
/// would choose where it leads); owned by Administrators with every entry anyone added
/// removed (`/reset`), then only SYSTEM and Administrators may change it and, when
/// `users_read`, users may read it. With `whole_tree` the same for everything below it
/// (which then inherits those rights); without, what lies below keeps rights of its own.
fn restrict(folder: &std::path::Path, users_read: bool, whole_tree: bool) -> Result<()> {
    if std::fs::symlink_metadata(folder).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a link or junction, not a folder: someone made it to steer the service; remove it, then install again",
            folder.display()
        );
    }
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let icacls = known_folders::get_known_folder_path(known_folders::KnownFolder::System)
        .context("Windows does not say where System32 is")?
        .join("icacls.exe");
    let mut grants = vec!["*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F"];
    if users_read {
        grants.push("*S-1-5-32-545:(OI)(CI)RX");
    }
    let tree: &[&str] = if whole_tree { &["/T", "/Q"] } else { &["/Q"] };
    let steps: [Vec<&str>; 3] = [
        [&["/setowner", "*S-1-5-32-544"][..], tree].concat(),
        [&["/reset"][..], tree].concat(),
        [&["/inheritance:r", "/grant:r"][..], &grants, &["/Q"]].concat(),
    ];
    for args in steps {
        let status = std::process::Command::new(&icacls)
            .arg(folder)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("running {}", icacls.display()))?;
        if !status.success() {
            bail!(
                "icacls {} {} failed ({status}): the service's folder must be one only administrators change",
                folder.display(),
                args.join(" ")
            );
        }
    }
    Ok(())
}

/// The command line the SCM starts: the settings of this one that the service needs.
fn launch_arguments(cli: &Cli, catalog: &std::path::Path, run: &RunArgs) -> Result<Vec<OsString>> {
    let Some(password_file) = cli.password_file.as_deref() else {
        bail!(
            "the service starts with nobody there to type a password: give --password-file FILE (a file only SYSTEM and Administrators can read, e.g. in %ProgramData%\\Rehydra\\service)"
        );
    };
    if cli.password_command.is_some() {
        bail!(
            "the service keeps its settings on its command line, which every user can read: give the password with --password-file instead of --password-command"
        );
    }
    if cli.developer_mode {
        bail!("the service never loads unsigned plugins: install it without --dev");
    }
    let mut a: Vec<OsString> = vec![
        "--catalog".into(),
        absolute(catalog)?,
        "--repo".into(),
        cli.repo.clone().into(),
        "--password-file".into(),
        absolute(password_file)?,
    ];
    for d in &cli.plugin_dirs {
        a.extend(["--plugin-dir".into(), absolute(d)?]);
    }
    if let Some(d) = &cli.cache_dir {
        a.extend(["--cache-dir".into(), absolute(d)?]);
    }
    if cli.no_cache {
        a.push("--no-cache".into());
    }
    let numbers = [
        ("--limit-upload", cli.limit_upload),
        ("--limit-download", cli.limit_download),
        ("--plugin-max-memory-mib", cli.plugin_max_memory_mib),
        ("--plugin-max-seconds", cli.plugin_max_seconds),
    ];
    for (flag, n) in numbers {
        if let Some(n) = n {
            a.extend([flag.into(), n.to_string().into()]);
        }
    }
    a.extend([
        "service".into(),
        "--interval".into(),
        run.interval.to_string().into(),
    ]);
    if let Some(m) = &run.metrics {
        a.extend(["--metrics".into(), m.into()]);
    }
    if let Some(g) = &run.operators {
        a.extend(["--operators".into(), g.into()]);
    }
    a.push("--windows-service".into());
    Ok(a)
}

/// `rehydra service install`.
pub(crate) fn install(cli: &Cli, run: &RunArgs, no_start: bool) -> Result<i32> {
    if cli.repo.is_empty() {
        bail!("name the repository whose policies the service runs with -r/--repo");
    }
    if !cli.repo.contains("://") && std::path::Path::new(&cli.repo).is_relative() {
        bail!(
            "the service does not start in this folder: give the repository as an absolute path (C:\\…, \\\\server\\share\\…) or a URL"
        );
    }
    if cli.no_catalog {
        bail!("the service keeps its state in the catalog: install it without --no-catalog");
    }
    let machine = machine_folder()?;
    let catalog = std::path::absolute(
        cli.catalog
            .clone()
            .unwrap_or_else(|| machine.join("catalog.db")),
    )?;
    if !within(&catalog, &machine) {
        bail!(
            "the service runs as LocalSystem what its catalog says (folders, copy targets, trusted publishers), so its catalog must be where only administrators can write: leave --catalog out for {}, or give one in that folder; add its policies with `rehydra --catalog {} policy add …` from an administrator's console",
            machine.join("catalog.db").display(),
            machine.join("catalog.db").display()
        );
    }
    // before anything is read from it or written in it: the plugins' folder above stays
    // readable by users, the service's own is not (webhook URLs in the catalog carry
    // tokens; the password file belongs there)
    restrict(&machine_root()?, true, false)?;
    restrict(&machine, false, true)?;
    let exe = std::env::current_exe().context("the path of rehydra.exe")?;
    if let Some(pf) = std::env::var_os("ProgramFiles")
        && !within(&exe, std::path::Path::new(&pf))
    {
        eprintln!(
            "warning: the service will run {} as LocalSystem: keep it where only administrators can write (the installer puts it in Program Files)",
            exe.display()
        );
    }
    let ctx = api::Context {
        catalog: Some(catalog.clone()),
        ..context(cli)
    };
    let args = launch_arguments(cli, &catalog, run)?;
    if let Some(g) = &run.operators {
        // the group is looked up and the pipe made once now, not at boot with nobody
        // watching
        drop(api::service::operators::Door::open(g)?);
    }
    // the password opens the repository now, not at 02:00 with nobody watching
    api::backend_for(&ctx, &cli.repo)?;
    let pw = crate::password::current(cli.password_file.as_deref(), None, &cli.repo)?;
    drop(api::open(&ctx, &cli.repo, &pw)?);

    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(scm("connecting to the service control manager"))?;
    if manager
        .open_service(NAME, ServiceAccess::QUERY_STATUS)
        .is_ok()
    {
        bail!(
            "a service named {NAME} is installed already: `rehydra service uninstall` first, then install it with these settings"
        );
    }
    for p in api::policies::list(&ctx, chrono::Utc::now())? {
        if p.policy.repository == cli.repo {
            println!(
                "the service will run policy {}: {}{}",
                p.policy.name,
                p.policy.what.label(),
                p.policy
                    .copy_to
                    .map(|c| format!(", copied to {}", c.repository))
                    .unwrap_or_default()
            );
        }
    }
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: args,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
        )
        .map_err(scm("registering the service"))?;
    let description = format!(
        "Runs the due Rehydra policies of {} on their schedule, with nobody logged in.",
        cli.repo
    );
    if let Err(e) = register_event_source() {
        eprintln!(
            "warning: the Event Log source {NAME} was not registered ({e}): its events show without their text"
        );
    }
    if let Err(e) = service.set_description(description) {
        eprintln!("warning: the service's description was not set: {e}");
    }
    // a crash restarts it after a minute (Restart=on-failure of the Linux unit); a
    // settings error (a wrong password, a damaged repository) stops it, in the log
    let restart = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![
            ServiceAction {
                action_type: ServiceActionType::Restart,
                delay: Duration::from_secs(60),
            };
            3
        ]),
    };
    if let Err(e) = service.update_failure_actions(restart) {
        eprintln!("warning: the service will not be restarted after a crash: {e}");
    }
    let log = api::logging::beside(&catalog)
        .map(|d| format!("; its log: {}", d.display()))
        .unwrap_or_default();
    let what = format!(
        "service {NAME} (LocalSystem, at boot) runs the due policies of {} from the catalog {} every {} s{log}",
        cli.repo,
        catalog.display(),
        run.interval
    );
    if no_start {
        println!("installed, not started: {what}");
        return Ok(0);
    }
    start(&service)?;
    wait_for(&service, ServiceState::Running, Duration::from_secs(30))
        .context("the service was installed but did not start: see its log")?;
    println!("installed and started: {what}");
    Ok(0)
}

/// Start the service. The SCM answers "database locked" (1055) while it is still
/// starting the services of the boot: tried again for up to a minute. Already running (1056)
/// is success.
fn start(service: &windows_service::service::Service) -> Result<()> {
    let started = Instant::now();
    loop {
        match service.start::<&str>(&[]) {
            Ok(()) => return Ok(()),
            Err(windows_service::Error::Winapi(io)) if io.raw_os_error() == Some(1056) => {
                return Ok(());
            }
            Err(windows_service::Error::Winapi(io))
                if io.raw_os_error() == Some(1055)
                    && started.elapsed() < Duration::from_secs(60) =>
            {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(scm(
                    "starting the service (it is installed: see its log, then `net start Rehydra`)",
                )(e));
            }
        }
    }
}

/// Poll the service until it is in `state`.
fn wait_for(
    service: &windows_service::service::Service,
    state: ServiceState,
    limit: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let now = service
            .query_status()
            .map_err(scm("asking the service's state"))?
            .current_state;
        if now == state {
            return Ok(());
        }
        if now == ServiceState::Stopped && state == ServiceState::Running {
            bail!("it stopped");
        }
        if started.elapsed() > limit {
            bail!("still {now:?} after {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `rehydra service uninstall`.
pub(crate) fn uninstall() -> Result<i32> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(scm("connecting to the service control manager"))?;
    let service = match manager.open_service(
        NAME,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    ) {
        Ok(s) => s,
        Err(e) if is_not_installed(&e) => {
            println!("no service named {NAME} is installed");
            return Ok(0);
        }
        Err(e) => return Err(scm("opening the service")(e)),
    };
    let state = service
        .query_status()
        .map_err(scm("asking the service's state"))?
        .current_state;
    if state != ServiceState::Stopped {
        if state != ServiceState::StopPending {
            service.stop().map_err(scm("stopping the service"))?;
        }
        eprintln!("stopping the service (a job in progress is cancelled first) …");
        wait_for(&service, ServiceState::Stopped, STOP_WAIT)
            .context("the service did not stop: nothing was removed")?;
    }
    service.delete().map_err(scm("removing the service"))?;
    let hklm = winreg::RegKey::predef(winreg::enums::HKEY_LOCAL_MACHINE);
    if let Err(e) = hklm.delete_subkey_all(EVENT_SOURCE)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: the Event Log source {NAME} stays registered: {e}");
    }
    println!(
        "service {NAME} stopped and removed (the catalog, its logs and the repositories stay)"
    );
    Ok(0)
}

/// Register the Event Log source the service writes to (the events' words, and which
/// types it sends).
fn register_event_source() -> std::io::Result<()> {
    use winreg::enums::{HKEY_LOCAL_MACHINE, RegType};
    let (key, _) = winreg::RegKey::predef(HKEY_LOCAL_MACHINE).create_subkey(EVENT_SOURCE)?;
    let expandable: Vec<u8> = EVENT_MESSAGES
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    key.set_raw_value(
        "EventMessageFile",
        &winreg::RegValue {
            bytes: expandable.into(),
            vtype: RegType::REG_EXPAND_SZ,
        },
    )?;
    // error, warning and information
    key.set_value("TypesSupported", &7u32)
}

/// The Event Log as a place for the service's own lines (its start and stop, each
/// policy's result, its errors); `None` when the Event Log cannot be opened (the JSON log
/// still has them).
pub(crate) fn event_log() -> Option<api::logging::ExtraLayer> {
    use tracing_subscriber::Layer as _;
    let layer =
        tracing_layer_win_eventlog::EventLogLayer::new_with_default_id(NAME, Some(1)).ok()?;
    let service_lines = tracing_subscriber::filter::Targets::new()
        .with_target("rehydra::service", tracing::Level::INFO);
    Some(Box::new(layer.with_filter(service_lines)))
}

/// One line on whether the service is registered, for `service --status`.
pub(crate) fn registered() -> String {
    let state = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .and_then(|m| m.open_service(NAME, ServiceAccess::QUERY_STATUS))
        .and_then(|s| s.query_status());
    match state {
        Ok(s) => format!("the Windows service {NAME} is {:?}", s.current_state),
        Err(e) if is_not_installed(&e) => format!("no Windows service {NAME} is installed"),
        Err(e) => format!("the Windows service {NAME}: {e}"),
    }
}

define_windows_service!(ffi_service_main, service_main);

/// The exit code the service stopped with, for the process.
static EXIT: OnceLock<i32> = OnceLock::new();

/// Hand this process to the SCM; returns once the service has stopped.
pub(crate) fn dispatch() -> Result<i32> {
    service_dispatcher::start(NAME, ffi_service_main).map_err(scm(
        "--windows-service is for the service control manager (`rehydra service install` registers it; run `rehydra service` on a console)",
    ))?;
    Ok(EXIT.get().copied().unwrap_or(1))
}

fn status(
    state: ServiceState,
    accept: ServiceControlAccept,
    code: i32,
    wait: Duration,
) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: match u32::try_from(code) {
            Ok(0) => ServiceExitCode::NO_ERROR,
            Ok(c) => ServiceExitCode::ServiceSpecific(c),
            Err(_) => ServiceExitCode::ServiceSpecific(1),
        },
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    }
}

/// The SCM's thread: the console service's loop, stopped by the SCM.
fn service_main(_: Vec<OsString>) {
    // the settings are on the command line the SCM started (the arguments given here are
    // `net start`'s, not used)
    let cli = Cli::parse();
    let Command::Service { run, .. } = &cli.command else {
        return;
    };
    let cancel = std::sync::Arc::new(api::Cancel::default());
    let handle =
        std::sync::Arc::new(OnceLock::<service_control_handler::ServiceStatusHandle>::new());
    let (c, h) = (cancel.clone(), handle.clone());
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            say("asked to stop (a job in progress is cancelled)");
            // stopping is said before the loop can end and say stopped
            if let Some(h) = h.get() {
                let pending = ServiceState::StopPending;
                let _ = h.set_service_status(status(
                    pending,
                    ServiceControlAccept::empty(),
                    0,
                    STOP_WAIT,
                ));
            }
            c.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let registered = match service_control_handler::register(NAME, handler) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(target: "rehydra::service", "the service control manager refused the service: {e}");
            return;
        }
    };
    let _ = handle.set(registered);
    let starting = ServiceControlAccept::empty();
    let _ = registered.set_service_status(status(
        ServiceState::StartPending,
        starting,
        0,
        Duration::from_secs(30),
    ));
    // running once it holds its lock and password; until then a failure ends the start
    let running = || {
        let accept = ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN;
        let _ =
            registered.set_service_status(status(ServiceState::Running, accept, 0, Duration::ZERO));
    };
    let served = if cli.developer_mode {
        // (REHYDRA_PLUGIN_DEV in the system's environment would turn it on)
        Err(anyhow::anyhow!(
            "the service never loads unsigned plugins: remove REHYDRA_PLUGIN_DEV from the system's environment"
        ))
    } else {
        super::serve(&cli, run, &cancel, &running)
    };
    let code = match served {
        Ok(code) => code,
        Err(e) => {
            super::tell(
                tracing::Level::ERROR,
                &format!("error: {e:#} (the service stops)"),
            );
            crate::exit_code_of(&e)
        }
    };
    let _ = EXIT.set(code);
    let _ = registered.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        code,
        Duration::ZERO,
    ));
}
