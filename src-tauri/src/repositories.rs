//! The Repositories screen's commands: create, connect (several repositories stay open;
//! one is the one the screens work on), switch, close, the recent ones, status and
//! checks. The same `rehydra-api` calls as `rehydra init`, `check` and `catalog
//! repositories`.

use std::path::PathBuf;

use rehydra_api::{
    CheckOptions, CheckReport, Code, InitOptions, NoProgress, RestorePointFilter, StorageCheck,
};
use serde::Serialize;
use tauri::{AppHandle, Manager};

use crate::commands::{Changed, blocking, changing};
use crate::state::{App, Open, Res, UiError};

/// The repository the app offers by default: a folder in the user's data folder.
#[tauri::command]
pub fn default_location() -> String {
    dirs::data_local_dir()
        .map(|d| d.join("rehydra").join("repository"))
        .unwrap_or_else(|| PathBuf::from("rehydra-repository"))
        .display()
        .to_string()
}

/// The open repository.
#[derive(Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct RepoInfo {
    location: String,
    id: String,
    restore_points: usize,
    /// What became of "keep the password in the OS keychain", when it was asked for.
    keychain: Option<String>,
}

/// The password typed, or (none typed) the one kept in the OS keychain for `location`.
fn typed_or_kept(location: &str, typed: String) -> Res<zeroize::Zeroizing<Vec<u8>>> {
    if !typed.is_empty() {
        return Ok(zeroize::Zeroizing::new(typed.into_bytes()));
    }
    rehydra_api::keychain::recall(location).ok_or_else(|| {
        UiError::new(
            Code::InvalidInput,
            "type the password: none is kept in the OS keychain for this location",
        )
    })
}

/// Keep `password` for `location` in the OS keychain, as asked: what became of it.
fn keep(location: &str, password: &[u8]) -> String {
    match rehydra_api::keychain::remember(location, password) {
        Ok(()) => "the password is kept in the OS keychain: leave it empty next time".into(),
        Err(e) => format!("the password was not kept: {}", e.message),
    }
}

/// Keep `s` open as the one the screens work on; `kept`: the password to keep in the OS
/// keychain, when asked.
fn opened(
    st: &App,
    location: String,
    s: rehydra_api::Session,
    kept: Option<&[u8]>,
) -> Res<RepoInfo> {
    let info = RepoInfo {
        id: s.id(),
        restore_points: s.restore_points(&RestorePointFilter::default())?.len(),
        keychain: kept.map(|pw| keep(&location, pw)),
        location: location.clone(),
    };
    st.set_repo(Open {
        location,
        session: std::sync::Arc::new(s),
    });
    Ok(info)
}

/// Create a repository (local path or SMB path) and open it.
#[tauri::command]
pub async fn repo_create(
    app: AppHandle,
    location: String,
    password: String,
    keep_password: bool,
) -> Res<RepoInfo> {
    changing(app, Changed::Repository, move |st| {
        if password.chars().count() < 8 {
            return Err(UiError::new(
                Code::InvalidInput,
                "choose a password of at least 8 characters",
            ));
        }
        let s = rehydra_api::init(
            &st.ctx,
            &location,
            password.as_bytes(),
            InitOptions::default(),
        )?;
        opened(
            st,
            location,
            s,
            keep_password.then_some(password.as_bytes()),
        )
    })
    .await
}

/// Open an existing repository (with no password typed, with the one kept in the OS
/// keychain for it).
#[tauri::command]
pub async fn repo_connect(
    app: AppHandle,
    location: String,
    password: String,
    keep_password: bool,
) -> Res<RepoInfo> {
    changing(app, Changed::Repository, move |st| {
        let password = typed_or_kept(&location, password)?;
        let s = rehydra_api::open(&st.ctx, &location, &password)?;
        opened(st, location, s, keep_password.then_some(&password[..]))
    })
    .await
}

/// The repositories used with this catalog (by the app or the CLI), the most recent
/// first: the Repositories screen offers them.
#[tauri::command]
pub async fn repo_recent(app: AppHandle) -> Res<Vec<rehydra_api::KnownRepository>> {
    blocking(app, |st| Ok(rehydra_api::known_repositories(&st.ctx, 10)?)).await
}

/// The locations of the open repositories, the one the screens work on first.
#[tauri::command]
pub fn repos_open(app: AppHandle) -> Vec<String> {
    app.state::<App>().open_locations()
}

/// Work on another open repository (it stays open, as the others do).
#[tauri::command]
pub async fn repo_switch(app: AppHandle, location: String) -> Res<()> {
    changing(app, Changed::Repository, move |st| st.switch(&location)).await
}

/// Close an open repository: the app lets go of its session and key (refused while a
/// job or an export uses it).
#[tauri::command]
pub async fn repo_close(app: AppHandle, location: String) -> Res<bool> {
    changing(app, Changed::Repository, move |st| st.close(&location)).await
}

/// The repository the screens work on, if one is open.
#[tauri::command]
pub async fn repo_status(app: AppHandle) -> Res<Option<RepoInfo>> {
    blocking(app, |st| {
        let Some((location, s)) = st.current() else {
            return Ok(None);
        };
        Ok(Some(RepoInfo {
            id: s.id(),
            restore_points: s.restore_points(&RestorePointFilter::default())?.len(),
            location,
            keychain: None,
        }))
    })
    .await
}

/// Check that the storage at `location` behaves as a repository needs (`check --storage`).
#[tauri::command]
pub async fn storage_check(app: AppHandle, location: String) -> Res<StorageCheck> {
    blocking(app, move |st| {
        Ok(rehydra_api::check_storage(&st.ctx, &location)?)
    })
    .await
}

/// Check the repository (structure, and every chunk with `read_data`).
#[tauri::command]
pub async fn repo_check(app: AppHandle, read_data: bool) -> Res<CheckReport> {
    changing(app, Changed::Jobs, move |st| {
        let opts = CheckOptions {
            read_data,
            ..CheckOptions::default()
        };
        Ok(st.session()?.check(&opts, &NoProgress)?)
    })
    .await
}
