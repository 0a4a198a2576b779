//! spore's simulator: the real sans-IO DHT cores (BEP 5, 42, 44), thousands to a hundred thousand
//! of them, driven in virtual time by one deterministic discrete-event loop.
//!
//! [`engine`] is the loop, independent of any protocol; [`network`] models latency and loss;
//! [`churn`] draws session lengths; [`node`] wraps the real [`dht::Dht`] core with adversarial
//! behaviours and hop counting; [`scenario`] reads experiments from TOML; [`runner`] plays one
//! and measures it into a [`report::Report`]; [`plot`] draws it. Everything random comes from one
//! seed, so the same scenario and seed give the same report, byte for byte.

pub mod churn;
pub mod engine;
pub mod network;
pub mod node;
pub mod plot;
pub mod report;
pub mod runner;
pub mod scenario;

use std::path::PathBuf;

/// What can go wrong setting up or reporting a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A scenario file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A scenario file is not valid TOML for a scenario.
    #[error("invalid scenario file: {0}")]
    Parse(String),
    /// A scenario value is out of range.
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// The worker threads could not be started.
    #[error("cannot start the simulator's threads: {0}")]
    Threads(String),
    /// A plot could not be drawn or written.
    #[error("cannot draw plot {path}: {reason}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
