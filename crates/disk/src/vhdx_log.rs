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
//! the highest sequence number. Finding it is linear in the log's size, however hostile
//! the log (see [`parse_entry`] and [`active_sequence`]).

use std::path::Path;

use crate::blockmap::read_bounded;
use crate::bytes::{le32, le64};
use crate::vhdx::Source;
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
        let bytes = read_bounded(&inner, path, log_off, log_len)?;
        let log = Log(&bytes);
        let entries: Vec<Entry> = (0..log_len)
            .step_by(SECTOR as usize)
            .filter_map(|pos| parse_entry(&log, pos, guid))
            .collect();
        let seq: Vec<&Entry> = active_sequence(&entries, log_len)
            .unwrap_or_default()
            .into_iter()
            .map(|i| &entries[i])
            .collect();
        let file_len = inner.len();
        let Some(&head) = seq.last() else {
            // a log GUID with no valid sequence: nothing was left to replay
            return Ok(Self::clean(inner));
        };
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

/// The log region, read once; an entry may wrap around its end.
struct Log<'a>(&'a [u8]);

impl Log<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// Up to a log's length of bytes at `pos`, wrapping around the end.
    fn at(&self, pos: u64, n: u64) -> Vec<u8> {
        let (pos, n) = ((pos % self.len()) as usize, n.min(self.len()) as usize);
        let first = n.min(self.0.len() - pos);
        let mut v = self.0[pos..pos + first].to_vec();
        v.extend_from_slice(&self.0[..n - first]);
        v
    }

    /// CRC-32C of the `n` bytes of the entry at `pos` (sector-aligned, `n` at least a
    /// sector and at most the log), its checksum field taken as zero; nothing is copied.
    fn entry_crc(&self, pos: u64, n: u64) -> u32 {
        let (pos, n) = (pos as usize, n as usize);
        let first = n.min(self.0.len() - pos);
        let head = &self.0[pos..pos + first];
        let c = crc32c::crc32c(&head[..4]);
        let c = crc32c::crc32c_append(c, &[0u8; 4]);
        let c = crc32c::crc32c_append(c, &head[8..]);
        crc32c::crc32c_append(c, &self.0[..n - first])
    }
}

/// A valid entry at `pos`, or `None` (wrong signature, checksum, GUID or sequence).
///
/// The descriptors and data sectors are checked before the checksum: every sector inside
/// an entry starts with a descriptor or `data`, never `loge`, so the parts of different
/// candidates that pass these checks do not overlap and parsing every position reads the
/// log about once, whatever lengths hostile headers claim.
fn parse_entry(log: &Log<'_>, pos: u64, guid: &[u8]) -> Option<Entry> {
    let log_len = log.len();
    if log.at(pos, 4) != b"loge" {
        return None;
    }
    let h = log.at(pos, SECTOR);
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
    let mut patches = Vec::new();
    let mut data_sector = desc_bytes;
    for i in 0..count {
        let d = log.at(pos + 64 + i * 32, 32);
        if le64(&d, 24) != seq {
            return None;
        }
        match &d[..4] {
            b"zero" => patches.push(Patch {
                offset: le64(&d, 16),
                len: le64(&d, 8),
                data: None,
            }),
            b"desc" => {
                if data_sector + SECTOR > len {
                    return None;
                }
                let s = log.at(pos + data_sector, SECTOR);
                if &s[..4] != b"data"
                    || u64::from(le32(&s, 4)) != seq >> 32
                    || u64::from(le32(&s, 4092)) != seq & 0xffff_ffff
                {
                    return None;
                }
                let mut page = Vec::with_capacity(SECTOR as usize);
                page.extend_from_slice(&d[8..16]); // leading bytes
                page.extend_from_slice(&s[8..4092]);
                page.extend_from_slice(&d[4..8]); // trailing bytes
                patches.push(Patch {
                    offset: le64(&d, 16),
                    len: SECTOR,
                    data: Some(page),
                });
                data_sector += SECTOR;
            }
            _ => return None,
        }
    }
    if data_sector != len || le32(&h, 4) != log.entry_crc(pos, len) {
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

/// The active sequence, as indices into `entries` (valid entries in log order, one per
/// position): consecutive entries T..H — each where the previous one ends, with the next
/// sequence number — whose head H names T as its tail; of those, the one with the highest
/// H sequence number (on a tie, the first T in log order).
///
/// Each entry has at most one successor and sequence numbers grow along successors, so
/// the entries form trees whose roots have none. Numbered once in depth-first order, "H
/// lies on the walk from T" is "T lies in H's subtree", and each entry H is checked
/// against the one T its tail names: linear work, not a walk per candidate.
fn active_sequence(entries: &[Entry], log_len: u64) -> Option<Vec<usize>> {
    let n = entries.len();
    let by_pos: std::collections::HashMap<u64, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.pos, i))
        .collect();
    let succ: Vec<Option<usize>> = entries
        .iter()
        .map(|e| {
            let want = e.seq.checked_add(1)?;
            let j = *by_pos.get(&((e.pos + e.len) % log_len))?;
            (entries[j].seq == want).then_some(j)
        })
        .collect();
    let mut children = vec![Vec::new(); n];
    for (i, s) in succ.iter().enumerate() {
        if let Some(j) = *s {
            children[j].push(i);
        }
    }
    // depth-first numbering: the subtree of `v` is the entries numbered tin[v]..tout[v]
    let (mut tin, mut tout) = (vec![usize::MAX; n], vec![0usize; n]);
    let mut clock = 0;
    for root in (0..n).filter(|&i| succ[i].is_none()) {
        tin[root] = clock;
        clock += 1;
        let mut stack = vec![(root, 0usize)];
        while let Some((v, k)) = stack.last_mut() {
            let v = *v;
            if let Some(&c) = children[v].get(*k) {
                *k += 1;
                tin[c] = clock;
                clock += 1;
                stack.push((c, 0));
            } else {
                tout[v] = clock;
                stack.pop();
            }
        }
    }
    let on_walk = |t: usize, h: usize| tin[h] <= tin[t] && tin[t] < tout[h];
    let mut best: Option<(usize, usize)> = None;
    for (h, e) in entries.iter().enumerate() {
        let Some(&t) = by_pos.get(&e.tail) else {
            continue;
        };
        if !on_walk(t, h) {
            continue;
        }
        let better = best.is_none_or(|(bt, bh)| {
            let b = entries[bh].seq;
            e.seq > b || e.seq == b && t < bt
        });
        if better {
            best = Some((t, h));
        }
    }
    let (t, h) = best?;
    let mut seq = vec![t];
    while seq[seq.len() - 1] != h {
        seq.push(succ[seq[seq.len() - 1]]?);
    }
    Some(seq)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhdx::crc_with_hole;
    use std::time::Duration;

    const GUID: [u8; 16] = [0x5a; 16];

    /// Run `f` on a thread; its result, or a failure after `secs` seconds (a guard
    /// against algorithmic blow-ups, far above the expected milliseconds).
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|e| panic!("did not finish within {secs} s ({e})"))
    }

    /// A log entry header at `pos` of `log`: `len` bytes, no descriptors (`count` claimed),
    /// checksummed over `len` bytes when `crc`.
    fn put(log: &mut [u8], pos: usize, seq: u64, tail: u64, len: u32, count: u32, crc: bool) {
        let h = &mut log[pos..pos + SECTOR as usize];
        h.fill(0);
        h[..4].copy_from_slice(b"loge");
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&(tail as u32).to_le_bytes());
        h[16..24].copy_from_slice(&seq.to_le_bytes());
        h[24..28].copy_from_slice(&count.to_le_bytes());
        h[32..48].copy_from_slice(&GUID);
        if crc {
            let c = crc_with_hole(&log[pos..pos + len as usize], 4);
            log[pos + 4..pos + 8].copy_from_slice(&c.to_le_bytes());
        } else {
            log[pos + 4..pos + 8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        }
    }

    fn replay(log: Vec<u8>) -> Result<Replayed<Vec<u8>>> {
        let log_len = log.len() as u64;
        let mut file = vec![0u8; MIB as usize];
        file.extend_from_slice(&log);
        Replayed::replay(file, Path::new("t.vhdx"), &GUID, MIB, log_len)
    }

    #[test]
    fn a_log_full_of_valid_entries_is_searched_in_near_linear_time() {
        // 8192 one-sector entries, consecutive, each naming the first as its tail: every
        // entry starts a candidate chain running to the end of the log
        let mut log = vec![0u8; 32 * MIB as usize];
        let n = log.len() / SECTOR as usize;
        for i in 0..n {
            put(
                &mut log,
                i * SECTOR as usize,
                100 + i as u64,
                0,
                4096,
                0,
                true,
            );
        }
        let r = within(10, move || replay(log).map(|r| r.entries()));
        assert_eq!(r.unwrap(), n, "the whole log is the active sequence");
    }

    #[test]
    fn entries_claiming_the_whole_log_are_rejected_without_rereading_it() {
        // every sector a header claiming the whole log, with a bad checksum
        let mut log = vec![0u8; 32 * MIB as usize];
        let len = log.len() as u32;
        for i in 0..log.len() / SECTOR as usize {
            put(&mut log, i * SECTOR as usize, 7, 0, len, 0, false);
        }
        let r = within(10, move || replay(log).map(|r| r.entries()));
        assert_eq!(r.unwrap(), 0);
    }

    #[test]
    fn a_sequence_number_at_u64_max_is_not_a_panic() {
        let mut log = vec![0u8; MIB as usize];
        put(&mut log, 0, u64::MAX, 0, 4096, 0, true);
        put(&mut log, 4096, 5, 4096, 4096, 0, true);
        let r = replay(log).unwrap();
        assert_eq!(r.entries(), 1);
    }

    /// The search as it was first written (a walk per candidate tail), as the reference.
    fn naive(entries: &[Entry], log_len: u64) -> Option<Vec<usize>> {
        let mut best: Option<Vec<usize>> = None;
        for (s, start) in entries.iter().enumerate() {
            let mut seq = vec![s];
            loop {
                let last = &entries[seq[seq.len() - 1]];
                if last.tail == start.pos
                    && best
                        .as_ref()
                        .is_none_or(|b| entries[b[b.len() - 1]].seq < last.seq)
                {
                    best = Some(seq.clone());
                }
                let next = (last.pos + last.len) % log_len;
                match entries
                    .iter()
                    .position(|e| e.pos == next && Some(e.seq) == last.seq.checked_add(1))
                {
                    Some(e) if seq.len() < entries.len() => seq.push(e),
                    _ => break,
                }
            }
        }
        best
    }

    #[test]
    fn the_indexed_search_picks_what_a_walk_per_candidate_picks() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let log_len = 32 * SECTOR;
        let mut found = 0;
        for _ in 0..3000 {
            // random entries, overlapping or not, few sequence numbers: many chains
            let mut entries = Vec::new();
            for p in 0..32 {
                if rand(3) == 0 {
                    continue;
                }
                entries.push(Entry {
                    pos: p * SECTOR,
                    len: (1 + rand(3)) * SECTOR,
                    seq: 1 + rand(6),
                    tail: rand(32) * SECTOR,
                    flushed: 0,
                    last: 0,
                    patches: Vec::new(),
                });
            }
            let want = naive(&entries, log_len);
            found += usize::from(want.as_ref().is_some_and(|w| w.len() > 1));
            assert_eq!(active_sequence(&entries, log_len), want);
        }
        assert!(found > 100, "chains of several entries were tried: {found}");
    }
}
