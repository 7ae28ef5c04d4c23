//! Simulated upstream: placeholder
