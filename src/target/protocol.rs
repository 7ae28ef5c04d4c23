//! One request to a target, in the protocol it speaks, and the verdict on its answer.
//!
//! A status code is not enough to judge a proxy: many report an upstream failure as an error chunk
//! inside a 200 stream, or a 200 with an `error` object, and some send 200 headers and then hang
//! forever after a failed refresh. So the whole answer is read (bounded by the request's timeout)
//! and judged on its body: a success is a well-formed answer carrying content, in the shape of
//! the protocol.

use std::time::{Duration, Instant};

/// What a target speaks to its users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /v1/chat/completions`, what most proxies of this kind expose; `stream` asks for SSE.
    OpenAi { stream: bool },
    /// `POST /v1beta/models/{model}:generateContent`, key in `x-goog-api-key`.
    Gemini,
    /// `POST /v1internal:generateContent` with `{"model", "request"}`; the answer is wrapped in
    /// `{"response": ...}`.
    CodeAssist,
    /// credpool serve's lease API: lease, call the upstream with the token, complete
    /// ([`super::lease`]).
    Lease,
}

/// How the load reaches one target.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub protocol: Protocol,
    /// The model name the load asks for (proxies prefix or rename models).
    pub model: String,
    /// Sent as `Authorization: Bearer` (or `x-goog-api-key` for `gemini`); empty: no key.
    pub api_key: String,
    /// Past this, headers and body included, a request is `hung`.
    pub timeout: Duration,
    /// `lease` only: the API the leased token is used on (the mock's), no trailing slash.
    pub upstream_url: String,
}

/// The verdict on one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// The target answered a non-2xx status.
    Status(u16),
    /// A 2xx whose body is an error, is truncated, or has no content (`client_errors`).
    ClientError(String),
    /// No complete answer within the timeout (`hung`).
    Hung,
    /// The connection failed or was reset.
    Transport(String),
}

impl Verdict {
    pub fn is_success(&self) -> bool {
        matches!(self, Verdict::Success)
    }
}

/// The request's body and path for `endpoint`.
fn request(client: &reqwest::Client, endpoint: &Endpoint) -> reqwest::RequestBuilder {
    let prompt = serde_json::json!([{"role": "user", "parts": [{"text": "Say hello."}]}]);
    let builder = match endpoint.protocol {
        Protocol::OpenAi { stream } => {
            client
                .post(format!("{}/v1/chat/completions", endpoint.base_url))
                .json(&serde_json::json!({
                    "model": endpoint.model,
                    "stream": stream,
                    "messages": [{"role": "user", "content": "Say hello."}],
                }))
        }
        Protocol::Gemini => client
            .post(format!(
                "{}/v1beta/models/{}:generateContent",
                endpoint.base_url, endpoint.model
            ))
            .json(&serde_json::json!({"contents": prompt})),
        Protocol::CodeAssist => client
            .post(format!("{}/v1internal:generateContent", endpoint.base_url))
            .json(&serde_json::json!({"model": endpoint.model, "request": {"contents": prompt}})),
        Protocol::Lease => unreachable!("a lease exchange is three requests: super::lease"),
    };
    match (endpoint.api_key.is_empty(), endpoint.protocol) {
        (true, _) => builder,
        (false, Protocol::Gemini) => builder.header("x-goog-api-key", &endpoint.api_key),
        (false, _) => builder.bearer_auth(&endpoint.api_key),
    }
}

/// Sends one request and judges the answer; returns the verdict and the time to the whole answer
/// (or to the timeout).
pub async fn call(client: &reqwest::Client, endpoint: &Endpoint) -> (Verdict, Duration) {
    let started = Instant::now();
    let verdict = match tokio::time::timeout(endpoint.timeout, exchange(client, endpoint)).await {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Hung,
    };
    (verdict, started.elapsed())
}

async fn exchange(client: &reqwest::Client, endpoint: &Endpoint) -> Verdict {
    if endpoint.protocol == Protocol::Lease {
        return super::lease::exchange(client, endpoint).await;
    }
    let response = match request(client, endpoint).send().await {
        Ok(r) => r,
        Err(e) => return Verdict::Transport(e.without_url().to_string()),
    };
    let (status, body) = match read_answer(response).await {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    if !(200..300).contains(&status) {
        return Verdict::Status(status);
    }
    judge(endpoint.protocol, &body)
}

/// The status and whole body of `response` (bounded by [`MAX_BODY`]), or the verdict on why not.
pub(crate) async fn read_answer(mut response: reqwest::Response) -> Result<(u16, Vec<u8>), Verdict> {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(Verdict::ClientError(format!("answer longer than {MAX_BODY} bytes")));
                }
            }
            Ok(None) => break,
            Err(e) => return Err(Verdict::Transport(format!("body cut: {}", e.without_url()))),
        }
    }
    Ok((status, body))
}

/// Longest answer read (a chat answer of this load is a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// Judges a 2xx answer's body.
pub fn judge(protocol: Protocol, body: &[u8]) -> Verdict {
    match protocol {
        Protocol::OpenAi { stream: true } => judge_sse(body),
        Protocol::OpenAi { stream: false } => judge_json(body, |v| {
            v.pointer("/choices/0/message/content")
                .and_then(|c| c.as_str())
                .is_some()
        }),
        Protocol::Gemini | Protocol::Lease => judge_json(body, has_candidates),
        Protocol::CodeAssist => judge_json(body, |v| v.get("response").is_some_and(has_candidates)),
    }
}

fn has_candidates(v: &serde_json::Value) -> bool {
    v.pointer("/candidates/0/content/parts").is_some()
}

fn judge_json(body: &[u8], well_formed: impl Fn(&serde_json::Value) -> bool) -> Verdict {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Verdict::ClientError("a 2xx whose body is not JSON".into());
    };
    if let Some(error) = value.get("error") {
        return Verdict::ClientError(format!("a 2xx carrying an error: {}", excerpt(error)));
    }
    if well_formed(&value) {
        Verdict::Success
    } else {
        Verdict::ClientError("a 2xx without content".into())
    }
}

/// An OpenAI stream: `data: {chunk}` events ending with `data: [DONE]`. An event carrying an
/// `error`, a stream without content, or one cut before `[DONE]` is a client error.
fn judge_sse(body: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(body);
    let mut content = false;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue;
        };
        if data == "[DONE]" {
            return if content {
                Verdict::Success
            } else {
                Verdict::ClientError("a stream without content".into())
            };
        }
        match serde_json::from_str::<serde_json::Value>(data) {
            Ok(event) if event.get("error").is_some() => {
                return Verdict::ClientError(format!("an error inside a 200 stream: {}", excerpt(&event["error"])))
            }
            Ok(event) => content |= event.pointer("/choices/0/delta").is_some(),
            Err(_) => return Verdict::ClientError("a stream event that is not JSON".into()),
        }
    }
    Verdict::ClientError("a stream cut before [DONE]".into())
}

fn excerpt(value: &serde_json::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_answers() {
        let ok = br#"{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}"#;
        assert_eq!(judge(Protocol::OpenAi { stream: false }, ok), Verdict::Success);
        let err = br#"{"error": {"message": "upstream 429"}}"#;
        assert!(matches!(judge(Protocol::OpenAi { stream: false }, err), Verdict::ClientError(m) if m.contains("429")));
        assert!(matches!(
            judge(Protocol::OpenAi { stream: false }, b"<html>"),
            Verdict::ClientError(_)
        ));
    }

    #[test]
    fn openai_streams() {
        let s = Protocol::OpenAi { stream: true };
        let ok = b"data: {\"choices\": [{\"delta\": {\"content\": \"h\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(judge(s, ok), Verdict::Success);
        let error_chunk = b"data: {\"choices\": [{\"delta\": {}}]}\n\ndata: {\"error\": {\"message\": \"refresh failed\"}}\n\ndata: [DONE]\n\n";
        assert!(matches!(judge(s, error_chunk), Verdict::ClientError(m) if m.contains("refresh failed")));
        let cut = b"data: {\"choices\": [{\"delta\": {\"content\": \"h\"}}]}\n\n";
        assert!(matches!(judge(s, cut), Verdict::ClientError(m) if m.contains("cut")));
        assert!(matches!(judge(s, b"data: [DONE]\n\n"), Verdict::ClientError(m) if m.contains("without content")));
    }

    #[test]
    fn gemini_and_code_assist_answers() {
        let answer = r#"{"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}"#;
        assert_eq!(judge(Protocol::Gemini, answer.as_bytes()), Verdict::Success);
        let wrapped = format!(r#"{{"response": {answer}}}"#);
        assert_eq!(judge(Protocol::CodeAssist, wrapped.as_bytes()), Verdict::Success);
        assert!(matches!(
            judge(Protocol::CodeAssist, answer.as_bytes()),
            Verdict::ClientError(_)
        ));
        assert!(matches!(judge(Protocol::Gemini, b"{}"), Verdict::ClientError(_)));
    }

    /// A one-shot HTTP server on 127.0.0.1 that writes `answer` to the first connection and then
    /// keeps it open for `hold`.
    async fn serve_once(answer: &'static str, hold: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            socket.write_all(answer.as_bytes()).await.unwrap();
            tokio::time::sleep(hold).await;
        });
        url
    }

    fn endpoint(base_url: String, protocol: Protocol) -> Endpoint {
        Endpoint {
            base_url,
            protocol,
            model: "gemini-2.5-pro".into(),
            api_key: "k".into(),
            timeout: Duration::from_millis(300),
            upstream_url: String::new(),
        }
    }

    #[tokio::test]
    async fn a_hang_after_200_headers_is_hung_and_ends_at_the_timeout() {
        let url = serve_once(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
        let client = reqwest::Client::new();
        let (verdict, took) = call(&client, &endpoint(url, Protocol::OpenAi { stream: true })).await;
        assert_eq!(verdict, Verdict::Hung);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn statuses_and_bodies_over_a_socket() {
        let body = r#"{"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}"#;
        let ok: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let url = serve_once(ok, Duration::ZERO).await;
        let client = reqwest::Client::new();
        assert_eq!(
            call(&client, &endpoint(url, Protocol::Gemini)).await.0,
            Verdict::Success
        );
        let url = serve_once(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            call(&client, &endpoint(url, Protocol::Gemini)).await.0,
            Verdict::Status(429)
        );
    }
}
