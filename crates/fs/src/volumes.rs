//! The two file systems: NTFS through the `ntfs` crate (it reads through a borrowed
//! `Read + Seek`), ext2/3/4 through `ext4-view` (which wants an owned `'static` reader: a
//! small proxy forwards its reads over a channel to a scoped thread that owns the borrowed
//! disk).

use std::io::Write;

use crossbeam_channel::{Receiver, Sender, bounded};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsFileNamespace;
use ntfs::{Ntfs, NtfsFile, NtfsReadSeek};
use rehydra_disk::DiskImage;

use crate::{Entry, EntryKind, FsError, PartReader, Partition, Result, Volume};

/// Open the file system of `part` and run `f` on it.
///
/// # Errors
/// No file system we read; a damaged one; whatever `f` returns.
pub fn with_volume<T>(
    disk: &mut dyn DiskImage,
    part: &Partition,
    f: impl FnOnce(&mut dyn Volume) -> Result<T>,
) -> Result<T> {
    match crate::partitions::detect_filesystem(disk, part.start).as_str() {
        "ntfs" => {
            let mut fs = PartReader::new(disk, part.start, part.size);
            let mut ntfs =
                Ntfs::new(&mut fs).map_err(|e| FsError::Malformed(format!("NTFS: {e}")))?;
            ntfs.read_upcase_table(&mut fs)
                .map_err(|e| FsError::Malformed(format!("NTFS: {e}")))?;
            f(&mut NtfsVolume { ntfs, fs })
        }
        "ext4" => std::thread::scope(|s| {
            let (req_tx, req_rx) = bounded::<(u64, usize)>(1);
            let (resp_tx, resp_rx) = bounded::<std::io::Result<Vec<u8>>>(1);
            let (start, size) = (part.start, part.size);
            s.spawn(move || {
                let mut r = PartReader::new(disk, start, size);
                for (off, n) in req_rx {
                    let mut b = vec![0u8; n];
                    let res = r.read_exact_at(off, &mut b).map(|()| b);
                    if resp_tx.send(res).is_err() {
                        break;
                    }
                }
            });
            let fs = ext4_view::Ext4::load(Box::new(Proxy {
                tx: req_tx,
                rx: resp_rx,
            }))
            .map_err(|e| FsError::Malformed(format!("ext4: {e}")))?;
            f(&mut Ext4Volume { fs })
            // the proxy (inside `fs`) is dropped here, which ends the reader thread
        }),
        _ => Err(FsError::Unsupported(format!(
            "partition {} holds no NTFS or ext2/3/4 file system this build reads",
            part.number
        ))),
    }
}

/// The names of an NTFS path: `/` or `\\` separate them (NTFS allows neither in a name).
fn ntfs_components(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// The names of an ext4 path: only `/` separates them (`\\` is an ordinary character).
fn ext_components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn nt_to_unix_ns(t: ntfs::NtfsTime) -> i64 {
    // 100 ns ticks since 1601-01-01
    (t.nt_timestamp() as i64 - 116_444_736_000_000_000).saturating_mul(100)
}

struct NtfsVolume<'a> {
    ntfs: Ntfs,
    fs: PartReader<'a>,
}

fn ntfs_err(path: &str) -> impl Fn(ntfs::NtfsError) -> FsError + '_ {
    move |e| FsError::Malformed(format!("NTFS, {path}: {e}"))
}

impl NtfsVolume<'_> {
    fn resolve<'n>(ntfs: &'n Ntfs, fs: &mut PartReader<'_>, path: &str) -> Result<NtfsFile<'n>> {
        Self::resolve_named(ntfs, fs, path).map(|(f, _)| f)
    }

    /// The file at `path` and its name as stored (NTFS compares names case-insensitively).
    fn resolve_named<'n>(
        ntfs: &'n Ntfs,
        fs: &mut PartReader<'_>,
        path: &str,
    ) -> Result<(NtfsFile<'n>, String)> {
        let mut file = ntfs.root_directory(fs).map_err(ntfs_err(path))?;
        let mut name = String::new();
        for c in ntfs_components(path) {
            if !file.is_directory() {
                return Err(FsError::NotFound(format!("{path}: `{c}` is below a file")));
            }
            let index = file.directory_index(fs).map_err(ntfs_err(path))?;
            let mut finder = index.finder();
            let entry = NtfsFileNameIndex::find(&mut finder, ntfs, fs, c)
                .ok_or_else(|| FsError::NotFound(format!("{path}: no `{c}`")))?
                .map_err(ntfs_err(path))?;
            if let Some(Ok(key)) = entry.key() {
                name = key.name().to_string_lossy();
            }
            file = entry.to_file(ntfs, fs).map_err(ntfs_err(path))?;
        }
        Ok((file, name))
    }
}

fn entry_of(
    fs: &mut PartReader<'_>,
    file: &NtfsFile<'_>,
    name: String,
    path: &str,
) -> Result<Entry> {
    let info = file.info().map_err(ntfs_err(path))?;
    let mtime_ns = nt_to_unix_ns(info.modification_time());
    let id = Some(file.file_record_number());
    let (kind, size) = if name.contains(['/', '\\']) {
        // NTFS allows neither: a damaged or hostile index; never resolved as a path
        (EntryKind::Other, 0)
    } else if file.is_directory() {
        (EntryKind::Dir, 0)
    } else {
        match file.data(fs, "") {
            Some(item) => {
                let item = item.map_err(ntfs_err(path))?;
                let size = item.to_attribute().map_err(ntfs_err(path))?.value_length();
                (EntryKind::File, size)
            }
            // no unnamed data stream: a reparse point or similar
            None => (EntryKind::Other, 0),
        }
    };
    Ok(Entry {
        name,
        kind,
        size,
        mtime_ns,
        id,
        note: None,
    })
}

impl Volume for NtfsVolume<'_> {
    fn kind(&self) -> &'static str {
        "ntfs"
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let ntfs = &self.ntfs;
        let dir = Self::resolve(ntfs, &mut self.fs, path)?;
        if !dir.is_directory() {
            return Err(FsError::NotFound(format!("{path} is not a folder")));
        }
        let index = dir.directory_index(&mut self.fs).map_err(ntfs_err(path))?;
        let mut iter = index.entries();
        let mut names = Vec::new();
        while let Some(e) = iter.next(&mut self.fs) {
            let e = e.map_err(ntfs_err(path))?;
            let Some(key) = e.key() else { continue };
            let key = key.map_err(ntfs_err(path))?;
            if key.namespace() == NtfsFileNamespace::Dos {
                continue;
            }
            let name = key.name().to_string_lossy();
            if name == "." {
                continue;
            }
            names.push(name);
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if n.contains(['/', '\\']) {
                // NTFS allows neither in a name: never resolve it as a path
                out.push(Entry {
                    name: n,
                    kind: EntryKind::Other,
                    size: 0,
                    mtime_ns: 0,
                    id: None,
                    note: None,
                });
                continue;
            }
            let child = format!("{}/{n}", path.trim_end_matches('/'));
            let f = Self::resolve(&self.ntfs, &mut self.fs, &child)?;
            out.push(entry_of(&mut self.fs, &f, n, &child)?);
        }
        Ok(out)
    }

    fn stat(&mut self, path: &str) -> Result<Entry> {
        let (f, name) = Self::resolve_named(&self.ntfs, &mut self.fs, path)?;
        entry_of(&mut self.fs, &f, name, path)
    }

    fn read(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let ntfs = &self.ntfs;
        let f = Self::resolve(ntfs, &mut self.fs, path)?;
        if f.is_directory() {
            return Err(FsError::NotFound(format!("{path} is a folder")));
        }
        let item = f
            .data(&mut self.fs, "")
            .ok_or_else(|| FsError::Unsupported(format!("{path} has no data stream")))?
            .map_err(ntfs_err(path))?;
        let attr = item.to_attribute().map_err(ntfs_err(path))?;
        let mut value = attr.value(&mut self.fs).map_err(ntfs_err(path))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = value.read(&mut self.fs, &mut buf).map_err(ntfs_err(path))?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n])
                .map_err(|e| FsError::Io(e.to_string()))?;
            total += n as u64;
        }
    }

    fn read_link(&mut self, path: &str) -> Result<String> {
        Err(FsError::Unsupported(format!(
            "{path}: NTFS reparse points are not restored"
        )))
    }

    fn exact_ids(&self) -> bool {
        true
    }

    fn parent_id(&mut self, _path: &str) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// An `Ext4Read` that asks the reader thread for bytes.
struct Proxy {
    tx: Sender<(u64, usize)>,
    rx: Receiver<std::io::Result<Vec<u8>>>,
}

impl ext4_view::Ext4Read for Proxy {
    fn read(
        &mut self,
        start: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.tx.send((start, dst.len()))?;
        let b = self.rx.recv()??;
        dst.copy_from_slice(&b);
        Ok(())
    }
}

struct Ext4Volume {
    fs: ext4_view::Ext4,
}

fn ext_err(path: &str) -> impl Fn(ext4_view::Ext4Error) -> FsError + '_ {
    move |e| match e {
        ext4_view::Ext4Error::NotFound => FsError::NotFound(format!("{path}: not found")),
        e => FsError::Malformed(format!("ext4, {path}: {e}")),
    }
}

fn ext_entry(name: String, m: &ext4_view::Metadata) -> Entry {
    let t = m.modified();
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_regular_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    Entry {
        name,
        kind,
        size: if kind == EntryKind::File { m.len() } else { 0 },
        mtime_ns: t.seconds() * 1_000_000_000 + i64::from(t.nanoseconds()),
        id: Some(ext_identity(m)),
        note: None,
    }
}

/// An ext4 inode's identity from what `ext4-view` tells (it keeps inode numbers to
/// itself): times to the nanosecond, creation time included, mode and owner.
fn ext_identity(m: &ext4_view::Metadata) -> u64 {
    use std::hash::{Hash, Hasher};
    let t = |t: ext4_view::Timestamp| (t.seconds(), t.nanoseconds());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        t(m.modified()),
        t(m.accessed()),
        m.created().map(t),
        m.mode(),
        m.uid(),
        m.gid(),
    )
        .hash(&mut h);
    h.finish()
}

fn ext_path(path: &str) -> String {
    format!("/{}", ext_components(path).join("/"))
}

impl Volume for Ext4Volume {
    fn kind(&self) -> &'static str {
        "ext4"
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let p = ext_path(path);
        let mut out = Vec::new();
        for e in self.fs.read_dir(p.as_str()).map_err(ext_err(path))? {
            let e = e.map_err(ext_err(path))?;
            let name = e
                .file_name()
                .as_str()
                .map_err(|_| FsError::Unsupported(format!("{path}: a file name is not UTF-8")))?
                .to_string();
            if name == "." || name == ".." {
                continue;
            }
            let m = e.metadata().map_err(ext_err(path))?;
            out.push(ext_entry(name, &m));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn stat(&mut self, path: &str) -> Result<Entry> {
        let p = ext_path(path);
        let m = self
            .fs
            .symlink_metadata(p.as_str())
            .map_err(ext_err(path))?;
        Ok(ext_entry(
            ext_components(path)
                .last()
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
            &m,
        ))
    }

    fn read(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let p = ext_path(path);
        let mut f = self.fs.open(p.as_str()).map_err(ext_err(path))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = f.read_bytes(&mut buf).map_err(ext_err(path))?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n])
                .map_err(|e| FsError::Io(e.to_string()))?;
            total += n as u64;
        }
    }

    fn exact_ids(&self) -> bool {
        false
    }

    fn parent_id(&mut self, path: &str) -> Result<Option<u64>> {
        // `..` as a path component follows the folder's own parent entry
        let up = format!("{}/..", path.trim_end_matches('/'));
        let meta = self
            .fs
            .symlink_metadata(ext_path(&up).as_str())
            .map_err(ext_err(path))?;
        let names: Vec<String> = self.list(&up)?.into_iter().map(|e| e.name).collect();
        Ok(Some(crate::folder_identity(
            ext_identity(&meta),
            names.iter().map(String::as_str),
        )))
    }

    fn read_link(&mut self, path: &str) -> Result<String> {
        let p = ext_path(path);
        let t = self.fs.read_link(p.as_str()).map_err(ext_err(path))?;
        t.to_str()
            .map(str::to_string)
            .map_err(|_| FsError::Unsupported(format!("{path}: link target is not UTF-8")))
    }
}
