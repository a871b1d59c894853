//! An open repository: config, keys, restore points, chunk index, chunk reads.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::{Backend, FileKind};
use crate::config::{ChunkerConfig, Config, FORMAT_NAME, FORMAT_VERSION};
use crate::crypto::{Keys, aad};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::{self, ChunkIndex, Location};
use crate::keys::{KdfParams, KeySlot};
use crate::manifest::RestorePoint;
use crate::pack;

/// Options for [`Repository::init`].
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Chunk sizes.
    pub chunker: ChunkerConfig,
    /// Target pack size.
    pub pack_size: u32,
    /// zstd level (0 = off).
    pub zstd_level: i32,
    /// Argon2id cost for the first key slot.
    pub kdf: KdfParams,
    /// Label of the first key slot.
    pub label: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerConfig {
                min: 4096,
                avg: 16384,
                max: 65536,
            },
            pack_size: 16 << 20,
            zstd_level: 3,
            kdf: KdfParams::default(),
            label: String::new(),
        }
    }
}

/// Options for [`Repository::open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Folder for the local chunk-index cache; `None` uses a temporary folder per run.
    pub cache_dir: Option<PathBuf>,
}

/// A key slot as listed.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// File name (id).
    pub id: String,
    /// Label.
    pub label: String,
    /// Host that created it.
    pub hostname: String,
    /// Creation time.
    pub created: String,
    /// True for the slot that opened this session.
    pub current: bool,
}

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    config: Config,
    keys: Keys,
    master: zeroize::Zeroizing<[u8; 32]>,
    key_slot: String,
    opts: OpenOptions,
    /// What opening noticed but did not stop for (key slots skipped).
    warnings: Vec<String>,
}

/// Restore points that could be read (oldest first), and those that could not.
pub type RestorePoints = (Vec<(Id, RestorePoint)>, Vec<(Id, Error)>);

impl Repository {
    /// Create a new repository in an empty location.
    ///
    /// # Errors
    /// The location already holds a repository, or writing failed.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        opts: InitOptions,
        open: OpenOptions,
    ) -> Result<Self> {
        if !backend.list(FileKind::Config)?.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} already holds a repository; use it as it is, or choose an empty location",
                    backend.location()
                ),
            ));
        }
        if password.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an empty password is not allowed",
            )
            .with_hint(crate::Hint::Password));
        }
        let master = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
        let slot = KeySlot::wrap(&master, password, opts.kdf, &opts.label)?;
        let slot_name = Id::random().to_hex();
        backend.create(
            FileKind::Key,
            &slot_name,
            &serde_json::to_vec_pretty(&slot).expect("slot serializes"),
        )?;
        let config = Config {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            id: Id::random(),
            created: chrono::Utc::now().to_rfc3339(),
            chunker: opts.chunker,
            pack_size: opts.pack_size,
            zstd_level: opts.zstd_level,
        };
        // config last: a location without it is not a repository yet
        backend.create(
            FileKind::Config,
            "config",
            &serde_json::to_vec_pretty(&config).expect("config serializes"),
        )?;
        Ok(Self {
            keys: Keys::derive(&master),
            backend,
            config,
            master,
            key_slot: slot_name,
            opts: open,
            warnings: Vec::new(),
        })
    }

    /// Open an existing repository with a password.
    ///
    /// # Errors
    /// [`ErrorKind::NotARepository`], [`ErrorKind::UnsupportedVersion`], [`ErrorKind::WrongPassword`].
    pub fn open(backend: Arc<dyn Backend>, password: &[u8], opts: OpenOptions) -> Result<Self> {
        let loc = backend.location();
        let cfg = match backend.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(e) if e.kind() == crate::backend::StorageErrorKind::Missing => {
                return Err(Error::new(
                    ErrorKind::NotARepository,
                    format!(
                        "{loc} is not a Rehydra repository (no `config` file)"
                    ),
                )
                .with_hint(crate::Hint::LocationOrInit));
            }
            Err(e) => return Err(e.into()),
        };
        let config = Config::parse(&cfg, &loc)?;
        // a slot another writer made unreadable or absurdly expensive never blocks the
        // others: it is skipped with a warning, and cheap slots are tried first
        let mut warnings = Vec::new();
        let mut slots = Vec::new();
        for f in backend.list(FileKind::Key)? {
            let parsed = backend
                .read(FileKind::Key, &f.name)
                .map_err(Error::from)
                .and_then(|b| {
                    serde_json::from_slice::<KeySlot>(&b)
                        .map_err(|e| Error::new(ErrorKind::Corrupt, format!("not a key slot: {e}")))
                });
            match parsed.and_then(|s| s.check().map(|()| s)) {
                Ok(s) => slots.push((f.name, s)),
                Err(e) => warnings.push(format!("key slot {} skipped: {e}", f.name)),
            }
        }
        // the slot that opened last time on this machine first, then cheapest first, until
        // the work budget is spent: neither expensive nor numerous slots planted by
        // someone who can write the storage keep the admin out for long
        let last = opts
            .cache_dir
            .as_ref()
            .map(|d| d.join(config.id.to_hex()).join("key-slot"));
        let last_name = last.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        slots.sort_by_key(|(name, s)| {
            (
                Some(name.as_str()) != last_name.as_deref().map(str::trim),
                s.params.cost(),
                name.clone(),
            )
        });
        let mut spent = 0u64;
        let mut untried = 0usize;
        for (name, slot) in slots {
            spent += slot.params.cost();
            if spent > crate::keys::KDF_BUDGET {
                untried += 1;
                continue;
            }
            match slot.unwrap_master(password) {
                Ok(Some(master)) => {
                    if let Some(p) = &last {
                        let _ = p.parent().map(std::fs::create_dir_all);
                        let _ = std::fs::write(p, &name);
                    }
                    return Ok(Self {
                        keys: Keys::derive(&master),
                        backend,
                        config,
                        master,
                        key_slot: name,
                        opts,
                        warnings,
                    });
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!("key slot {name} skipped: {e}")),
            }
        }
        if untried > 0 {
            warnings.push(format!(
                "{untried} key slot(s) not tried: together they would cost more key derivation than one open may spend"
            ));
        }
        if let Some(w) = warnings.first() {
            return Err(Error::new(
                ErrorKind::WrongPassword,
                format!(
                    "wrong password for repository {loc}: no usable key slot opens with it ({w}{})",
                    if warnings.len() > 1 { ", …" } else { "" }
                ),
            ));
        }
        Err(Error::new(
            ErrorKind::WrongPassword,
            format!(
                "wrong password for repository {loc}: no key slot opens with it"
            ),
        )
        .with_hint(crate::Hint::Password))
    }

    /// What opening the repository noticed but did not stop for (key slots that could
    /// not be read or whose cost is out of bounds, each skipped).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The derived keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    // ---- key slots ----

    /// List key slots.
    ///
    /// # Errors
    /// Listing or reading failed.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Key)? {
            let bytes = self.backend.read(FileKind::Key, &f.name)?;
            // an unreadable slot is listed (so that it can be removed), never an error
            let (label, hostname, created) = match serde_json::from_slice::<KeySlot>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|s| s.check().map(|()| s).map_err(|e| e.to_string()))
            {
                Ok(slot) => (slot.label, slot.hostname, slot.created),
                Err(e) => (
                    format!("(unusable key slot: {e})"),
                    String::new(),
                    String::new(),
                ),
            };
            out.push(KeyInfo {
                current: f.name == self.key_slot,
                id: f.name,
                label,
                hostname,
                created,
            });
        }
        Ok(out)
    }

    /// Add a key slot for another password; returns its id.
    ///
    /// # Errors
    /// Empty password or write failure.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams, label: &str) -> Result<String> {
        if password.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an empty password is not allowed",
            ));
        }
        let slot = KeySlot::wrap(&self.master, password, kdf, label)?;
        let name = Id::random().to_hex();
        self.backend.create(
            FileKind::Key,
            &name,
            &serde_json::to_vec_pretty(&slot).expect("slot serializes"),
        )?;
        Ok(name)
    }

    /// Remove a key slot by id prefix. The slot in use and the last slot cannot be removed.
    ///
    /// # Errors
    /// Unknown, ambiguous, current or last slot.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        let keys = self.list_keys()?;
        let matches: Vec<&KeyInfo> = keys.iter().filter(|k| k.id.starts_with(prefix)).collect();
        let k = match matches.as_slice() {
            [k] => *k,
            [] => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("no key slot starts with `{prefix}`"),
                )
                .with_hint(crate::Hint::ListKeySlots));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("`{prefix}` matches several key slots; give more digits"),
                ));
            }
        };
        if k.current {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "refusing to remove the key slot this session was opened with; open with another password first",
            ));
        }
        self.backend.remove(FileKind::Key, &k.id)?;
        Ok(k.id.clone())
    }

    /// Change the password of the current slot: add a new slot, then remove the old one.
    ///
    /// # Errors
    /// Write failure.
    pub fn change_password(&mut self, new_password: &[u8], kdf: KdfParams) -> Result<String> {
        let label = self
            .list_keys()?
            .into_iter()
            .find(|k| k.current)
            .map(|k| k.label)
            .unwrap_or_default();
        let new = self.add_key(new_password, kdf, &label)?;
        let old = std::mem::replace(&mut self.key_slot, new.clone());
        self.backend.remove(FileKind::Key, &old)?;
        Ok(new)
    }

    // ---- restore points ----

    /// Write a manifest; returns its id.
    ///
    /// # Errors
    /// Write failure.
    pub fn save_restore_point(&self, snap: &RestorePoint) -> Result<Id> {
        let id = Id::random();
        let bound = RestorePoint {
            id: Some(id),
            ..snap.clone()
        };
        let json = serde_json::to_vec(&bound).expect("manifest serializes");
        self.backend.create(
            FileKind::RestorePoint,
            &id.to_hex(),
            &self.keys.seal(aad::RESTORE_POINT, &json),
        )?;
        Ok(id)
    }

    /// Read one manifest.
    ///
    /// # Errors
    /// Missing, corrupt or newer manifest; a manifest sealed for another id (stored again
    /// under this name: replayed or renamed).
    pub fn load_restore_point(&self, id: &Id) -> Result<RestorePoint> {
        let sealed = self.backend.read(FileKind::RestorePoint, &id.to_hex())?;
        let what = format!("restore point {}", id.short());
        let plain = self.keys.open(aad::RESTORE_POINT, &sealed, &what)?;
        let snap = RestorePoint::parse(&plain, &what)?;
        match snap.id {
            Some(own) if own != *id => Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{what} is restore point {} stored again under another name (replayed or renamed by whoever can write the repository); it is ignored: remove snapshots/{} after checking",
                    own.short(),
                    id.to_hex()
                ),
            )),
            _ => Ok(snap),
        }
    }

    /// All restore points, oldest first. Unreadable manifests are returned as errors in the second list.
    ///
    /// # Errors
    /// Listing failed.
    pub fn restore_points(&self) -> Result<RestorePoints> {
        let files = self.backend.list(FileKind::RestorePoint)?;
        let results: Vec<(Id, Result<RestorePoint>)> = files
            .par_iter()
            .filter_map(|f| Id::parse(&f.name).ok())
            .map(|id| (id, self.load_restore_point(&id)))
            .collect();
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (id, r) in results {
            match r {
                Ok(s) => ok.push((id, s)),
                Err(e) => bad.push((id, e)),
            }
        }
        ok.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok((ok, bad))
    }

    /// Find a restore point by id prefix or `latest` (optionally among those matching `filter`).
    ///
    /// # Errors
    /// No match or an ambiguous prefix.
    pub fn find_restore_point(
        &self,
        spec: &str,
        filter: impl Fn(&RestorePoint) -> bool,
    ) -> Result<(Id, RestorePoint)> {
        let (all, _) = self.restore_points()?;
        if spec == "latest" {
            return all.into_iter().rev().find(|(_, s)| filter(s)).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "no restore point matches (the repository has none, or none for this asset/filter)"));
        }
        let spec_l = spec.to_ascii_lowercase();
        if spec_l.is_empty() || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{spec}` is neither a restore point id (hex prefix) nor `latest`"),
            ));
        }
        let mut m: Vec<(Id, RestorePoint)> = all
            .into_iter()
            .filter(|(id, _)| id.to_hex().starts_with(&spec_l))
            .collect();
        match m.len() {
            1 => Ok(m.remove(0)),
            0 => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("no restore point id starts with `{spec}`"),
            )
            .with_hint(crate::Hint::ListRestorePoints)),
            n => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{spec}` matches {n} restore points; give more digits"),
            )),
        }
    }

    /// Delete a manifest (the data stays until `prune`).
    ///
    /// # Errors
    /// Delete failed.
    pub fn remove_restore_point(&self, id: &Id) -> Result<()> {
        Ok(self.backend.remove(FileKind::RestorePoint, &id.to_hex())?)
    }

    // ---- index ----


    /// Load the chunk index: reuse the local cache, read only new index files.
    /// Index files that fail to decode are returned in the second list (reported by check).
    ///
    /// # Errors
    /// Listing failed or the cache cannot be written.
    pub fn load_index(&self) -> Result<(ChunkIndex, Vec<(String, Error)>)> {
        let mut idx = match &self.opts.cache_dir {
            Some(d) => ChunkIndex::open(d.join(self.config.id.to_hex()).join("index-v1"))?,
            None => ChunkIndex::temporary(ChunkIndex::SPILL)?,
        };
        let listed: Vec<String> = self
            .backend
            .list(FileKind::Index)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let listed_set: std::collections::HashSet<&String> = listed.iter().collect();
        if idx.known_files().any(|f| !listed_set.contains(f)) {
            idx.reset()?; // some index file was removed (prune): rebuild
        }
        let known: std::collections::HashSet<String> = idx.known_files().cloned().collect();
        let new: Vec<&String> = listed.iter().filter(|f| !known.contains(*f)).collect();
        let mut bad = Vec::new();
        idx.begin_bulk();
        for group in new.chunks(64) {
            type Decoded = (String, Result<Vec<(Id, Location)>>);
            let decoded: Vec<Decoded> = group
                .par_iter()
                .map(|name| {
                    (
                        (*name).clone(),
                        self.backend
                            .read(FileKind::Index, name)
                            .map_err(Error::from)
                            .and_then(|b| index::decode(&self.keys, name, &b)),
                    )
                })
                .collect();
            for (name, r) in decoded {
                match r {
                    Ok(entries) => idx.add_file(&name, &entries)?,
                    Err(e) => bad.push((name, e)),
                }
            }
        }
        idx.compact()?;
        Ok((idx, bad))
    }

    /// Read one chunk: fetch, decrypt, decompress, verify its hash.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`] when no index knows it; [`ErrorKind::Corrupt`] on any mismatch.
    pub fn read_chunk(&self, index: &ChunkIndex, id: &Id) -> Result<Vec<u8>> {
        self.read_chunk_at(id, &crate::fetch::locate(index, id)?)
    }

    /// Read a chunk at a known location.
    ///
    /// # Errors
    /// As [`Repository::read_chunk`].
    pub fn read_chunk_at(&self, id: &Id, loc: &Location) -> Result<Vec<u8>> {
        let sealed = self.backend.read_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            u64::from(loc.offset),
            loc.length,
        )?;
        pack::open_chunk(&self.keys, id, &sealed, loc.raw_len, loc.flags, &loc.pack)
    }
}
