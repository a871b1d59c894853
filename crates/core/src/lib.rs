//! Rehydra's backup engine.
//!
//! The engine owns the repository format (v1, see `docs/repository-format.md`): chunking,
//! content-addressed deduplication, compression, encryption, packs, index files, restore
//! points, and the operations on them (backup, restore, check, forget, prune). It is
//! synchronous; CPU work runs on the rayon pool and callers bring their own runtime.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rehydra_core::{backend::LocalBackend, Repository, InitOptions, OpenOptions};
//! let backend = Arc::new(LocalBackend::new("/tmp/repo"));
//! backend.create_layout()?;
//! let repo = Repository::init(backend, b"secret", InitOptions::default(), OpenOptions::default())?;
//! # Ok::<(), rehydra_core::Error>(())
//! ```

// The operations, each a module with its options and reports.
pub mod archiver;
pub mod check;
pub mod copy;
pub mod diff;
pub mod prune;
pub mod restorer;
pub mod retention;
pub mod stats;

// The format's building blocks; what other crates use is re-exported below, by name.
mod chunker;
mod config;
mod contentmap;
mod crypto;
mod error;
mod fetch;
mod id;
mod index;
mod keys;
mod lock;
mod manifest;
mod pack;
mod par;
mod progress;
mod repository;
mod text;
mod vdisk;
mod writer;

/// Where repositories live (the `rehydra-storage` crate: the contract, local, object stores).
pub use rehydra_storage as backend;

pub use config::Config;
pub use contentmap::{Extent, MapEvent, MapReader, MapWriter, Node, NodeKind, read_map};
pub use error::{Error, ErrorKind, Hint, Result};
pub use id::Id;
pub use rehydra_disk as disk;
pub use index::{ChunkIndex, IndexStats, Location};
pub use keys::KdfParams;
pub use lock::{Lock, live_backups};
pub use manifest::{CopiedFrom, Item, ItemKind, PluginRef, RestorePoint, Summary, check_item_names};
pub use progress::{Cancel, NoProgress, Progress};
pub use repository::{InitOptions, KeyInfo, OpenOptions, Repository};
pub use text::one_line;
pub use vdisk::RestorePointDisk;

/// Building blocks for fuzz targets, benchmarks and tests that forge repositories a
/// writer of another host could have written. Not a stable surface.
#[doc(hidden)]
pub mod internals {
    pub use crate::chunker::{AlignedChunker, ChunkerParams, Piece, StreamChunker};
    pub use crate::index::decode_body as decode_index_body;
    pub use crate::pack::parse_header_body as parse_pack_header_body;
    pub use crate::writer::ChunkWriter;
}
