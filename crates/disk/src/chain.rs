//! Differencing chains (AVHDX, differencing VHD): a child disk holds what changed, its
//! parent (and the parent's parent…) the rest. Reading the chain gives the merged virtual
//! disk, which is what a backup stores.
//!
//! Parents are found through the child's parent locator: the recorded paths are tried in
//! order (relative to the child first; Windows paths have their `\` turned into `/`; a
//! recorded absolute path that does not exist here is also looked for by file name next
//! to the child, as when a VM folder was copied). A candidate is accepted only if its
//! identity matches the child's linkage (VHDX DataWriteGuid, VHD unique id), so a parent
//! that was modified or replaced is an error, never a wrong disk. Missing parents, loops,
//! size mismatches and chains deeper than 64 are errors naming the file.

use std::path::{Path, PathBuf};

use crate::blockmap::{BlockMap, Run, Slot, check_read, push_span};
use crate::vhdx::Source;
use crate::{DiskError, DiskImage, OpenOptions, Result, Span};

/// Longest chain followed.
const MAX_DEPTH: usize = 64;

/// Where a differencing disk says its parent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// Paths as recorded, in the order to try them.
    pub paths: Vec<String>,
    /// Identities the parent may have (any one matches).
    pub linkage: Vec<[u8; 16]>,
}

/// One image of a chain.
pub(crate) trait Layer: DiskImage {
    /// Its block map, its (replayed) bytes and its path.
    fn parts(&mut self) -> (&mut BlockMap, &dyn Source, &Path);
    /// Its block map.
    fn map_ref(&self) -> &BlockMap;
    /// What a child's linkage must name.
    fn identity(&self) -> [u8; 16];
    /// Its parent, for a differencing disk.
    fn parent(&self) -> Option<&ParentRef>;
}

/// A GUID string (`{…}` optional) in on-disk byte order.
pub(crate) fn parse_guid(s: &str) -> Option<[u8; 16]> {
    guid_bytes(s.trim().as_bytes())
}

/// The GUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (braces and dashes optional) in its
/// on-disk byte order: the first three groups little-endian, the rest as written.
pub(crate) const fn guid_bytes(s: &[u8]) -> Option<[u8; 16]> {
    let (mut start, mut end) = (0, s.len());
    while start < end && s[start] == b'{' {
        start += 1;
    }
    while end > start && s[end - 1] == b'}' {
        end -= 1;
    }
    let mut digits = [0u8; 32];
    let mut n = 0;
    while start < end {
        let c = s[start];
        start += 1;
        if c == b'-' {
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        if n == 32 {
            return None;
        }
        digits[n] = d;
        n += 1;
    }
    if n != 32 {
        return None;
    }
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut g = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        g[i] = digits[ORDER[i] * 2] << 4 | digits[ORDER[i] * 2 + 1];
        i += 1;
    }
    Some(g)
}

/// The `{xxxxxxxx-xxxx-…}` form of an on-disk GUID (lower case: libvhdi parses
/// `parent_linkage` only in lower case; our parser takes either).
pub(crate) fn format_guid(g: &[u8; 16]) -> String {
    format!(
        "{{{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}}}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

/// Paths to try for a recorded parent path, relative to the child's folder.
fn candidates(child: &Path, recorded: &str) -> Vec<PathBuf> {
    let dir = child.parent().unwrap_or(Path::new("."));
    let windows_abs =
        recorded.len() > 2 && recorded.as_bytes()[1] == b':' || recorded.starts_with("\\\\");
    let unix = recorded.replace('\\', "/");
    let mut out = Vec::new();
    if windows_abs {
        if cfg!(windows) {
            out.push(PathBuf::from(recorded));
        }
    } else if Path::new(&unix).is_absolute() {
        out.push(PathBuf::from(&unix));
    } else {
        out.push(dir.join(unix.trim_start_matches("./")));
    }
    if let Some(name) = unix.rsplit('/').next().filter(|n| !n.is_empty()) {
        out.push(dir.join(name));
    }
    out
}

/// Find and open the parent of `child`; returns it and where it was found. Every
/// candidate goes through `opts` first: a refused one is never opened (the next one is
/// tried, and checked the same way).
fn open_parent(
    child: &Path,
    r: &ParentRef,
    opts: &OpenOptions<'_>,
) -> Result<(Box<dyn Layer>, PathBuf)> {
    let mut tried = Vec::new();
    let mut refused = Vec::new();
    let mut mismatch = None;
    for recorded in &r.paths {
        for c in candidates(child, recorded) {
            if tried.contains(&c) {
                continue;
            }
            tried.push(c.clone());
            let c = match opts.confine(&c) {
                Ok(p) => p,
                Err(why) => {
                    refused.push(format!("{} may not be opened: {why}", c.display()));
                    continue;
                }
            };
            if !c.is_file() {
                continue;
            }
            let layer = crate::open_layer(&c)?;
            if r.linkage.contains(&layer.identity()) {
                return Ok((layer, c));
            }
            mismatch = Some(c);
        }
    }
    if let Some(m) = mismatch {
        return Err(DiskError::malformed(
            child,
            format!(
                "its parent {} does not match the child's parent linkage {}: the parent was modified or replaced after the child was created",
                m.display(),
                r.linkage.first().map(format_guid).unwrap_or_default()
            ),
        ));
    }
    if !refused.is_empty() {
        return Err(DiskError::malformed(
            child,
            format!(
                "its parent disk (recorded as {}) may not be used: {}",
                r.paths.join(", "),
                refused.join("; ")
            ),
        ));
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(DiskError::malformed(
        child,
        format!(
            "its parent disk was not found (recorded as {}; looked for {}): put the parent next to it, or merge the chain first",
            r.paths.join(", "),
            list.join(", ")
        ),
    ))
}

/// A differencing disk with its parents, read as one virtual disk.
pub struct Chain {
    /// Child first.
    layers: Vec<Box<dyn Layer>>,
    size: u64,
    format: &'static str,
}

impl Chain {
    /// Follow `child`'s parents to the base disk.
    pub(crate) fn build(
        child: Box<dyn Layer>,
        child_path: &Path,
        opts: &OpenOptions<'_>,
    ) -> Result<Self> {
        let size = child.virtual_size();
        let format = child.format();
        let mut seen =
            vec![std::fs::canonicalize(child_path).unwrap_or_else(|_| child_path.to_path_buf())];
        let mut layers = vec![child];
        let mut path = child_path.to_path_buf();
        while let Some(r) = layers[layers.len() - 1].parent().cloned() {
            if layers.len() >= MAX_DEPTH {
                return Err(DiskError::unsupported(
                    child_path,
                    format!("the differencing chain is deeper than {MAX_DEPTH} disks"),
                ));
            }
            let (parent, ppath) = open_parent(&path, &r, opts)?;
            let canon = std::fs::canonicalize(&ppath).unwrap_or_else(|_| ppath.clone());
            if seen.contains(&canon) {
                return Err(DiskError::malformed(
                    child_path,
                    format!("the differencing chain loops back to {}", canon.display()),
                ));
            }
            if parent.virtual_size() != size {
                return Err(DiskError::malformed(
                    &ppath,
                    format!(
                        "parent virtual size {} differs from the child's {size}",
                        parent.virtual_size()
                    ),
                ));
            }
            seen.push(canon);
            layers.push(parent);
            path = ppath;
        }
        Ok(Self {
            layers,
            size,
            format,
        })
    }

    /// Number of disks in the chain (child and parents).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    fn read_layer(&mut self, i: usize, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (run, n) = {
                let (map, src, path) = self.layers[i].parts();
                let (run, n) = map.resolve(src, path, pos, (buf.len() - done) as u64)?;
                if let Run::Data(d) = run {
                    src.read_at(&mut buf[done..done + n as usize], d)
                        .map_err(|e| DiskError::io(path, e))?;
                }
                (run, n as usize)
            };
            match run {
                Run::Data(_) => {}
                Run::Zero => buf[done..done + n].fill(0),
                Run::Parent if i + 1 < self.layers.len() => {
                    self.read_layer(i + 1, pos, &mut buf[done..done + n])?
                }
                Run::Parent => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
}

impl DiskImage for Chain {
    fn format(&self) -> &'static str {
        self.format
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    /// A run is data if some layer, before one that says zero, stores it; the step is the
    /// smallest block size in the chain.
    fn spans(&self) -> Vec<Span> {
        let maps: Vec<&BlockMap> = self.layers.iter().map(|l| l.map_ref()).collect();
        let step = maps
            .iter()
            .map(|m| m.block_size)
            .min()
            .unwrap_or(self.size)
            .max(512);
        let mut out = Vec::new();
        let mut off = 0;
        while off < self.size {
            let len = step.min(self.size - off);
            let mut data = false;
            for m in &maps {
                match m.blocks.get((off / m.block_size) as usize) {
                    Some(Slot::Full(_) | Slot::Partial { .. }) => {
                        data = true;
                        break;
                    }
                    Some(Slot::Absent) if m.bitmaps.is_some() => {}
                    _ => break,
                }
            }
            push_span(&mut out, off, len, data);
            off += len;
        }
        out
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(Path::new(self.format), self.size, offset, buf.len())?;
        self.read_layer(0, offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_round_trips_in_disk_order() {
        let g = parse_guid("{83A9BE43-7D38-4B44-8BB9-0E1C1E1E3F10}").unwrap();
        assert_eq!(&g[..4], &[0x43, 0xBE, 0xA9, 0x83]);
        assert_eq!(format_guid(&g), "{83a9be43-7d38-4b44-8bb9-0e1c1e1e3f10}");
        assert!(parse_guid("{nope}").is_none());
    }

    #[test]
    fn recorded_paths_become_local_candidates() {
        let child = Path::new("/vms/web/disk-1.avhdx");
        assert_eq!(
            candidates(child, r".\disk.vhdx"),
            vec![
                PathBuf::from("/vms/web/disk.vhdx"),
                PathBuf::from("/vms/web/disk.vhdx")
            ]
        );
        let c = candidates(child, r"C:\ClusterStorage\Volume1\web\disk.vhdx");
        assert_eq!(c.last().unwrap(), &PathBuf::from("/vms/web/disk.vhdx"));
    }
}
