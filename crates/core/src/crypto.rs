//! Authenticated encryption and key derivation.
//!
//! Every stored object is sealed with XChaCha20-Poly1305: `nonce (24 random bytes) ||
//! ciphertext || tag (16 bytes)`. 192-bit random nonces make collisions negligible even
//! with many independent writers and billions of objects, so no nonce state is shared.
//! The associated data names the object type, so an index cannot be passed off as a
//! manifest. Sub-keys are derived from the 32-byte master key with BLAKE3 `derive_key`.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::id::Id;

/// Bytes added by [`Keys::seal`]: nonce plus tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Associated-data labels, one per object type (documented in `docs/repository-format.md`).
pub mod aad {
    /// A chunk inside a pack.
    pub const CHUNK: &[u8] = b"rehydra-v1:chunk";
    /// A pack header.
    pub const PACK_HEADER: &[u8] = b"rehydra-v1:pack-header";
    /// An index file.
    pub const INDEX: &[u8] = b"rehydra-v1:index";
    /// A restore-point manifest.
    pub const RESTORE_POINT: &[u8] = b"rehydra-v1:snapshot";
    /// A master key wrapped by a key slot.
    pub const KEY_SLOT: &[u8] = b"rehydra-v1:key-slot";
    /// A prune deletion plan.
    pub const PRUNE_PLAN: &[u8] = b"rehydra-v1:prune-plan";
}

/// Seal `plain` with a raw 32-byte key (used for key slots).
pub(crate) fn seal_with(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[NONCE_LEN..])
        .expect("XChaCha20-Poly1305 accepts any message below 256 GiB");
    out.extend_from_slice(&tag);
    out
}

/// Open a sealed object with a raw key; `None` when authentication fails.
pub(crate) fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buf = ct.to_vec();
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .ok()?;
    Some(buf)
}

/// The keys of an open repository, derived from its master key.
#[derive(Clone)]
pub struct Keys {
    enc: Zeroizing<[u8; 32]>,
    chunk_id: Zeroizing<[u8; 32]>,
    cdc_seed: u64,
}

impl Keys {
    /// Derive all sub-keys from the 32-byte master key.
    pub(crate) fn derive(master: &[u8; 32]) -> Self {
        let seed = Zeroizing::new(blake3::derive_key(
            "rehydra 2026-11 repository v1 chunker seed",
            master,
        ));
        let mut s = [0u8; 8];
        s.copy_from_slice(&seed[..8]);
        Self {
            enc: Zeroizing::new(blake3::derive_key(
                "rehydra 2026-11 repository v1 object encryption",
                master,
            )),
            chunk_id: Zeroizing::new(blake3::derive_key(
                "rehydra 2026-11 repository v1 chunk id",
                master,
            )),
            cdc_seed: u64::from_le_bytes(s),
        }
    }

    /// Chunk id: keyed BLAKE3 of the plaintext.
    pub fn chunk_id(&self, data: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.chunk_id, data).as_bytes())
    }

    /// Seed for the chunkers' boundary functions (keeps chunk sizes from leaking content).
    pub fn cdc_seed(&self) -> u64 {
        self.cdc_seed
    }

    /// Seal an object of the type named by `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        seal_with(&self.enc, aad, plain)
    }

    /// Open an object; `what` names it in the error.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] when authentication fails.
    pub fn open(&self, aad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        open_with(&self.enc, aad, sealed).ok_or_else(|| Error::corrupt(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_tamper() {
        let keys = Keys::derive(&[7u8; 32]);
        let sealed = keys.seal(aad::CHUNK, b"hello");
        assert_eq!(keys.open(aad::CHUNK, &sealed, "x").unwrap(), b"hello");
        assert!(
            keys.open(aad::INDEX, &sealed, "x").is_err(),
            "wrong type label must fail"
        );
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert!(keys.open(aad::CHUNK, &bad, "x").is_err());
        assert!(keys.open(aad::CHUNK, &sealed[..10], "x").is_err());
    }
}
