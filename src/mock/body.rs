//! Answers spent over time: a body that comes a while after its headers (a slow body) and
//! streams of chunks (SSE with `alt=sse`, else a JSON array streamed piece by piece, as Google
//! sends `streamGenerateContent`).
//!
//! Each body owns the request's journal [`Entry`], so the record is written when the last byte
//! has been handed to the connection, or when the client goes away (then flagged incomplete).

use super::journal::{Entry, FLAG_INCOMPLETE};
use axum::body::Body;
use bytes::Bytes;
use std::convert::Infallible;
use std::time::Duration;

/// How the pieces of a stream are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `data: {json}\n\n` per chunk (`alt=sse`).
    Sse,
    /// `[{json},\n{json}]`: one JSON array written as it goes.
    JsonArray,
    /// Each chunk as it is (a slow body's single piece).
    Raw,
}

/// `body` after `delay` (a slow body).
pub fn delayed(body: Bytes, delay: Duration, entry: Entry) -> Body {
    stream(vec![body], Framing::Raw, delay, Duration::ZERO, entry)
}

/// A stream of `chunks` (already-serialised JSON values): the first after `first`, the rest
/// `interval` apart.
pub fn stream(chunks: Vec<Bytes>, framing: Framing, first: Duration, interval: Duration, mut entry: Entry) -> Body {
    entry.record.flags |= FLAG_INCOMPLETE;
    let n = chunks.len();
    let state = (chunks.into_iter().enumerate(), entry);
    let s = futures_util::stream::unfold(state, move |(mut chunks, mut entry)| async move {
        let (i, chunk) = chunks.next()?;
        let pause = if i == 0 { first } else { interval };
        // No timer for no pause: tokio's timer would round it up to the next millisecond.
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let last = i + 1 == n;
        let piece = match framing {
            Framing::Sse => {
                let mut b = Vec::with_capacity(chunk.len() + 8);
                b.extend_from_slice(b"data: ");
                b.extend_from_slice(&chunk);
                b.extend_from_slice(b"\n\n");
                b
            }
            Framing::Raw => chunk.to_vec(),
            Framing::JsonArray => {
                let mut b = Vec::with_capacity(chunk.len() + 4);
                b.extend_from_slice(if i == 0 { b"[" } else { b",\n" });
                b.extend_from_slice(&chunk);
                if last {
                    b.extend_from_slice(b"]");
                }
                b
            }
        };
        if last {
            entry.record.flags &= !FLAG_INCOMPLETE;
        }
        Some((Ok::<_, Infallible>(Bytes::from(piece)), (chunks, entry)))
    });
    Body::from_stream(s)
}
