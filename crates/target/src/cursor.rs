//! The folders of the path being written, kept open while a tree is restored depth
//! first: each file costs one `openat` in its folder, each folder is synced once after
//! the files renamed into it, and no more handles are open than the tree is deep.

use crate::{Result, TargetDir};

/// See the module documentation.
pub struct Cursor {
    root: TargetDir,
    root_dirty: bool,
    root_made: bool,
    /// Name, handle, received entries, made by this cursor.
    stack: Vec<(String, TargetDir, bool, bool)>,
}

impl Cursor {
    /// A cursor at `root`; `root_made` says whether the caller just created it.
    pub fn new(root: TargetDir, root_made: bool) -> Self {
        Self {
            root,
            root_dirty: false,
            root_made,
            stack: Vec::new(),
        }
    }

    /// Whether the current folder was made by this restore (only such folders, or
    /// existing ones with the admin's consent, take the metadata of the restore point).
    pub fn made(&self) -> bool {
        self.stack.last().map_or(self.root_made, |e| e.3)
    }

    /// The folder the cursor starts from.
    pub fn root(&self) -> &TargetDir {
        &self.root
    }

    /// The folder at `comps` below the root, created as needed, never through a link;
    /// folders left on the way are synced if files were renamed into them.
    ///
    /// # Errors
    /// A component is a link or not a folder; creating or syncing failed.
    pub fn cd<S: AsRef<str>>(&mut self, comps: &[S]) -> Result<&TargetDir> {
        let common = self
            .stack
            .iter()
            .zip(comps)
            .take_while(|((n, _, _, _), c)| n == c.as_ref())
            .count();
        while self.stack.len() > common {
            let (_, d, dirty, _) = self.stack.pop().expect("non-empty");
            if dirty {
                d.sync()?;
            }
        }
        for c in &comps[common..] {
            let parent = self.stack.last().map_or(&self.root, |e| &e.1);
            let (d, made) = parent
                .child_made(c.as_ref(), true)?
                .expect("created when missing");
            self.stack.push((c.as_ref().to_string(), d, false, made));
        }
        Ok(self.stack.last().map_or(&self.root, |e| &e.1))
    }

    /// Note that an entry was renamed into (or created in) the current folder.
    pub fn mark_dirty(&mut self) {
        match self.stack.last_mut() {
            Some((_, _, dirty, _)) => *dirty = true,
            None => self.root_dirty = true,
        }
    }

    /// Sync every folder that received entries and is still open, the root last.
    ///
    /// # Errors
    /// A sync failed.
    pub fn close(mut self) -> Result<()> {
        self.cd::<&str>(&[])?;
        if self.root_dirty {
            self.root.sync()?;
        }
        Ok(())
    }
}
