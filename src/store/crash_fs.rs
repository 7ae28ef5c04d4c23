//! A power cut, simulated: a model of the page cache behind the file backend's filesystem calls.
//!
//! [`CrashFs`] implements [`Fs`], so the production [`FileBackend`](super::file_backend::FileBackend)
//! and the production store modes run on it unchanged (`FileBackend::with_fs`). It keeps two
//! copies of everything, what the page cache holds and what the disk holds, and moves a thing to
//! the disk only when the program asks:
//!
//! - a file's **data** (its bytes and size) reaches the disk when that file is fsynced
//!   ([`WriteFile::sync_all`]);
//! - a directory's **entries** (files created, removed, linked or renamed in it) reach the disk when
//!   that directory is fsynced ([`Fs::sync_dir`]).
//!
//! The two are independent, which is what POSIX promises and all a careful program may rely on:
//! an fsynced file whose name was never synced can vanish, and a renamed name whose data was never
//! synced can survive pointing at an empty file. [`CrashFs::crash`] is the power cut: what was not
//! made durable is lost, except what the kernel happened to write back on its own before the cut,
//! which [`Writeback`] chooses among the four corners (nothing; the directory entries only, e.g. a
//! journal commit of the metadata before the delayed data, the "zero-length file after a crash"
//! of ext4 without `auto_da_alloc`, data=writeback, or XFS; the data only; everything).
//! [`CrashFs::cut_power_after`] stops the machine after a given number of calls, so a test can
//! crash in the middle of a write as well as after it.
//!
//! What it does not model: partial writeback *within* one file or one directory (a torn write,
//! some entries of a directory but not others), ordering between directories, ext4's habit of
//! committing every pending metadata change on any fsync (stronger than modelled: a program safe
//! here is safe there), permissions or timestamps reaching the disk late, and read errors. Every
//! path lives in directories registered with [`CrashFs::mkdir`]; there is no nesting logic beyond
//! "the parent of a name". It is a test double for one process: the lock is a plain in-memory lock.

use super::backend::CrossProcessGuard;
use super::fs::{Fs, OpenWrite, ReadFile, Stat, WriteFile};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What the kernel wrote back by itself before the power went, beyond what was fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writeback {
    /// Nothing: only fsynced data and entries survive (the worst case).
    Nothing,
    /// Every directory entry, no unsynced data: a renamed-in file can come back empty.
    Entries,
    /// Every file's data, no unsynced entry: a rename can be forgotten.
    Data,
    /// Everything: as if the power had not gone at all.
    Everything,
}

impl Writeback {
    pub const ALL: [Writeback; 4] = [
        Writeback::Nothing,
        Writeback::Entries,
        Writeback::Data,
        Writeback::Everything,
    ];
}

#[derive(Clone, Debug, Default)]
struct Inode {
    /// The bytes as the page cache holds them (what reads see).
    cached: Vec<u8>,
    /// The bytes on disk (what a crash leaves).
    disk: Vec<u8>,
    mode: u32,
}

#[derive(Debug, Default)]
struct Model {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    dirs: BTreeSet<PathBuf>,
    /// Names as the page cache holds them.
    cached: BTreeMap<PathBuf, u64>,
    /// Names on disk.
    disk: BTreeMap<PathBuf, u64>,
    /// Filesystem calls made so far (every call counts, reads included).
    calls: u64,
    /// After this many calls the machine is off: every further call fails and changes nothing.
    power_cut_after: Option<u64>,
    /// Lock files currently held.
    locks: BTreeSet<PathBuf>,
}

impl Model {
    /// Counts a call; fails once the power is off.
    fn call(&mut self) -> io::Result<()> {
        if self.power_cut_after.is_some_and(|n| self.calls >= n) {
            return Err(io::Error::other("simulated power cut: the machine is off"));
        }
        self.calls += 1;
        Ok(())
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        self.cached.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.dirs.contains(p) => Ok(()),
            _ => Err(not_found(path)),
        }
    }

    fn new_inode(&mut self, mode: u32) -> u64 {
        self.next_inode += 1;
        self.inodes.insert(
            self.next_inode,
            Inode {
                mode,
                ..Inode::default()
            },
        );
        self.next_inode
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

/// The page-cache model. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct CrashFs {
    model: Arc<Mutex<Model>>,
    /// Signalled when a lock is released.
    unlocked: Arc<Condvar>,
}

impl CrashFs {
    pub fn new() -> CrashFs {
        CrashFs::default()
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        // A panic while holding the model's lock is a bug in a test; the model is still usable.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a directory (durable at once: it stands for a directory that existed before).
    pub fn mkdir(&self, dir: impl Into<PathBuf>) {
        self.model().dirs.insert(dir.into());
    }

    /// Filesystem calls made so far.
    pub fn calls(&self) -> u64 {
        self.model().calls
    }

    /// Turns the machine off after `calls` calls in total (counting those already made).
    pub fn cut_power_after(&self, calls: u64) {
        self.model().power_cut_after = Some(calls);
    }

    /// The power cut: keeps what is on disk, plus what `writeback` says the kernel wrote back by
    /// itself, and drops the rest. The machine is then on again, with an empty page cache, no lock
    /// held (every process died) and the call count kept.
    pub fn crash(&self, writeback: Writeback) {
        let mut m = self.model();
        if matches!(writeback, Writeback::Data | Writeback::Everything) {
            for inode in m.inodes.values_mut() {
                inode.disk.clone_from(&inode.cached);
            }
        }
        if matches!(writeback, Writeback::Entries | Writeback::Everything) {
            m.disk = m.cached.clone();
        }
        m.cached = m.disk.clone();
        let live: BTreeSet<u64> = m.disk.values().copied().collect();
        m.inodes.retain(|ino, _| live.contains(ino));
        for inode in m.inodes.values_mut() {
            inode.cached.clone_from(&inode.disk);
        }
        m.power_cut_after = None;
        m.locks.clear();
        drop(m);
        self.unlocked.notify_all();
    }

    /// What the disk holds under `path` (for assertions), or `None`.
    pub fn on_disk(&self, path: &Path) -> Option<Vec<u8>> {
        let m = self.model();
        m.disk.get(path).map(|ino| m.inodes[ino].disk.clone())
    }
}

struct ModelReader {
    stat: Stat,
    bytes: Vec<u8>,
}

impl ReadFile for ModelReader {
    fn stat(&self) -> io::Result<Stat> {
        Ok(self.stat)
    }

    fn read_limited(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let n = self.bytes.len().min(limit as usize);
        Ok(self.bytes[..n].to_vec())
    }
}

struct ModelWriter {
    fs: CrashFs,
    inode: u64,
    /// Where the next write lands (writes are sequential from the start of the file).
    position: usize,
}

impl WriteFile for ModelWriter {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut m = self.fs.model();
        m.call()?;
        // A file whose name is gone is still written (an open handle keeps its inode).
        let inode = m.inodes.entry(self.inode).or_default();
        let end = self.position + bytes.len();
        if inode.cached.len() < end {
            inode.cached.resize(end, 0);
        }
        inode.cached[self.position..end].copy_from_slice(bytes);
        self.position = end;
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        let mut m = self.fs.model();
        m.call()?;
        if let Some(inode) = m.inodes.get_mut(&self.inode) {
            inode.disk.clone_from(&inode.cached);
        }
        Ok(())
    }
}

/// A held model lock; released on drop.
struct ModelLock {
    fs: CrashFs,
    path: PathBuf,
}

impl Drop for ModelLock {
    fn drop(&mut self) {
        self.fs.model().locks.remove(&self.path);
        self.fs.unlocked.notify_all();
    }
}

impl Fs for CrashFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let mut m = self.model();
        m.call()?;
        if m.dirs.contains(path) {
            return Ok(Box::new(ModelReader {
                stat: Stat {
                    is_dir: true,
                    is_file: false,
                    len: 0,
                },
                bytes: Vec::new(),
            }));
        }
        let bytes = m.inodes[&m.inode_of(path)?].cached.clone();
        Ok(Box::new(ModelReader {
            stat: Stat {
                is_dir: false,
                is_file: true,
                len: bytes.len() as u64,
            },
            bytes,
        }))
    }

    fn open_write(&self, path: &Path, how: OpenWrite, mode: u32) -> io::Result<Box<dyn WriteFile>> {
        let mut m = self.model();
        m.call()?;
        m.parent_exists(path)?;
        if m.dirs.contains(path) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
        }
        let existing = m.cached.get(path).copied();
        let inode = match (how, existing) {
            (OpenWrite::CreateNew, Some(_)) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
            }
            (OpenWrite::Truncate, Some(ino)) => {
                m.inodes.get_mut(&ino).expect("named inode").cached.clear();
                ino
            }
            (OpenWrite::InPlace, Some(ino)) => ino,
            (_, None) => {
                let ino = m.new_inode(mode);
                m.cached.insert(path.to_path_buf(), ino);
                ino
            }
        };
        Ok(Box::new(ModelWriter {
            fs: self.clone(),
            inode,
            position: 0,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.call()?;
        m.cached.remove(path).map(drop).ok_or_else(|| not_found(path))
    }

    fn hard_link(&self, original: &Path, link: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.call()?;
        let ino = m.inode_of(original)?;
        m.parent_exists(link)?;
        if m.cached.contains_key(link) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
        }
        m.cached.insert(link.to_path_buf(), ino);
        Ok(())
    }

    fn copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.call()?;
        let source = m.inodes[&m.inode_of(from)?].clone();
        m.parent_exists(to)?;
        let ino = m.new_inode(source.mode);
        m.inodes.get_mut(&ino).expect("new inode").cached = source.cached;
        m.cached.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut m = self.model();
        m.call()?;
        let ino = m.inode_of(path)?;
        m.inodes.get_mut(&ino).expect("named inode").mode = mode;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.call()?;
        let ino = m.inode_of(from)?;
        m.parent_exists(to)?;
        if m.dirs.contains(to) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
        }
        m.cached.remove(from);
        m.cached.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.call()?;
        if !m.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        m.disk.retain(|p, _| !in_dir(p));
        let entries: Vec<(PathBuf, u64)> = m
            .cached
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in entries {
            m.disk.insert(p, ino);
            // The directory now names this inode on disk: a later crash keeps the inode, with
            // whatever of its data is durable.
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let mut m = self.model();
        m.call().is_ok() && (m.cached.contains_key(path) || m.dirs.contains(path))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut m = self.model();
        m.call()?;
        Ok(m.cached
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn lock(&self, path: &Path, mode: u32, wait: bool) -> io::Result<Option<Box<dyn CrossProcessGuard>>> {
        let mut m = self.model();
        m.call()?;
        m.parent_exists(path)?;
        if !m.cached.contains_key(path) {
            let ino = m.new_inode(mode);
            m.cached.insert(path.to_path_buf(), ino);
        }
        while m.locks.contains(path) {
            if !wait {
                return Ok(None);
            }
            m = self.unlocked.wait(m).unwrap_or_else(|e| e.into_inner());
        }
        m.locks.insert(path.to_path_buf());
        Ok(Some(Box::new(ModelLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (CrashFs, PathBuf) {
        let fs = CrashFs::new();
        fs.mkdir("/d");
        (fs, PathBuf::from("/d/f"))
    }

    fn write(fs: &CrashFs, path: &Path, text: &str, sync: bool) {
        let mut f = fs.open_write(path, OpenWrite::CreateNew, 0o600).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        if sync {
            f.sync_all().unwrap();
        }
    }

    #[test]
    fn data_and_names_are_durable_separately() {
        let (fs, f) = dir();
        write(&fs, &f, "synced data, unsynced name", true);
        fs.crash(Writeback::Nothing);
        assert_eq!(fs.on_disk(&f), None, "the name was never synced");

        write(&fs, &f, "unsynced data, synced name", false);
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.crash(Writeback::Nothing);
        assert_eq!(fs.on_disk(&f), Some(Vec::new()), "the name survives, its data does not");
    }

    #[test]
    fn an_unsynced_rename_is_forgotten_and_writeback_decides_the_rest() {
        for (writeback, expected) in [
            (Writeback::Nothing, "old"),
            (Writeback::Data, "old"),
            (Writeback::Entries, ""),
            (Writeback::Everything, "new"),
        ] {
            let (fs, f) = dir();
            write(&fs, &f, "old", true);
            fs.sync_dir(Path::new("/d")).unwrap();
            let tmp = PathBuf::from("/d/tmp");
            write(&fs, &tmp, "new", false);
            fs.rename(&tmp, &f).unwrap();
            fs.crash(writeback);
            assert_eq!(fs.on_disk(&f).unwrap(), expected.as_bytes(), "{writeback:?}");
        }
    }

    #[test]
    fn after_the_power_cut_nothing_happens() {
        let (fs, f) = dir();
        fs.cut_power_after(1);
        let mut w = fs.open_write(&f, OpenWrite::CreateNew, 0o600).unwrap();
        assert!(w.write_all(b"x").is_err());
        assert!(fs.sync_dir(Path::new("/d")).is_err());
        fs.crash(Writeback::Everything);
        assert_eq!(fs.on_disk(&f), Some(Vec::new()), "created, never written");
        assert!(fs
            .open_write(Path::new("/nodir/f"), OpenWrite::CreateNew, 0o600)
            .is_err());
    }
}
