//! The filesystem calls [`FileBackend`](super::file_backend::FileBackend) makes, behind one trait.
//!
//! [`RealFs`] hands each call to the kernel; it is what every real use of the file backend gets.
//! [`CrashFs`](super::crash_fs::CrashFs) models a page cache instead, so a test can cut the power
//! between any two calls and see what the disk would hold after the crash, with the production
//! file backend and store code making the calls. The trait is exactly the calls the backend needs,
//! each doing what its `std::fs` namesake does.

use super::backend::CrossProcessGuard;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// How [`Fs::open_write`] opens a file (always for writing, creating it with the given mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenWrite {
    /// Fail with `AlreadyExists` if the name is taken (`O_CREAT | O_EXCL`).
    CreateNew,
    /// Create or empty it (`O_CREAT | O_TRUNC`): the pre-fix `open(path, "w")`.
    Truncate,
    /// Create it or write over it from the start, keeping any longer tail (`O_CREAT`).
    InPlace,
}

/// What an open file for reading tells about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    /// A regular file (not a directory, device, pipe or socket).
    pub is_file: bool,
    pub len: u64,
}

/// A file open for reading.
pub trait ReadFile: Send {
    /// Metadata of the open handle (so the file checked is the file read).
    fn stat(&self) -> io::Result<Stat>;
    /// Reads to the end, but at most `limit` bytes.
    fn read_limited(&mut self, limit: u64) -> io::Result<Vec<u8>>;
}

/// A file open for writing.
pub trait WriteFile: Send {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// fsync: the file's data (and size) are on disk when this returns. Its *name* is not: that
    /// takes [`Fs::sync_dir`] of the directory holding it.
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The filesystem calls of the file backend.
pub trait Fs: Send + Sync + fmt::Debug + 'static {
    /// Opens an existing file (or directory) for reading; `NotFound` when there is none.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>>;
    fn open_write(&self, path: &Path, how: OpenWrite, mode: u32) -> io::Result<Box<dyn WriteFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn hard_link(&self, original: &Path, link: &Path) -> io::Result<()>;
    /// Copies the contents of `from` to `to` (created or replaced).
    fn copy(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Atomically replaces `to` with `from` (`rename(2)`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsync of a directory: the names in it (new, removed, renamed) are on disk.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether the name exists (without following a symlink).
    fn exists(&self, path: &Path) -> bool;
    /// The names in a directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// An advisory lock on `path` (created 0600 if missing): waits for it when `wait`, else
    /// returns `None` if another holder has it. Dropping the guard releases it.
    fn lock(&self, path: &Path, mode: u32, wait: bool) -> io::Result<Option<Box<dyn CrossProcessGuard>>>;
}

/// The kernel's filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl ReadFile for File {
    fn stat(&self) -> io::Result<Stat> {
        let m = self.metadata()?;
        Ok(Stat {
            is_dir: m.is_dir(),
            is_file: m.is_file(),
            len: m.len(),
        })
    }

    fn read_limited(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

impl WriteFile for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }
}

impl Fs for RealFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        Ok(Box::new(File::open(path)?))
    }

    fn open_write(&self, path: &Path, how: OpenWrite, mode: u32) -> io::Result<Box<dyn WriteFile>> {
        let mut o = OpenOptions::new();
        o.write(true).mode(mode);
        match how {
            OpenWrite::CreateNew => o.create_new(true),
            OpenWrite::Truncate => o.create(true).truncate(true),
            OpenWrite::InPlace => o.create(true).truncate(false),
        };
        Ok(Box::new(o.open(path)?))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn hard_link(&self, original: &Path, link: &Path) -> io::Result<()> {
        fs::hard_link(original, link)
    }

    fn copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::copy(from, to).map(drop)
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn exists(&self, path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok()
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn lock(&self, path: &Path, mode: u32, wait: bool) -> io::Result<Option<Box<dyn CrossProcessGuard>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .open(path)?;
        if wait {
            file.lock()?;
            // Closing the file (dropping the guard) releases the lock.
            return Ok(Some(Box::new(file)));
        }
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
