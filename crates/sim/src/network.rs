//! The network model: where nodes sit in a synthetic latency space and how their links behave.
//!
//! Each node gets a point in a 2-D plane whose unit is a millisecond of one-way delay (points are
//! drawn from a Gaussian around the origin, so most pairs are near and some are far, as across
//! continents) and an access delay for its last mile. The one-way delay between two nodes is the
//! distance between their points plus both access delays; with the defaults round-trip times range
//! from about 10 ms to 400 ms with a median near 100 ms (`tests::rtt_spread_is_realistic` checks).
//! Each node also has a loss rate; a packet crossing a link survives both ends' losses.

use std::time::Duration;

use sansio::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::engine::NodeHandle;

/// Parameters of the network model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Standard deviation of node positions along each axis, in ms of one-way delay.
    pub spread_ms: f32,
    /// Smallest access (last-mile) delay, in ms.
    pub access_min_ms: f32,
    /// Mean of the exponential part of the access delay added to the minimum, in ms.
    pub access_extra_mean_ms: f32,
    /// Mean packet loss rate per node (each node's rate is drawn uniformly in `[0, 2 * loss]`).
    pub loss: f32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            spread_ms: 20.0,
            access_min_ms: 2.0,
            access_extra_mean_ms: 6.0,
            loss: 0.0,
        }
    }
}

/// Per-node link properties, kept small: 16 bytes a node.
#[derive(Clone, Copy, Debug)]
struct Place {
    x: f32,
    y: f32,
    access_ms: f32,
    loss: f32,
}

/// The latency space and link properties of every node slot.
#[derive(Clone, Debug)]
pub struct Network {
    config: NetworkConfig,
    places: Vec<Place>,
}

impl Network {
    /// A network with no nodes placed yet.
    pub fn new(config: NetworkConfig) -> Network {
        Network {
            config,
            places: Vec::new(),
        }
    }

    /// Places the next node slot, drawing its position, access delay and loss rate from `rng`.
    pub fn place(&mut self, rng: &mut Rng) {
        let c = &self.config;
        let (x, y) = gaussian_pair(rng);
        let access_ms = c.access_min_ms + exponential(rng, c.access_extra_mean_ms);
        let loss = (rng.gen::<f32>() * 2.0 * c.loss).clamp(0.0, 1.0);
        self.places.push(Place {
            x: x * c.spread_ms,
            y: y * c.spread_ms,
            access_ms,
            loss,
        });
    }

    /// Time for a packet from `a` to reach `b`.
    pub fn one_way_delay(&self, a: NodeHandle, b: NodeHandle) -> Duration {
        let (pa, pb) = (self.places[a.0 as usize], self.places[b.0 as usize]);
        let distance = ((pa.x - pb.x).powi(2) + (pa.y - pb.y).powi(2)).sqrt();
        let millis = distance + pa.access_ms + pb.access_ms;
        Duration::from_micros(((millis * 1000.0) as u64).max(1))
    }

    /// A lower bound of [`Network::one_way_delay`] for any pair: twice the least access delay
    /// (at least a microsecond, so a datagram never arrives at the instant it was sent).
    pub fn min_one_way_delay(&self) -> Duration {
        let least = self.config.access_min_ms.max(0.0);
        // The same float operations as one_way_delay, which only adds non-negative terms.
        Duration::from_micros((((least + least) * 1000.0) as u64).max(1))
    }

    /// Round-trip time between `a` and `b` (no processing delay: cores answer instantly).
    pub fn rtt(&self, a: NodeHandle, b: NodeHandle) -> Duration {
        self.one_way_delay(a, b) * 2
    }

    /// Probability that a packet between `a` and `b` is lost.
    pub fn link_loss(&self, a: NodeHandle, b: NodeHandle) -> f32 {
        let (la, lb) = (
            self.places[a.0 as usize].loss,
            self.places[b.0 as usize].loss,
        );
        1.0 - (1.0 - la) * (1.0 - lb)
    }
}

/// A sample of the exponential distribution with the given mean (inverse transform).
pub fn exponential(rng: &mut Rng, mean: f32) -> f32 {
    let u: f32 = rng.gen();
    -mean * (1.0 - u).ln()
}

/// Two independent standard normal samples (Box-Muller).
fn gaussian_pair(rng: &mut Rng) -> (f32, f32) {
    let u1: f32 = 1.0 - rng.gen::<f32>();
    let u2: f32 = rng.gen();
    let radius = (-2.0 * u1.ln()).sqrt();
    let angle = std::f32::consts::TAU * u2;
    (radius * angle.cos(), radius * angle.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_spread_is_realistic() {
        let mut rng = Rng::from_seed(5);
        let mut net = Network::new(NetworkConfig::default());
        for _ in 0..2000 {
            net.place(&mut rng);
        }
        let mut rtts: Vec<f64> = (0..20_000)
            .map(|_| {
                let a = NodeHandle(rng.gen_range(0..2000));
                let b = NodeHandle(rng.gen_range(0..2000));
                net.rtt(a, b).as_secs_f64() * 1000.0
            })
            .collect();
        rtts.sort_by(f64::total_cmp);
        let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize];
        let (p01, median, p999) = (pct(0.001), pct(0.5), pct(0.999));
        assert!((8.0..25.0).contains(&p01), "0.1th percentile {p01} ms");
        assert!((85.0..115.0).contains(&median), "median {median} ms");
        assert!(
            (250.0..450.0).contains(&p999),
            "99.9th percentile {p999} ms"
        );
    }

    #[test]
    fn loss_combines_both_ends() {
        let mut rng = Rng::from_seed(1);
        let mut lossless = Network::new(NetworkConfig::default());
        let mut lossy = Network::new(NetworkConfig {
            loss: 0.5,
            ..NetworkConfig::default()
        });
        for _ in 0..1000 {
            lossless.place(&mut rng);
            lossy.place(&mut rng);
        }
        let links = (0..999).map(|i| (NodeHandle(i), NodeHandle(i + 1)));
        assert!(links.clone().all(|(a, b)| lossless.link_loss(a, b) == 0.0));
        // Per-node rates are uniform in [0, 1]: a link keeps a packet with probability 1/4.
        let mean = links.map(|(a, b)| lossy.link_loss(a, b)).sum::<f32>() / 999.0;
        assert!((0.7..0.8).contains(&mean), "mean link loss {mean}");
    }
}
