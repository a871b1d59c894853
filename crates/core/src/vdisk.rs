//! A restore point's disk item as a random-access virtual disk, without restoring it:
//! only the chunks a read touches are fetched, decrypted and verified (a small cache keeps
//! the most recent ones). File-level browsing and instant recovery (NBD) read through it.
//!
//! The content map is read once into a temporary file of fixed 48-byte records (start
//! offset, length, chunk id), and memory keeps only the start of every [`WINDOW`]-th
//! extent and the window in use: about 8 bytes per 1,024 chunks (5 MiB for a fully
//! allocated 10 TB disk at 16 KiB chunks, whose records take 30 GB of local disk; a
//! mostly-empty disk costs far less, a hole being one record).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};

use crate::contentmap::read_map;
use crate::contentmap::{Extent, MapEvent};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::manifest::{Item, ItemKind};
use crate::repository::Repository;

/// Chunks kept decrypted (16 KiB average: about 4 MiB).
const CACHE_CHUNKS: usize = 256;
/// Extents read from the temporary file at once (48 KiB).
const WINDOW: u64 = 1024;
const REC: usize = 48;
const DATA_BIT: u64 = 1 << 63;

fn encode(start: u64, e: &Extent) -> [u8; REC] {
    let mut r = [0u8; REC];
    r[..8].copy_from_slice(&start.to_le_bytes());
    let (len, id) = match e {
        Extent::Zero(n) => (*n, None),
        Extent::Data(id, n) => (u64::from(*n) | DATA_BIT, Some(id)),
    };
    r[8..16].copy_from_slice(&len.to_le_bytes());
    if let Some(id) = id {
        r[16..].copy_from_slice(id.as_bytes());
    }
    r
}

fn decode(r: &[u8]) -> (u64, Extent) {
    let start = u64::from_le_bytes(r[..8].try_into().expect("8"));
    let len = u64::from_le_bytes(r[8..16].try_into().expect("8"));
    let e = if len & DATA_BIT != 0 {
        Extent::Data(Id(r[16..].try_into().expect("32")), (len & !DATA_BIT) as u32)
    } else {
        Extent::Zero(len)
    };
    (start, e)
}

/// A disk item of a restore point, readable at any offset.
pub struct RestorePointDisk<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    name: String,
    size: u64,
    /// Every extent as a record, in order.
    records: File,
    count: u64,
    /// The start offset of extents 0, WINDOW, 2 * WINDOW, ...
    sparse: Vec<u64>,
    /// The window in use: its number and its extents.
    window: Option<(u64, Vec<(u64, Extent)>)>,
    cache: VecDeque<(Id, Vec<u8>)>,
}

impl<'a> RestorePointDisk<'a> {
    /// Read the content map of `item` (a disk item).
    ///
    /// # Errors
    /// Not a disk item; unreadable or inconsistent content map; no room for the
    /// temporary file.
    pub fn open(repo: &'a Repository, index: &'a ChunkIndex, item: &Item) -> Result<Self> {
        if item.kind != ItemKind::Disk {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("item `{}` is not a disk image", item.name),
            ));
        }
        let tmp_err = |e| Error::io(format!("temporary file for the map of `{}`", item.name), e);
        let records = tempfile::tempfile().map_err(tmp_err)?;
        let mut out = BufWriter::with_capacity(1 << 20, &records);
        let (mut count, mut sparse, mut pos) = (0u64, Vec::new(), 0u64);
        for ev in read_map(repo, index, item) {
            if let MapEvent::Extents(v) = ev? {
                for e in v {
                    if count % WINDOW == 0 {
                        sparse.push(pos);
                    }
                    out.write_all(&encode(pos, &e)).map_err(tmp_err)?;
                    count += 1;
                    pos = pos.checked_add(e.len()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::Corrupt,
                            format!("the content map of `{}` overflows", item.name),
                        )
                    })?;
                }
            }
        }
        out.flush().map_err(tmp_err)?;
        drop(out);
        if pos != item.size {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "the content map of `{}` covers {pos} bytes, the item records {}",
                    item.name, item.size
                ),
            ));
        }
        Ok(Self {
            repo,
            index,
            name: item.name.clone(),
            size: item.size,
            records,
            count,
            sparse,
            window: None,
            cache: VecDeque::new(),
        })
    }

    /// Extents of window `w`, read from the temporary file unless it is the one in use.
    fn window(&mut self, w: u64) -> Result<&[(u64, Extent)]> {
        if self.window.as_ref().is_none_or(|(n, _)| *n != w) {
            let first = w * WINDOW;
            let n = (self.count - first).min(WINDOW) as usize;
            let mut buf = vec![0u8; n * REC];
            rehydra_disk::read_exact_at(&self.records, &mut buf, first * REC as u64)
                .map_err(|e| Error::io(format!("temporary map file of `{}`", self.name), e))?;
            self.window = Some((w, buf.chunks_exact(REC).map(decode).collect()));
        }
        Ok(self.window.as_ref().map(|(_, v)| v.as_slice()).unwrap_or_default())
    }

    /// The item's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn chunk(&mut self, id: &Id) -> Result<&[u8]> {
        if let Some(i) = self.cache.iter().position(|(c, _)| c == id) {
            let hit = self
                .cache
                .remove(i)
                .unwrap_or_else(|| unreachable!("position found"));
            self.cache.push_front(hit);
        } else {
            let data = self.repo.read_chunk(self.index, id)?;
            if self.cache.len() >= CACHE_CHUNKS {
                self.cache.pop_back();
            }
            self.cache.push_front((*id, data));
        }
        Ok(self
            .cache
            .front()
            .map(|(_, d)| d.as_slice())
            .unwrap_or_default())
    }

    /// Read `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// Past the end; a chunk that is missing or fails verification.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("read past the end of `{}` (offset {offset})", self.name),
            ));
        }
        let mut done = 0usize;
        // the extent holding `offset`: its window by the sparse starts, then within it
        let mut w = (self.sparse.partition_point(|&s| s <= offset) as u64).saturating_sub(1);
        let mut i = self
            .window(w)?
            .partition_point(|(s, _)| *s <= offset)
            .saturating_sub(1);
        while done < buf.len() {
            if i as u64 == WINDOW {
                (w, i) = (w + 1, 0);
            }
            let (start, e) = self.window(w)?[i];
            let pos = offset + done as u64;
            let within = (pos - start) as usize;
            let n = (e.len() as usize - within).min(buf.len() - done);
            match e {
                Extent::Zero(_) => buf[done..done + n].fill(0),
                Extent::Data(id, len) => {
                    let data = self.chunk(&id)?;
                    if data.len() != len as usize {
                        return Err(Error::new(
                            ErrorKind::Corrupt,
                            format!(
                                "chunk {} holds {} bytes, the map says {len}",
                                id.short(),
                                data.len()
                            ),
                        ));
                    }
                    buf[done..done + n].copy_from_slice(&data[within..within + n]);
                }
            }
            done += n;
            i += 1;
        }
        Ok(())
    }
}

impl rehydra_disk::DiskImage for RestorePointDisk<'_> {
    fn format(&self) -> &'static str {
        "restore point"
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn spans(&self) -> Vec<rehydra_disk::Span> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; WINDOW as usize * REC];
        let mut first = 0u64;
        while first < self.count {
            let n = (self.count - first).min(WINDOW) as usize;
            // the file was written in full by `open`; a read failing now fails the spans
            // as if the disk were all data, which readers treat as "read it all"
            if rehydra_disk::read_exact_at(&self.records, &mut buf[..n * REC], first * REC as u64)
                .is_err()
            {
                return vec![rehydra_disk::Span::Data { offset: 0, len: self.size }];
            }
            for r in buf[..n * REC].chunks_exact(REC) {
                let (s, e) = decode(r);
                rehydra_disk::push_span(&mut out, s, e.len(), matches!(e, Extent::Data(..)));
            }
            first += n as u64;
        }
        out
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> rehydra_disk::Result<()> {
        self.read(offset, buf)
            .map_err(|e| rehydra_disk::DiskError::Io {
                path: self.name.clone(),
                source: std::io::Error::other(e.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::{Rng, RngCore, SeedableRng};

    use super::*;
    use crate::archiver::{BackupOptions, Source, SourceItem, backup};
    use crate::backend::LocalBackend;
    use crate::keys::KdfParams;
    use crate::progress::{Cancel, NoProgress};
    use crate::repository::{InitOptions, OpenOptions};

    /// Thousands of extents (data and holes), so reads cross the record windows.
    #[test]
    fn reads_anywhere_match_the_image_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(LocalBackend::new(dir.path().join("repo")));
        backend.create_layout().unwrap();
        let opts = InitOptions {
            kdf: KdfParams::insecure_for_tests(),
            ..InitOptions::default()
        };
        let repo = Repository::init(backend, b"pw", opts, OpenOptions::default()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut image = vec![0u8; 48 << 20];
        // data with a hole of 64 KiB after every 256 KiB
        for (k, part) in image.chunks_mut(64 << 10).enumerate() {
            if k % 5 != 4 {
                rng.fill_bytes(part);
            }
        }
        let path = dir.path().join("disk.img");
        std::fs::write(&path, &image).unwrap();
        let items = vec![SourceItem {
            name: "disk".into(),
            source: Source::Disk {
                path: path.clone(),
                format: rehydra_disk::Format::Raw,
            },
        }];
        let r = backup(&repo, items, &BackupOptions::default(), &NoProgress, &Cancel::default())
            .unwrap();
        let (index, _) = repo.load_index().unwrap();
        let snap = repo.load_restore_point(&r.id).unwrap();
        let mut disk = RestorePointDisk::open(&repo, &index, &snap.items[0]).unwrap();
        assert!(disk.count > 2 * WINDOW, "{} extents", disk.count);
        // reads that start just before a window's first extent and run into it
        let edges: Vec<u64> = disk.sparse[1..].iter().map(|s| s - 100).collect();
        let random: Vec<u64> = (0..200)
            .map(|_| rng.gen_range(0..image.len() as u64 - 1))
            .collect();
        for off in edges.into_iter().chain(random) {
            let len = rng.gen_range(1..=(200 << 10)).min(image.len() - off as usize);
            let mut buf = vec![1u8; len];
            disk.read(off, &mut buf).unwrap();
            assert!(buf == image[off as usize..off as usize + len], "at {off}+{len}");
        }
        let data: u64 = rehydra_disk::DiskImage::spans(&disk)
            .iter()
            .map(|s| match s {
                rehydra_disk::Span::Data { len, .. } => *len,
                rehydra_disk::Span::Zero { .. } => 0,
            })
            .sum();
        let holes = (0..768).filter(|k| k % 5 == 4).count() as u64;
        assert_eq!(data, (768 - holes) * (64 << 10), "holes are not data");
        let mut end = [0u8; 1];
        assert!(disk.read(image.len() as u64, &mut end).is_err());
    }
}
