//! `group_commit`: placeholder, implemented by the store work.
use super::backend::Backend;
use crate::costs::Costs;
use std::sync::Arc;
pub struct GroupCommitStore;
impl GroupCommitStore {
    pub fn new(_b: Arc<dyn Backend>, _c: Costs) -> Self {
        todo!("group_commit store")
    }
}
