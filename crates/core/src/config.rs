//! The repository's `config` file (plaintext JSON, written once at `init`).

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Value of the `format` field.
pub const FORMAT_NAME: &str = "rehydra-repository";
/// Largest pack size a config may ask for: a pack is built in memory, so a config
/// written by a hostile host must not make every writer hold gigabytes.
pub const MAX_PACK_SIZE: u32 = 128 << 20;

/// Chunker parameters as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Minimum chunk size.
    pub min: u32,
    /// Average chunk size.
    pub avg: u32,
    /// Maximum chunk size.
    pub max: u32,
}

impl From<ChunkerConfig> for ChunkerParams {
    fn from(c: ChunkerConfig) -> Self {
        ChunkerParams {
            min: c.min,
            avg: c.avg,
            max: c.max,
        }
    }
}

/// Contents of `config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Always `rehydra-repository`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Random repository id (names the local cache).
    pub id: Id,
    /// When it was created.
    pub created: String,
    /// Chunker parameters for disk images (aligned) and streams (FastCDC).
    pub chunker: ChunkerConfig,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// zstd level for chunks (0 = no compression).
    pub zstd_level: i32,
}

impl Config {
    /// Parse and validate.
    ///
    /// # Errors
    /// Not a Rehydra config, or a newer version.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self> {
        let not_repo = || {
            Error::new(
                ErrorKind::NotARepository,
                format!(
                    "{location} is not a Rehydra repository (its `config` file is not ours)"
                ),
            )
            .with_hint(crate::Hint::LocationOrInit)
        };
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| not_repo())?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(not_repo());
        }
        let version = v
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(FORMAT_VERSION) {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion,
                format!(
                    "{location} uses repository format version {version}; this build of rehydra reads up to version {FORMAT_VERSION}: upgrade rehydra"
                ),
            ));
        }
        let c: Config = serde_json::from_value(v).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("{location}: config is malformed: {e}"),
            )
        })?;
        use fastcdc::v2020 as cdc;
        if !(cdc::MINIMUM_MIN..=cdc::MINIMUM_MAX).contains(&c.chunker.min)
            || !(cdc::AVERAGE_MIN..=cdc::AVERAGE_MAX).contains(&c.chunker.avg)
            || !(cdc::MAXIMUM_MIN..=cdc::MAXIMUM_MAX.min(crate::pack::MAX_CHUNK))
                .contains(&c.chunker.max)
            || c.chunker.min > c.chunker.avg
            || c.chunker.avg > c.chunker.max
            || c.pack_size < 1 << 16
            || c.pack_size > MAX_PACK_SIZE
            || !(-7..=22).contains(&c.zstd_level)
        {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{location}: config has invalid chunker, pack or compression parameters (packs of 64 KiB to {} MiB, zstd levels -7 to 22)",
                    MAX_PACK_SIZE >> 20
                ),
            ));
        }
        Ok(c)
    }
}
