//! The real `dialerd` binary end to end, as an operator and systemd run it:
//! a campaign imported and dialed (`pipeline`), the operator commands (with
//! caller pools and the spend cap in `pool_cli`), the
//! daemon's life cycle and signals, the demo, and the hardening a live
//! systemd run and a security review asked for. Every wait polls with a
//! deadline.

#[path = "../harness/mod.rs"]
mod harness;

mod cli_ops;
mod demo;
mod hardening;
mod lifecycle;
mod pipeline;
mod pool_cli;
