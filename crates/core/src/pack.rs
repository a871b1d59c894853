//! Pack files: many encrypted chunks and an encrypted header, written once, never changed.
//!
//! ```text
//! pack    = blob* sealed_header header_len:u32le
//! blob    = seal(aad "rehydra-v1:chunk", stored bytes)     (nonce || ciphertext || tag)
//! header  = "RHPK" version:u8(=1) count:u32le entry*count   (then sealed, aad "rehydra-v1:pack-header")
//! entry   = id:[u8;32] offset:u32le length:u32le raw_len:u32le flags:u8   (flags bit 0 = zstd)
//! ```

use crate::crypto::{Keys, aad};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// Size of one header entry.
pub const ENTRY_LEN: usize = 32 + 4 + 4 + 4 + 1;
/// Flag bit: the stored bytes are zstd-compressed.
pub const FLAG_ZSTD: u8 = 1;
const MAGIC: &[u8; 4] = b"RHPK";

/// One chunk's place inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// Chunk id.
    pub id: Id,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// Length of the chunk's plaintext.
    pub raw_len: u32,
    /// [`FLAG_ZSTD`] or 0.
    pub flags: u8,
}

/// A chunk ready to go into a pack: already compressed (or not) and sealed.
pub struct SealedChunk {
    /// Chunk id.
    pub id: Id,
    /// Sealed bytes.
    pub sealed: Vec<u8>,
    /// Plaintext length.
    pub raw_len: u32,
    /// Flags.
    pub flags: u8,
}

thread_local! {
    // one zstd context per thread and level: creating one per chunk cost ~15% of a backup
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

fn compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        c.as_mut()?.1.compress(data).ok()
    })
}

fn decompress(data: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().ok()?);
        }
        d.as_mut()?.decompress(data, raw_len).ok()
    })
}

/// Compress (when it pays) and seal one chunk.
pub fn seal_chunk(keys: &Keys, id: Id, data: &[u8], zstd_level: i32) -> SealedChunk {
    let mut flags = 0;
    let mut stored: std::borrow::Cow<'_, [u8]> = data.into();
    if zstd_level != 0
        && let Some(c) = compress(data, zstd_level)
    {
        // keep it only when it saves at least 1/32 of the chunk
        if c.len() + data.len() / 32 < data.len() {
            stored = c.into();
            flags = FLAG_ZSTD;
        }
    }
    SealedChunk {
        id,
        sealed: keys.seal(aad::CHUNK, &stored),
        raw_len: data.len() as u32,
        flags,
    }
}

/// Open a sealed chunk, decompress it and check its id.
///
/// # Errors
/// [`ErrorKind::Corrupt`] when authentication, decompression or the id check fails.
pub fn open_chunk(
    keys: &Keys,
    entry_id: &Id,
    sealed: &[u8],
    raw_len: u32,
    flags: u8,
    pack: &Id,
) -> Result<Vec<u8>> {
    let what = || format!("chunk {} in pack {}", entry_id.short(), pack.short());
    let stored = keys.open(aad::CHUNK, sealed, &what())?;
    let data = if flags & FLAG_ZSTD != 0 {
        decompress(&stored, raw_len as usize).ok_or_else(|| Error::corrupt(what()))?
    } else {
        stored
    };
    if data.len() != raw_len as usize || keys.chunk_id(&data) != *entry_id {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("{}: content does not match its id (hash mismatch)", what()),
        ));
    }
    Ok(data)
}

/// Accumulates sealed chunks into one pack.
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// An empty pack with room for `target` bytes (pages are touched only as it fills).
    pub fn new(target: usize) -> Self {
        Self::with_buffer(Vec::new(), target)
    }

    /// An empty pack reusing `buf` (cleared), so big buffers circulate instead of being
    /// freed and reallocated for every pack.
    pub fn with_buffer(mut buf: Vec<u8>, target: usize) -> Self {
        buf.clear();
        buf.reserve(target + 64 * 1024);
        Self {
            buf,
            entries: Vec::new(),
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no chunk was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Append a sealed chunk.
    pub fn add(&mut self, c: SealedChunk) {
        self.entries.push(PackEntry {
            id: c.id,
            offset: self.buf.len() as u32,
            length: c.sealed.len() as u32,
            raw_len: c.raw_len,
            flags: c.flags,
        });
        self.buf.extend_from_slice(&c.sealed);
    }

    /// Finish: append the sealed header and its length. Returns the pack bytes and entries.
    pub fn finish(mut self, keys: &Keys) -> (Vec<u8>, Vec<PackEntry>) {
        let mut h = Vec::with_capacity(9 + self.entries.len() * ENTRY_LEN);
        h.extend_from_slice(MAGIC);
        h.push(1);
        h.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            h.extend_from_slice(e.id.as_bytes());
            h.extend_from_slice(&e.offset.to_le_bytes());
            h.extend_from_slice(&e.length.to_le_bytes());
            h.extend_from_slice(&e.raw_len.to_le_bytes());
            h.push(e.flags);
        }
        let sealed = keys.seal(aad::PACK_HEADER, &h);
        // exactly: an amortized growth past the reserved room would double the buffer
        self.buf.reserve_exact(sealed.len() + 4);
        self.buf.extend_from_slice(&sealed);
        self.buf
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        (self.buf, self.entries)
    }
}

/// Where the sealed header sits, from the pack's total size and its last 4 bytes.
///
/// # Errors
/// [`ErrorKind::Corrupt`] when the length field does not fit the pack.
pub fn header_range(pack_size: u64, trailer: [u8; 4], pack: &Id) -> Result<(u64, u32)> {
    let hlen = u32::from_le_bytes(trailer);
    if pack_size < 4
        || u64::from(hlen) > pack_size - 4
        || (hlen as usize) < crate::crypto::SEAL_OVERHEAD + 9
    {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "pack {}: header length field is invalid (truncated or damaged pack)",
                pack.short()
            ),
        ));
    }
    Ok((pack_size - 4 - u64::from(hlen), hlen))
}

/// Decrypt and parse a pack header; checks that every entry lies inside the blob area.
///
/// # Errors
/// [`ErrorKind::Corrupt`] for a header that fails authentication or is malformed.
pub fn parse_header(
    keys: &Keys,
    sealed: &[u8],
    blob_area: u64,
    pack: &Id,
) -> Result<Vec<PackEntry>> {
    let h = keys.open(
        aad::PACK_HEADER,
        sealed,
        &format!("header of pack {}", pack.short()),
    )?;
    parse_header_body(&h, blob_area, pack)
}

/// Parse a decrypted pack header (exposed for fuzzing).
///
/// # Errors
/// [`ErrorKind::Corrupt`] or [`ErrorKind::UnsupportedVersion`] for a malformed header.
pub fn parse_header_body(h: &[u8], blob_area: u64, pack: &Id) -> Result<Vec<PackEntry>> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Corrupt,
            format!("pack {}: header {why}", pack.short()),
        )
    };
    if h.len() < 9 || &h[..4] != MAGIC {
        return Err(bad("has a wrong signature"));
    }
    if h[4] != 1 {
        return Err(Error::new(
            ErrorKind::UnsupportedVersion,
            format!(
                "pack {}: header version {} is newer than this build reads",
                pack.short(),
                h[4]
            ),
        ));
    }
    let count = u32::from_le_bytes(h[5..9].try_into().map_err(|_| bad("is short"))?) as usize;
    if Some(h.len()) != count.checked_mul(ENTRY_LEN).and_then(|n| n.checked_add(9)) {
        return Err(bad("has a wrong length"));
    }
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for rec in h[9..].chunks_exact(ENTRY_LEN) {
        let e = decode_entry(rec);
        if u64::from(e.offset) + u64::from(e.length) > blob_area {
            return Err(bad("points outside the pack"));
        }
        if !plausible(e.length, e.raw_len) {
            return Err(bad("has an entry larger than any chunk"));
        }
        out.push(e);
    }
    Ok(out)
}

/// Largest chunk any writer makes (the chunkers' maximum, bounded by `config`).
pub const MAX_CHUNK: u32 = 16 << 20;

/// An entry's stored and plain lengths are possible: no chunk is larger than
/// [`MAX_CHUNK`], and a stored chunk is its plain bytes (or fewer, compressed) plus the
/// seal. Readers check this before allocating what a hostile index or header claims.
pub fn plausible(length: u32, raw_len: u32) -> bool {
    raw_len <= MAX_CHUNK
        && u64::from(length) <= u64::from(raw_len) + crate::crypto::SEAL_OVERHEAD as u64
}

fn decode_entry(rec: &[u8]) -> PackEntry {
    let u = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
    let mut id = [0u8; 32];
    id.copy_from_slice(&rec[..32]);
    PackEntry {
        id: Id(id),
        offset: u(32),
        length: u(36),
        raw_len: u(40),
        flags: rec[44],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_roundtrip() {
        let keys = Keys::derive(&[1; 32]);
        let mut b = PackBuilder::new(1 << 20);
        let chunks: Vec<Vec<u8>> = vec![
            vec![1u8; 5000],
            (0..3000u32).map(|i| (i * 7) as u8).collect(),
        ];
        for c in &chunks {
            b.add(seal_chunk(&keys, keys.chunk_id(c), c, 3));
        }
        let (bytes, entries) = b.finish(&keys);
        let pid = Id::random();
        let (off, len) = header_range(
            bytes.len() as u64,
            bytes[bytes.len() - 4..].try_into().unwrap(),
            &pid,
        )
        .unwrap();
        let parsed = parse_header(
            &keys,
            &bytes[off as usize..off as usize + len as usize],
            off,
            &pid,
        )
        .unwrap();
        assert_eq!(parsed, entries);
        for (e, c) in parsed.iter().zip(&chunks) {
            let s = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(
                &open_chunk(&keys, &e.id, s, e.raw_len, e.flags, &pid).unwrap(),
                c
            );
        }
        assert_eq!(parsed[0].flags, FLAG_ZSTD);
    }
}
