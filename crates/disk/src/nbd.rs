//! An NBD server (fixed newstyle handshake, simple replies) exporting one virtual disk,
//! so a hypervisor or `qemu-img` can use a restore point before any restore.
//!
//! Read-only by default. Writable exports keep every write in a copy-on-write overlay
//! file outside the repository (4 KiB blocks; a block is copied up from the disk on its
//! first partial write), so the source is never written. Options understood: `GO`,
//! `INFO`, `EXPORT_NAME`, `LIST`, `ABORT`; others get `ERR_UNSUP` (clients then fall back
//! to simple replies). Commands: `READ`, `WRITE`, `WRITE_ZEROES`, `FLUSH`, `TRIM` (a
//! no-op), `DISC`. Requests are bounded (32 MiB) and checked against the export size.
//!
//! Clients ([`ServeOptions`]): each connection has a thread of its own, up to
//! `max_clients` at once (more are closed as soon as accepted). A read-only export serves
//! all of them at once (requests take turns on the disk). A writable export has one
//! client at a time, so two guests never write one overlay: while one is connected,
//! another's `GO` gets `NBD_REP_ERR_POLICY` ("in use") and its `EXPORT_NAME` a closed
//! connection; it can connect again once the first has gone. A client that keeps the
//! server waiting longer than `idle_timeout` — for its next request, or in the middle of
//! the handshake or of a request — is disconnected, as is one that does not read its
//! replies for that long.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
const REP_ERR_POLICY: u32 = (1 << 31) + 2;
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

/// Bytes of one page of the dirty bitmap (it covers 32 768 blocks, 128 MiB of disk).
const PAGE: u64 = 4096;
/// Blocks one bitmap page covers.
const PAGE_BLOCKS: u64 = PAGE * 8;
/// Bitmap pages kept in memory.
const CACHE_PAGES: usize = 16;

/// Writes kept outside the source: a sparse file holding the disk's written 4 KiB blocks
/// at their own offsets, followed (at the disk's size rounded up to 4 KiB) by the dirty
/// bitmap, one bit per block (bit `b % 8` of byte `b / 8` is block `b`).
///
/// Memory budget: at most 16 bitmap pages of 4 KiB (64 KiB) are held in memory, whatever
/// the disk's size and however many blocks are written; the bitmap itself is in the file
/// (32 MiB per TiB of disk, and sparse: only pages of regions written take room).
pub struct Overlay {
    file: File,
    /// Offset of the bitmap in `file`.
    bitmap_at: u64,
    /// Bitmap pages recently used: page index, bytes, last use. Always what the file
    /// holds (bits are written through).
    cache: Vec<(u64, Vec<u8>, u64)>,
    tick: u64,
    written: u64,
    /// False once a write failed part-way: the data area may then hold bytes of blocks
    /// not marked dirty, so zero writes over clean blocks are written out instead of
    /// trusting the area's holes.
    holes_clean: bool,
}

impl Overlay {
    /// Create the overlay file `path` (never an existing one) for a disk of `size` bytes.
    ///
    /// # Errors
    /// The file exists or cannot be created.
    pub fn create(path: &Path, size: u64) -> std::io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let bitmap_at = size.div_ceil(BLOCK) * BLOCK;
        let pages = size.div_ceil(BLOCK).div_ceil(PAGE_BLOCKS);
        file.set_len(bitmap_at + pages * PAGE)?;
        Ok(Self {
            file,
            bitmap_at,
            cache: Vec::with_capacity(CACHE_PAGES),
            tick: 0,
            written: 0,
            holes_clean: true,
        })
    }

    /// Blocks written so far.
    pub fn blocks(&self) -> usize {
        self.written as usize
    }

    /// Index in `cache` of bitmap page `p`, read from the file if need be (evicting the
    /// least recently used page).
    fn page(&mut self, p: u64) -> std::io::Result<usize> {
        self.tick += 1;
        if let Some(i) = self.cache.iter().position(|c| c.0 == p) {
            self.cache[i].2 = self.tick;
            return Ok(i);
        }
        let mut bytes = vec![0u8; PAGE as usize];
        crate::read_exact_at(&self.file, &mut bytes, self.bitmap_at + p * PAGE)?;
        if self.cache.len() < CACHE_PAGES {
            self.cache.push((p, bytes, self.tick));
            return Ok(self.cache.len() - 1);
        }
        let i = (0..self.cache.len())
            .min_by_key(|&i| self.cache[i].2)
            .unwrap_or(0);
        self.cache[i] = (p, bytes, self.tick);
        Ok(i)
    }

    /// Whether block `b` was written.
    fn is_dirty(&mut self, b: u64) -> std::io::Result<bool> {
        let i = self.page(b / PAGE_BLOCKS)?;
        let bit = b % PAGE_BLOCKS;
        Ok(self.cache[i].1[(bit / 8) as usize] >> (bit % 8) & 1 == 1)
    }

    /// Mark blocks `first..end` written, in memory and in the file.
    fn mark(&mut self, first: u64, end: u64) -> std::io::Result<()> {
        let mut b = first;
        while b < end {
            let p = b / PAGE_BLOCKS;
            let stop = ((p + 1) * PAGE_BLOCKS).min(end);
            let i = self.page(p)?;
            let page = &mut self.cache[i].1;
            let (mut lo, mut hi, mut new) = (usize::MAX, 0, 0);
            for k in b - p * PAGE_BLOCKS..stop - p * PAGE_BLOCKS {
                let (byte, m) = ((k / 8) as usize, 1u8 << (k % 8));
                if page[byte] & m == 0 {
                    page[byte] |= m;
                    (lo, hi, new) = (lo.min(byte), byte + 1, new + 1);
                }
            }
            if new > 0 {
                let at = self.bitmap_at + p * PAGE + lo as u64;
                if let Err(e) = crate::write_all_at(&self.file, &page[lo..hi], at) {
                    // the file is what counts: forget the page
                    self.cache.swap_remove(i);
                    return Err(e);
                }
                self.written += new;
            }
            b = stop;
        }
        Ok(())
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
        let Some(ov) = self.overlay.as_mut() else {
            return self
                .disk
                .read_at(offset, buf)
                .map_err(std::io::Error::other);
        };
        // runs of written blocks from the overlay, the rest from the disk
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let dirty = ov.is_dirty(pos / BLOCK)?;
            let mut run_end = (pos / BLOCK + 1) * BLOCK;
            while run_end < end && ov.is_dirty(run_end / BLOCK)? == dirty {
                run_end += BLOCK;
            }
            let run_end = run_end.min(end);
            let out = &mut buf[(pos - offset) as usize..(run_end - offset) as usize];
            if dirty {
                crate::read_exact_at(&ov.file, out, pos)?;
            } else {
                self.disk.read_at(pos, out).map_err(std::io::Error::other)?;
            }
            pos = run_end;
        }
        Ok(())
    }

    /// Write `data`, or `len` zeros when `data` is `None`, at `offset` (in range).
    fn write(&mut self, offset: u64, data: Option<&[u8]>, len: u64) -> std::io::Result<()> {
        let size = self.disk.virtual_size();
        let Some(ov) = self.overlay.as_mut() else {
            return Err(std::io::ErrorKind::PermissionDenied.into());
        };
        if len == 0 {
            return Ok(());
        }
        let r = write_overlay(ov, &mut *self.disk, size, offset, data, len);
        if r.is_err() {
            ov.holes_clean = false;
        }
        r
    }
}

fn write_overlay(
    ov: &mut Overlay,
    disk: &mut dyn DiskImage,
    size: u64,
    offset: u64,
    data: Option<&[u8]>,
    len: u64,
) -> std::io::Result<()> {
    let end = offset + len;
    let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
    let span = |b: u64| (b * BLOCK, ((b + 1) * BLOCK).min(size));
    let whole = |b: u64| {
        let (s, e) = span(b);
        offset <= s && end >= e
    };
    // the blocks written in part, copied up from the disk before their first write
    for &b in &[first, last][..1 + usize::from(last != first)] {
        if whole(b) || ov.is_dirty(b)? {
            continue;
        }
        let (s, e) = span(b);
        let mut copy = vec![0u8; (e - s) as usize];
        disk.read_at(s, &mut copy).map_err(std::io::Error::other)?;
        crate::write_all_at(&ov.file, &copy, s)?;
    }
    match data {
        Some(d) => crate::write_all_at(&ov.file, d, offset)?,
        None => {
            const ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];
            for b in first..=last {
                // a whole block never written is still a hole of the new file: zeros
                if whole(b) && ov.holes_clean && !ov.is_dirty(b)? {
                    continue;
                }
                let (s, e) = span(b);
                let (s, e) = (s.max(offset), e.min(end));
                crate::write_all_at(&ov.file, &ZEROS[..(e - s) as usize], s)?;
            }
        }
    }
    ov.mark(first, last + 1)
}

/// How [`serve_with`] treats its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// A client that keeps the server waiting this long (for its next request, in the
    /// middle of the handshake or of a request, or by not reading its replies) is
    /// disconnected. Default: 10 minutes.
    pub idle_timeout: Duration,
    /// Most connections at once; further ones are closed as soon as accepted. Default: 8.
    pub max_clients: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_clients: 8,
        }
    }
}

/// Serve `export` on `listener` with the default [`ServeOptions`] until `stop` is set.
///
/// # Errors
/// As [`serve_with`].
pub fn serve(
    listener: &TcpListener,
    export: &mut Export<'_>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    serve_with(listener, export, stop, &ServeOptions::default())
}

/// What the client threads share.
struct Shared<'e, 'a> {
    export: Mutex<&'e mut Export<'a>>,
    name: String,
    size: u64,
    writable: bool,
    /// A client of a writable export is in transmission.
    writer: AtomicBool,
    stop: &'e AtomicBool,
    /// The listener failed: clients end too.
    failed: AtomicBool,
    timeout: Duration,
}

impl Shared<'_, '_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed)
    }

    /// Run `f` on the export (requests take turns).
    fn with<T>(&self, f: impl FnOnce(&mut Export<'_>) -> std::io::Result<T>) -> std::io::Result<T> {
        let mut g = self
            .export
            .lock()
            .map_err(|_| std::io::Error::other("an earlier request failed mid-way"))?;
        f(&mut g)
    }
}

/// Releases a slot when dropped.
struct Release<'a>(&'a AtomicUsize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Frees the writable export when dropped.
struct Writer<'a>(&'a AtomicBool);

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Serve `export` on `listener` until `stop` is set, each client on a thread of its own
/// (see the module documentation for who is served when).
///
/// # Errors
/// The listener fails. A client that misbehaves only ends its own connection.
pub fn serve_with(
    listener: &TcpListener,
    export: &mut Export<'_>,
    stop: &AtomicBool,
    opts: &ServeOptions,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let shared = Shared {
        name: export.name.clone(),
        size: export.disk.virtual_size(),
        writable: export.overlay.is_some(),
        export: Mutex::new(export),
        writer: AtomicBool::new(false),
        stop,
        failed: AtomicBool::new(false),
        timeout: opts.idle_timeout,
    };
    let connected = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    if connected.load(Ordering::Relaxed) >= opts.max_clients {
                        drop(s);
                        continue;
                    }
                    connected.fetch_add(1, Ordering::Relaxed);
                    let release = Release(&connected);
                    let shared = &shared;
                    sc.spawn(move || {
                        let _release = release;
                        // a client's protocol error ends its connection, not the server
                        let _ = client(s, shared);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    shared.failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(())
    })
}

/// The sending half of a connection: short socket timeouts, retried until the server
/// stops or the deadline of the message being sent passes.
struct Sender<'s, 'e, 'a> {
    s: TcpStream,
    deadline: Instant,
    shared: &'s Shared<'e, 'a>,
}

impl Write for Sender<'_, '_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.s.write(buf) {
                Err(e) if waiting(&e) => {
                    if self.shared.stopping() {
                        return Err(std::io::ErrorKind::Interrupted.into());
                    }
                    if Instant::now() >= self.deadline {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                }
                r => return r,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// A socket timeout (or interruption): try again unless the server stops or the
/// deadline has passed.
fn waiting(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// One connection's reading and writing halves.
struct Conn<'s, 'e, 'a> {
    r: BufReader<TcpStream>,
    w: BufWriter<Sender<'s, 'e, 'a>>,
    shared: &'s Shared<'e, 'a>,
}

impl Conn<'_, '_, '_> {
    /// Read exactly `buf.len()` bytes within the idle timeout, riding out the short read
    /// timeouts used to notice `stop`.
    fn read_full(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let deadline = Instant::now() + self.shared.timeout;
        let mut done = 0;
        while done < buf.len() {
            match self.r.read(&mut buf[done..]) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if waiting(&e) => {
                    if self.shared.stopping() {
                        return Err(std::io::ErrorKind::Interrupted.into());
                    }
                    if Instant::now() >= deadline {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Send one message (its parts in order) within the idle timeout.
    fn send(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        self.w.get_mut().deadline = Instant::now() + self.shared.timeout;
        for p in parts {
            self.w.write_all(p)?;
        }
        self.w.flush()
    }

    fn opt_reply(&mut self, opt: u32, kind: u32, data: &[u8]) -> std::io::Result<()> {
        self.send(&[
            &REPLY_MAGIC.to_be_bytes(),
            &opt.to_be_bytes(),
            &kind.to_be_bytes(),
            &(data.len() as u32).to_be_bytes(),
            data,
        ])
    }

    fn reply(&mut self, handle: u64, err: u32, data: &[u8]) -> std::io::Result<()> {
        self.send(&[
            &SIMPLE_REPLY_MAGIC.to_be_bytes(),
            &err.to_be_bytes(),
            &handle.to_be_bytes(),
            data,
        ])
    }
}

fn client(s: TcpStream, shared: &Shared<'_, '_>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_nodelay(true)?;
    // short socket timeouts, so `stop` is noticed; the idle timeout is kept by deadlines
    let poll = Duration::from_millis(200)
        .min(shared.timeout)
        .max(Duration::from_millis(1));
    s.set_read_timeout(Some(poll))?;
    s.set_write_timeout(Some(poll))?;
    let mut c = Conn {
        r: BufReader::new(s.try_clone()?),
        w: BufWriter::new(Sender {
            s,
            deadline: Instant::now(),
            shared,
        }),
        shared,
    };
    let Some(_writer) = handshake(&mut c)? else {
        return Ok(());
    };
    transmission(&mut c)
}

/// The option haggling; `None` when the client ended it, else the client is in
/// transmission (holding the writable export, if it is one).
fn handshake<'s>(c: &mut Conn<'s, '_, '_>) -> std::io::Result<Option<Option<Writer<'s>>>> {
    let shared = c.shared;
    let flags = transmission_flags(shared.writable);
    // fixed newstyle, no zeroes
    c.send(&[
        &NBDMAGIC.to_be_bytes(),
        &IHAVEOPT.to_be_bytes(),
        &3u16.to_be_bytes(),
    ])?;
    let mut b4 = [0u8; 4];
    c.read_full(&mut b4)?;
    let no_zeroes = u32::from_be_bytes(b4) & 2 != 0;
    // the writable export goes to one client at a time
    let take = || -> Option<Option<Writer<'s>>> {
        if !shared.writable {
            return Some(None);
        }
        shared
            .writer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| Some(Writer(&shared.writer)))
    };
    loop {
        let mut h = [0u8; 16];
        c.read_full(&mut h)?;
        let (magic, opt, len) = (
            u64::from_be_bytes(h[..8].try_into().unwrap_or_default()),
            u32::from_be_bytes(h[8..12].try_into().unwrap_or_default()),
            u32::from_be_bytes(h[12..16].try_into().unwrap_or_default()),
        );
        if magic != IHAVEOPT || len > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let mut data = vec![0u8; len as usize];
        c.read_full(&mut data)?;
        match opt {
            OPT_EXPORT_NAME => {
                if data != shared.name.as_bytes() && !data.is_empty() {
                    return Err(std::io::ErrorKind::NotFound.into());
                }
                // no error reply exists for EXPORT_NAME: a busy export closes
                let writer = take().ok_or(std::io::ErrorKind::ResourceBusy)?;
                let zeroes: &[u8] = if no_zeroes { &[] } else { &[0u8; 124] };
                c.send(&[&shared.size.to_be_bytes(), &flags.to_be_bytes(), zeroes])?;
                return Ok(Some(writer));
            }
            OPT_GO | OPT_INFO => {
                let name_len = data
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()) as usize);
                let name = name_len.and_then(|n| data.get(4..4 + n));
                match name {
                    None => c.opt_reply(opt, REP_ERR_INVALID, b"malformed request")?,
                    Some(n) if !n.is_empty() && n != shared.name.as_bytes() => {
                        let msg = format!("no export named {}", String::from_utf8_lossy(n));
                        c.opt_reply(opt, REP_ERR_UNKNOWN, msg.as_bytes())?
                    }
                    Some(_) => {
                        let writer = if opt == OPT_GO { take() } else { Some(None) };
                        let Some(writer) = writer else {
                            c.opt_reply(
                                opt,
                                REP_ERR_POLICY,
                                b"the export is writable and in use by another client; connect again once it has gone",
                            )?;
                            continue;
                        };
                        let mut info = Vec::with_capacity(12);
                        info.extend_from_slice(&0u16.to_be_bytes()); // NBD_INFO_EXPORT
                        info.extend_from_slice(&shared.size.to_be_bytes());
                        info.extend_from_slice(&flags.to_be_bytes());
                        c.opt_reply(opt, REP_INFO, &info)?;
                        c.opt_reply(opt, REP_ACK, &[])?;
                        if opt == OPT_GO {
                            return Ok(Some(writer));
                        }
                    }
                }
            }
            OPT_LIST => {
                let mut d = (shared.name.len() as u32).to_be_bytes().to_vec();
                d.extend_from_slice(shared.name.as_bytes());
                c.opt_reply(opt, REP_SERVER, &d)?;
                c.opt_reply(opt, REP_ACK, &[])?;
            }
            OPT_ABORT => {
                c.opt_reply(opt, REP_ACK, &[])?;
                return Ok(None);
            }
            _ => c.opt_reply(opt, REP_ERR_UNSUP, &[])?,
        }
    }
}

fn transmission_flags(writable: bool) -> u16 {
    FLAG_HAS_FLAGS
        | FLAG_SEND_FLUSH
        | if writable {
            FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES
        } else {
            FLAG_READ_ONLY
        }
}

fn transmission(c: &mut Conn<'_, '_, '_>) -> std::io::Result<()> {
    let shared = c.shared;
    let size = shared.size;
    loop {
        let mut q = [0u8; 28];
        match c.read_full(&mut q) {
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
        let in_range = len <= MAX_REQUEST
            && offset
                .checked_add(u64::from(len))
                .is_some_and(|e| e <= size);
        let write_err = |r: std::io::Result<()>| match r {
            Ok(()) => 0,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => EPERM,
            Err(_) => EIO,
        };
        match kind {
            CMD_DISC => return Ok(()),
            CMD_READ if !in_range => c.reply(handle, EINVAL, &[])?,
            CMD_READ => {
                let mut buf = vec![0u8; len as usize];
                match shared.with(|ex| ex.read(offset, &mut buf)) {
                    Ok(()) => c.reply(handle, 0, &buf)?,
                    Err(_) => c.reply(handle, EIO, &[])?,
                }
            }
            CMD_WRITE => {
                if len > MAX_REQUEST {
                    return Err(std::io::ErrorKind::InvalidData.into());
                }
                let mut buf = vec![0u8; len as usize];
                c.read_full(&mut buf)?;
                let err = if !shared.writable {
                    EPERM
                } else if !in_range {
                    ENOSPC
                } else {
                    write_err(shared.with(|ex| ex.write(offset, Some(&buf), u64::from(len))))
                };
                c.reply(handle, err, &[])?;
            }
            CMD_WRITE_ZEROES => {
                let err = if !shared.writable {
                    EPERM
                } else if !in_range {
                    ENOSPC
                } else {
                    write_err(shared.with(|ex| ex.write(offset, None, u64::from(len))))
                };
                c.reply(handle, err, &[])?;
            }
            CMD_FLUSH => {
                let r = shared.with(|ex| match ex.overlay.as_ref() {
                    Some(o) => o.file.sync_data(),
                    None => Ok(()),
                });
                c.reply(handle, if r.is_err() { EIO } else { 0 }, &[])?;
            }
            CMD_TRIM => c.reply(handle, if shared.writable { 0 } else { EPERM }, &[])?,
            _ => c.reply(handle, EINVAL, &[])?,
        }
    }
}
