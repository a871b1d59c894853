//! Installing, trusting, granting: the admin's side of plugins, kept in the catalog.

use super::*;

/// Refuse to replace `installed` by a lower version (or one that cannot be compared with
/// it) unless `allow_downgrade`.
pub(super) fn check_upgrade(
    installed: &Manifest,
    new: &Manifest,
    allow_downgrade: bool,
) -> Result<()> {
    if allow_downgrade {
        return Ok(());
    }
    let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v')).ok();
    let why = match (parse(&installed.version), parse(&new.version)) {
        (Some(old), Some(n)) if n >= old => return Ok(()),
        (Some(_), Some(_)) => "is older than",
        _ => "cannot be compared with",
    };
    Err(ApiError::new(
        Code::InvalidInput,
        format!(
            "plugin `{}` {} {why} the installed {}; pass --allow-downgrade to install it anyway",
            new.id, new.version, installed.version
        ),
    ))
}

impl Plugins {
    pub(super) fn trusted(&self) -> Result<Vec<host::TrustedKey>> {
        let t = with_catalog(&self.ctx, |c| async move { c.trusted().await })?;
        Ok(t.into_iter()
            .map(|(publisher, key)| host::TrustedKey { publisher, key })
            .collect())
    }

    /// The grants of a loaded plugin: only those given to its id *and* its signer. Legacy
    /// grants (from before grants recorded their signer) are bound to the signer of the
    /// file loaded now, the first time it is used (see migration 0006).
    pub(super) fn grants(&self, p: &host::LoadedPlugin) -> Result<host::Grants> {
        let (id, signer) = (p.manifest.id.clone(), p.signer.grant_key());
        let specs = with_catalog(&self.ctx, |c| async move {
            c.claim_legacy_grants(&id, &signer).await?;
            c.grants(&id, &signer).await
        })?;
        Ok(host::Grants(
            specs.iter().filter_map(|s| Grant::parse(s).ok()).collect(),
        ))
    }

    pub(super) fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in &self.settings.dirs {
            if let Ok(rd) = std::fs::read_dir(d) {
                let mut v: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                    .collect();
                v.sort();
                out.extend(v);
            }
        }
        out
    }

    pub(super) fn find(&self, id: &str) -> Result<PathBuf> {
        self.settings
            .dirs
            .iter()
            .map(|d| d.join(format!("{id}.wasm")))
            .find(|p| p.is_file())
            .ok_or_else(|| plugin_err(host::PluginError::NotInstalled(id.into())))
    }

    /// Load an installed plugin.
    ///
    /// # Errors
    /// Not installed, or refused (signature, publisher, contract, malformed).
    pub fn load(&self, id: &str) -> Result<host::LoadedPlugin> {
        let path = self.find(id)?;
        let p = self
            .host
            .load(&path, &self.trusted()?)
            .map_err(plugin_err)?;
        if p.manifest.id != id {
            return Err(ApiError::new(
                Code::PluginRejected,
                format!(
                    "{} holds plugin `{}`, not `{id}`; reinstall it with `rehydra plugins install`",
                    path.display(),
                    p.manifest.id
                ),
            ));
        }
        Ok(p)
    }

    pub(super) fn entry(
        path: &Path,
        r: std::result::Result<&host::LoadedPlugin, String>,
    ) -> PluginEntry {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match r {
            Ok(p) => PluginEntry {
                id: p.manifest.id.clone(),
                path: path.to_path_buf(),
                version: Some(p.manifest.version.clone()),
                publisher: Some(p.manifest.publisher.clone()),
                workloads: p.manifest.workloads.clone(),
                signer: Some(p.signer.clone()),
                error: None,
            },
            Err(e) => PluginEntry {
                id: stem,
                path: path.to_path_buf(),
                version: None,
                publisher: None,
                workloads: vec![],
                signer: None,
                error: Some(e),
            },
        }
    }

    /// Every plugin file in the plugin folders; ones that cannot load say why.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn list(&self) -> Result<Vec<PluginEntry>> {
        let trusted = self.trusted()?;
        Ok(self
            .files()
            .iter()
            .map(|f| {
                Self::entry(
                    f,
                    self.host
                        .load(f, &trusted)
                        .as_ref()
                        .map_err(ToString::to_string),
                )
            })
            .collect())
    }

    /// Manifest, capabilities and grants of an installed plugin.
    ///
    /// # Errors
    /// Not installed or refused.
    pub fn info(&self, id: &str) -> Result<PluginDetails> {
        let p = self.load(id)?;
        let grants = self.grants(&p)?;
        let capabilities = p
            .manifest
            .capabilities
            .iter()
            .map(|c| CapabilityView {
                kind: c.kind.name().into(),
                allows: c.kind.display_name().into(),
                scope: c.scope.clone(),
                reason: c.reason.clone(),
                granted: grants
                    .0
                    .iter()
                    .filter(|g| g.kind == c.kind)
                    .map(Grant::spec)
                    .collect(),
            })
            .collect();
        Ok(PluginDetails {
            entry: Self::entry(&p.path, Ok(&p)),
            manifest: p.manifest.clone(),
            capabilities,
            grants: grants.0.iter().map(Grant::spec).collect(),
            load: p.load,
            limits: self.host.limits(&p),
        })
    }

    /// Verify a plugin file and copy it into the user's plugin folder as `<id>.wasm`.
    /// Replacing an installed plugin needs `replace`; replacing it with a lower version
    /// (semver of the manifests) also needs `allow_downgrade`. Grants stay with the signer
    /// they were given to: a file signed by another key starts with none.
    ///
    /// # Errors
    /// Refused by the host; a different file with that id is installed and `replace` is
    /// off; a downgrade (or versions that cannot be compared) without `allow_downgrade`.
    pub fn install(
        &self,
        file: &Path,
        replace: bool,
        allow_downgrade: bool,
    ) -> Result<PluginEntry> {
        let trusted = self.trusted()?;
        let p = self.host.load(file, &trusted).map_err(plugin_err)?;
        let dir = self.settings.install_dir.clone().ok_or_else(|| {
            ApiError::new(
                Code::InvalidInput,
                "no user plugin folder is known on this system",
            )
        })?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::new(Code::Io, format!("creating {}: {e}", dir.display())))?;
        let dest = dir.join(format!("{}.wasm", p.manifest.id));
        let bytes = std::fs::read(file)
            .map_err(|e| ApiError::new(Code::Io, format!("reading {}: {e}", file.display())))?;
        if let Ok(old) = std::fs::read(&dest) {
            if old != bytes && !replace {
                return Err(ApiError::new(
                    Code::TargetExists,
                    format!(
                        "plugin `{}` is already installed at {}; pass --replace to upgrade it",
                        p.manifest.id,
                        dest.display()
                    ),
                ));
            }
            if old != bytes
                && let Ok(installed) = self.host.load(&dest, &trusted)
            {
                check_upgrade(&installed.manifest, &p.manifest, allow_downgrade)?;
                // legacy grants belong to the file installed until now, not to this one
                let (id, signer) = (installed.manifest.id.clone(), installed.signer.grant_key());
                with_catalog(&self.ctx, |c| async move {
                    c.claim_legacy_grants(&id, &signer).await
                })?;
            }
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
        use std::io::Write;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| ApiError::new(Code::Io, format!("writing {}: {e}", dest.display())))?;
        tmp.persist(&dest).map_err(|e| {
            ApiError::new(
                Code::Io,
                format!("installing {}: {}", dest.display(), e.error),
            )
        })?;
        Ok(Self::entry(&dest, Ok(&p)))
    }

    /// Grant capabilities (`kind[:scope]`) the plugin's manifest asks for. Grants belong
    /// to the plugin id *and* the key that signed the installed file: a package of the same
    /// id from another publisher gets none of them.
    ///
    /// # Errors
    /// Unknown plugin, malformed grant, a kind the plugin did not ask for.
    pub fn grant(&self, id: &str, specs: &[String]) -> Result<Vec<String>> {
        let p = self.load(id)?;
        let mut parsed = Vec::new();
        for s in specs {
            let g = Grant::parse(s).map_err(plugin_err)?;
            if !p.manifest.requests(g.kind) {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "plugin `{id}` did not ask for `{}`; it asks for: {}",
                        g.kind.name(),
                        p.manifest
                            .capabilities
                            .iter()
                            .map(|c| c.kind.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            parsed.push(g.spec());
        }
        let (id2, signer, specs2) = (id.to_string(), p.signer.grant_key(), parsed.clone());
        with_catalog(&self.ctx, |c| async move {
            c.claim_legacy_grants(&id2, &signer).await?;
            for s in &specs2 {
                c.grant(&id2, &signer, s).await?;
            }
            Ok(())
        })?;
        Ok(parsed)
    }

    /// Revoke grants (all of them when `specs` is empty); returns how many.
    ///
    /// # Errors
    /// Malformed grant, catalog failure.
    pub fn revoke(&self, id: &str, specs: &[String]) -> Result<u64> {
        let id = id.to_string();
        let parsed: Vec<String> = specs
            .iter()
            .map(|s| Grant::parse(s).map(|g| g.spec()))
            .collect::<std::result::Result<_, _>>()
            .map_err(plugin_err)?;
        with_catalog(&self.ctx, |c| async move {
            if parsed.is_empty() {
                return c.revoke(&id, None).await;
            }
            let mut n = 0;
            for s in &parsed {
                n += c.revoke(&id, Some(s)).await?;
            }
            Ok(n)
        })
    }

    /// Trust a publisher's signing key.
    ///
    /// # Errors
    /// Malformed key.
    pub fn trust(&self, publisher: &str, key: &str) -> Result<()> {
        host::parse_public_key(key).map_err(plugin_err)?;
        let (p, k) = (publisher.to_string(), key.trim().to_ascii_lowercase());
        with_catalog(&self.ctx, |c| async move { c.trust(&p, &k).await })
    }

    /// Stop trusting a key; returns whether it was trusted.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn untrust(&self, publisher: &str, key: &str) -> Result<bool> {
        let (p, k) = (publisher.to_string(), key.trim().to_ascii_lowercase());
        Ok(with_catalog(&self.ctx, |c| async move { c.untrust(&p, &k).await })? > 0)
    }

    /// Trusted publisher keys.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn trusted_keys(&self) -> Result<Vec<host::TrustedKey>> {
        self.trusted()
    }

    /// Configure how to reach a command target (replaces one with the same name).
    ///
    /// # Errors
    /// Invalid target fields; catalog failure.
    /// A cluster target given without nodes is asked for them first (`Get-ClusterNode`
    /// over SSH), and they are pinned on it.
    pub fn set_target(&self, target: &host::Target) -> Result<TargetKept> {
        target.validate().map_err(plugin_err)?;
        // names are told apart whatever their case (an instance may go through one named
        // in another case)
        if let Some(twin) = self
            .targets()?
            .into_iter()
            .find(|t| t.name != target.name && t.name.eq_ignore_ascii_case(&target.name))
        {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "command target {} is configured already: use that name, or remove it first",
                    twin.name
                ),
            ));
        }
        let mut t = target.clone();
        let mut left_out = Vec::new();
        if t.cluster && t.nodes.is_empty() {
            (t.nodes, left_out) = t.ask_cluster_nodes().map_err(|e| {
                ApiError::new(
                    Code::Io,
                    format!("{e}; nothing was kept (give the nodes by hand with --nodes when the cluster cannot be asked from here)"),
                )
            })?;
        }
        self.set_spec(rehydra_catalog::Specs::CommandTargets, &t.name, &t)?;
        Ok(TargetKept {
            added: t.nodes.clone(),
            removed: Vec::new(),
            left_out,
            pinned: true,
            target: t,
        })
    }

    /// Ask a cluster target for its nodes again (after a node joined or left the
    /// cluster). Nodes it no longer lists are unpinned at once; new ones are pinned only
    /// with `pin_new`, after the admin has seen their names (see [`TargetKept::pinned`]).
    ///
    /// # Errors
    /// No such target, or it is not a cluster; the cluster cannot be asked (the pinned
    /// nodes are then unchanged).
    pub fn refresh_target(&self, name: &str, pin_new: bool) -> Result<TargetKept> {
        let Some(mut t) = self.targets()?.into_iter().find(|t| t.name == name) else {
            return Err(ApiError::new(
                Code::Missing,
                format!("no command target named {name} (rehydra plugins target list)"),
            ));
        };
        if !t.cluster {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!("command target {name} is not a cluster (add it again with --cluster)"),
            ));
        }
        let (nodes, left_out) = t.ask_cluster_nodes().map_err(|e| {
            ApiError::new(
                Code::Io,
                format!("{e}; the pinned nodes of {name} are unchanged"),
            )
        })?;
        let had = |n: &String| t.nodes.iter().any(|o| o.eq_ignore_ascii_case(n));
        let added: Vec<String> = nodes.iter().filter(|n| !had(n)).cloned().collect();
        let removed: Vec<String> = t
            .nodes
            .iter()
            .filter(|o| !nodes.iter().any(|n| n.eq_ignore_ascii_case(o)))
            .cloned()
            .collect();
        let pinned = added.is_empty() || pin_new;
        if pinned {
            t.nodes = nodes;
        } else {
            // what no longer answers as a node is never reached again
            t.nodes.retain(|o| !removed.contains(o));
        }
        if pinned || !removed.is_empty() {
            self.set_spec(rehydra_catalog::Specs::CommandTargets, &t.name, &t)?;
        }
        Ok(TargetKept {
            target: t,
            added,
            removed,
            left_out,
            pinned,
        })
    }

    /// Forget a command target; returns whether it was configured.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn remove_target(&self, name: &str) -> Result<bool> {
        let users = self.sql_servers_via(name)?;
        if !users.is_empty() {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "SQL Server {} goes through command target {name}: remove it, or add it again without --via, first",
                    users.join(", ")
                ),
            ));
        }
        self.remove_spec(rehydra_catalog::Specs::CommandTargets, name)
    }

    /// Configured command targets.
    ///
    /// # Errors
    /// Catalog failure; a stored target that no longer parses.
    pub fn targets(&self) -> Result<Vec<host::Target>> {
        let ts: Vec<host::Target> = self.specs(
            rehydra_catalog::Specs::CommandTargets,
            "command target",
            "rehydra plugins target add",
        )?;
        // what the catalog holds is checked as what the admin types is
        for t in &ts {
            t.validate().map_err(|e| {
                ApiError::new(
                    Code::InvalidInput,
                    format!("command target {} in the catalog: {e} (add it again: rehydra plugins target add)", t.name),
                )
            })?;
        }
        Ok(ts)
    }

    pub(super) fn set_spec(
        &self,
        kind: rehydra_catalog::Specs,
        name: &str,
        spec: &impl serde::Serialize,
    ) -> Result<()> {
        let spec =
            serde_json::to_string(spec).map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
        let name = name.to_string();
        with_catalog(&self.ctx, |c| async move {
            c.set_spec(kind, &name, &spec).await
        })
    }

    pub(super) fn remove_spec(&self, kind: rehydra_catalog::Specs, name: &str) -> Result<bool> {
        let name = name.to_string();
        with_catalog(
            &self.ctx,
            |c| async move { c.remove_spec(kind, &name).await },
        )
    }

    /// The stored specs of `kind` (`what` and `fix` name them in the error for a damaged one).
    pub(super) fn specs<T: serde::de::DeserializeOwned>(
        &self,
        kind: rehydra_catalog::Specs,
        what: &str,
        fix: &str,
    ) -> Result<Vec<T>> {
        let rows = with_catalog(&self.ctx, |c| async move { c.specs(kind).await })?;
        rows.into_iter()
            .map(|(name, spec)| {
                serde_json::from_str(&spec).map_err(|e| {
                    ApiError::new(
                        Code::Io,
                        format!("{what} `{name}` in the catalog is damaged ({e}); add it again with `{fix}`"),
                    )
                })
            })
            .collect()
    }

    /// The newest audit entries.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn audit_log(&self, plugin: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
        let p = plugin.map(str::to_string);
        with_catalog(&self.ctx, |c| async move {
            c.audit_log(p.as_deref(), limit).await
        })
    }
}
