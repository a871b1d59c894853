//! The TypeScript declarations of every type the UI receives or sends, generated from the
//! Rust types (ts-rs) into `ui/src/bindings.ts`, so the UI never keeps a hand copy. A test
//! fails when the file is stale; `UPDATE_BINDINGS=1 cargo test -p rehydra-app bindings`
//! rewrites it.

#[cfg(test)]
mod tests {
    use ts_rs::{Config, TS};

    /// One declaration per type, in the order the UI reads them.
    fn declarations(cfg: &Config) -> Vec<String> {
        use rehydra_api as api;
        use rehydra_plugin_host as host;
        vec![
            rehydra_api::Code::decl(cfg),
            rehydra_api::Hint::decl(cfg),
            crate::state::UiError::decl(cfg),
            crate::repositories::RepoInfo::decl(cfg),
            crate::commands::Changed::decl(cfg),
            crate::commands::StateChanged::decl(cfg),
            crate::commands::VerifyView::decl(cfg),
            crate::progress::ProgressEvent::decl(cfg),
            crate::state::ExportEntry::decl(cfg),
            rehydra_core::check::CheckReport::decl(cfg),
            rehydra_api::StorageCheck::decl(cfg),
            rehydra_catalog::JobStatus::decl(cfg),
            rehydra_catalog::JobRun::decl(cfg),
            rehydra_catalog::RepositoryRow::decl(cfg),
            host::Property::decl(cfg),
            host::Asset::decl(cfg),
            host::Step::decl(cfg),
            host::RestorePlan::decl(cfg),
            host::CapabilityKind::decl(cfg),
            host::CapabilityRequest::decl(cfg),
            host::Limits::decl(cfg),
            host::SettingType::decl(cfg),
            host::SettingVerb::decl(cfg),
            host::SettingDecl::decl(cfg),
            host::Manifest::decl(cfg),
            host::Signer::decl(cfg),
            host::LoadInfo::decl(cfg),
            api::ItemDto::decl(cfg),
            api::RestorePointDto::decl(cfg),
            api::BackupOutcome::decl(cfg),
            api::inventory::Risk::decl(cfg),
            api::inventory::InventoryAsset::decl(cfg),
            api::policies::What::decl(cfg),
            api::policies::Keep::decl(cfg),
            api::policies::Policy::decl(cfg),
            api::policies::CopyTarget::decl(cfg),
            api::notify::NotifyWhen::decl(cfg),
            api::notify::SmtpSecurity::decl(cfg),
            api::notify::Email::decl(cfg),
            api::notify::Notify::decl(cfg),
            api::service::ServiceInfo::decl(cfg),
            api::service::operators::OperatorPolicy::decl(cfg),
            api::service::operators::Overview::decl(cfg),
            crate::update::Available::decl(cfg),
            crate::update::UpdateView::decl(cfg),
            rehydra_catalog::RequestState::decl(cfg),
            rehydra_catalog::RequestRow::decl(cfg),
            api::policies::CopyReport::decl(cfg),
            api::policies::PolicyStatus::decl(cfg),
            api::policies::PolicyRun::decl(cfg),
            api::wizard::RestoreChoice::decl(cfg),
            api::wizard::PlanView::decl(cfg),
            api::wizard::RunView::decl(cfg),
            api::wizard::InstantExport::decl(cfg),
            api::plugins::PluginEntry::decl(cfg),
            api::plugins::PluginDetails::decl(cfg),
            api::plugins::CapabilityView::decl(cfg),
            api::plugins::PasswordSource::decl(cfg),
            api::plugins::Directory::decl(cfg),
            api::plugins::SqlLoginKind::decl(cfg),
            api::plugins::SqlServer::decl(cfg),
            api::plugins::KubeCluster::decl(cfg),
            api::plugins::KubeClusterView::decl(cfg),
            host::RemoteShell::decl(cfg),
            host::Target::decl(cfg),
            api::plugins::TargetKept::decl(cfg),
            api::azure::IdentitySetting::decl(cfg),
            api::azure::SecretSetting::decl(cfg),
            api::azure::AzureSettings::decl(cfg),
            api::azure::AttemptDto::decl(cfg),
            api::azure::SubscriptionDto::decl(cfg),
            api::azure::AzureStatus::decl(cfg),
            api::assessment::PluginScope::decl(cfg),
            api::assessment::Logo::decl(cfg),
            api::assessment::Labels::decl(cfg),
            api::assessment::Thresholds::decl(cfg),
            api::assessment::Options::decl(cfg),
            api::assessment::Planned::decl(cfg),
            api::assessment::Swept::decl(cfg),
            api::assessment::RepositoryFacts::decl(cfg),
            api::assessment::AssetRow::decl(cfg),
            api::assessment::FindingRow::decl(cfg),
            api::assessment::Action::decl(cfg),
            api::assessment::Coverage::decl(cfg),
            api::assessment::Summary::decl(cfg),
            api::assessment::Sizing::decl(cfg),
            api::assessment::Assessment::decl(cfg),
        ]
    }

    fn render() -> String {
        // serde_json writes u64 as a JSON number, which JavaScript reads as `number`
        let cfg = Config::new().with_large_int("number");
        let mut out = String::from(
            "// Generated from the Rust types by src-tauri/src/bindings.rs (ts-rs): do not edit.\n\
             // Regenerate with `UPDATE_BINDINGS=1 cargo test -p rehydra-app bindings`.\n",
        );
        for d in declarations(&cfg) {
            out.push_str("\nexport ");
            out.push_str(&d);
            out.push('\n');
        }
        out
    }

    #[test]
    fn ui_bindings_are_current() {
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                std::path::PathBuf::from,
            )
            .join("../ui/src/bindings.ts");
        let want = render();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "ui/src/bindings.ts does not match the Rust types: run `UPDATE_BINDINGS=1 cargo test -p rehydra-app bindings` and commit it"
        );
    }
}
