//! Writing a file whose zero blocks stay holes: a guest's sparse file (or any run of
//! zeros) costs no disk space in the target.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

const BLOCK: usize = 4096;

/// A [`Write`] over a new file that seeks over every all-zero 4 KiB block (aligned to
/// the file offset) instead of writing it; [`SparseWriter::finish`] sets the length.
pub struct SparseWriter {
    file: File,
    /// Logical position (bytes accepted so far).
    pos: u64,
    /// Where the file cursor is.
    at: u64,
}

impl SparseWriter {
    /// Wrap a new, empty file.
    pub fn new(file: File) -> Self {
        Self {
            file,
            pos: 0,
            at: 0,
        }
    }

    /// Set the length (trailing holes included) and give the file back.
    ///
    /// # Errors
    /// The length cannot be set.
    pub fn finish(self) -> io::Result<File> {
        self.file.set_len(self.pos)?;
        Ok(self.file)
    }

    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        if data.iter().all(|b| *b == 0) {
            self.pos += data.len() as u64;
            return Ok(());
        }
        if self.at != self.pos {
            self.file.seek(SeekFrom::Start(self.pos))?;
        }
        self.file.write_all(data)?;
        self.pos += data.len() as u64;
        self.at = self.pos;
        Ok(())
    }
}

impl Write for SparseWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            // up to the next block boundary of the file
            let room = BLOCK - (self.pos % BLOCK as u64) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.put(now)?;
            rest = later;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn zeros_become_holes_and_data_stays() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let mut w = SparseWriter::new(File::create(&p).unwrap());
        let mut data = vec![0u8; 64 << 20];
        data[5000] = 7; // in the second block
        data[(64 << 20) - 1] = 9; // the last byte
        for part in data.chunks(1_000_003) {
            w.write_all(part).unwrap();
        }
        w.write_all(&[0u8; 10_000]).unwrap(); // trailing zeros
        drop(w.finish().unwrap());
        let mut back = Vec::new();
        File::open(&p).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), data.len() + 10_000);
        assert!(back[..data.len()] == data[..] && back[data.len()..].iter().all(|b| *b == 0));
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let blocks = std::fs::metadata(&p).unwrap().blocks();
            assert!(
                blocks * 512 <= 64 << 10,
                "only the two data blocks take space: {blocks}"
            );
        }
    }
}
