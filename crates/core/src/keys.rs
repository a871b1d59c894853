//! Key slots: the master key wrapped by password-derived keys (Argon2id).
//!
//! A repository has one random 32-byte master key and one or more key slots under
//! `keys/`. Each slot holds the Argon2id parameters and salt, and the master key sealed
//! with the key derived from that slot's password. Adding, removing or changing a
//! password touches only slots; data is never re-encrypted.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{aad, open_with, seal_with};
use crate::error::{Error, ErrorKind, Result};

/// Argon2id cost parameters stored in each slot.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about 0.2-0.4 s on one core.
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// Highest Argon2id cost a key slot may ask for: 4 GiB of memory, 64 passes, 64 lanes,
/// and memory × passes at most 4 GiB (4 GiB once, or 64 MiB 64 times: a few seconds).
/// A slot beyond that (written by a hostile or broken writer) is skipped, not tried.
pub const KDF_MAX: KdfParams = KdfParams {
    m_kib: 4 * 1024 * 1024,
    t: 64,
    p: 64,
};

/// Key derivation one open may spend over all slots it tries (memory × passes, in KiB:
/// four slots at the bound, or hundreds at the default cost); the rest are skipped with a
/// warning, so a repository stuffed with slots cannot make a wrong password take hours.
pub const KDF_BUDGET: u64 = 4 * 4 * 1024 * 1024;

impl KdfParams {
    /// Relative cost (memory × passes), to try cheap slots first.
    pub fn cost(&self) -> u64 {
        u64::from(self.m_kib) * u64::from(self.t)
    }

    /// Within [`KDF_MAX`] and what Argon2id accepts.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the parameter.
    pub fn check(&self) -> Result<()> {
        if self.m_kib > KDF_MAX.m_kib
            || self.t > KDF_MAX.t
            || self.p > KDF_MAX.p
            || self.cost() > u64::from(KDF_MAX.m_kib)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "Argon2id cost m={} KiB, t={}, p={} exceeds the bound m≤{} KiB, t≤{}, p≤{}, m×t≤{} KiB",
                    self.m_kib, self.t, self.p, KDF_MAX.m_kib, KDF_MAX.t, KDF_MAX.p, KDF_MAX.m_kib
                ),
            ));
        }
        argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map(|_| ())
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("invalid Argon2id parameters: {e}"),
                )
            })
    }

    /// Cheap parameters for tests only (never offered by the CLI).
    pub fn insecure_for_tests() -> Self {
        Self {
            m_kib: 64,
            t: 1,
            p: 1,
        }
    }
}

/// One key slot as stored (JSON, `keys/<id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeySlot {
    /// Slot format version (1).
    pub version: u32,
    /// Always `argon2id`.
    pub kdf: String,
    /// Argon2id cost.
    pub params: KdfParams,
    /// 32 random bytes, hex.
    pub salt: String,
    /// Sealed master key, hex (nonce || ciphertext || tag).
    pub wrapped: String,
    /// When the slot was made (RFC 3339).
    pub created: String,
    /// Host that made it.
    pub hostname: String,
    /// Free-form label (for example the admin's name).
    pub label: String,
}

fn derive_kek(password: &[u8], salt: &[u8], p: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32)).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("invalid Argon2id parameters in key slot: {e}"),
        )
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, out.as_mut())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("key derivation failed: {e}"),
            )
        })?;
    Ok(out)
}

impl KeySlot {
    /// The slot's format and parameters are ones this build reads and within bounds.
    ///
    /// # Errors
    /// Another version or KDF, malformed salt, parameters out of bounds.
    pub fn check(&self) -> Result<()> {
        if self.version != 1 || self.kdf != "argon2id" {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion,
                format!(
                    "key slot version {} / kdf {} is not supported by this build",
                    self.version, self.kdf
                ),
            ));
        }
        if hex::decode(&self.salt).map_or(true, |s| s.len() < 8 || s.len() > 64) {
            return Err(Error::new(ErrorKind::Corrupt, "key slot salt is malformed"));
        }
        self.params.check()
    }

    /// Wrap `master` under `password`.
    ///
    /// # Errors
    /// Invalid Argon2 parameters.
    pub fn wrap(
        master: &[u8; 32],
        password: &[u8],
        params: KdfParams,
        label: &str,
    ) -> Result<Self> {
        let salt: [u8; 32] = rand::random();
        let kek = derive_kek(password, &salt, params)?;
        let wrapped = seal_with(&kek, aad::KEY_SLOT, master);
        Ok(Self {
            version: 1,
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            wrapped: hex::encode(wrapped),
            created: chrono::Utc::now().to_rfc3339(),
            hostname: crate::lock::hostname(),
            label: label.to_string(),
        })
    }

    /// Try to unwrap the master key; `Ok(None)` when the password does not fit this slot.
    ///
    /// # Errors
    /// A malformed slot.
    pub fn unwrap_master(&self, password: &[u8]) -> Result<Option<Zeroizing<[u8; 32]>>> {
        let bad = || Error::new(ErrorKind::Corrupt, "key slot is malformed");
        self.check()?;
        let salt = hex::decode(&self.salt).map_err(|_| bad())?;
        let wrapped = hex::decode(&self.wrapped).map_err(|_| bad())?;
        let kek = derive_kek(password, &salt, self.params)?;
        let Some(plain) = open_with(&kek, aad::KEY_SLOT, &wrapped).map(Zeroizing::new) else {
            return Ok(None);
        };
        let master: [u8; 32] = plain.as_slice().try_into().map_err(|_| bad())?;
        Ok(Some(Zeroizing::new(master)))
    }
}
