//! A [`Backend`] whose real I/O stays on the run's chain of deadlines, for real-mode runs.
//!
//! In real mode the store works on a real file, and it is charged the scenario's modelled file
//! costs as in virtual time (the lock, the read, the parse, the write, the fsync), so that a real
//! run and a virtual one model the same store. The real I/O then comes on top of the modelled
//! costs: a write on tmpfs takes tens of microseconds, an fsync on a loaded disk milliseconds.
//! Each operation here is a step of real work with no modelled cost of its own
//! ([`Pace::real_work`]): the time it takes becomes lateness on the chain, which the next modelled
//! cost makes up (see [`crate::pacing`]). The file's bytes, its errors and its locking are the
//! inner backend's, unchanged.

use super::backend::{AtomicWrite, Backend, CrossProcessGuard, TempWriter};
use crate::pacing::Pace;
use std::io;
use std::sync::Arc;

/// `inner`, with each of its operations a step of real work on `pace`'s chain.
pub struct PacedBackend {
    inner: Arc<dyn Backend>,
    pace: Pace,
}

impl PacedBackend {
    pub fn new(inner: Arc<dyn Backend>, pace: Pace) -> PacedBackend {
        PacedBackend { inner, pace }
    }
}

/// The shared temp file's handle, whose writes are real work too.
struct PacedTempWriter {
    inner: Box<dyn TempWriter>,
    pace: Pace,
}

impl TempWriter for PacedTempWriter {
    fn write(&mut self, text: &str) -> io::Result<()> {
        let inner = &mut self.inner;
        self.pace.real_work(|| inner.write(text))
    }
}

impl Backend for PacedBackend {
    fn label(&self) -> String {
        self.inner.label()
    }

    fn read(&self) -> io::Result<Option<String>> {
        self.pace.real_work(|| self.inner.read())
    }

    fn truncate(&self) -> io::Result<()> {
        self.pace.real_work(|| self.inner.truncate())
    }

    fn write_in_place(&self, text: &str) -> io::Result<()> {
        self.pace.real_work(|| self.inner.write_in_place(text))
    }

    fn write_atomic(&self, text: &str, how: AtomicWrite) -> io::Result<u32> {
        self.pace.real_work(|| self.inner.write_atomic(text, how))
    }

    fn lock_cross_process(&self) -> io::Result<Box<dyn CrossProcessGuard>> {
        self.pace.real_work(|| self.inner.lock_cross_process())
    }

    fn try_lock_cross_process(&self) -> io::Result<Option<Box<dyn CrossProcessGuard>>> {
        self.pace.real_work(|| self.inner.try_lock_cross_process())
    }

    fn open_shared_temp(&self) -> io::Result<Box<dyn TempWriter>> {
        let inner = self.pace.real_work(|| self.inner.open_shared_temp())?;
        Ok(Box::new(PacedTempWriter {
            inner,
            pace: self.pace.clone(),
        }))
    }

    fn replace_with_shared_temp(&self, backup: bool) -> io::Result<()> {
        self.pace.real_work(|| self.inner.replace_with_shared_temp(backup))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacing::Pacer;
    use crate::store::backend::MemoryBackend;

    #[tokio::test]
    async fn its_operations_are_the_inner_backends() {
        let memory = Arc::new(MemoryBackend::new(Some("a = 1\n".into())));
        let paced = PacedBackend::new(memory.clone(), Pace::deadlines(Pacer::new()));
        assert_eq!(paced.read().unwrap().as_deref(), Some("a = 1\n"));
        paced.write_atomic("b = 2\n", AtomicWrite::default()).unwrap();
        assert_eq!(memory.contents().as_deref(), Some("b = 2\n"));
        paced.truncate().unwrap();
        assert_eq!(memory.contents().as_deref(), Some(""));
        let mut temp = paced.open_shared_temp().unwrap();
        temp.write("c = 3\n").unwrap();
        paced.replace_with_shared_temp(false).unwrap();
        assert_eq!(memory.contents().as_deref(), Some("c = 3\n"));
    }
}
