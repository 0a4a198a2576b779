//! spore's simulator: the real sans-IO DHT cores (BEP 5, 42, 44), thousands to a hundred thousand
//! of them, driven in virtual time by one deterministic discrete-event loop.
//!
//! [`engine`] is the loop, independent of any protocol; [`network`] models latency and loss;
//! [`churn`] draws session lengths. Everything random comes from one seed, so the same scenario
//! and seed give the same report, byte for byte.

pub mod churn;
pub mod engine;
pub mod network;
