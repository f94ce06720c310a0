//! routeros
