//! Disk images as virtual disks: what the guest sees, and which parts are allocated.
//!
//! A [`DiskImage`] exposes the virtual disk (offset 0 = the guest's first sector), reads
//! from it, and lists its allocation as [`Span`]s, so the engine reads only allocated
//! blocks and feeds the disk chunker by *virtual* offset: the same guest data
//! deduplicates whatever the container layout.
//!
//! Formats: raw, VHDX (fixed, dynamic and differencing, with log replay; see [`vhdx`]) and
//! VHD (fixed, dynamic and differencing; see [`vhd`]). Differencing disks are read with
//! their parents as one merged disk ([`chain`]), and qcow2 v2/v3 with compressed
//! clusters and backing chains ([`qcow2`]). An image opened on someone else's behalf (a
//! plugin's) is opened with [`open_with`], whose [`OpenOptions::confine`] vets every other
//! file the image makes us open (parents, backing files), so an image cannot point the
//! engine at any file of the host.

mod blockmap;
mod bytes;
pub mod chain;
mod error;
pub mod nbd;
pub mod qcow2;
pub mod vhd;
/// Writing VHD (dynamic, differencing).
pub mod vhd_write;
pub mod vhdx;
mod vhdx_log;
pub mod vhdx_write;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use blockmap::push_span;
pub use error::{DiskError, Result};

/// A span of the virtual disk, as its image describes it (the glossary's *span*; stored
/// content is described by extents, `rehydra_core::Extent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// `len` bytes at virtual offset `offset` are stored and must be read.
    Data {
        /// Virtual offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// `len` bytes at `offset` read as zeros and need not be read.
    Zero {
        /// Virtual offset.
        offset: u64,
        /// Length.
        len: u64,
    },
}

/// Image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Guess from the file's signature.
    Auto,
    /// The file is the disk.
    Raw,
    /// MS-VHDX.
    Vhdx,
    /// VHD (fixed, dynamic or differencing).
    Vhd,
    /// qcow2 (version 2 or 3).
    Qcow2,
}

/// A readable virtual disk.
pub trait DiskImage: Send {
    /// Format name.
    fn format(&self) -> &'static str;
    /// Size of the virtual disk in bytes.
    fn virtual_size(&self) -> u64;
    /// Allocation map, in order, covering the whole virtual disk.
    fn spans(&self) -> Vec<Span>;
    /// Read `buf.len()` bytes at virtual offset `offset`.
    ///
    /// # Errors
    /// I/O failure, or an offset past the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// A raw image: the file is the disk; everything is "allocated".
pub struct RawImage {
    file: File,
    size: u64,
    path: PathBuf,
}

impl RawImage {
    /// Open a raw image.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| DiskError::io(path, e))?;
        let size = file.metadata().map_err(|e| DiskError::io(path, e))?.len();
        Ok(Self {
            file,
            size,
            path: path.to_path_buf(),
        })
    }
}

impl DiskImage for RawImage {
    fn format(&self) -> &'static str {
        "raw"
    }
    fn virtual_size(&self) -> u64 {
        self.size
    }
    fn spans(&self) -> Vec<Span> {
        vec![Span::Data {
            offset: 0,
            len: self.size,
        }]
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.file, buf, offset).map_err(|e| DiskError::io(&self.path, e))
    }
}

/// Read exactly `buf.len()` bytes at `offset` without moving a file cursor (pread on
/// Unix, `seek_read` on Windows), so one file handle serves several threads.
///
/// # Errors
/// Short read (`UnexpectedEof`) or I/O failure.
pub fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match f.seek_read(buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// Write all of `buf` at `offset` without moving a file cursor (pwrite on Unix).
///
/// # Errors
/// I/O failure.
pub fn write_all_at(f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            let n = f.seek_write(buf, offset)?;
            buf = &buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// Decides whether a file an image refers to may be opened: called with the path as
/// found (a parent or backing file), it returns the path to open, or why that file may
/// not be opened.
pub type Confine<'a> = &'a (dyn Fn(&Path) -> std::result::Result<PathBuf, String> + Sync);

/// How [`open_with`] opens an image and the files it refers to.
#[derive(Clone, Copy, Default)]
pub struct OpenOptions<'a> {
    /// Called for every file opened besides the image itself (differencing parents, qcow2
    /// backing files, at any depth), with the path as found; returns the path to open, or
    /// why it may not be opened (that reason goes into the error). A refused file is never
    /// opened. `None`: every file the image names may be opened (the administrator's own
    /// command line).
    pub confine: Option<Confine<'a>>,
}

impl std::fmt::Debug for OpenOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("confine", &self.confine.map(|_| "Fn"))
            .finish()
    }
}

impl OpenOptions<'_> {
    /// The path to open for `found`, a file an image refers to, or why it may not be
    /// opened.
    pub(crate) fn confine(&self, found: &Path) -> std::result::Result<PathBuf, String> {
        match self.confine {
            None => Ok(found.to_path_buf()),
            Some(f) => f(found),
        }
    }
}

/// Open an image, detecting the format when `format` is [`Format::Auto`]. Every file it
/// refers to is opened without a check: see [`open_with`].
///
/// # Errors
/// Unreadable file, a format this build does not read, or a malformed image.
pub fn open(path: &Path, format: Format) -> Result<Box<dyn DiskImage>> {
    open_with(path, format, &OpenOptions::default())
}

/// Open an image as [`open`] does, with every other file it refers to (parents,
/// backing files) checked by `opts`.
///
/// # Errors
/// As [`open`]; a refused parent or backing file is [`DiskError::Malformed`] naming the
/// file and the reason.
pub fn open_with(
    path: &Path,
    format: Format,
    opts: &OpenOptions<'_>,
) -> Result<Box<dyn DiskImage>> {
    let fmt = match format {
        Format::Auto => detect(path)?,
        f => f,
    };
    match fmt {
        Format::Raw => return Ok(Box::new(RawImage::open(path)?)),
        Format::Qcow2 => return Ok(Box::new(qcow2::Qcow2::open_with(path, opts)?)),
        _ => {}
    }
    let image: Box<dyn chain::Layer> = match fmt {
        Format::Vhdx => Box::new(vhdx::Vhdx::open(path)?),
        _ => Box::new(vhd::Vhd::open(path)?),
    };
    if image.parent().is_some() {
        return Ok(Box::new(chain::Chain::build(image, path, opts)?));
    }
    Ok(image)
}

/// Open a VHDX or VHD as one layer of a chain (parents are never raw).
pub(crate) fn open_layer(path: &Path) -> Result<Box<dyn chain::Layer>> {
    Ok(match detect(path)? {
        Format::Vhdx => Box::new(vhdx::Vhdx::open(path)?),
        Format::Vhd => Box::new(vhd::Vhd::open(path)?),
        _ => {
            return Err(DiskError::malformed(
                path,
                "a differencing disk's parent must be a VHDX or VHD",
            ));
        }
    })
}

pub(crate) fn detect(path: &Path) -> Result<Format> {
    let f = File::open(path).map_err(|e| DiskError::io(path, e))?;
    let len = f.metadata().map_err(|e| DiskError::io(path, e))?.len();
    let mut sig = [0u8; 8];
    if len >= 8 {
        read_exact_at(&f, &mut sig, 0).map_err(|e| DiskError::io(path, e))?;
    }
    if &sig == b"vhdxfile" {
        return Ok(Format::Vhdx);
    }
    if &sig[..4] == b"QFI\xfb" {
        return Ok(Format::Qcow2);
    }
    if len >= 512 {
        let mut footer = [0u8; 8];
        read_exact_at(&f, &mut footer, len - 512).map_err(|e| DiskError::io(path, e))?;
        if &footer == b"conectix" {
            return Ok(Format::Vhd);
        }
    }
    Ok(Format::Raw)
}

/// A [`std::io::Read`] over one range of a virtual disk.
pub struct RangeReader<'a> {
    image: &'a mut dyn DiskImage,
    pos: u64,
    end: u64,
}

impl<'a> RangeReader<'a> {
    /// Read `len` bytes of `image` from virtual offset `offset`.
    pub fn new(image: &'a mut dyn DiskImage, offset: u64, len: u64) -> Self {
        Self {
            image,
            pos: offset,
            end: offset + len,
        }
    }
}

impl std::io::Read for RangeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min((self.end - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        self.image
            .read_at(self.pos, &mut out[..n])
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A [`std::io::Read`] over a whole virtual disk that reads only allocated spans
/// (zero spans are produced without touching the file).
pub struct VirtualReader {
    image: Box<dyn DiskImage>,
    spans: Vec<Span>,
    idx: usize,
    pos_in: u64,
}

impl VirtualReader {
    /// A reader from virtual offset 0 to the end.
    pub fn new(image: Box<dyn DiskImage>) -> Self {
        let spans = image.spans();
        Self {
            image,
            spans,
            idx: 0,
            pos_in: 0,
        }
    }
}

impl std::io::Read for VirtualReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(e) = self.spans.get(self.idx).copied() else {
                return Ok(0);
            };
            let (offset, len, data) = match e {
                Span::Data { offset, len } => (offset, len, true),
                Span::Zero { offset, len } => (offset, len, false),
            };
            if self.pos_in >= len {
                self.idx += 1;
                self.pos_in = 0;
                continue;
            }
            let n = out.len().min((len - self.pos_in) as usize);
            if data {
                self.image
                    .read_at(offset + self.pos_in, &mut out[..n])
                    .map_err(std::io::Error::other)?;
            } else {
                out[..n].fill(0);
            }
            self.pos_in += n as u64;
            return Ok(n);
        }
    }
}
