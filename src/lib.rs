//! CloudPilot: a control plane for fleets of MikroTik routers.
pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod fleet;
pub mod loadgen;
pub mod node;
pub mod routeros;
pub mod sim;
pub mod store;
