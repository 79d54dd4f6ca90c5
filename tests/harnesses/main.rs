//! The long harnesses over the real binary: SIGKILL at random instants
//! (`crash`), every fault at once under a rate limit (`soak`) and hostile
//! input with a seeded mutation fuzzer (`hostile`). They run in `cargo test`
//! at a small size; their knobs come from the environment, so
//! `scripts/crash-harness.sh` and `scripts/soak.sh` run the same tests longer.

#[path = "../harness/mod.rs"]
mod harness;

mod crash;
mod hostile;
mod soak;
