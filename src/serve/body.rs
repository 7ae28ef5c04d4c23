//! Request bodies of the lease and admin APIs: JSON, bounded in size, read with errors that say
//! what was expected (`400`) or that the body is too large (`413`).

use super::error::ApiError;
use axum::body::Body;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Reads `body` (at most `limit` bytes) as JSON of type `T`; `expected` describes `T` for the
/// error message, e.g. `{"model": string, "user": string}`.
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize, expected: &str) -> Result<T, ApiError> {
    let bytes = read_limited(body, limit, expected).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's message names the field and position (`missing field `model` at line 1
        // column 2`); the one input it quotes, a string of the wrong type, is cut out.
        ApiError::bad_request(format!(
            "malformed JSON body: {}: expected {expected}",
            unquoted(&e.to_string())
        ))
    })
}

/// `invalid type: string "SECRET", expected u16` without the string's value.
fn unquoted(message: &str) -> String {
    const QUOTE: &str = "string \"";
    match message.find(QUOTE) {
        None => message.to_string(),
        Some(start) => {
            let value = start + QUOTE.len();
            let end = message[value..].find("\", ").map_or(message.len(), |e| value + e + 1);
            format!("{}a string{}", &message[..start], &message[end..])
        }
    }
}

/// Reads `body` whole, at most `limit` bytes (`413` beyond, naming `expected`).
pub async fn read_limited(body: Body, limit: usize, expected: &str) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes: expected {expected}"),
            )
        } else {
            ApiError::bad_request(format!("request body could not be read: {e}"))
        }
    })
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_string_of_the_wrong_type_is_not_quoted_back() {
        let e = serde_json::from_str::<u16>("\"ya29.SECRET\"").unwrap_err().to_string();
        assert!(e.contains("SECRET"));
        let u = super::unquoted(&e);
        assert!(
            !u.contains("SECRET") && u.starts_with("invalid type: a string, expected u16"),
            "{u}"
        );
    }
}
