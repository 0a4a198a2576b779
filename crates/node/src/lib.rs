//! The tokio driver that runs spore's sans-IO cores for real: sockets, timers, disk, persistence.
//!
//! This crate owns everything the cores must not touch: sockets, the clock, tasks and the disk.
//! Each subsystem has its own module; the cores it drives live in their own crates.

pub mod announce;
mod clock;
pub mod dht;
pub mod swarm;
pub mod tracker;

/// A seed for a core's [`sansio::Rng`] when the user gave none: drawn from the OS through the
/// standard library's randomly keyed hasher (no clock, no extra dependency). Secrets derived from
/// it (DHT tokens, UDP tracker connection ids) must not be guessable, so a fixed default seed is
/// never used outside tests and explicit `--seed` runs.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5b0e);
    hasher.finish()
}
