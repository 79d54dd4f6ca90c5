//! The dispatch engine against the simulator on loopback: the never-dial-twice
//! rule under every fault the simulator can inject, the calling policy, the
//! clock-governed behaviour (windows, cron, retry delays, timeouts), and a
//! property test that crashes the engine at arbitrary points.

mod clock;
mod dial_guard;
mod dial_time;
mod faults;
mod opt_out;
mod plan;
mod policy;
mod pools;
mod property;
mod reconcile;
mod recording_api;
mod shutdown;
mod storage;
mod workers;
