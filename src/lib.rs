//! dialerd: a self-hosted outbound-call campaign daemon for the OmniDimension
//! voice-agent API.

pub mod clock;
pub mod domain;
pub mod secret;
