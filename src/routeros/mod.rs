//! routeros
pub mod codec;
