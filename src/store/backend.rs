//! Where the bytes of `accounts.toml` live: a real file, or memory.
//!
//! Store modes are written once against this trait. [`MemoryBackend`] serves virtual-time runs and
//! loom models (no disk, deterministic); [`FileBackend`] does real I/O for real mode, tests,
//! benchmarks and `credpool torture`. The operations are the ones the modes differ in: a
//! truncating in-place write (the pre-fix code), an atomic temp-file-and-rename write with optional
//! fsyncs and backup (the fix and beyond), and a cross-process lock.
//!
//! One more pair replays the shipped proxy's own save (`as_shipped`): [`Backend::open_shared_temp`]
//! and [`Backend::replace_with_shared_temp`] write through **one temp file name shared by every
//! writer** (`accounts.toml.tmp`), as the proxy did. A writer's open handle keeps pointing at the
//! file it opened, even after another writer renamed that file into place, exactly as an inode
//! does; that is how two unlocked saves leave duplicate keys, a missing temp file, or an empty
//! `accounts.toml` for a reader to find.

use std::io;
use std::sync::Arc;

/// How [`Backend::write_atomic`] makes a write safe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtomicWrite {
    /// fsync the temp file before the rename and the directory after it.
    pub fsync: bool,
    /// Copy the current file to a backup first, and restore it if the rename fails.
    pub backup: bool,
}

/// A writer's handle on the shared temp file, as `open("accounts.toml.tmp", "w")` returned it.
pub trait TempWriter: Send {
    /// Writes `text` at the start of the file this handle was opened on, without truncating it
    /// again: text a later writer left beyond `text`'s end stays (as a fresh handle's first
    /// write does). The file may meanwhile have been renamed into place by another writer.
    fn write(&mut self, text: &str) -> io::Result<()>;
}

/// Held while a process has the cross-process lock; dropping it releases the lock.
pub trait CrossProcessGuard: Send {}
impl<T: Send> CrossProcessGuard for T {}

pub trait Backend: Send + Sync + 'static {
    /// The path (or a name) for error messages.
    fn label(&self) -> String;

    /// The whole file, or `None` when it does not exist.
    fn read(&self) -> io::Result<Option<String>>;

    /// The first half of a truncating write: the file is now empty (what a concurrent reader of
    /// the pre-fix code could see).
    fn truncate(&self) -> io::Result<()>;

    /// The second half of a truncating write: the new contents, in place.
    fn write_in_place(&self, text: &str) -> io::Result<()>;

    /// Replaces the file atomically (temp file + rename). Returns the number of fsyncs done.
    fn write_atomic(&self, text: &str, how: AtomicWrite) -> io::Result<u32>;

    /// Blocks until this process holds the cross-process lock. The memory backend has one
    /// process only, so its guard is free.
    fn lock_cross_process(&self) -> io::Result<Box<dyn CrossProcessGuard>>;

    /// The cross-process lock if it can be had without waiting, else `None`. Lets an async caller
    /// take the uncontended lock inline and move only a real wait off the runtime's thread.
    /// The default suits backends whose [`Backend::lock_cross_process`] never blocks.
    fn try_lock_cross_process(&self) -> io::Result<Option<Box<dyn CrossProcessGuard>>> {
        self.lock_cross_process().map(Some)
    }

    /// Opens the one temp name every writer shares, creating it or truncating whatever another
    /// writer has put there (`open(tmp, "w")`). Only `as_shipped` uses it: no store mode does.
    fn open_shared_temp(&self) -> io::Result<Box<dyn TempWriter>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no shared temp file here"))
    }

    /// Backs the file up (when asked), then renames the shared temp file over it
    /// (`os.replace(tmp, path)`). [`io::ErrorKind::NotFound`] when another writer already renamed
    /// it away: the shipped proxy's "missing temp file" error.
    fn replace_with_shared_temp(&self, _backup: bool) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no shared temp file here"))
    }
}

/// The file in memory. Every operation is atomic on its own (a sync mutex); the lost updates and
/// empty reads of the naive mode come from the gaps *between* operations, exactly as on disk.
///
/// Names point at inodes, as on disk, so that a handle on the shared temp file keeps writing to
/// the same bytes after another writer renamed them into place.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    names: crate::sync::Mutex<Names>,
}

/// File contents that names and open handles share.
type Inode = Arc<crate::sync::Mutex<Vec<u8>>>;

fn inode(bytes: Vec<u8>) -> Inode {
    Arc::new(crate::sync::Mutex::new(bytes))
}

/// What the directory holds: `accounts.toml` and the shared temp name.
#[derive(Debug, Default)]
struct Names {
    file: Option<Inode>,
    shared_temp: Option<Inode>,
}

impl MemoryBackend {
    pub fn new(initial: Option<String>) -> Self {
        MemoryBackend {
            names: crate::sync::Mutex::new(Names {
                file: initial.map(|t| inode(t.into_bytes())),
                shared_temp: None,
            }),
        }
    }

    /// The current contents (for audits and tests); bytes that are not UTF-8 (a write cut into
    /// another's) are replaced, so the audit sees an unparsable file rather than none.
    pub fn contents(&self) -> Option<String> {
        let file = self.names.lock().file.clone()?;
        let bytes = file.lock().clone();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sets the file's contents in place (same inode), creating it if missing.
    fn set_in_place(&self, bytes: Vec<u8>) {
        let mut names = self.names.lock();
        match &names.file {
            Some(file) => *file.lock() = bytes,
            None => names.file = Some(inode(bytes)),
        }
    }
}

/// A handle on an in-memory inode.
struct MemoryTempWriter(Inode);

impl TempWriter for MemoryTempWriter {
    fn write(&mut self, text: &str) -> io::Result<()> {
        let mut bytes = self.0.lock();
        let n = text.len();
        if bytes.len() < n {
            bytes.resize(n, 0);
        }
        bytes[..n].copy_from_slice(text.as_bytes());
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn label(&self) -> String {
        "memory:accounts.toml".into()
    }

    fn read(&self) -> io::Result<Option<String>> {
        let Some(file) = self.names.lock().file.clone() else {
            return Ok(None);
        };
        let bytes = file.lock().clone();
        String::from_utf8(bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "is not valid UTF-8 text (byte {}): expected a TOML file",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }

    fn truncate(&self) -> io::Result<()> {
        self.set_in_place(Vec::new());
        Ok(())
    }

    fn write_in_place(&self, text: &str) -> io::Result<()> {
        self.set_in_place(text.as_bytes().to_vec());
        Ok(())
    }

    fn write_atomic(&self, text: &str, how: AtomicWrite) -> io::Result<u32> {
        // A rename: a new inode under the name; handles on the old one write to it alone.
        self.names.lock().file = Some(inode(text.as_bytes().to_vec()));
        Ok(if how.fsync { 2 } else { 0 })
    }

    fn lock_cross_process(&self) -> io::Result<Box<dyn CrossProcessGuard>> {
        Ok(Box::new(()))
    }

    fn open_shared_temp(&self) -> io::Result<Box<dyn TempWriter>> {
        let mut names = self.names.lock();
        let temp = match &names.shared_temp {
            Some(existing) => {
                existing.lock().clear();
                existing.clone()
            }
            None => {
                let fresh = inode(Vec::new());
                names.shared_temp = Some(fresh.clone());
                fresh
            }
        };
        Ok(Box::new(MemoryTempWriter(temp)))
    }

    fn replace_with_shared_temp(&self, _backup: bool) -> io::Result<()> {
        let mut names = self.names.lock();
        match names.shared_temp.take() {
            Some(temp) => {
                names.file = Some(temp);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "memory:accounts.toml.tmp: no such file (another writer renamed the shared temp file)",
            )),
        }
    }
}

pub use super::file_backend::FileBackend;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shipped proxy's shared temp name, replayed on `b` (whose file holds "original\n"):
    /// interleaved writers leave the tail of a longer text behind a shorter one, a rename of a
    /// file another writer has just truncated leaves an empty file in place, and the writer whose
    /// temp file was renamed away gets "missing temp file".
    pub(crate) fn shared_temp_collisions(b: &dyn Backend) {
        // Both open (truncate) before either writes: one inode, two handles.
        let mut first = b.open_shared_temp().unwrap();
        let mut second = b.open_shared_temp().unwrap();
        first.write("[[accounts]]\nemail = \"long@example.com\"\n").unwrap();
        second.write("[[accounts]]\nemail = \"s@x\"\n").unwrap();
        b.replace_with_shared_temp(true).unwrap();
        let mixed = b.read().unwrap().unwrap();
        assert_eq!(
            mixed, "[[accounts]]\nemail = \"s@x\"\nexample.com\"\n",
            "the tail of the longer text"
        );
        let missing = b.replace_with_shared_temp(true).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");

        // The first writes and is about to rename; the second opens (truncates) the same file.
        let mut first = b.open_shared_temp().unwrap();
        first.write("first\n").unwrap();
        let mut second = b.open_shared_temp().unwrap();
        b.replace_with_shared_temp(false).unwrap();
        assert_eq!(b.read().unwrap().as_deref(), Some(""), "a reader finds the file empty");
        second.write("second\n").unwrap();
        assert_eq!(
            b.read().unwrap().as_deref(),
            Some("second\n"),
            "the handle writes into the renamed file"
        );
        assert_eq!(
            b.replace_with_shared_temp(false).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn the_memory_backend_shares_one_temp_name_like_a_disk() {
        shared_temp_collisions(&MemoryBackend::new(Some("original\n".into())));
    }

    #[test]
    fn an_atomic_write_detaches_handles_on_the_old_file() {
        let b = MemoryBackend::new(Some("original\n".into()));
        let mut handle = b.open_shared_temp().unwrap();
        b.replace_with_shared_temp(false).unwrap();
        b.write_atomic("replaced\n", AtomicWrite::default()).unwrap();
        handle.write("late\n").unwrap();
        assert_eq!(b.contents().as_deref(), Some("replaced\n"));
    }
}
