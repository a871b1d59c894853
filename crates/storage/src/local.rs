//! A repository in a local folder (or an SMB share mounted or addressed by UNC path).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{
    Backend, FileInfo, FileKind, Result, StorageError as Error, StorageErrorKind as ErrorKind,
};

/// Repository files under one folder.
pub struct LocalBackend {
    root: PathBuf,
}

const TMP_DIR: &str = "tmp";

impl LocalBackend {
    /// A backend rooted at `root` (the folder need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create the folder layout for a new repository.
    ///
    /// # Errors
    /// I/O failure.
    pub fn create_layout(&self) -> Result<()> {
        for d in [
            "keys",
            "packs",
            "index",
            "snapshots",
            "locks",
            "prune",
            TMP_DIR,
        ] {
            let p = self.root.join(d);
            fs::create_dir_all(&p)
                .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        }
        for b in 0..=255u8 {
            let p = self.root.join("packs").join(format!("{b:02x}"));
            fs::create_dir_all(&p)
                .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        }
        sync_dir(&self.root);
        Ok(())
    }

    fn path(&self, kind: FileKind, name: &str) -> PathBuf {
        match kind {
            FileKind::Config => self.root.join("config"),
            FileKind::Pack => self
                .root
                .join("packs")
                .join(name.get(..2).unwrap_or("00"))
                .join(name),
            _ => self.root.join(kind.dir()).join(name),
        }
    }
}

/// Put the finished temporary file `tmp` at `dest` without replacing anything there: a hard
/// link fails atomically when `dest` exists. Where the file system has no hard links (some
/// SMB servers, FAT), a rename after a check; the names are random ids and one writer
/// creates each, so the window is for bugs, not for races.
fn place(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if dest.exists() => Err(std::io::ErrorKind::AlreadyExists.into()),
        Err(_) => fs::rename(tmp, dest),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Make the rename durable. Best effort: some network file systems refuse it.
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

fn valid_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        || name.starts_with('.')
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid repository file name `{name}`"),
        ));
    }
    Ok(())
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        valid_name(name)?;
        let dest = self.path(kind, name);
        let tmp_dir = self.root.join(TMP_DIR);
        let tmp = tmp_dir.join(format!("{:016x}.tmp", rand::random::<u64>()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(format!("writing {}", dest.display()), e));
        }
        if let Some(parent) = dest.parent()
            && !parent.exists()
        {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let placed = place(&tmp, &dest);
        let _ = fs::remove_file(&tmp);
        placed.map_err(|e| Error::io(format!("writing {}", dest.display()), e))?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent);
        }
        Ok(())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        valid_name(name)?;
        let p = self.path(kind, name);
        fs::read(&p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
        valid_name(name)?;
        let p = self.path(kind, name);
        let mut f = File::open(&p).map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
        let mut buf = vec![0u8; len as usize];
        // the file is opened for this read alone, so its cursor is ours
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::new(
                        ErrorKind::Truncated,
                        format!(
                            "{} is truncated: wanted {len} bytes at offset {offset}",
                            p.display()
                        ),
                    )
                } else {
                    Error::io(format!("reading {}", p.display()), e)
                }
            })?;
        Ok(buf)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let p = self.path(kind, name);
        Ok(fs::metadata(&p)
            .map_err(|e| Error::io(format!("stat {}", p.display()), e))?
            .len())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        let mut visit = |dir: &Path| -> Result<()> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
            };
            for entry in rd {
                let entry =
                    entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let md = entry
                    .metadata()
                    .map_err(|e| Error::io(format!("stat {name}"), e))?;
                if md.is_file() {
                    out.push(FileInfo {
                        name,
                        size: md.len(),
                    });
                }
            }
            Ok(())
        };
        match kind {
            FileKind::Config => {
                if let Ok(md) = fs::metadata(self.root.join("config")) {
                    out.push(FileInfo {
                        name: "config".into(),
                        size: md.len(),
                    });
                }
            }
            FileKind::Pack => {
                let packs = self.root.join("packs");
                let rd = fs::read_dir(&packs)
                    .map_err(|e| Error::io(format!("listing {}", packs.display()), e))?;
                for sub in rd {
                    let sub =
                        sub.map_err(|e| Error::io(format!("listing {}", packs.display()), e))?;
                    if sub.path().is_dir() {
                        visit(&sub.path())?;
                    }
                }
            }
            _ => visit(&self.root.join(kind.dir()))?,
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        valid_name(name)?;
        let p = self.path(kind, name);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("deleting {}", p.display()), e)),
        }
    }

    fn clean_leftovers(&self, age: std::time::Duration) -> Result<usize> {
        let dir = self.root.join(TMP_DIR);
        let mut n = 0;
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(0);
        };
        for entry in rd.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().map(|e| e >= age).unwrap_or(false))
                .unwrap_or(false);
            if old && fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}
