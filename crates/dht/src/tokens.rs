//! Write tokens (BEP 5): a `get_peers` or `get` reply hands the querier a token that a later
//! `announce_peer` or `put` from the same IP must show. A token is a hash of the IP and a secret;
//! the secret rotates every 5 minutes and the previous one is still accepted, so a token lives
//! 5 to 10 minutes and the node stores nothing per querier.

use std::net::IpAddr;
use std::time::Duration;

use sansio::{Rng, RngExt, Timestamp};
use sha1::{Digest, Sha1};

/// How often the secret changes.
pub const ROTATION_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Bytes in a token we issue.
pub const TOKEN_BYTES: usize = 8;

/// The current and previous secrets.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    next_rotation: Timestamp,
}

impl Tokens {
    /// Fresh secrets; the first rotation is due `ROTATION_INTERVAL` after `now`.
    pub fn new(now: Timestamp, rng: &mut Rng) -> Tokens {
        Tokens {
            current: rng.gen(),
            previous: rng.gen(),
            next_rotation: now + ROTATION_INTERVAL,
        }
    }

    /// Rotates the secret if it is due (call from the core's timer).
    pub fn rotate_if_due(&mut self, now: Timestamp, rng: &mut Rng) {
        while now >= self.next_rotation {
            self.previous = self.current;
            self.current = rng.gen();
            self.next_rotation = self.next_rotation + ROTATION_INTERVAL;
            if now >= self.next_rotation + ROTATION_INTERVAL {
                // Long idle: both secrets are stale anyway.
                self.previous = rng.gen();
                self.next_rotation = now + ROTATION_INTERVAL;
            }
        }
    }

    /// The token for `ip` under the current secret.
    pub fn issue(&self, ip: IpAddr) -> Vec<u8> {
        token_for(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` under the current or previous secret.
    pub fn is_valid(&self, token: &[u8], ip: IpAddr) -> bool {
        token == token_for(&self.current, ip).as_slice()
            || token == token_for(&self.previous, ip).as_slice()
    }
}

fn token_for(secret: &[u8; 16], ip: IpAddr) -> Vec<u8> {
    let mut hasher = Sha1::new();
    hasher.update(secret);
    match ip {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    hasher.finalize()[..TOKEN_BYTES].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_live_for_two_rotations_and_bind_the_ip() {
        let mut rng = Rng::from_seed(1);
        let start = Timestamp::ZERO;
        let mut tokens = Tokens::new(start, &mut rng);
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let token = tokens.issue(ip);
        assert!(tokens.is_valid(&token, ip));
        assert!(!tokens.is_valid(&token, "1.2.3.5".parse().unwrap()));
        tokens.rotate_if_due(start + ROTATION_INTERVAL, &mut rng);
        assert!(tokens.is_valid(&token, ip), "accepted after one rotation");
        tokens.rotate_if_due(start + ROTATION_INTERVAL * 2, &mut rng);
        assert!(!tokens.is_valid(&token, ip), "rejected after two rotations");
    }
}
