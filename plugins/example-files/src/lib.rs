//! Example plugin: protects folder trees. Discover lists a root's sub-folders, backup
//! hands the folder to the engine by path (bytes never enter the plugin), restore asks
//! the engine to write it back, verify reads the stored description.
use rehydra_plugin_sdk::{engine, export_plugin, files, prelude::*};

struct Folders;

fn folder(path: &str, parent: Option<String>) -> Asset {
    let name = path
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or(path)
        .to_string();
    Asset {
        kind: "folder".into(),
        id: path.into(),
        name,
        parent,
        properties: vec![],
        flags: ProtectionFlags::empty(),
    }
}

fn opt(req: &RestoreRequest, name: &str) -> bool {
    setting(&req.options, name) == Some("true")
}

impl Plugin for Folders {
    fn describe() -> PluginInfo {
        info(
            "example-files",
            "Example: folders",
            env!("CARGO_PKG_VERSION"),
            &["files"],
            "Protects folder trees",
        )
    }

    fn discover(settings: Vec<Property>) -> Result<Vec<Asset>> {
        let root = setting(&settings, "root").ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                "setting `root` (a folder) is required",
            )
        })?;
        let mut assets = vec![folder(root, None)];
        for e in files::list_dir(root)? {
            if e.kind == files::EntryKind::Directory {
                assets.push(folder(
                    &format!("{}/{}", root.trim_end_matches('/'), e.name),
                    Some(root.into()),
                ));
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
        engine::put_document(
            "asset.json",
            format!("{{\"path\":{:?},\"bytes\":{}}}", req.asset.id, stored.size).as_bytes(),
        )?;
        Ok(BackupReport {
            consistency: "crash".into(),
            warnings: vec![],
        })
    }

    fn plan_restore(req: RestoreRequest) -> Result<RestorePlan> {
        let mut plan = RestorePlan {
            steps: vec![],
            warnings: vec![],
            blockers: vec![],
        };
        let Some(item) = req.restore_point.items.iter().find(|i| i.name == "files") else {
            plan.blockers
                .push("the restore point has no `files` item".into());
            return Ok(plan);
        };
        match files::stat(&req.target) {
            Ok(_) if !opt(&req, "overwrite") => plan.blockers.push(format!(
                "{} exists; choose another target or allow overwrite",
                req.target
            )),
            Ok(_) => plan
                .warnings
                .push(format!("{} exists and will be replaced", req.target)),
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        plan.steps.push(Step {
            id: "files".into(),
            title: "Restore folder".into(),
            detail: format!("{} bytes to {}", item.size, req.target),
            depends_on: vec![],
        });
        Ok(plan)
    }

    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        let bytes = engine::restore_item("files", &req.target, opt(&req, "overwrite"))?;
        Ok(RestoreReport {
            bytes,
            warnings: vec![],
        })
    }

    fn verify(_req: RestoreRequest) -> Result<VerifyReport> {
        let doc = engine::read_document("asset.json")?;
        let ok =
            engine::items()?.iter().any(|i| i.name == "files") && doc.starts_with(b"{\"path\":");
        Ok(VerifyReport {
            ok,
            findings: vec![],
        })
    }
}

export_plugin!(Folders);
