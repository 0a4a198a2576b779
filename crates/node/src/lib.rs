//! The tokio driver that runs spore's sans-IO cores for real: sockets, timers, disk, persistence.
//!
//! This crate owns everything the cores must not touch: sockets, the clock, tasks and the disk.
//! Each subsystem has its own module; the cores it drives live in their own crates.

pub mod announce;
pub mod dht;
pub mod swarm;
pub mod tracker;
