//! `naive`: placeholder, implemented by the store work.
use super::backend::Backend;
use crate::costs::Costs;
use std::sync::Arc;
pub struct NaiveStore;
impl NaiveStore {
    pub fn new(_b: Arc<dyn Backend>, _c: Costs) -> Self {
        todo!("naive store")
    }
}
