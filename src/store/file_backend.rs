//! Real files: placeholder, implemented by the store work.
pub struct FileBackend;
impl FileBackend {
    pub fn new(_path: &std::path::Path) -> Self {
        FileBackend
    }
}
impl super::backend::Backend for FileBackend {
    fn label(&self) -> String {
        todo!()
    }
    fn read(&self) -> std::io::Result<Option<String>> {
        todo!()
    }
    fn truncate(&self) -> std::io::Result<()> {
        todo!()
    }
    fn write_in_place(&self, _: &str) -> std::io::Result<()> {
        todo!()
    }
    fn write_atomic(&self, _: &str, _: super::backend::AtomicWrite) -> std::io::Result<u32> {
        todo!()
    }
    fn lock_cross_process(&self) -> std::io::Result<Box<dyn super::backend::CrossProcessGuard>> {
        todo!()
    }
}
