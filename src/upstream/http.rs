//! HTTP upstream: placeholder
