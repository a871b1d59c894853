//! The `engine` capability: ingest, pushed streams, documents, restore-item.

use std::io::{Seek, Write};
use std::path::PathBuf;

use wasmtime::component::Resource;

use super::{Res, SMALL_MAX, State, err, io_err};
use crate::Ingest;
use crate::bindings::rehydra::plugin::engine;
use crate::bindings::wit;
use crate::dto::ErrorCode;
use crate::limits::{MAX_STREAMS, SPOOL_MAX};
use crate::policy::CapabilityKind;

const STREAM_MAX: u64 = 256 << 20;
const WRITE_CHUNK_MAX: usize = 4 << 20;

/// A pushed stream being spooled to a temporary file until `finish`.
pub struct StreamWriter {
    item: String,
    file: Option<std::fs::File>,
    written: u64,
}

impl State {
    fn ingest(
        &mut self,
        item: String,
        path: &str,
        make: impl FnOnce(PathBuf) -> Ingest,
    ) -> Res<wit::ItemSummary> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, path)?;
        self.engine(&item)?;
        self.engine_work(|s| {
            let e = s.engine(&item)?;
            e.ingest(&item, make(p)).map(Into::into).map_err(Into::into)
        })
    }
}

fn disk_format(f: wit::DiskFormat) -> crate::DiskFormat {
    match f {
        wit::DiskFormat::Auto => crate::DiskFormat::Auto,
        wit::DiskFormat::Raw => crate::DiskFormat::Raw,
        wit::DiskFormat::Vhdx => crate::DiskFormat::Vhdx,
        wit::DiskFormat::Vhd => crate::DiskFormat::Vhd,
    }
}

impl engine::Host for State {
    fn ingest_path(&mut self, item: String, path: String) -> Res<wit::ItemSummary> {
        self.ingest(item, &path, Ingest::Tree)
    }
    fn ingest_file(&mut self, item: String, path: String) -> Res<wit::ItemSummary> {
        self.ingest(item, &path, Ingest::File)
    }
    fn ingest_range(
        &mut self,
        item: String,
        path: String,
        offset: u64,
        length: u64,
    ) -> Res<wit::ItemSummary> {
        self.ingest(item, &path, |path| Ingest::Range {
            path,
            offset,
            length,
        })
    }
    fn ingest_disk(
        &mut self,
        item: String,
        path: String,
        format: wit::DiskFormat,
    ) -> Res<wit::ItemSummary> {
        let format = disk_format(format);
        self.ingest(item, &path, |path| Ingest::Disk { path, format })
    }
    fn ingest_disk_changed(
        &mut self,
        item: String,
        path: String,
        format: wit::DiskFormat,
        since_item: String,
        changed: Vec<wit::DiskRange>,
    ) -> Res<wit::ItemSummary> {
        let format = disk_format(format);
        let ranges: Vec<(u64, u64)> = changed.iter().map(|r| (r.offset, r.length)).collect();
        self.ingest(item, &path, |path| Ingest::DiskChanged {
            path,
            format,
            since_item,
            ranges,
        })
    }
    fn carry_forward(&mut self, item: String, since_item: String) -> Res<wit::ItemSummary> {
        self.engine(&item)?;
        self.engine_work(|s| {
            let e = s.engine(&item)?;
            e.ingest(&item, Ingest::Carried { since_item })
                .map(Into::into)
                .map_err(Into::into)
        })
    }
    fn previous(&mut self) -> Res<Option<wit::RestorePoint>> {
        self.engine("previous")?;
        super::blocking(|| {
            Ok(self
                .engine("previous")?
                .previous()?
                .as_ref()
                .map(crate::convert::restore_point_out))
        })
    }
    fn read_previous_document(&mut self, item: String) -> Res<Vec<u8>> {
        self.engine(&item)?;
        self.engine_work(|s| Ok(s.engine(&item)?.read_previous(&item, SMALL_MAX)?))
    }
    fn put_document(&mut self, item: String, body: Vec<u8>) -> Res<wit::ItemSummary> {
        self.enter()?;
        if body.len() as u64 > SMALL_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("document `{item}` is larger than 16 MiB; use ingest-file or a stream"),
            ));
        }
        self.engine(&item)?;
        self.engine_work(|s| {
            s.engine(&item)?
                .ingest(&item, Ingest::Document(body))
                .map(Into::into)
                .map_err(Into::into)
        })
    }
    fn open_stream(&mut self, item: String) -> Res<Resource<StreamWriter>> {
        self.engine(&item)?;
        if self.streams_opened >= MAX_STREAMS {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("at most {MAX_STREAMS} streams may be opened in one call"),
            ));
        }
        let file = tempfile::tempfile().map_err(|e| io_err("spooling a stream", &e))?;
        let w = self
            .table
            .push(StreamWriter {
                item,
                file: Some(file),
                written: 0,
            })
            .map_err(|e| err(ErrorCode::Failed, e.to_string()))?;
        self.streams_opened += 1;
        Ok(w)
    }
    fn items(&mut self) -> Res<Vec<wit::ItemInfo>> {
        self.engine("items")?;
        super::blocking(|| {
            Ok(self
                .engine("items")?
                .items()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
    fn read_document(&mut self, item: String) -> Res<Vec<u8>> {
        self.engine(&item)?;
        self.engine_work(|s| Ok(s.engine(&item)?.read_item(&item, SMALL_MAX)?))
    }
    fn find_point(&mut self, id: String) -> Res<wit::RestorePoint> {
        self.engine("find-point")?;
        self.engine_work(|s| {
            Ok(crate::convert::restore_point_out(
                &s.engine("find-point")?.find_point(&id)?,
            ))
        })
    }
    fn read_point_document(&mut self, point: String, item: String) -> Res<Vec<u8>> {
        self.engine(&item)?;
        self.engine_work(|s| Ok(s.engine(&item)?.read_point_item(&point, &item, SMALL_MAX)?))
    }
    fn restore_item(&mut self, item: String, target: String, overwrite: bool) -> Res<u64> {
        self.enter()?;
        let p = self.path(CapabilityKind::FilesWrite, &target)?;
        self.engine(&item)?;
        self.audit(
            CapabilityKind::FilesWrite,
            &target,
            true,
            &format!("restore item {item}"),
        );
        self.engine_work(|s| Ok(s.engine(&item)?.restore_item(&item, &p, overwrite)?))
    }
}

impl engine::HostStreamWriter for State {
    fn write(&mut self, w: Resource<StreamWriter>, bytes: Vec<u8>) -> Res<()> {
        self.enter()?;
        if bytes.len() > WRITE_CHUNK_MAX {
            return Err(err(ErrorCode::InvalidInput, "at most 4 MiB per write"));
        }
        let n = bytes.len() as u64;
        if self.spooled + n > SPOOL_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "more than {} MiB spooled through streams in one call; write the data to a file and use ingest-file",
                    SPOOL_MAX >> 20
                ),
            ));
        }
        let sw = self
            .table
            .get_mut(&w)
            .map_err(|e| err(ErrorCode::Failed, e.to_string()))?;
        if sw.written + n > STREAM_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "stream `{}` is larger than 256 MiB; write it to a file and use ingest-file",
                    sw.item
                ),
            ));
        }
        let f = sw
            .file
            .as_mut()
            .ok_or_else(|| err(ErrorCode::InvalidInput, "stream already finished"))?;
        f.write_all(&bytes)
            .map_err(|e| io_err("spooling a stream", &e))?;
        sw.written += n;
        self.spooled += n;
        Ok(())
    }
    fn finish(&mut self, w: Resource<StreamWriter>) -> Res<wit::ItemSummary> {
        self.enter()?;
        let sw = self
            .table
            .get_mut(&w)
            .map_err(|e| err(ErrorCode::Failed, e.to_string()))?;
        let item = sw.item.clone();
        let mut f = sw
            .file
            .take()
            .ok_or_else(|| err(ErrorCode::InvalidInput, "stream already finished"))?;
        f.rewind().map_err(|e| io_err("spooling a stream", &e))?;
        self.engine(&item)?;
        self.engine_work(|s| {
            s.engine(&item)?
                .ingest(&item, Ingest::Spooled(f))
                .map(Into::into)
                .map_err(Into::into)
        })
    }
    fn drop(&mut self, w: Resource<StreamWriter>) -> wasmtime::Result<()> {
        self.table.delete(w)?;
        Ok(())
    }
}
