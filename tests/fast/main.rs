//! The library in process, quickly: the engine against the simulator on a
//! test clock, imports, the inbox, the store, zones, the provider client, the
//! simulator itself and webhooks. A few tests also run a `dialerd` command
//! where the command line is what they prove. One binary, so one link.

#[path = "../harness/mod.rs"]
mod harness;

mod engine;
mod hostile_api;
mod import_csv;
mod import_sqlite;
mod inbox;
mod inbox_security;
mod provider_client;
mod simulator;
mod store;
mod webhooks;
mod zones;
