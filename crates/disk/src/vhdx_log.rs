//! VHDX log replay, in memory.
//!
//! A VHDX whose header names a log GUID was not closed cleanly: metadata (and possibly
//! payload) updates may sit in the circular log without having reached their final place.
//! MS-VHDX says a reader must replay the active sequence before trusting the BAT or the
//! metadata. We never write the source (it is a backup source, maybe still in use), so the
//! replayed writes are kept as patches over the file and every read sees them.
//!
//! Entry layout (all little-endian): a 4 KiB-aligned header `loge` (checksum, entry length,
//! tail, sequence number, descriptor count, log GUID, flushed and last file offsets),
//! 32-byte descriptors (`desc`: leading 8 bytes, trailing 4 bytes, file offset, sequence;
//! `zero`: length, file offset, sequence), then one 4 KiB data sector (`data`, sequence
//! high, 4084 bytes, sequence low) per data descriptor. The active sequence is the chain of
//! consecutive valid entries whose last (head) entry's tail points at its first entry, with
//! the highest sequence number.

use std::path::Path;

use crate::blockmap::read_bounded;
use crate::bytes::{le32, le64};
use crate::vhdx::{Source, crc_with_hole};
use crate::{DiskError, Result};

const SECTOR: u64 = 4096;
const MIB: u64 = 1 << 20;
/// Largest log we replay (Hyper-V writes 1 MiB logs).
const LOG_MAX: u64 = 256 * MIB;

/// One write of the log: bytes (or zeros) at a file offset.
#[derive(Debug, Clone)]
struct Patch {
    offset: u64,
    len: u64,
    data: Option<Vec<u8>>,
}

/// A source with replayed log writes laid over it.
pub struct Replayed<S> {
    inner: S,
    patches: Vec<Patch>,
    len: u64,
    entries: usize,
}

impl<S: Source> Replayed<S> {
    /// No log to replay.
    pub(crate) fn clean(inner: S) -> Self {
        let len = inner.len();
        Self {
            inner,
            patches: Vec::new(),
            len,
            entries: 0,
        }
    }

    /// Entries replayed.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Find the active sequence of the log at `log_off` (`log_len` bytes) written under
    /// `guid` and lay its writes over `inner`.
    ///
    /// # Errors
    /// A log region outside the file, or an active sequence that cannot be applied
    /// (file truncated below the flushed offset, misaligned descriptors).
    pub(crate) fn replay(
        inner: S,
        path: &Path,
        guid: &[u8],
        log_off: u64,
        log_len: u64,
    ) -> Result<Self> {
        let bad = |w: String| DiskError::malformed(path, format!("VHDX log: {w}"));
        if log_len == 0
            || !log_len.is_multiple_of(MIB)
            || log_len > LOG_MAX
            || !log_off.is_multiple_of(MIB)
            || log_off < MIB
        {
            return Err(bad(format!(
                "the log region (offset {log_off}, length {log_len}) is invalid"
            )));
        }
        let log = read_bounded(&inner, path, log_off, log_len)?;
        let at = |pos: u64, n: u64| -> Vec<u8> {
            // the log is circular: an entry may wrap around its end
            let (pos, n) = ((pos % log_len) as usize, n.min(log_len) as usize);
            let first = n.min(log.len() - pos);
            let mut v = log[pos..pos + first].to_vec();
            v.extend_from_slice(&log[..n - first]);
            v
        };
        let mut entries = Vec::new();
        for pos in (0..log_len).step_by(SECTOR as usize) {
            if let Some(e) = parse_entry(&at, pos, log_len, guid) {
                entries.push(e);
            }
        }
        // the active sequence: consecutive entries T..H with H.tail == T.pos, highest H.seq
        let mut best: Option<Vec<&Entry>> = None;
        for start in &entries {
            let mut seq = vec![start];
            loop {
                let last = seq[seq.len() - 1];
                if last.tail == start.pos
                    && best.as_ref().is_none_or(|b| b[b.len() - 1].seq < last.seq)
                {
                    best = Some(seq.clone());
                }
                let next = (last.pos + last.len) % log_len;
                match entries
                    .iter()
                    .find(|e| e.pos == next && e.seq == last.seq + 1)
                {
                    Some(e) if seq.len() < entries.len() => seq.push(e),
                    _ => break,
                }
            }
        }
        let file_len = inner.len();
        let Some(seq) = best else {
            // a log GUID with no valid sequence: nothing was left to replay
            return Ok(Self::clean(inner));
        };
        let head = seq[seq.len() - 1];
        if head.flushed > file_len {
            return Err(bad(format!(
                "the file is {file_len} bytes but the log says {} were flushed: it was truncated",
                head.flushed
            )));
        }
        let mut patches = Vec::new();
        let mut len = file_len.max(head.last);
        for e in &seq {
            for p in &e.patches {
                if !p.offset.is_multiple_of(SECTOR) || p.offset < MIB {
                    return Err(bad(format!(
                        "entry {} writes to offset {}, which is not a 4 KiB-aligned offset past the header section",
                        e.seq, p.offset
                    )));
                }
                // a hostile zero descriptor could claim any length: bound it by the file
                // the VHDX format can describe (64 TiB of data plus its metadata)
                let end = p
                    .offset
                    .checked_add(p.len)
                    .filter(|&e| e <= 1 << 47)
                    .ok_or_else(|| {
                        bad(format!(
                            "entry {} writes {} bytes at offset {}, past any VHDX file",
                            e.seq, p.len, p.offset
                        ))
                    })?;
                len = len.max(end);
                patches.push(p.clone());
            }
        }
        Ok(Self {
            inner,
            patches,
            len,
            entries: seq.len(),
        })
    }
}

struct Entry {
    pos: u64,
    len: u64,
    seq: u64,
    tail: u64,
    flushed: u64,
    last: u64,
    patches: Vec<Patch>,
}

/// A valid entry at `pos`, or `None` (wrong signature, checksum, GUID or sequence).
fn parse_entry(
    at: &dyn Fn(u64, u64) -> Vec<u8>,
    pos: u64,
    log_len: u64,
    guid: &[u8],
) -> Option<Entry> {
    if at(pos, 4) != b"loge" {
        return None;
    }
    let h = at(pos, SECTOR);
    let len = u64::from(le32(&h, 8));
    let tail = u64::from(le32(&h, 12));
    let seq = le64(&h, 16);
    let count = u64::from(le32(&h, 24));
    if len < SECTOR
        || !len.is_multiple_of(SECTOR)
        || len > log_len
        || &h[32..48] != guid
        || seq == 0
        || !tail.is_multiple_of(SECTOR)
        || tail >= log_len
    {
        return None;
    }
    let desc_bytes = (64 + count * 32).div_ceil(SECTOR) * SECTOR;
    if desc_bytes > len {
        return None;
    }
    let all = at(pos, len);
    if le32(&all, 4) != crc_with_hole(&all, 4) {
        return None;
    }
    let mut patches = Vec::new();
    let mut data_sector = desc_bytes;
    for i in 0..count {
        let d = &all[(64 + i * 32) as usize..(96 + i * 32) as usize];
        if le64(d, 24) != seq {
            return None;
        }
        match &d[..4] {
            b"zero" => patches.push(Patch {
                offset: le64(d, 16),
                len: le64(d, 8),
                data: None,
            }),
            b"desc" => {
                let s = all.get(data_sector as usize..(data_sector + SECTOR) as usize)?;
                if &s[..4] != b"data"
                    || u64::from(le32(s, 4)) != seq >> 32
                    || u64::from(le32(s, 4092)) != seq & 0xffff_ffff
                {
                    return None;
                }
                let mut page = Vec::with_capacity(SECTOR as usize);
                page.extend_from_slice(&d[8..16]); // leading bytes
                page.extend_from_slice(&s[8..4092]);
                page.extend_from_slice(&d[4..8]); // trailing bytes
                patches.push(Patch {
                    offset: le64(d, 16),
                    len: SECTOR,
                    data: Some(page),
                });
                data_sector += SECTOR;
            }
            _ => return None,
        }
    }
    if data_sector != len {
        return None;
    }
    Some(Entry {
        pos,
        len,
        seq,
        tail,
        flushed: le64(&h, 48),
        last: le64(&h, 56),
        patches,
    })
}

impl<S: Source> Source for Replayed<S> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        if end > self.len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // the file part, then zeros where the log extended the file
        let in_file = self
            .inner
            .len()
            .saturating_sub(offset)
            .min(buf.len() as u64) as usize;
        if in_file > 0 {
            self.inner.read_at(&mut buf[..in_file], offset)?;
        }
        buf[in_file..].fill(0);
        // later log writes win
        for p in &self.patches {
            let (s, e) = (
                p.offset.max(offset),
                p.offset.saturating_add(p.len).min(end),
            );
            if s >= e {
                continue;
            }
            let dst = &mut buf[(s - offset) as usize..(e - offset) as usize];
            match &p.data {
                Some(d) => {
                    dst.copy_from_slice(&d[(s - p.offset) as usize..(e - p.offset) as usize])
                }
                None => dst.fill(0),
            }
        }
        Ok(())
    }
}
