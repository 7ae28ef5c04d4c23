//! Successful answers, serialised once per (model, API, streamed or not) and shared.
//!
//! A success is the same bytes every time for a given model and surface, and building them
//! (a `serde_json::Value` tree, then text) was the largest part of the mock's own work per
//! request. The cache is bounded by the interned model ids ([`super::models::MAX_MODELS`]); a
//! model past that bound ([`super::models::OTHER`]) is built afresh each time.

use super::google;
use super::models::OTHER;
use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// What a success answer's pieces depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    model: u16,
    code_assist: bool,
    /// `Some(chunks)` for a stream, `None` for one body.
    chunks: Option<u32>,
}

#[derive(Default)]
pub struct Answers {
    cache: RwLock<HashMap<Key, Arc<[Bytes]>>>,
}

impl Answers {
    /// The pieces of a success for `model` (id `id`): one body, or `chunks` stream chunks (the
    /// last with `finishReason` and usage), each wrapped for Code Assist when `code_assist`.
    pub fn get(&self, id: u16, model: &str, code_assist: bool, chunks: Option<u32>) -> Arc<[Bytes]> {
        let key = Key {
            model: id,
            code_assist,
            chunks,
        };
        if id != OTHER {
            if let Some(a) = self.cache.read().get(&key) {
                return a.clone();
            }
        }
        let pieces: Arc<[Bytes]> = match chunks {
            None => vec![piece(model, "mock answer", true, code_assist)].into(),
            Some(n) => (0..n)
                .map(|i| piece(model, &format!("chunk {} of {n}", i + 1), i + 1 == n, code_assist))
                .collect(),
        };
        if id != OTHER {
            self.cache.write().insert(key, pieces.clone());
        }
        pieces
    }
}

fn piece(model: &str, text: &str, last: bool, code_assist: bool) -> Bytes {
    Bytes::from(google::wrap(google::content(model, text, last), code_assist).to_string())
}
