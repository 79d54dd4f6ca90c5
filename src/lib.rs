//! dialerd: a self-hosted outbound-call campaign daemon for the OmniDimension
//! voice-agent API. Everything lives in this library; `main.rs` only calls
//! [`cli::main`], so tests reach every part.
//!
//! # The crate, top to bottom
//!
//! Each layer uses only the ones below it.
//!
//! | module | owns |
//! | --- | --- |
//! | [`cli`] | the command line: one file per command, and every error's exit status ([`error`] defines them) |
//! | [`daemon`] | `dialerd run`: the instance lock, start-up recovery, wiring the workers, reload and stop |
//! | [`worker`] | one struct per background activity (scheduler, reconciler, inbox, heartbeat, idle watch, webhooks), each with one `step()`, under one `run_until_stopped` loop |
//! | [`engine`] | the decisions: when a campaign sweeps, which contact may be dialed now ([`engine::policy`]), the caller pool and spend cap ([`engine::limits`], [`engine::pooling`]), sending through the rate limit, reading outcomes back and opt-outs ([`engine::optout`]) |
//! | [`webhooks`] | signed delivery of the outbox that SQLite triggers fill |
//! | [`import`] | CSV and SQLite contact files, streamed and validated into a campaign; the inbox watcher |
//! | [`provider`] | the OmniDimension HTTP API: client, tolerant call-log model, error classification |
//! | [`sim`] | `dialerd simulate`, an API look-alike on loopback for tests and demos |
//! | [`store`] | SQLite: every SQL statement and transaction, one file per table family; knows data only (no engine, config or cli) |
//! | [`config`] | the TOML file and environment, validated into [`config::Settings`] with one typed section per component |
//! | [`domain`], [`phone`], [`calendar`] | the values parsed at the edge: states and outcomes as enums, E.164 [`phone::PhoneNumber`]s, cron schedules, windows, zones |
//! | [`clock`] | the one source of time (a manual clock in tests) |
//! | [`ops`], [`telemetry`], [`secret`] | systemd notifications and metrics, logging, the API key that never prints |
//!
//! # How data flows
//!
//! `import` parses rows into contacts and the store writes them. The
//! scheduler worker fires each campaign's cron; the engine's sweep claims
//! due contacts in one store transaction (the policy decides, the store
//! applies), re-checks each at dial time, and sends it through the
//! provider; the answer is written as an attempt. The reconciler worker
//! reads call logs back and records each outcome, which schedules a retry
//! or closes the contact. Changes to contacts and attempts fill the
//! webhook outbox by trigger, and the webhook worker delivers it.
//!
//! # Where a new feature goes
//!
//! New SQL goes in `store/` (a new table family gets a file of its own and
//! a migration); a new decision goes in `engine/`; a new background
//! activity is a new struct in `worker/` wired in `daemon.rs`; a new
//! command is a file in `cli/`; a new setting is a key in `config/raw.rs`
//! and a field of its component's typed section. For example, "webhooks on
//! outcome" is a trigger on `attempts` in a migration (the event is written
//! in the same transaction as the outcome), the outbox's SQL in
//! `store/webhooks.rs`, and delivery in `webhooks/`, run as a worker.

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
