//! The app as a client of the always-on service (`rehydra service`): whether one runs for
//! the app's catalog, and policy runs handed to it, which go on when the window closes.
//! The same `rehydra-api` calls as `rehydra service --status`, `policy run --service` and
//! `service cancel`; and, for an operator who cannot open the service's catalog, the
//! service's door for operators (`rehydra operator`).

use rehydra_api::service::operators::{self, Ask, Overview};
use rehydra_api::service::requests::{self, ServiceRequest};
use rehydra_api::service::{self, ServiceInfo};
use tauri::AppHandle;

use crate::commands::blocking;
use crate::state::Res;

/// The service running for this catalog, if one does: the Protection screen says whether
/// policies run while the app is closed, and "Run now" hands the run to it.
#[tauri::command]
pub async fn service_status(app: AppHandle) -> Res<Option<ServiceInfo>> {
    blocking(app, |st| Ok(service::running(&st.ctx)?)).await
}

/// Hand a policy run to the service; it starts there within a second or two when the
/// service is idle, else after the job in progress.
#[tauri::command]
pub async fn service_hand_over(app: AppHandle, name: String) -> Res<ServiceRequest> {
    blocking(app, move |st| {
        Ok(requests::hand_over(
            &st.ctx,
            &name,
            &requests::asker("the desktop app"),
        )?)
    })
    .await
}

/// Runs handed to the service: those not ended yet and the ten newest others.
#[tauri::command]
pub async fn service_requests(app: AppHandle) -> Res<Vec<ServiceRequest>> {
    blocking(app, |st| Ok(requests::list(&st.ctx, 10)?)).await
}

/// Cancel a run handed to the service (one waiting never starts; a running one stops).
#[tauri::command]
pub async fn service_cancel(app: AppHandle, id: i64) -> Res<ServiceRequest> {
    blocking(app, move |st| Ok(requests::cancel(&st.ctx, id)?)).await
}

/// The machine's service as its operators see it (its policies, the runs handed to it),
/// asked through its door for operators; `None` when no service answers there or this
/// account may not open it (the app is then no operator, and says nothing of it).
#[tauri::command]
pub async fn operator_overview(app: AppHandle) -> Res<Option<Overview>> {
    blocking(app, |_| Ok(operators::ask(&Ask::Overview).ok())).await
}

/// Run one of the service's policies now, asked as an operator.
#[tauri::command]
pub async fn operator_run(app: AppHandle, policy: String) -> Res<ServiceRequest> {
    blocking(app, move |_| Ok(operators::ask(&Ask::Run { policy })?)).await
}

/// Cancel a run handed to the service, asked as an operator.
#[tauri::command]
pub async fn operator_cancel(app: AppHandle, id: i64) -> Res<ServiceRequest> {
    blocking(app, move |_| Ok(operators::ask(&Ask::Cancel { id })?)).await
}
