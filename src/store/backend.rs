//! Where the bytes of `accounts.toml` live: a real file, or memory.
//!
//! Store modes are written once against this trait. [`MemoryBackend`] serves virtual-time runs and
//! loom models (no disk, deterministic); [`FileBackend`] does real I/O for real mode, tests,
//! benchmarks and `credpool torture`. The operations are the ones the modes differ in: a
//! truncating in-place write (the pre-fix code), an atomic temp-file-and-rename write with optional
//! fsyncs and backup (the fix and beyond), and a cross-process lock.

use std::io;

/// How [`Backend::write_atomic`] makes a write safe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtomicWrite {
    /// fsync the temp file before the rename and the directory after it.
    pub fsync: bool,
    /// Copy the current file to a backup first, and restore it if the rename fails.
    pub backup: bool,
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
}

/// The file in memory. Every operation is atomic on its own (a sync mutex); the lost updates and
/// empty reads of the naive mode come from the gaps *between* operations, exactly as on disk.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    content: crate::sync::Mutex<Option<String>>,
}

impl MemoryBackend {
    pub fn new(initial: Option<String>) -> Self {
        MemoryBackend {
            content: crate::sync::Mutex::new(initial),
        }
    }

    /// The current contents (for audits and tests).
    pub fn contents(&self) -> Option<String> {
        self.content.lock().clone()
    }
}

impl Backend for MemoryBackend {
    fn label(&self) -> String {
        "memory:accounts.toml".into()
    }

    fn read(&self) -> io::Result<Option<String>> {
        Ok(self.content.lock().clone())
    }

    fn truncate(&self) -> io::Result<()> {
        *self.content.lock() = Some(String::new());
        Ok(())
    }

    fn write_in_place(&self, text: &str) -> io::Result<()> {
        *self.content.lock() = Some(text.to_string());
        Ok(())
    }

    fn write_atomic(&self, text: &str, how: AtomicWrite) -> io::Result<u32> {
        *self.content.lock() = Some(text.to_string());
        Ok(if how.fsync { 2 } else { 0 })
    }

    fn lock_cross_process(&self) -> io::Result<Box<dyn CrossProcessGuard>> {
        Ok(Box::new(()))
    }
}

pub use super::file_backend::FileBackend;
