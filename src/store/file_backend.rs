//! Real files: placeholder, implemented by the store work.
pub struct FileBackend;
