//! qcow2 (versions 2 and 3), read-only: KVM, Proxmox and OpenStack sources.
//!
//! Header (big-endian), then the two-level cluster table: the L1 table names L2 tables,
//! each L2 entry is a standard cluster (host offset, or the v3 "reads as zeros" flag) or a
//! compressed cluster (deflate, or zstd when the header says so). A cluster that is not
//! allocated reads from the backing file (itself any format we read, found relative to the
//! image) or as zeros. As in qemu, a backing file is taken as raw only when the image
//! names that format (header extension `0xe2792aca`), and a named format must be what the
//! file is. Refused with a clear error: encryption, external data files, extended L2
//! entries, the "corrupt" flag, unknown incompatible features. Every table offset is
//! checked against the file, and an L2 table may not be shared by two L1 entries nor
//! overlap the L1 or refcount table, so the work of reading the tables is bounded by the
//! file's size; backing chains are limited to 64 files, loops are refused, and every
//! backing file goes through the caller's confinement ([`crate::OpenOptions`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blockmap::{check_read, push_span, read_bounded};
use crate::bytes::{be32, be64};
use crate::vhdx::Source;
use crate::{DiskError, DiskImage, Format, OpenOptions, Result, Span};

const MAX_DEPTH: usize = 64;
const L2_COPIED_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Header extension: the backing file's format name.
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;

/// Where one cluster's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cluster {
    /// Not allocated: the backing file, or zeros.
    Unallocated,
    /// Reads as zeros.
    Zero,
    /// Stored at this host offset.
    Data(u64),
    /// Compressed: host offset and the bytes to read.
    Compressed(u64, u64),
}

/// An open qcow2 image (with its backing chain).
pub struct Qcow2<S: Source = File> {
    src: S,
    path: PathBuf,
    size: u64,
    cluster_bits: u32,
    l1: Vec<u64>,
    zstd: bool,
    /// The backing file's format as the image names it.
    backing_format: Option<String>,
    backing: Option<Box<dyn DiskImage>>,
    /// The last L2 table read (L1 index, entries).
    l2_cache: Option<(usize, Vec<u64>)>,
    /// The last compressed cluster decompressed (host offset, bytes).
    zcache: Option<(u64, Vec<u8>)>,
}

impl Qcow2<File> {
    /// Open a qcow2 file and its backing chain.
    ///
    /// # Errors
    /// Damaged or hostile file, unsupported feature, missing backing file, loop.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Open a qcow2 file and its backing chain, every backing file (at any depth, and
    /// the parents of a VHDX or VHD backing file) checked by `opts`.
    ///
    /// # Errors
    /// As [`Qcow2::open`]; a refused backing file names the file and the reason.
    pub fn open_with(path: &Path, opts: &OpenOptions<'_>) -> Result<Self> {
        Self::open_chain(path, &mut Vec::new(), opts)
    }

    fn open_chain(path: &Path, seen: &mut Vec<PathBuf>, opts: &OpenOptions<'_>) -> Result<Self> {
        let canon = std::fs::canonicalize(path).map_err(|e| DiskError::io(path, e))?;
        if seen.contains(&canon) {
            return Err(DiskError::malformed(
                path,
                "the backing chain loops back to this file",
            ));
        }
        if seen.len() >= MAX_DEPTH {
            return Err(DiskError::unsupported(
                path,
                format!("the backing chain is deeper than {MAX_DEPTH} files"),
            ));
        }
        seen.push(canon);
        let f = File::open(path).map_err(|e| DiskError::io(path, e))?;
        let (mut q, backing) = Self::parse(f, path)?;
        if let Some(name) = backing {
            let p = Path::new(&name);
            let found = if p.is_absolute() {
                p.to_path_buf()
            } else {
                path.parent().unwrap_or(Path::new(".")).join(p)
            };
            // a refused file is never looked at
            let bp = opts.confine(&found).map_err(|why| {
                DiskError::malformed(
                    path,
                    format!(
                        "its backing file {} may not be opened: {why}",
                        found.display()
                    ),
                )
            })?;
            if !bp.is_file() {
                return Err(DiskError::malformed(
                    path,
                    format!("its backing file {} was not found", bp.display()),
                ));
            }
            let format = backing_format(path, &bp, &name, q.backing_format.as_deref())?;
            let img: Box<dyn DiskImage> = match format {
                Format::Qcow2 => Box::new(Qcow2::open_chain(&bp, seen, opts)?),
                f => crate::open_with(&bp, f, opts)?,
            };
            q.backing = Some(img);
        }
        Ok(q)
    }
}

/// qemu's name of a format.
fn qemu_name(f: Format) -> &'static str {
    match f {
        Format::Raw => "raw",
        Format::Qcow2 => "qcow2",
        Format::Vhdx => "vhdx",
        Format::Vhd => "vpc",
        Format::Auto => "auto",
    }
}

/// The format to open the backing file `bp` (recorded as `name`) of `image` with: the
/// one the image names, which the file must have; else the probed one, except raw (as in
/// qemu: a raw file probes as whatever its first sector says, which its guest wrote).
fn backing_format(image: &Path, bp: &Path, name: &str, named: Option<&str>) -> Result<Format> {
    let probed = crate::detect(bp)?;
    let Some(named) = named else {
        if probed == Format::Raw {
            return Err(DiskError::malformed(
                image,
                format!(
                    "its backing file {} has no backing format; a raw backing file is used only when the image names its format: qemu-img rebase -F raw -u -b {name} {}",
                    bp.display(),
                    image.display()
                ),
            ));
        }
        return Ok(probed);
    };
    let want = [Format::Raw, Format::Qcow2, Format::Vhdx, Format::Vhd]
        .into_iter()
        .find(|f| qemu_name(*f) == named)
        .ok_or_else(|| {
            DiskError::unsupported(
                image,
                format!(
                    "its backing file {} has the format `{named}`, which this build does not read",
                    bp.display()
                ),
            )
        })?;
    if want != probed {
        return Err(DiskError::malformed(
            image,
            format!(
                "its backing file {} is a {} image, not {named} as the image says",
                bp.display(),
                qemu_name(probed)
            ),
        ));
    }
    Ok(want)
}

impl<S: Source> Qcow2<S> {
    /// Parse and validate from any source (no backing file is opened; its name is
    /// returned); `path` names it in errors.
    ///
    /// # Errors
    /// As [`Qcow2::open`].
    pub fn parse(src: S, path: &Path) -> Result<(Self, Option<String>)> {
        let bad = |w: String| DiskError::malformed(path, w);
        let unsupported = |w: &str| DiskError::unsupported(path, w.to_string());
        let len = src.len();
        if len < 72 {
            return Err(bad(format!(
                "truncated: {len} bytes, smaller than a qcow2 header"
            )));
        }
        let h = read_bounded(&src, path, 0, 104.min(len))?;
        if &h[..4] != b"QFI\xfb" {
            return Err(bad("not a qcow2 file (magic `QFI\\xfb` is missing)".into()));
        }
        let version = be32(&h, 4);
        if version != 2 && version != 3 {
            return Err(unsupported(&format!(
                "qcow2 version {version} is not supported (2 or 3)"
            )));
        }
        let (backing_off, backing_len) = (be64(&h, 8), be32(&h, 16));
        let cluster_bits = be32(&h, 20);
        let size = be64(&h, 24);
        let crypt = be32(&h, 32);
        let l1_size = u64::from(be32(&h, 36));
        let l1_off = be64(&h, 40);
        if !(9..=21).contains(&cluster_bits) {
            return Err(bad(format!(
                "cluster size 2^{cluster_bits} is invalid (512 B to 2 MiB)"
            )));
        }
        if crypt != 0 {
            return Err(unsupported(
                "the image is encrypted; decrypt it with qemu-img convert first",
            ));
        }
        if size > 1 << 56 {
            return Err(bad(format!("virtual size {size} is invalid")));
        }
        let mut zstd = false;
        if version == 3 {
            if h.len() < 104 {
                return Err(bad("truncated version 3 header".into()));
            }
            let incompatible = be64(&h, 72);
            if incompatible & 2 != 0 {
                return Err(bad("the image is marked corrupt by qemu; repair a copy with `qemu-img check -r all`".into()));
            }
            if incompatible & 4 != 0 {
                return Err(unsupported(
                    "images with an external data file are not read by this build",
                ));
            }
            if incompatible & 16 != 0 {
                return Err(unsupported(
                    "extended L2 entries (subclusters) are not read by this build",
                ));
            }
            if incompatible & !0b1_1111 != 0 {
                return Err(unsupported(&format!(
                    "unknown incompatible features {incompatible:#x}"
                )));
            }
            if incompatible & 8 != 0 {
                let hl = be32(&h, 100);
                if hl < 105 {
                    return Err(bad(
                        "compression type flag set but the header has no compression type".into(),
                    ));
                }
                let t = read_bounded(&src, path, 104, 1)?[0];
                match t {
                    0 => {}
                    1 => zstd = true,
                    t => return Err(unsupported(&format!("compression type {t} is unknown"))),
                }
            }
        }
        let cluster = 1u64 << cluster_bits;
        let per_l2 = cluster / 8;
        let clusters = size.div_ceil(cluster);
        let need = clusters.div_ceil(per_l2);
        if l1_size < need {
            return Err(bad(format!(
                "the L1 table has {l1_size} entries, the virtual size needs {need}"
            )));
        }
        if !l1_off.is_multiple_of(cluster) || l1_off.checked_add(need * 8).is_none_or(|e| e > len) {
            return Err(bad(format!(
                "the L1 table (offset {l1_off}) lies outside the file or is misaligned"
            )));
        }
        let raw = read_bounded(&src, path, l1_off, need * 8)?;
        let mut l1 = Vec::with_capacity(need as usize);
        for i in 0..need as usize {
            let off = be64(&raw, i * 8) & L2_COPIED_MASK;
            if off != 0
                && (!off.is_multiple_of(cluster)
                    || off.checked_add(cluster).is_none_or(|e| e > len))
            {
                return Err(bad(format!(
                    "L1 entry {i} points outside the file or is misaligned (offset {off})"
                )));
            }
            l1.push(off);
        }
        let tables = [
            (
                l1_off,
                (l1_size * 8).div_ceil(cluster) * cluster,
                "the L1 table",
            ),
            (
                be64(&h, 48),
                u64::from(be32(&h, 56)) * cluster,
                "the refcount table",
            ),
        ];
        check_l2_tables(&l1, cluster, &tables).map_err(bad)?;
        let header_length = if version == 3 {
            u64::from(be32(&h, 100))
        } else {
            72
        };
        if version == 3 && !(104..=cluster).contains(&header_length) {
            return Err(bad(format!(
                "header length {header_length} is invalid (104 to the cluster size)"
            )));
        }
        // header extensions run from the header to the backing file name (or the end of
        // the first cluster)
        let ext_end = match backing_off {
            0 => cluster,
            o => o.min(cluster),
        }
        .min(len);
        let ext = if ext_end > header_length {
            read_bounded(&src, path, header_length, ext_end - header_length)?
        } else {
            Vec::new()
        };
        let backing_format = backing_format_extension(&ext).map_err(bad)?;
        let backing = if backing_off != 0 && backing_len != 0 {
            if backing_len > 1023 {
                return Err(bad(format!(
                    "backing file name of {backing_len} bytes (at most 1023)"
                )));
            }
            let b = read_bounded(&src, path, backing_off, u64::from(backing_len))?;
            Some(String::from_utf8(b).map_err(|_| bad("backing file name is not UTF-8".into()))?)
        } else {
            None
        };
        Ok((
            Self {
                src,
                path: path.to_path_buf(),
                size,
                cluster_bits,
                l1,
                zstd,
                backing_format,
                backing: None,
                l2_cache: None,
                zcache: None,
            },
            backing,
        ))
    }

    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// The backing file's format as the image names it (qemu's name: `raw`, `qcow2`…),
    /// `None` when it names none.
    pub fn backing_format(&self) -> Option<&str> {
        self.backing_format.as_deref()
    }

    /// The L2 table `i` (all entries), validated.
    fn l2(&self, i: usize) -> Result<Option<Vec<u64>>> {
        let off = self.l1[i];
        if off == 0 {
            return Ok(None);
        }
        let cs = self.cluster_size();
        let raw = read_bounded(&self.src, &self.path, off, cs)?;
        Ok(Some(
            (0..(cs / 8) as usize).map(|k| be64(&raw, k * 8)).collect(),
        ))
    }

    fn classify(&self, entry: u64) -> Result<Cluster> {
        let cs = self.cluster_size();
        let len = self.src.len();
        if entry & (1 << 62) != 0 {
            let x = 62 - (self.cluster_bits - 8);
            let off = entry & ((1u64 << x) - 1);
            let sectors = (entry >> x) & ((1u64 << (62 - x)) - 1);
            let n = (sectors + 1) * 512 - (off & 511);
            let n = n.min(len.saturating_sub(off));
            if off >= len || n == 0 {
                return Err(DiskError::malformed(
                    &self.path,
                    format!("a compressed cluster points outside the file (offset {off})"),
                ));
            }
            return Ok(Cluster::Compressed(off, n));
        }
        let off = entry & L2_COPIED_MASK;
        if entry & 1 != 0 {
            return Ok(Cluster::Zero);
        }
        if off == 0 {
            return Ok(Cluster::Unallocated);
        }
        if !off.is_multiple_of(cs) || off.checked_add(cs).is_none_or(|e| e > len) {
            return Err(DiskError::malformed(
                &self.path,
                format!("an L2 entry points outside the file or is misaligned (offset {off})"),
            ));
        }
        Ok(Cluster::Data(off))
    }

    fn cluster_at(&mut self, vcluster: u64) -> Result<Cluster> {
        let per_l2 = self.cluster_size() / 8;
        let (i, k) = ((vcluster / per_l2) as usize, (vcluster % per_l2) as usize);
        if self.l2_cache.as_ref().is_none_or(|(c, _)| *c != i) {
            let t = self.l2(i)?.unwrap_or_default();
            self.l2_cache = Some((i, t));
        }
        let entry = self
            .l2_cache
            .as_ref()
            .and_then(|(_, t)| t.get(k).copied())
            .unwrap_or(0);
        self.classify(entry)
    }

    fn decompress(&mut self, off: u64, n: u64) -> Result<&[u8]> {
        if self.zcache.as_ref().is_none_or(|(o, _)| *o != off) {
            let cs = self.cluster_size() as usize;
            let data = read_bounded(&self.src, &self.path, off, n)?;
            let mut out = Vec::with_capacity(cs);
            let r: std::io::Result<()> = if self.zstd {
                zstd::stream::read::Decoder::new(&data[..]).and_then(|d| {
                    std::io::Read::read_to_end(&mut std::io::Read::take(d, cs as u64), &mut out)
                        .map(|_| ())
                })
            } else {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(
                        flate2::read::DeflateDecoder::new(&data[..]),
                        cs as u64,
                    ),
                    &mut out,
                )
                .map(|_| ())
            };
            r.map_err(|e| {
                DiskError::malformed(
                    &self.path,
                    format!("a compressed cluster at offset {off} does not decompress: {e}"),
                )
            })?;
            if out.len() != cs {
                return Err(DiskError::malformed(
                    &self.path,
                    format!(
                        "a compressed cluster at offset {off} gives {} bytes, not {cs}",
                        out.len()
                    ),
                ));
            }
            self.zcache = Some((off, out));
        }
        Ok(self
            .zcache
            .as_ref()
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default())
    }
}

/// Refuse L2 tables that two L1 entries share or that overlap `tables` (offset, length,
/// name): with every table distinct, reading them all reads each byte of the file at most
/// once.
fn check_l2_tables(
    l1: &[u64],
    cluster: u64,
    tables: &[(u64, u64, &str)],
) -> std::result::Result<(), String> {
    let mut used: Vec<(u64, usize)> = Vec::with_capacity(l1.len());
    for (i, &off) in l1.iter().enumerate().filter(|(_, o)| **o != 0) {
        if let Some((_, _, what)) = tables
            .iter()
            .find(|(t, n, _)| off < t.saturating_add(*n) && *t < off + cluster)
        {
            return Err(format!(
                "L1 entry {i} points at offset {off}, which overlaps {what}"
            ));
        }
        used.push((off, i));
    }
    used.sort_unstable();
    match used.windows(2).find(|w| w[0].0 == w[1].0) {
        Some(w) => Err(format!(
            "L1 entries {} and {} point at the same L2 table (offset {})",
            w[0].1, w[1].1, w[0].0
        )),
        None => Ok(()),
    }
}

/// The backing format named in the header extension area `ext` (qemu's layout: type,
/// length, data padded to 8 bytes, until type 0).
fn backing_format_extension(ext: &[u8]) -> std::result::Result<Option<String>, String> {
    let mut format = None;
    let mut i = 0usize;
    while i < ext.len() {
        if ext.len() - i < 8 {
            return Err(format!(
                "a header extension at offset {i} of the extension area is truncated"
            ));
        }
        let (kind, n) = (be32(ext, i), be32(ext, i + 4) as usize);
        if kind == 0 {
            break;
        }
        let data = ext.get(i + 8..).and_then(|d| d.get(..n)).ok_or_else(|| {
            format!("header extension {kind:#x} of {n} bytes runs past the header")
        })?;
        if kind == EXT_BACKING_FORMAT {
            if n >= 16 {
                return Err(format!("backing format name of {n} bytes (at most 15)"));
            }
            format = Some(
                String::from_utf8(data.to_vec())
                    .map_err(|_| "the backing format name is not UTF-8".to_string())?,
            );
        }
        i += 8 + n.div_ceil(8) * 8;
    }
    Ok(format)
}

/// Offset, length and kind of a span.
fn span(e: &Span) -> (u64, u64, bool) {
    match *e {
        Span::Data { offset, len } => (offset, len, true),
        Span::Zero { offset, len } => (offset, len, false),
    }
}

impl<S: Source> DiskImage for Qcow2<S> {
    fn format(&self) -> &'static str {
        "qcow2"
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn spans(&self) -> Vec<Span> {
        let cs = self.cluster_size();
        let backing = self.backing.as_ref().map(|b| b.spans()).unwrap_or_default();
        // backing spans are in order: find the first one ending after `a`, walk from there
        // the backing spans overlapping [a, b)
        let backing_in = |a: u64, b: u64| {
            let i = backing.partition_point(|e| {
                let (o, l, _) = span(e);
                o + l <= a
            });
            backing[i..]
                .iter()
                .map(span)
                .take_while(move |(o, _, _)| *o < b)
        };
        let backing_has_data = |a: u64, b: u64| backing_in(a, b).any(|(_, _, d)| d);
        let per_l2 = cs / 8;
        let mut out = Vec::new();
        let clusters = self.size.div_ceil(cs);
        // table by table: an L1 entry without an L2 table is one unallocated run, so the
        // work is bounded by the tables in the file, not by the virtual size it claims
        for (i, &l2_off) in self.l1.iter().enumerate() {
            let first = i as u64 * per_l2;
            if first >= clusters {
                break;
            }
            let last = (first + per_l2).min(clusters);
            if l2_off == 0 {
                let (off, end) = (first * cs, (last * cs).min(self.size));
                // split along the backing file's spans
                let mut at = off;
                for (eo, el, data) in backing_in(off, end) {
                    let (a, b) = (eo.max(at), (eo + el).min(end));
                    if a < b {
                        push_span(&mut out, a, b - a, data);
                        at = b;
                    }
                }
                if at < end {
                    push_span(&mut out, at, end - at, false);
                }
                continue;
            }
            // a table that cannot be read counts as data: read_at reports the error
            let table = self.l2(i).ok().flatten();
            for c in first..last {
                let entry = table
                    .as_ref()
                    .and_then(|t| t.get((c - first) as usize).copied());
                let off = c * cs;
                let len = cs.min(self.size - off);
                let data = match entry.map(|e| self.classify(e)) {
                    Some(Ok(Cluster::Zero)) => false,
                    Some(Ok(Cluster::Unallocated)) => backing_has_data(off, off + len),
                    _ => true,
                };
                push_span(&mut out, off, len, data);
            }
        }
        out
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(&self.path, self.size, offset, buf.len())?;
        let cs = self.cluster_size();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let within = pos % cs;
            let n = ((cs - within) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match self.cluster_at(pos / cs)? {
                Cluster::Zero => out.fill(0),
                Cluster::Unallocated => match self.backing.as_mut() {
                    // a backing file smaller than the image reads as zeros past its end
                    Some(b) => {
                        let bsize = b.virtual_size();
                        let have = bsize.saturating_sub(pos).min(n as u64) as usize;
                        if have > 0 {
                            b.read_at(pos, &mut out[..have])?;
                        }
                        out[have..].fill(0);
                    }
                    None => out.fill(0),
                },
                Cluster::Data(host) => self
                    .src
                    .read_at(out, host + within)
                    .map_err(|e| DiskError::io(&self.path, e))?,
                Cluster::Compressed(off, len) => {
                    let data = self.decompress(off, len)?;
                    out.copy_from_slice(&data[within as usize..within as usize + n]);
                }
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A backing disk with the given spans, reading as zeros.
    struct Striped {
        size: u64,
        spans: Vec<Span>,
    }

    impl DiskImage for Striped {
        fn format(&self) -> &'static str {
            "raw"
        }
        fn virtual_size(&self) -> u64 {
            self.size
        }
        fn spans(&self) -> Vec<Span> {
            self.spans.clone()
        }
        fn read_at(&mut self, _offset: u64, buf: &mut [u8]) -> Result<()> {
            buf.fill(0);
            Ok(())
        }
    }

    /// A version 2 header: `size` bytes of `1 << bits` clusters, `l1` entries at cluster 1.
    fn image(size: u64, bits: u32, l1: u64) -> Vec<u8> {
        let cs = 1u64 << bits;
        let mut b = vec![0u8; (cs + (l1 * 8).div_ceil(cs) * cs) as usize];
        b[..4].copy_from_slice(b"QFI\xfb");
        b[4..8].copy_from_slice(&2u32.to_be_bytes());
        b[20..24].copy_from_slice(&bits.to_be_bytes());
        b[24..32].copy_from_slice(&size.to_be_bytes());
        b[36..40].copy_from_slice(&(l1 as u32).to_be_bytes());
        b[40..48].copy_from_slice(&cs.to_be_bytes());
        b
    }

    #[test]
    fn unallocated_tables_over_a_fragmented_backing_file_take_linear_time() {
        // 512-byte clusters: an L1 entry covers 32 KiB; 100 000 entries, none allocated
        let n = 100_000u64;
        let size = n * 32 * 1024;
        let (mut q, _) = Qcow2::parse(image(size, 9, n), Path::new("t.qcow2")).unwrap();
        // a backing file of 200 000 spans: 16 KiB of data, 16 KiB of zeros, …
        let spans: Vec<Span> = (0..size / 16384)
            .map(|i| match i % 2 {
                0 => Span::Data {
                    offset: i * 16384,
                    len: 16384,
                },
                _ => Span::Zero {
                    offset: i * 16384,
                    len: 16384,
                },
            })
            .collect();
        q.backing = Some(Box::new(Striped {
            size,
            spans: spans.clone(),
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(q.spans());
        });
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("spans() did not finish within 10 s ({e})"));
        assert!(got == spans, "the backing file's spans show through");
    }
}
