//! The engine bridge: the plugin's engine capability served from the caller's thread
//! (ingest into the backup session, read and restore items of a restore point).

use super::*;

pub(super) fn host_err(e: &ApiError) -> host::HostError {
    let code = match e.code {
        Code::InvalidInput | Code::TargetExists => host::ErrorCode::InvalidInput,
        Code::Cancelled => host::ErrorCode::Cancelled,
        _ => host::ErrorCode::Failed,
    };
    host::HostError::new(code, e.message.clone())
}

/// Most log lines kept of one call; later ones are counted and reported in one line.
pub(super) const LOG_MAX: usize = 10_000;

/// Requests from the plugin thread to the engine thread.
pub(super) enum Req {
    Ingest(
        String,
        host::Ingest,
        Sender<std::result::Result<host::ItemSummary, host::HostError>>,
    ),
    Items(Sender<std::result::Result<Vec<host::ItemInfo>, host::HostError>>),
    Previous(Sender<std::result::Result<Option<host::RestorePointInfo>, host::HostError>>),
    ReadPrevious(
        String,
        u64,
        Sender<std::result::Result<Vec<u8>, host::HostError>>,
    ),
    Read(
        String,
        u64,
        Sender<std::result::Result<Vec<u8>, host::HostError>>,
    ),
    Restore(
        String,
        PathBuf,
        bool,
        Sender<std::result::Result<u64, host::HostError>>,
    ),
    FindPoint(
        String,
        Sender<std::result::Result<host::RestorePointInfo, host::HostError>>,
    ),
    ReadPoint(
        String,
        String,
        u64,
        Sender<std::result::Result<Vec<u8>, host::HostError>>,
    ),
}

/// The plugin's end of the engine channel.
pub(super) struct Link(pub(super) Sender<Req>);

pub(super) fn gone() -> host::HostError {
    host::HostError::new(host::ErrorCode::Failed, "the engine session ended")
}

impl Link {
    pub(super) fn ask<T>(
        &self,
        make: impl FnOnce(Sender<std::result::Result<T, host::HostError>>) -> Req,
    ) -> std::result::Result<T, host::HostError> {
        let (tx, rx) = bounded(1);
        self.0.send(make(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl host::EngineCapability for Link {
    fn ingest(
        &mut self,
        item: &str,
        source: host::Ingest,
    ) -> std::result::Result<host::ItemSummary, host::HostError> {
        self.ask(|tx| Req::Ingest(item.to_string(), source, tx))
    }
    fn items(&mut self) -> std::result::Result<Vec<host::ItemInfo>, host::HostError> {
        self.ask(Req::Items)
    }
    fn previous(&mut self) -> std::result::Result<Option<host::RestorePointInfo>, host::HostError> {
        self.ask(Req::Previous)
    }
    fn read_previous(
        &mut self,
        item: &str,
        max: u64,
    ) -> std::result::Result<Vec<u8>, host::HostError> {
        self.ask(|tx| Req::ReadPrevious(item.to_string(), max, tx))
    }
    fn read_item(&mut self, item: &str, max: u64) -> std::result::Result<Vec<u8>, host::HostError> {
        self.ask(|tx| Req::Read(item.to_string(), max, tx))
    }
    fn find_point(
        &mut self,
        id: &str,
    ) -> std::result::Result<host::RestorePointInfo, host::HostError> {
        self.ask(|tx| Req::FindPoint(id.to_string(), tx))
    }
    fn read_point_item(
        &mut self,
        point: &str,
        item: &str,
        max: u64,
    ) -> std::result::Result<Vec<u8>, host::HostError> {
        self.ask(|tx| Req::ReadPoint(point.to_string(), item.to_string(), max, tx))
    }
    fn restore_item(
        &mut self,
        item: &str,
        target: &Path,
        overwrite: bool,
    ) -> std::result::Result<u64, host::HostError> {
        self.ask(|tx| Req::Restore(item.to_string(), target.to_path_buf(), overwrite, tx))
    }
}

pub(super) fn not_now(what: &str) -> host::HostError {
    host::HostError::new(
        host::ErrorCode::Unsupported,
        format!("{what} is not available in this verb"),
    )
}

pub(super) fn source(
    i: host::Ingest,
    previous: Option<&rehydra_core::Id>,
) -> std::result::Result<Source, host::HostError> {
    Ok(match i {
        host::Ingest::Tree(p) => Source::Path(p),
        host::Ingest::File(p) => Source::File(p),
        host::Ingest::Range {
            path,
            offset,
            length,
        } => Source::Range {
            path,
            offset,
            length,
        },
        host::Ingest::Disk { path, format } => Source::Disk {
            path,
            format,
        },
        host::Ingest::DiskChanged {
            path,
            format,
            since_item,
            ranges,
        } => Source::DiskChanged {
            path,
            format,
            changes: ChangedRanges {
                since: *previous.ok_or_else(|| {
                    host::HostError::new(
                        host::ErrorCode::NotFound,
                        "there is no previous restore point of this asset to take unchanged data from; ingest the whole disk",
                    )
                })?,
                item: since_item,
                ranges,
            },
        },
        host::Ingest::Carried { since_item } => Source::Carried {
            since: *previous.ok_or_else(|| {
                host::HostError::new(
                    host::ErrorCode::NotFound,
                    "there is no previous restore point of this asset to keep items from",
                )
            })?,
            item: since_item,
        },
        host::Ingest::Document(d) => Source::Document(d),
        host::Ingest::Spooled(f) => Source::Reader(Box::new(f)),
    })
}

/// The newest restore point of an asset (same workload), for incremental backups.
pub(super) struct Previous<'a> {
    pub(super) session: &'a Session,
    pub(super) id: rehydra_core::Id,
    pub(super) snap: RestorePoint,
}

/// Serve backup requests into `sink` until the plugin's end hangs up.
pub(super) fn serve_backup(
    rx: &Receiver<Req>,
    sink: &mut dyn ItemSink,
    previous: Option<&Previous<'_>>,
) {
    for req in rx.iter() {
        match req {
            Req::Ingest(name, src, reply) => {
                let r = source(src, previous.map(|p| &p.id)).and_then(|source| {
                    sink.add(SourceItem { name, source })
                        .map_err(|e| host_err(&ApiError::from(e)))
                });
                let _ = reply.send(r.map(|r| host::ItemSummary {
                    name: r.name,
                    kind: r.kind,
                    size: r.size,
                    new_bytes: r.new_bytes,
                }));
            }
            Req::Items(reply) => drop(reply.send(Err(not_now("reading items")))),
            Req::Read(_, _, reply) => drop(reply.send(Err(not_now("reading items")))),
            Req::Restore(_, _, _, reply) => drop(reply.send(Err(not_now("restoring")))),
            Req::FindPoint(_, reply) => drop(reply.send(Err(not_now("another restore point")))),
            Req::ReadPoint(_, _, _, reply) => {
                drop(reply.send(Err(not_now("another restore point"))));
            }
            Req::Previous(reply) => {
                drop(reply.send(Ok(previous.map(|p| point_info(&p.id, &p.snap)))));
            }
            Req::ReadPrevious(name, max, reply) => drop(reply.send(match previous {
                Some(p) => read_item(p.session, &p.snap, &name, max),
                None => Err(host::HostError::new(
                    host::ErrorCode::NotFound,
                    "there is no previous restore point of this asset",
                )),
            })),
        }
    }
}

/// A restore point as the plugin contract describes it.
pub(super) fn point_info(id: &rehydra_core::Id, snap: &RestorePoint) -> host::RestorePointInfo {
    host::RestorePointInfo {
        id: id.to_hex(),
        time: snap.time.to_rfc3339(),
        workload: snap.workload.clone(),
        asset: snap.asset.clone(),
        plugin_id: snap.plugin.id.clone(),
        plugin_version: snap.plugin.version.clone(),
        consistency: snap.consistency.clone(),
        items: item_infos(snap),
        tags: snap.tags.clone(),
    }
}

/// The items of a restore point as the plugin contract lists them.
pub(super) fn item_infos(snap: &RestorePoint) -> Vec<host::ItemInfo> {
    snap.items
        .iter()
        .map(|i| host::ItemInfo {
            name: i.name.clone(),
            kind: i.kind,
            size: i.size,
        })
        .collect()
}

/// Serve restore / verify requests from one restore point.
/// Whether a verb may restore items (only `restore` does; `plan-restore` and `verify` read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writes {
    /// `restore`, and `verify` given restore settings.
    Yes,
    /// `plan-restore`, `verify` without settings.
    No,
}

pub(super) fn serve_restore(
    rx: &Receiver<Req>,
    session: &Session,
    snap: &RestorePoint,
    writes: Writes,
    progress: &dyn Progress,
    cancel: &Cancel,
) {
    // points `find-point` found, by the spec the plugin gave
    let mut others = Others::default();
    for req in rx.iter() {
        match req {
            Req::Ingest(_, _, reply) => drop(reply.send(Err(not_now("storing")))),
            Req::FindPoint(spec, reply) => {
                let r = others
                    .get(session, snap, spec)
                    .map(|(id, p)| point_info(id, p));
                drop(reply.send(r));
            }
            Req::ReadPoint(spec, name, max, reply) => {
                let r = others
                    .get(session, snap, spec)
                    .and_then(|(_, p)| read_item(session, p, &name, max));
                drop(reply.send(r));
            }
            Req::Previous(reply) => drop(reply.send(Err(not_now("the previous restore point")))),
            Req::ReadPrevious(_, _, reply) => {
                drop(reply.send(Err(not_now("the previous restore point"))));
            }
            Req::Items(reply) => drop(reply.send(Ok(item_infos(snap)))),
            Req::Read(name, max, reply) => drop(reply.send(read_item(session, snap, &name, max))),
            Req::Restore(_, _, _, reply) if writes == Writes::No => {
                drop(reply.send(Err(not_now(
                    "restoring an item (only `restore` writes, and `verify` given restore settings)",
                ))));
            }
            Req::Restore(name, target, overwrite, reply) => {
                let opts = RestoreOptions {
                    overwrite,
                    disk_format: disk_output_for(&target),
                    item: Some(name),
                    ..RestoreOptions::default()
                };
                let r = rehydra_core::restorer::restore(
                    session.repository(),
                    snap,
                    &target,
                    &opts,
                    progress,
                    cancel,
                )
                .map(|s| s.bytes)
                .map_err(|e| host_err(&ApiError::from(e)));
                let _ = reply.send(r);
            }
        }
    }
}

/// The restore points of the asset in hand that a plugin may find during one call: those
/// of the same asset, workload and plugin (never another asset's), listed once, oldest
/// first, when it first asks; named under the contract's rules (`host::points`).
#[derive(Default)]
struct Others {
    points: Option<Vec<(rehydra_core::Id, RestorePoint)>>,
    named: host::points::Named,
}

impl Others {
    /// The point `spec` names: an id prefix of at least four hex digits, or `latest`.
    fn get(
        &mut self,
        session: &Session,
        snap: &RestorePoint,
        spec: String,
    ) -> std::result::Result<(&rehydra_core::Id, &RestorePoint), host::HostError> {
        let want = self.named.name(&spec)?;
        if self.points.is_none() {
            let (all, _damaged) = session
                .repository()
                .restore_points()
                .map_err(|e| host_err(&ApiError::from(e)))?;
            self.points = Some(
                all.into_iter()
                    .filter(|(_, p)| {
                        p.asset == snap.asset
                            && p.workload == snap.workload
                            && p.plugin.id == snap.plugin.id
                    })
                    .collect(),
            );
        }
        let points = self.points.as_deref().unwrap_or_default();
        let mut found: Vec<&(rehydra_core::Id, RestorePoint)> = points
            .iter()
            .filter(|(id, _)| host::points::matches(&want, &id.to_hex()))
            .collect();
        if want == "latest" {
            // oldest first: the newest is the last
            found.drain(..found.len().saturating_sub(1));
        }
        let (id, p) = host::points::the_one(found, &spec, &snap.asset)?;
        Ok((id, p))
    }
}

/// A disk item restored to `*.vhdx` / `*.vhd` is written as that container, anything
/// else as the raw virtual disk (the contract documents this on `restore-item`).
pub(super) fn disk_output_for(target: &Path) -> DiskOutput {
    match target
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("vhdx") => DiskOutput::Vhdx,
        Some("vhd") => DiskOutput::Vhd,
        _ => DiskOutput::Raw,
    }
}

/// A small item, restored (and verified chunk by chunk) into a private temporary folder.
pub(super) fn read_item(
    session: &Session,
    snap: &RestorePoint,
    name: &str,
    max: u64,
) -> std::result::Result<Vec<u8>, host::HostError> {
    let item = snap.items.iter().find(|i| i.name == name).ok_or_else(|| {
        host::HostError::new(
            host::ErrorCode::NotFound,
            format!("the restore point has no item `{name}`"),
        )
    })?;
    if !matches!(item.kind, ItemKind::Document | ItemKind::Stream) || item.size > max {
        return Err(host::HostError::new(
            host::ErrorCode::InvalidInput,
            format!(
                "item `{name}` is not a document or stream of at most {max} bytes; restore it instead"
            ),
        ));
    }
    let dir = tempfile::tempdir()
        .map_err(|e| host::HostError::new(host::ErrorCode::Failed, e.to_string()))?;
    let out = dir.path().join("item");
    let opts = RestoreOptions {
        item: Some(name.to_string()),
        ..RestoreOptions::default()
    };
    rehydra_core::restorer::restore(
        session.repository(),
        snap,
        &out,
        &opts,
        &NoProgress,
        &Cancel::default(),
    )
    .map_err(|e| host_err(&ApiError::from(e)))?;
    std::fs::read(&out).map_err(|e| {
        host::HostError::new(
            host::ErrorCode::Failed,
            format!("reading restored item: {e}"),
        )
    })
}
