//! An NBD server (fixed newstyle handshake, simple replies) exporting one virtual disk,
//! so a hypervisor or `qemu-img` can use a restore point before any restore.
//!
//! Read-only by default. Writable exports keep every write in a copy-on-write overlay
//! file outside the repository (4 KiB blocks; a block is copied up from the disk on its
//! first partial write), so the source is never written. Options understood: `GO`,
//! `INFO`, `EXPORT_NAME`, `LIST`, `ABORT`; others get `ERR_UNSUP` (clients then fall back
//! to simple replies). Commands: `READ`, `WRITE`, `WRITE_ZEROES`, `FLUSH`, `TRIM` (a
//! no-op), `DISC`. Requests are bounded (32 MiB) and checked against the export size.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::DiskImage;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
const REP_ERR_INVALID: u32 = (1 << 31) + 3;
const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_WRITE_ZEROES: u16 = 6;

const FLAG_HAS_FLAGS: u16 = 1;
const FLAG_READ_ONLY: u16 = 2;
const FLAG_SEND_FLUSH: u16 = 4;
const FLAG_SEND_TRIM: u16 = 32;
const FLAG_SEND_WRITE_ZEROES: u16 = 64;

const EIO: u32 = 5;
const EPERM: u32 = 1;
const EINVAL: u32 = 22;
const ENOSPC: u32 = 28;

const MAX_REQUEST: u32 = 32 << 20;
const BLOCK: u64 = 4096;

/// Writes kept outside the source: a sparse file the size of the disk plus the set of
/// 4 KiB blocks it holds.
pub struct Overlay {
    file: File,
    dirty: HashSet<u64>,
}

impl Overlay {
    /// Create the overlay file `path` (never an existing one).
    ///
    /// # Errors
    /// The file exists or cannot be created.
    pub fn create(path: &Path, size: u64) -> std::io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.set_len(size)?;
        Ok(Self {
            file,
            dirty: HashSet::new(),
        })
    }

    /// Blocks written so far.
    pub fn blocks(&self) -> usize {
        self.dirty.len()
    }
}

/// One export: a name, a disk, and optionally an overlay that makes it writable.
pub struct Export<'a> {
    /// Export name clients ask for (`nbd://host:port/<name>`).
    pub name: String,
    /// The disk.
    pub disk: &'a mut dyn DiskImage,
    /// Where writes go; `None` for a read-only export.
    pub overlay: Option<Overlay>,
}

impl Export<'_> {
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let Some(ov) = self.overlay.as_ref() else {
            return self
                .disk
                .read_at(offset, buf)
                .map_err(std::io::Error::other);
        };
        // block by block: dirty blocks from the overlay, the rest from the disk
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let n = ((BLOCK - pos % BLOCK) as usize).min(buf.len() - done);
            if ov.dirty.contains(&(pos / BLOCK)) {
                crate::read_exact_at(&ov.file, &mut buf[done..done + n], pos)?;
            } else {
                self.disk
                    .read_at(pos, &mut buf[done..done + n])
                    .map_err(std::io::Error::other)?;
            }
            done += n;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let block = pos / BLOCK;
            let within = (pos % BLOCK) as usize;
            let n = (BLOCK as usize - within).min(data.len() - done);
            let whole = within == 0 && n == BLOCK as usize;
            let clean = self
                .overlay
                .as_ref()
                .is_some_and(|o| !o.dirty.contains(&block));
            if clean && !whole {
                // copy the block up before changing part of it
                let start = block * BLOCK;
                let len = BLOCK.min(self.disk.virtual_size() - start) as usize;
                let mut b = vec![0u8; len];
                self.disk
                    .read_at(start, &mut b)
                    .map_err(std::io::Error::other)?;
                if let Some(o) = self.overlay.as_ref() {
                    crate::write_all_at(&o.file, &b, start)?;
                }
            }
            let Some(ov) = self.overlay.as_mut() else {
                return Err(std::io::ErrorKind::PermissionDenied.into());
            };
            crate::write_all_at(&ov.file, &data[done..done + n], pos)?;
            ov.dirty.insert(block);
            done += n;
        }
        Ok(())
    }
}

/// Serve `export` on `listener`, one client at a time, until `stop` is set.
///
/// # Errors
/// The listener fails. A client that misbehaves only ends its own connection.
pub fn serve(
    listener: &TcpListener,
    export: &mut Export<'_>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                // a client's protocol error ends its connection, not the server
                let _ = client(s, export, stop);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read exactly `buf.len()` bytes, riding out read timeouts (used to notice `stop`).
fn read_full(r: &mut impl Read, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn opt_reply(w: &mut impl Write, opt: u32, kind: u32, data: &[u8]) -> std::io::Result<()> {
    w.write_all(&REPLY_MAGIC.to_be_bytes())?;
    w.write_all(&opt.to_be_bytes())?;
    w.write_all(&kind.to_be_bytes())?;
    w.write_all(&(data.len() as u32).to_be_bytes())?;
    w.write_all(data)?;
    w.flush()
}

fn client(s: TcpStream, export: &mut Export<'_>, stop: &AtomicBool) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = BufWriter::new(s);
    let flags = FLAG_HAS_FLAGS
        | FLAG_SEND_FLUSH
        | if export.overlay.is_some() {
            FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES
        } else {
            FLAG_READ_ONLY
        };
    let size = export.disk.virtual_size();
    w.write_all(&NBDMAGIC.to_be_bytes())?;
    w.write_all(&IHAVEOPT.to_be_bytes())?;
    w.write_all(&3u16.to_be_bytes())?; // fixed newstyle, no zeroes
    w.flush()?;
    let mut b4 = [0u8; 4];
    read_full(&mut r, &mut b4, stop)?;
    let no_zeroes = u32::from_be_bytes(b4) & 2 != 0;
    // option haggling
    loop {
        let mut h = [0u8; 16];
        read_full(&mut r, &mut h, stop)?;
        let (magic, opt, len) = (
            u64::from_be_bytes(h[..8].try_into().unwrap_or_default()),
            u32::from_be_bytes(h[8..12].try_into().unwrap_or_default()),
            u32::from_be_bytes(h[12..16].try_into().unwrap_or_default()),
        );
        if magic != IHAVEOPT || len > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let mut data = vec![0u8; len as usize];
        read_full(&mut r, &mut data, stop)?;
        match opt {
            OPT_EXPORT_NAME => {
                if data != export.name.as_bytes() && !data.is_empty() {
                    return Err(std::io::ErrorKind::NotFound.into());
                }
                w.write_all(&size.to_be_bytes())?;
                w.write_all(&flags.to_be_bytes())?;
                if !no_zeroes {
                    w.write_all(&[0u8; 124])?;
                }
                w.flush()?;
                break;
            }
            OPT_GO | OPT_INFO => {
                let name_len = data
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()) as usize);
                let name = name_len.and_then(|n| data.get(4..4 + n));
                match name {
                    None => opt_reply(&mut w, opt, REP_ERR_INVALID, b"malformed request")?,
                    Some(n) if !n.is_empty() && n != export.name.as_bytes() => opt_reply(
                        &mut w,
                        opt,
                        REP_ERR_UNKNOWN,
                        format!("no export named {}", String::from_utf8_lossy(n)).as_bytes(),
                    )?,
                    Some(_) => {
                        let mut info = Vec::with_capacity(12);
                        info.extend_from_slice(&0u16.to_be_bytes()); // NBD_INFO_EXPORT
                        info.extend_from_slice(&size.to_be_bytes());
                        info.extend_from_slice(&flags.to_be_bytes());
                        opt_reply(&mut w, opt, REP_INFO, &info)?;
                        opt_reply(&mut w, opt, REP_ACK, &[])?;
                        if opt == OPT_GO {
                            break;
                        }
                    }
                }
            }
            OPT_LIST => {
                let mut d = (export.name.len() as u32).to_be_bytes().to_vec();
                d.extend_from_slice(export.name.as_bytes());
                opt_reply(&mut w, opt, REP_SERVER, &d)?;
                opt_reply(&mut w, opt, REP_ACK, &[])?;
            }
            OPT_ABORT => {
                opt_reply(&mut w, opt, REP_ACK, &[])?;
                return Ok(());
            }
            _ => opt_reply(&mut w, opt, REP_ERR_UNSUP, &[])?,
        }
    }
    // transmission
    loop {
        let mut q = [0u8; 28];
        match read_full(&mut r, &mut q, stop) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let be32 = |i: usize| u32::from_be_bytes(q[i..i + 4].try_into().unwrap_or_default());
        let be64 = |i: usize| u64::from_be_bytes(q[i..i + 8].try_into().unwrap_or_default());
        if be32(0) != REQUEST_MAGIC {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let kind = u16::from_be_bytes([q[6], q[7]]);
        let (handle, offset, len) = (be64(8), be64(16), be32(24));
        let reply = |w: &mut BufWriter<TcpStream>, err: u32, data: &[u8]| -> std::io::Result<()> {
            w.write_all(&SIMPLE_REPLY_MAGIC.to_be_bytes())?;
            w.write_all(&err.to_be_bytes())?;
            w.write_all(&handle.to_be_bytes())?;
            w.write_all(data)?;
            w.flush()
        };
        let in_range = len <= MAX_REQUEST
            && offset
                .checked_add(u64::from(len))
                .is_some_and(|e| e <= size);
        match kind {
            CMD_DISC => return Ok(()),
            CMD_READ if !in_range => reply(&mut w, EINVAL, &[])?,
            CMD_READ => {
                let mut buf = vec![0u8; len as usize];
                match export.read(offset, &mut buf) {
                    Ok(()) => reply(&mut w, 0, &buf)?,
                    Err(_) => reply(&mut w, EIO, &[])?,
                }
            }
            CMD_WRITE => {
                if len > MAX_REQUEST {
                    return Err(std::io::ErrorKind::InvalidData.into());
                }
                let mut buf = vec![0u8; len as usize];
                read_full(&mut r, &mut buf, stop)?;
                let err = if export.overlay.is_none() {
                    EPERM
                } else if !in_range {
                    ENOSPC
                } else if export.write(offset, &buf).is_err() {
                    EIO
                } else {
                    0
                };
                reply(&mut w, err, &[])?;
            }
            CMD_WRITE_ZEROES => {
                let err = if export.overlay.is_none() {
                    EPERM
                } else if !in_range {
                    ENOSPC
                } else if export.write(offset, &vec![0u8; len as usize]).is_err() {
                    EIO
                } else {
                    0
                };
                reply(&mut w, err, &[])?;
            }
            CMD_FLUSH => {
                let err = match export.overlay.as_ref().map(|o| o.file.sync_data()) {
                    Some(Err(_)) => EIO,
                    _ => 0,
                };
                reply(&mut w, err, &[])?;
            }
            CMD_TRIM => reply(
                &mut w,
                if export.overlay.is_some() { 0 } else { EPERM },
                &[],
            )?,
            _ => reply(&mut w, EINVAL, &[])?,
        }
    }
}
