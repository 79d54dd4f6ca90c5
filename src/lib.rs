//! dialerd: a self-hosted outbound-call campaign daemon for the OmniDimension
//! voice-agent API.

pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod error;
pub mod import;
pub mod ops;
pub mod phone;
pub mod provider;
pub mod secret;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod worker;
