//! The `lease` protocol: credpool serve's lease API driven as its users drive it. One request of
//! the load is three: `POST /v1/lease` (a credential for the model), the API call to the upstream
//! with the leased access token (the mock, so the audit sees which token was used), and
//! `POST /v1/lease/{lease}/complete` with the upstream's status (and its error body, so the
//! target can read a 429's retry information). The verdict is the upstream answer's, judged as a
//! `gemini` answer; a lease refused is its status, a completion refused a client error.

use super::protocol::{judge, read_answer, Endpoint, Protocol, Verdict};

pub async fn exchange(client: &reqwest::Client, endpoint: &Endpoint) -> Verdict {
    let mut lease = client
        .post(format!("{}/v1/lease", endpoint.base_url))
        .json(&serde_json::json!({"model": endpoint.model, "user": "load"}));
    if !endpoint.api_key.is_empty() {
        lease = lease.bearer_auth(&endpoint.api_key);
    }
    let (status, body) = match send(lease).await {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    if status != 200 {
        return Verdict::Status(status);
    }
    let Ok(granted) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Verdict::ClientError("a lease answer that is not JSON".into());
    };
    let (Some(id), Some(token)) = (
        granted.get("lease").and_then(|v| v.as_str()),
        granted.get("access_token").and_then(|v| v.as_str()),
    ) else {
        return Verdict::ClientError("a lease answer without `lease` and `access_token`".into());
    };
    let call = client
        .post(format!(
            "{}/v1beta/models/{}:generateContent",
            endpoint.upstream_url, endpoint.model
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}]}));
    let (upstream_status, upstream_body) = match send(call).await {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    let mut outcome = serde_json::json!({"status": upstream_status});
    if upstream_status != 200 {
        outcome["body"] = serde_json::from_slice(&upstream_body)
            .unwrap_or_else(|_| String::from_utf8_lossy(&upstream_body).into_owned().into());
    }
    let mut complete = client
        .post(format!("{}/v1/lease/{id}/complete", endpoint.base_url))
        .json(&outcome);
    if !endpoint.api_key.is_empty() {
        complete = complete.bearer_auth(&endpoint.api_key);
    }
    match send(complete).await {
        Ok((204, _)) => {}
        Ok((status, _)) => return Verdict::ClientError(format!("the completion was answered {status}")),
        Err(verdict) => return verdict,
    }
    if (200..300).contains(&upstream_status) {
        judge(Protocol::Lease, &upstream_body)
    } else {
        Verdict::Status(upstream_status)
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Verdict> {
    match request.send().await {
        Ok(response) => read_answer(response).await,
        Err(e) => Err(Verdict::Transport(e.without_url().to_string())),
    }
}
