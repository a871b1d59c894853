//! Index files (which pack holds which chunk) and the local chunk index built from them.
//!
//! An index file is written after the packs it describes are durable:
//!
//! ```text
//! index   = seal(aad "rehydra-v1:index", body)
//! body    = "RHIX" version:u8(=1) packs:u32le pack_id*packs entries:u32le entry*entries
//! entry   = id:[u8;32] pack:u32le offset:u32le length:u32le raw_len:u32le flags:u8
//! ```
//! `pack` is a position in this file's own pack list.

pub(crate) mod runs;
mod store;

pub use store::{ChunkIndex, IndexStats};

use crate::crypto::{Keys, aad};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// Where a chunk lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Pack id.
    pub pack: Id,
    /// Offset of the sealed blob.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// Plaintext length.
    pub raw_len: u32,
    /// Pack entry flags.
    pub flags: u8,
}

const MAGIC: &[u8; 4] = b"RHIX";
const ENTRY_LEN: usize = 32 + 4 + 4 + 4 + 4 + 1;

/// Encode and seal an index file for `entries`.
pub fn encode(keys: &Keys, entries: &[(Id, Location)]) -> Vec<u8> {
    let mut packs: Vec<Id> = entries.iter().map(|(_, l)| l.pack).collect();
    packs.sort_unstable();
    packs.dedup();
    let mut b = Vec::with_capacity(13 + packs.len() * 32 + entries.len() * ENTRY_LEN);
    b.extend_from_slice(MAGIC);
    b.push(1);
    b.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for p in &packs {
        b.extend_from_slice(p.as_bytes());
    }
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (id, l) in entries {
        let pi = packs.binary_search(&l.pack).unwrap_or(0) as u32;
        b.extend_from_slice(id.as_bytes());
        for v in [pi, l.offset, l.length, l.raw_len] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(l.flags);
    }
    keys.seal(aad::INDEX, &b)
}

/// Open and parse an index file.
///
/// # Errors
/// [`ErrorKind::Corrupt`] when it fails authentication or is malformed.
pub fn decode(keys: &Keys, name: &str, sealed: &[u8]) -> Result<Vec<(Id, Location)>> {
    let b = keys.open(aad::INDEX, sealed, &format!("index file {name}"))?;
    decode_body(name, &b)
}

/// Parse a decrypted index file (exposed for fuzzing).
///
/// # Errors
/// [`ErrorKind::Corrupt`] or [`ErrorKind::UnsupportedVersion`] for a malformed body.
pub fn decode_body(name: &str, b: &[u8]) -> Result<Vec<(Id, Location)>> {
    let bad = |why: &str| Error::new(ErrorKind::Corrupt, format!("index file {name}: {why}"));
    if b.len() < 13 || &b[..4] != MAGIC {
        return Err(bad("wrong signature"));
    }
    if b[4] != 1 {
        return Err(Error::new(
            ErrorKind::UnsupportedVersion,
            format!(
                "index file {name}: version {} is newer than this build reads",
                b[4]
            ),
        ));
    }
    let u = |i: usize| -> Result<u32> {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| bad("truncated"))
    };
    let np = u(5)? as usize;
    let packs_end = 9usize
        .checked_add(np.checked_mul(32).ok_or_else(|| bad("bad pack count"))?)
        .ok_or_else(|| bad("bad pack count"))?;
    if packs_end + 4 > b.len() {
        return Err(bad("truncated pack list"));
    }
    let packs: Vec<Id> = b[9..packs_end]
        .chunks_exact(32)
        .map(|c| Id(c.try_into().expect("32 bytes")))
        .collect();
    let ne = u(packs_end)? as usize;
    let body = &b[packs_end + 4..];
    if body.len()
        != ne
            .checked_mul(ENTRY_LEN)
            .ok_or_else(|| bad("bad entry count"))?
    {
        return Err(bad("wrong length"));
    }
    let mut out = Vec::with_capacity(ne.min(1 << 20));
    for rec in body.chunks_exact(ENTRY_LEN) {
        let v = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
        let pack = *packs
            .get(v(32) as usize)
            .ok_or_else(|| bad("entry names a pack outside the list"))?;
        if !crate::pack::plausible(v(40), v(44)) {
            return Err(bad("entry claims a chunk larger than any chunk"));
        }
        out.push((
            Id(rec[..32].try_into().expect("32 bytes")),
            Location {
                pack,
                offset: v(36),
                length: v(40),
                raw_len: v(44),
                flags: rec[48],
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_roundtrip_and_garbage() {
        let keys = Keys::derive(&[2; 32]);
        let p = Id::random();
        let entries = vec![
            (
                Id::random(),
                Location {
                    pack: p,
                    offset: 0,
                    length: 100,
                    raw_len: 90,
                    flags: 1,
                },
            ),
            (
                Id::random(),
                Location {
                    pack: Id::random(),
                    offset: 100,
                    length: 5,
                    raw_len: 5,
                    flags: 0,
                },
            ),
        ];
        let sealed = encode(&keys, &entries);
        assert_eq!(decode(&keys, "x", &sealed).unwrap(), entries);
        let mut bad = sealed.clone();
        let n = bad.len();
        bad[n / 2] ^= 4;
        assert_eq!(
            decode(&keys, "x", &bad).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}
