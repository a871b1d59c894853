//! The Assessment screen's commands: what a sweep will run, the sweep itself (reading
//! only, joined with the open repository on request), and saving the report. The same
//! `rehydra-api` calls as `rehydra assess`.

use std::path::PathBuf;

use rehydra_api::assessment::{self, Assessment, Logo, Options, Planned};
use tauri::AppHandle;

use crate::commands::blocking;
use crate::state::Res;

/// Each plugin in scope, whether it will be swept, its settings and grants. Nothing runs.
#[tauri::command]
pub async fn assessment_plan(app: AppHandle, options: Options) -> Res<Vec<Planned>> {
    blocking(app, move |st| {
        Ok(assessment::plan(&st.plugins()?, &options)?)
    })
    .await
}

/// Sweep (reading only) and judge; with `join`, against the open repository. `logo`: a
/// PNG or JPEG file for the report.
#[tauri::command]
pub async fn assessment_run(
    app: AppHandle,
    mut options: Options,
    join: bool,
    logo: Option<String>,
) -> Res<Assessment> {
    blocking(app, move |st| {
        if let Some(f) = logo.filter(|f| !f.trim().is_empty()) {
            let bytes =
                assessment::read_at_most(std::path::Path::new(&f), Logo::MAX as u64, "a logo")?;
            options.labels.logo = Some(Logo::from_bytes(&bytes)?);
        }
        let session = if join { Some(st.session()?) } else { None };
        let joined: Vec<&rehydra_api::Session> = session.as_deref().into_iter().collect();
        Ok(assessment::run(
            &st.plugins()?,
            &st.ctx,
            &joined,
            &options,
            &|_| {},
        )?)
    })
    .await
}

/// Write the report files into `dir` (the PDF too with `pdf`); existing files are
/// replaced only with `overwrite`. Returns the paths written.
#[tauri::command]
pub async fn assessment_save(
    app: AppHandle,
    assessment: Assessment,
    dir: String,
    pdf: bool,
    overwrite: bool,
) -> Res<Vec<String>> {
    blocking(app, move |_| {
        let written = assessment::report::write(&assessment, &PathBuf::from(dir), pdf, overwrite)?;
        Ok(written.iter().map(|p| p.display().to_string()).collect())
    })
    .await
}
