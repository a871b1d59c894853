//! One file being restored: a writer thread owns the file (a plain file with holes, a
//! VHDX or VHD container, or an existing file or device written in place) while the
//! caller fetches and verifies chunks. Small plain files are written on the caller's
//! thread: a thread per file costs more than the file.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rehydra_target::{Cursor, PendingFile, TargetDir};

use super::{DiskOutput, RestoreSummary};
use crate::contentmap::{Extent, Node};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;

type Batch = Vec<(u64, Option<Vec<u8>>)>;

/// Where the finished file goes.
enum Dest {
    /// A new file: renamed over its name in its folder when complete.
    New(PendingFile),
    /// An existing file or device written in place: never removed, never renamed.
    InPlace,
}

/// A file being restored.
pub(super) struct FileOut {
    path: PathBuf,
    dest: Option<Dest>,
    node: Node,
    /// The bytes the restore point records for this file: no more are written, and
    /// fewer are an error.
    size: u64,
    pos: u64,
    holes: u64,
    writer: Option<Writer>,
    /// The file is a VHDX or VHD container: its length is not the virtual size.
    container: bool,
}

/// Where a restored file's bytes go: a plain file (holes by seeking) or a container writer.
enum Sink {
    Raw(std::io::BufWriter<File>),
    Vhdx(rehydra_disk::vhdx_write::VhdxWriter),
    Vhd(rehydra_disk::vhd_write::VhdWriter),
    /// An existing file or device: data and zeros at their offsets.
    InPlace(File),
}

/// Who writes the file: a thread fed through a channel, or the caller itself.
enum Writer {
    Thread(
        crossbeam_channel::Sender<Batch>,
        std::thread::JoinHandle<std::io::Result<File>>,
    ),
    Inline(Box<SinkState>),
}

/// Plain files up to this size are written on the caller's thread.
const INLINE_FILE: u64 = 1 << 20;

/// A sink and where the next bytes go.
struct SinkState {
    sink: Sink,
    pos: u64,
    seek_needed: bool,
}

fn write_loop(sink: Sink, rx: crossbeam_channel::Receiver<Batch>) -> std::io::Result<File> {
    let mut s = SinkState {
        sink,
        pos: 0,
        seek_needed: false,
    };
    for batch in rx {
        s.put(batch)?;
    }
    s.finish()
}

impl SinkState {
    fn put(&mut self, batch: Batch) -> std::io::Result<()> {
        let (sink, pos, seek_needed) = (&mut self.sink, &mut self.pos, &mut self.seek_needed);
        for (len, data) in batch {
            let pos_now = *pos;
            match (data, &mut *sink) {
                (Some(bytes), Sink::Raw(w)) => {
                    if *seek_needed {
                        w.seek(SeekFrom::Start(pos_now))?;
                        *seek_needed = false;
                    }
                    w.write_all(&bytes)?;
                }
                (Some(bytes), Sink::Vhdx(w)) => {
                    w.write_at(pos_now, &bytes).map_err(std::io::Error::other)?
                }
                (Some(bytes), Sink::Vhd(w)) => {
                    w.write_at(pos_now, &bytes).map_err(std::io::Error::other)?
                }
                (Some(bytes), Sink::InPlace(f)) => rehydra_disk::write_all_at(f, &bytes, pos_now)?,
                (None, Sink::InPlace(f)) => {
                    // the target holds old data: a hole is written as zeros
                    let zeros = vec![0u8; len.min(1 << 20) as usize];
                    let mut at = 0;
                    while at < len {
                        let n = (len - at).min(zeros.len() as u64) as usize;
                        rehydra_disk::write_all_at(f, &zeros[..n], pos_now + at)?;
                        at += n as u64;
                    }
                }
                (None, _) => *seek_needed = true,
            }
            *pos += len;
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<File> {
        let (sink, pos, seek_needed) = (self.sink, self.pos, self.seek_needed);
        match sink {
            Sink::Raw(mut w) => {
                if seek_needed {
                    w.seek(SeekFrom::Start(pos))?;
                }
                w.into_inner().map_err(|e| e.into_error())
            }
            Sink::Vhdx(w) => w.finish().map_err(std::io::Error::other),
            Sink::Vhd(w) => w.finish().map_err(std::io::Error::other),
            Sink::InPlace(f) => Ok(f),
        }
    }
}

/// A writer thread for `sink`, or the caller itself for a plain file of `size` up to
/// [`INLINE_FILE`].
fn spawn(sink: Sink, size: u64) -> Result<Writer> {
    if size <= INLINE_FILE && matches!(sink, Sink::Raw(_)) {
        return Ok(Writer::Inline(Box::new(SinkState {
            sink,
            pos: 0,
            seek_needed: false,
        })));
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let writer = std::thread::Builder::new()
        .name("rehydra-restore-write".into())
        .spawn(move || write_loop(sink, rx))
        .map_err(|e| Error::io("starting the restore writer", e))?;
    Ok(Writer::Thread(tx, writer))
}

impl FileOut {
    /// Write into the existing file or device `path` (checked by the plan).
    pub(super) fn in_place(path: PathBuf, node: Node, size: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let writer = spawn(Sink::InPlace(file), size)?;
        Ok(Self {
            path,
            dest: Some(Dest::InPlace),
            node,
            size,
            pos: 0,
            holes: 0,
            writer: Some(writer),
            container: false,
        })
    }

    /// A new file `name` in `dir`, written under an exclusive temporary name.
    pub(super) fn create(
        dir: &TargetDir,
        name: &str,
        node: Node,
        size: u64,
        format: DiskOutput,
    ) -> Result<Self> {
        let path = dir.path().join(name);
        let (file, pending) = dir.create_file(name, true).map_err(Error::from)?;
        let sink = match format {
            // 32 MiB blocks, as Hyper-V makes dynamic disks
            DiskOutput::Vhdx => {
                rehydra_disk::vhdx_write::VhdxWriter::new(file, &path, size, 32 << 20)
                    .map(Sink::Vhdx)
            }
            DiskOutput::Vhd => {
                rehydra_disk::vhd_write::VhdWriter::new(file, &path, size).map(Sink::Vhd)
            }
            DiskOutput::Raw => Ok(Sink::Raw(std::io::BufWriter::with_capacity(1 << 20, file))),
        };
        let sink = sink.map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let writer = spawn(sink, size)?;
        Ok(Self {
            path,
            dest: Some(Dest::New(pending)),
            node,
            size,
            pos: 0,
            holes: 0,
            writer: Some(writer),
            container: format != DiskOutput::Raw,
        })
    }

    /// Write the next extents of the file and their data (`None` for holes), as fetched.
    pub(super) fn write(
        &mut self,
        ext: &[Extent],
        data: Vec<Option<Vec<u8>>>,
        progress: &dyn Progress,
    ) -> Result<()> {
        let total: u64 = ext.iter().map(Extent::len).sum();
        if self.pos.saturating_add(total) > self.size {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{}: the restore point holds more data than the {} bytes it records; it was written by a damaged or hostile writer",
                    self.path.display(),
                    self.size
                ),
            ));
        }
        let mut batch = Vec::with_capacity(ext.len());
        for (e, d) in ext.iter().zip(data) {
            if d.is_none() {
                self.holes += e.len();
            }
            self.pos += e.len();
            batch.push((e.len(), d));
        }
        let sent = match self.writer.as_mut() {
            Some(Writer::Thread(tx, _)) => tx.send(batch).is_ok(),
            Some(Writer::Inline(s)) => match s.put(batch) {
                Ok(()) => true,
                Err(e) => {
                    self.writer = None;
                    return Err(Error::io(format!("writing {}", self.path.display()), e));
                }
            },
            None => false,
        };
        if !sent {
            // the writer stopped: its error says why
            return Err(self
                .join_writer()
                .err()
                .unwrap_or_else(|| Error::new(ErrorKind::Io, "restore writer stopped")));
        }
        progress.inc(total);
        Ok(())
    }

    fn join_writer(&mut self) -> Result<File> {
        let done = match self.writer.take() {
            Some(Writer::Thread(tx, handle)) => {
                drop(tx);
                handle.join().ok()
            }
            Some(Writer::Inline(s)) => Some(s.finish()),
            None => None,
        };
        match done {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(Error::io(format!("writing {}", self.path.display()), e)),
            _ => Err(Error::new(
                ErrorKind::Io,
                format!("writing {}: the writer thread failed", self.path.display()),
            )),
        }
    }

    /// Complete the file: check its length; a new file is handed to `cursor` (the
    /// folder it was made in), which applies its metadata and renames it into place once
    /// durable; a file written in place is synced. `replace` allows replacing an existing
    /// file or link of that name (never writing through it).
    pub(super) fn finish(
        mut self,
        summary: &mut RestoreSummary,
        replace: bool,
        cursor: Option<&mut Cursor>,
    ) -> Result<()> {
        let file = self.join_writer()?; // on error `dest` drops: the temporary file goes
        if self.pos != self.size {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{}: restored {} bytes but the restore point records {}",
                    self.path.display(),
                    self.pos,
                    self.size
                ),
            ));
        }
        let io = |e| Error::io(format!("writing {}", self.path.display()), e);
        match self.dest.take() {
            Some(Dest::InPlace) => {
                if file.metadata().map(|m| m.is_file()).unwrap_or(false) {
                    file.set_len(self.pos).map_err(io)?;
                }
                file.sync_all().map_err(io)?;
            }
            Some(Dest::New(pending)) => {
                if !self.container {
                    file.set_len(self.pos).map_err(io)?;
                }
                let cursor = cursor.expect("a new file is made through a cursor");
                cursor
                    .commit(file, pending, &self.node.meta(), replace)
                    .map_err(Error::from)?;
            }
            None => unreachable!("finish is called once"),
        }
        summary.files += 1;
        summary.bytes += self.pos;
        summary.hole_bytes += self.holes;
        Ok(())
    }

    /// Stop writing; a new file's temporary name is removed.
    pub(super) fn abort(mut self) {
        let _ = self.join_writer();
        drop(self.dest.take());
    }
}

/// Whether `path` is a block device (in-place restores onto disks).
pub(super) fn is_block_device(md: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileTypeExt::is_block_device(&md.file_type())
    }
    #[cfg(not(unix))]
    {
        let _ = md;
        false
    }
}

/// Size of a block device (seek to its end).
pub(super) fn device_size(path: &Path) -> Result<u64> {
    let mut f =
        File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    f.seek(SeekFrom::End(0))
        .map_err(|e| Error::io(format!("sizing {}", path.display()), e))
}
