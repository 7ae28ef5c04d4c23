//! The reverse proxy (not yet: every path outside the API is a 404 for now).

use super::error::ApiError;

pub fn is_proxy_path(path: &str) -> bool {
    path.starts_with("/v1beta/models/") || path.starts_with("/v1internal:")
}

pub async fn handle(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}
