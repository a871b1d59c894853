//! Example plugin: protects folder trees. Discover lists a root's sub-folders, backup
//! hands the folder to the engine by path (bytes never enter the plugin), restore asks
//! the engine to write it back, verify reads the stored description.
use rehydra_plugin_sdk::{engine, export_plugin, files, prelude::*};

struct Folders;

fn folder(path: &str, parent: Option<&str>) -> Asset {
    let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or(path);
    asset("folder", path, name, parent)
}

impl Plugin for Folders {
    fn describe() -> PluginInfo {
        rehydra_plugin_sdk::describe_from_manifest!()
    }

    fn discover(settings: Vec<Property>) -> Result<Vec<Asset>> {
        let root = require(&settings, "root", "the folder whose sub-folders to list")?;
        let mut assets = vec![folder(root, None)];
        for e in files::list_dir(root)? {
            if e.kind == files::EntryKind::Directory {
                let path = format!("{}/{}", root.trim_end_matches('/'), e.name);
                assets.push(folder(&path, Some(root)));
            }
        }
        Ok(assets)
    }

    fn assess(assets: Vec<Asset>, _settings: Vec<Property>) -> Result<Vec<Finding>> {
        let mut findings = Vec::new();
        for a in assets {
            if files::list_dir(&a.id)?.is_empty() {
                findings.push(Finding {
                    rule: "files.empty-folder".into(),
                    severity: Severity::Info,
                    asset: Some(a.id.clone()),
                    title: format!("{} is empty", a.name),
                    detail: "A backup of this folder would hold nothing.".into(),
                    recommendation: "Check that this is the folder you meant to protect.".into(),
                });
            }
        }
        Ok(findings)
    }

    fn backup(req: BackupRequest) -> Result<BackupReport> {
        let stored = engine::ingest_path("files", &req.asset.id)?;
        let doc = format!("{{\"path\":{:?},\"bytes\":{}}}", req.asset.id, stored.size);
        engine::put_document("asset.json", doc.as_bytes())?;
        Ok(BackupReport::new("crash"))
    }

    fn plan_restore(req: RestoreRequest) -> Result<RestorePlan> {
        let mut plan = empty_plan();
        let Some(item) = req.restore_point.items.iter().find(|i| i.name == "files") else {
            plan.blockers
                .push("the restore point has no `files` item".into());
            return Ok(plan);
        };
        match files::stat(&req.target) {
            Ok(_) if !flag(&req.options, "overwrite") => plan.blockers.push(format!(
                "{} exists; choose another target or allow overwrite",
                req.target
            )),
            Ok(_) => plan
                .warnings
                .push(format!("{} exists and will be replaced", req.target)),
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        let detail = format!("{} bytes to {}", item.size, req.target);
        plan.steps
            .push(Step::new("files", "Restore folder", detail));
        Ok(plan)
    }

    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        let bytes = engine::restore_item("files", &req.target, flag(&req.options, "overwrite"))?;
        Ok(RestoreReport::new(bytes))
    }

    fn verify(_req: RestoreRequest) -> Result<VerifyReport> {
        let doc = engine::read_document("asset.json")?;
        let stored = engine::items()?.iter().any(|i| i.name == "files");
        Ok(VerifyReport::new(stored && doc.starts_with(b"{\"path\":")))
    }
}

export_plugin!(Folders);

#[cfg(test)]
mod tests;
