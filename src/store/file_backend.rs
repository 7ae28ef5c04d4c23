//! Real files: `accounts.toml` on disk, for real mode, tests, benchmarks and `credpool torture`.
//!
//! Every operation of [`Backend`] is done the way the code it replays did it, so the store modes
//! differ on disk exactly as they did in the proxy:
//!
//! - [`Backend::truncate`] + [`Backend::write_in_place`]: two separate opens of the real file, the
//!   pre-fix `open(path, "w")`. Between them a reader sees an empty file; two writers interleaving
//!   them leave the tail of the longer text behind the shorter one (an unparsable file).
//! - [`Backend::write_atomic`]: a temp file in the same directory (so the rename cannot cross a
//!   filesystem), named uniquely per writer (process id + counter: the proxy's one shared temp name
//!   gave two processes "missing temp file" errors), created with mode 0600 because it holds
//!   tokens, optionally fsynced before the rename and the directory fsynced after it (without the
//!   second fsync a power cut can forget the rename itself). The temp file is removed on every
//!   failure.
//! - The backup `<file>.bak` is a hard link to the file being replaced: the rename leaves the old
//!   inode untouched, so the link *is* the previous version, made atomically and without copying
//!   (a filesystem without hard links gets a copy, renamed into place).
//! - [`Backend::lock_cross_process`]: an advisory lock (`flock`, via `std::fs::File::lock`) on a
//!   separate lock file `<file>.lock`. Locking the data file itself would not work: the rename
//!   replaces it, and a lock on the old inode protects nothing.
//!
//! - [`Backend::open_shared_temp`] / [`Backend::replace_with_shared_temp`]: the shipped proxy's
//!   own save, replayed by `as_shipped` only: one temp name `<file>.tmp` shared by every writer
//!   (opened with truncation, written through that handle, renamed over the file after a backup),
//!   so concurrent writers really collide on disk.
//!
//! Every call goes through an [`Fs`]: the kernel's ([`RealFs`]) in every real use, or the page-cache
//! model of [`super::crash_fs`] in the power-cut tests, which then exercise this very code.
//!
//! Reads refuse a directory, a device or pipe, and a file over [`MAX_INPUT_BYTES`] with the same
//! words as [`crate::input_error::read_input`], and a missing file is `None`: whether that is an
//! error is the store's decision, not the backend's.

use super::backend::{AtomicWrite, Backend, CrossProcessGuard};
use super::fs::{Fs, OpenWrite, RealFs};
use crate::input_error::{grew_past_limit, refusal, MAX_INPUT_BYTES};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Mode of every file credpool writes next to the accounts file: they all hold tokens.
const PRIVATE_MODE: u32 = 0o600;

/// Makes temp names unique among the writers of one process; the process id separates
/// processes. A plain std atomic: a name counter, not synchronisation that loom should model.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An `accounts.toml` on disk.
#[derive(Debug, Clone)]
pub struct FileBackend {
    path: PathBuf,
    /// `<file>.bak`: the previous version, kept by [`AtomicWrite::backup`].
    backup_path: PathBuf,
    /// `<file>.lock`: what the cross-process lock locks.
    lock_path: PathBuf,
    /// `<file>.tmp`: the one temp name the shipped proxy's writers shared (`as_shipped` only).
    shared_temp_path: PathBuf,
    /// Who carries out the filesystem calls.
    fs: Arc<dyn Fs>,
}

impl FileBackend {
    /// The accounts file at `path`. Nothing is opened or created until an operation needs it.
    pub fn new(path: impl Into<PathBuf>) -> FileBackend {
        FileBackend::with_fs(path, Arc::new(RealFs))
    }

    /// The accounts file at `path` in filesystem `fs` (the power-cut model, in tests).
    pub fn with_fs(path: impl Into<PathBuf>, fs: Arc<dyn Fs>) -> FileBackend {
        let path = path.into();
        FileBackend {
            backup_path: sibling(&path, ".bak"),
            lock_path: sibling(&path, ".lock"),
            shared_temp_path: sibling(&path, ".tmp"),
            path,
            fs,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn backup_path(&self) -> &Path {
        &self.backup_path
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    pub fn shared_temp_path(&self) -> &Path {
        &self.shared_temp_path
    }

    /// Creates the file with `text` (mode 0600, fsynced with its directory). Fails with
    /// [`io::ErrorKind::AlreadyExists`] when the file exists: starting a pool is an explicit act,
    /// and no store ever turns a missing file into an empty pool by itself.
    pub fn create(&self, text: &str) -> io::Result<()> {
        let mut file = self.fs.open_write(&self.path, OpenWrite::CreateNew, PRIVATE_MODE)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        self.fs.sync_dir(self.dir())
    }

    /// Temp files of this file's writers left in its directory: a writer killed between creating
    /// its temp file and renaming it leaves one behind (mode 0600, holding tokens). No write
    /// removes them by itself (`credpool torture` counts them); `credpool accounts clean` removes
    /// those whose writer is gone ([`remove_stale_temp_files`](Self::remove_stale_temp_files)).
    pub fn temp_files(&self) -> io::Result<Vec<PathBuf>> {
        let prefix = format!(".{}.", self.file_name());
        let mut out: Vec<PathBuf> = self
            .fs
            .list_dir(self.dir())?
            .into_iter()
            .filter(|name| name.starts_with(&prefix) && name.ends_with(".tmp"))
            .map(|name| self.dir().join(name))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The [`temp_files`](Self::temp_files) whose writer is gone: the process id in the name is
    /// not this process and no running process has it. A live writer's temp file (in this or
    /// another process) is never among them; a dead writer's whose id a new process has taken
    /// is kept too, until that process ends (the safe side).
    pub fn stale_temp_files(&self) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .temp_files()?
            .into_iter()
            .filter(|path| temp_writer(path).is_some_and(|pid| pid != std::process::id() && !process_exists(pid)))
            .collect())
    }

    /// Removes the [`stale_temp_files`](Self::stale_temp_files) (each holds a copy of the tokens
    /// of its moment) and returns what it removed. The accounts file itself is never touched.
    pub fn remove_stale_temp_files(&self) -> io::Result<Vec<PathBuf>> {
        let stale = self.stale_temp_files()?;
        for path in &stale {
            match self.fs.remove_file(path) {
                Ok(()) => {}
                // Another cleaner was first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
        Ok(stale)
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The directory holding the file (temp files go there, and it is what gets fsynced).
    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// A fresh, unique temp path next to the file: `.<name>.<pid>.<n>.tmp`.
    fn temp_path(&self) -> PathBuf {
        let name = self.file_name();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir().join(format!(".{name}.{}.{n}.tmp", std::process::id()))
    }

    /// Writes `text` to a new temp file (mode 0600), fsynced if asked. On failure the temp file
    /// is gone. Returns its path.
    fn write_temp(&self, text: &str, fsync: bool) -> io::Result<PathBuf> {
        // A name can only be taken by a crashed earlier process with the same pid: try the next.
        let mut attempts = 0;
        let (tmp, mut file) = loop {
            let tmp = self.temp_path();
            match self.fs.open_write(&tmp, OpenWrite::CreateNew, PRIVATE_MODE) {
                Ok(file) => break (tmp, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| if fsync { file.sync_all() } else { Ok(()) });
        match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = self.fs.remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Makes `<file>.bak` the current version of the file (nothing to do when there is none).
    fn make_backup(&self) -> io::Result<()> {
        match self.fs.remove_file(&self.backup_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match self.fs.hard_link(&self.path, &self.backup_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // No hard links here, or another process (without the cross-process lock) made its
            // backup between our remove and link: copy, and rename the copy into place.
            Err(_) => {
                let tmp = self.temp_path();
                let copied = self
                    .fs
                    .copy(&self.path, &tmp)
                    .and_then(|()| self.fs.set_mode(&tmp, PRIVATE_MODE))
                    .and_then(|()| self.fs.rename(&tmp, &self.backup_path));
                if let Err(e) = copied {
                    let _ = self.fs.remove_file(&tmp);
                    return if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    };
                }
                return Ok(());
            }
        }
        match self.fs.set_mode(&self.backup_path, PRIVATE_MODE) {
            // Another process without the cross-process lock (`locked` mode) already replaced
            // the backup with its own: that one is as recent, and its permissions were set.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// After a failed rename. A rename is atomic, so when it fails the old file is normally still
    /// there, intact, and writing over it again would only add risk; the backup is put back only
    /// when the file is gone.
    fn restore_backup_if_missing(&self) {
        if !self.fs.exists(&self.path)
            && self.fs.exists(&self.backup_path)
            && self.fs.hard_link(&self.backup_path, &self.path).is_err()
        {
            let _ = self.fs.copy(&self.backup_path, &self.path);
        }
    }
}

/// The process id in a temp file's name (`.<name>.<pid>.<n>.tmp`), if it has that shape.
fn temp_writer(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?.strip_suffix(".tmp")?;
    let mut parts = name.rsplit('.');
    let _counter: u64 = parts.next()?.parse().ok()?;
    parts.next()?.parse().ok()
}

/// Whether a process with this id is running (or exists but is not ours to signal).
#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // Signal 0 checks existence and permission without sending anything.
    unsafe { libc::kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
}

/// Elsewhere no writer is known to be gone: nothing is stale.
#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// `<path><suffix>`: `accounts.toml` -> `accounts.toml.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// A handle on the shared temp file: writes go to the inode it was opened on.
struct SharedTempWriter(Box<dyn super::fs::WriteFile>);

impl super::backend::TempWriter for SharedTempWriter {
    fn write(&mut self, text: &str) -> io::Result<()> {
        self.0.write_all(text.as_bytes())
    }
}

impl Backend for FileBackend {
    fn label(&self) -> String {
        self.path.display().to_string()
    }

    fn read(&self) -> io::Result<Option<String>> {
        let mut file = match self.fs.open_read(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // Checked on the open handle, so the checked file is the one read.
        let stat = file.stat()?;
        if let Some(problem) = refusal(stat.is_dir, stat.is_file, stat.len) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, problem));
        }
        let bytes = file.read_limited(MAX_INPUT_BYTES + 1)?;
        if bytes.len() as u64 > MAX_INPUT_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, grew_past_limit()));
        }
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
        self.fs
            .open_write(&self.path, OpenWrite::Truncate, PRIVATE_MODE)
            .map(drop)
    }

    fn write_in_place(&self, text: &str) -> io::Result<()> {
        // No truncation here: it happened in `truncate`, and another writer may have written
        // since. That is the pre-fix race, replayed as it was.
        let mut file = self.fs.open_write(&self.path, OpenWrite::InPlace, PRIVATE_MODE)?;
        file.write_all(text.as_bytes())
    }

    fn write_atomic(&self, text: &str, how: AtomicWrite) -> io::Result<u32> {
        let tmp = self.write_temp(text, how.fsync)?;
        let mut fsyncs = u32::from(how.fsync);
        if how.backup {
            if let Err(e) = self.make_backup() {
                let _ = self.fs.remove_file(&tmp);
                return Err(e);
            }
        }
        if let Err(e) = self.fs.rename(&tmp, &self.path) {
            let _ = self.fs.remove_file(&tmp);
            if how.backup {
                self.restore_backup_if_missing();
            }
            return Err(e);
        }
        if how.fsync {
            self.fs.sync_dir(self.dir())?;
            fsyncs += 1;
        }
        Ok(fsyncs)
    }

    fn lock_cross_process(&self) -> io::Result<Box<dyn CrossProcessGuard>> {
        self.fs
            .lock(&self.lock_path, PRIVATE_MODE, true)?
            .ok_or_else(|| io::Error::other("the lock was not granted"))
    }

    fn try_lock_cross_process(&self) -> io::Result<Option<Box<dyn CrossProcessGuard>>> {
        self.fs.lock(&self.lock_path, PRIVATE_MODE, false)
    }

    fn open_shared_temp(&self) -> io::Result<Box<dyn super::backend::TempWriter>> {
        let file = self
            .fs
            .open_write(&self.shared_temp_path, OpenWrite::Truncate, PRIVATE_MODE)?;
        Ok(Box::new(SharedTempWriter(file)))
    }

    fn replace_with_shared_temp(&self, backup: bool) -> io::Result<()> {
        if backup {
            self.make_backup()?;
        }
        self.fs.rename(&self.shared_temp_path, &self.path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {e} (the shared temp file)", self.shared_temp_path.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn missing_file_reads_as_none_and_create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().join("accounts.toml"));
        assert_eq!(b.read().unwrap(), None);
        b.create("a = 1\n").unwrap();
        assert_eq!(mode(b.path()), 0o600);
        assert_eq!(b.create("b = 2\n").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(b.read().unwrap().as_deref(), Some("a = 1\n"));
    }

    #[test]
    fn directories_and_non_utf8_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let e = FileBackend::new(dir.path()).read().unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let bin = dir.path().join("bin.toml");
        fs::write(&bin, [b'a', 0xff, 0xfe]).unwrap();
        let e = FileBackend::new(&bin).read().unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        // A sparse file: its length is what is checked, no 16 MiB are written.
        File::create(&big).unwrap().set_len(MAX_INPUT_BYTES + 1).unwrap();
        let e = FileBackend::new(&big).read().unwrap_err();
        assert!(e.to_string().contains("MiB limit"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_keeps_a_private_backup_and_counts_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.toml");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let b = FileBackend::new(&path);
        let n = b
            .write_atomic(
                "new\n",
                AtomicWrite {
                    fsync: true,
                    backup: true,
                },
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(b.backup_path()).unwrap(), "old\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(b.backup_path()), 0o600);
        assert_eq!(b.write_atomic("newer\n", AtomicWrite::default()).unwrap(), 0);
        assert_eq!(
            fs::read_to_string(b.backup_path()).unwrap(),
            "old\n",
            "no backup was asked for"
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_rename_leaves_the_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // The "file" is a non-empty directory: the temp file is written, the rename fails.
        let path = dir.path().join("accounts.toml");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "x").unwrap();
        let b = FileBackend::new(&path);
        assert!(b
            .write_atomic(
                "new\n",
                AtomicWrite {
                    fsync: true,
                    backup: false
                }
            )
            .is_err());
        assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
        assert_eq!(fs::read_to_string(path.join("inside")).unwrap(), "x");
    }

    #[test]
    fn truncating_write_exposes_an_empty_file_between_its_halves() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().join("accounts.toml"));
        b.create("a long original text\n").unwrap();
        b.truncate().unwrap();
        assert_eq!(b.read().unwrap().as_deref(), Some(""));
        b.write_in_place("short\n").unwrap();
        assert_eq!(b.read().unwrap().as_deref(), Some("short\n"));
    }

    #[test]
    fn writers_share_one_real_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().join("accounts.toml"));
        b.create("original\n").unwrap();
        crate::store::backend::tests::shared_temp_collisions(&b);
        assert_eq!(b.shared_temp_path(), dir.path().join("accounts.toml.tmp"));
        assert!(!b.shared_temp_path().exists());
        assert_eq!(mode(b.path()), 0o600);
    }

    #[test]
    fn the_cross_process_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().join("accounts.toml"));
        // flock locks belong to an open file description, so two opens in one process exclude
        // each other just as two processes do.
        let guard = b.lock_cross_process().unwrap();
        assert_eq!(mode(b.lock_path()), 0o600);
        assert!(b.try_lock_cross_process().unwrap().is_none());
        drop(guard);
        assert!(b.try_lock_cross_process().unwrap().is_some());
    }
}
