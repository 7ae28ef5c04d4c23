//! A string that must never be printed: OAuth access and refresh tokens.
//!
//! `Debug` and `Display` print `[redacted]`, and the type has no `Serialize` impl, so a token can
//! only reach a file through code that asks for it by name ([`Secret::expose`]): the accounts
//! store and the HTTP client. Reports, JSON, logs and error messages cannot carry one by accident.

use std::fmt;
use std::sync::Arc;

/// An opaque secret. Cloning is cheap (shared), because a token is handed to every request that
/// uses its credential.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the few places that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("ya29.TOPSECRET");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "ya29.TOPSECRET");
    }
}
