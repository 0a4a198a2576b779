//! The addresses a torrent task may dial: configured peers (`--peer`, magnet `x.pe`) and those
//! that discovery (trackers, DHT, PEX) reports, with dial bookkeeping.
//!
//! Implementation notes: every address is dialled at most a bounded number of times; an address
//! is never dialled while a dial to it is in flight or it is connected, nor when it is our own
//! listening address. A seeding task does not dial again a peer it has been connected to: a
//! peer that still wants data reconnects itself, and one that finished (and left) would only
//! be dialled in vain. The book holds at most [`KNOWN_PEERS_MAX`] addresses: discovery cannot
//! make it grow without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How often known peers that are not connected are dialled again.
pub const REDIAL_INTERVAL: Duration = Duration::from_secs(3);
/// Most addresses remembered per torrent.
pub const KNOWN_PEERS_MAX: usize = 2000;
/// Dial attempts for a peer the user named (it may start after us).
const CONFIGURED_DIAL_ATTEMPTS_MAX: u32 = 40;
/// Dial attempts for a discovered peer (tracker lists are often stale).
const DISCOVERED_DIAL_ATTEMPTS_MAX: u32 = 4;

#[derive(Clone, Copy, Debug)]
struct Entry {
    attempts: u32,
    attempts_max: u32,
    /// A connection to or from it has been up.
    was_connected: bool,
}

/// Known peer addresses and which of them are being dialled or connected.
#[derive(Debug, Default)]
pub struct PeerBook {
    known: BTreeMap<SocketAddr, Entry>,
    dialing: BTreeSet<SocketAddr>,
    connected: BTreeSet<SocketAddr>,
    ours: Option<SocketAddr>,
    local_ip: Option<IpAddr>,
}

impl PeerBook {
    /// A book for a task listening on `ours` (if any), dialling from `local_ip` (if set).
    pub fn new(ours: Option<SocketAddr>, local_ip: Option<IpAddr>) -> PeerBook {
        PeerBook {
            ours,
            local_ip,
            ..PeerBook::default()
        }
    }

    fn is_self(&self, addr: SocketAddr) -> bool {
        let Some(ours) = self.ours else {
            return false;
        };
        if addr == ours {
            return true;
        }
        // A wildcard listener is reachable on every local address at its port.
        addr.port() == ours.port()
            && ours.ip().is_unspecified()
            && (addr.ip().is_loopback()
                || addr.ip().is_unspecified()
                || Some(addr.ip()) == self.local_ip)
    }

    /// Adds a peer the user named. Returns whether it is new.
    pub fn add_configured(&mut self, addr: SocketAddr) -> bool {
        self.add(addr, CONFIGURED_DIAL_ATTEMPTS_MAX)
    }

    /// Adds a peer that discovery reported. Returns whether it is new. A known address that
    /// ran out of attempts gets one more (discovery says it is alive again).
    pub fn add_discovered(&mut self, addr: SocketAddr) -> bool {
        if let Some(entry) = self.known.get_mut(&addr) {
            if entry.attempts >= entry.attempts_max {
                entry.attempts_max = entry.attempts + 1;
            }
            return false;
        }
        self.add(addr, DISCOVERED_DIAL_ATTEMPTS_MAX)
    }

    fn add(&mut self, addr: SocketAddr, attempts_max: u32) -> bool {
        if self.is_self(addr) || addr.port() == 0 || self.known.contains_key(&addr) {
            return false;
        }
        if self.known.len() >= KNOWN_PEERS_MAX {
            tracing::debug!(%addr, "peer book full: address ignored");
            return false;
        }
        self.known.insert(
            addr,
            Entry {
                attempts: 0,
                attempts_max,
                was_connected: false,
            },
        );
        true
    }

    /// Addresses to dial now (marked as being dialled), at most `room` of them, skipping those
    /// for which `banned` holds, and, when `seeding` (we have every piece), those we have been
    /// connected to.
    pub fn next_dials(
        &mut self,
        room: usize,
        seeding: bool,
        banned: impl Fn(IpAddr) -> bool,
    ) -> Vec<SocketAddr> {
        let room = room.saturating_sub(self.dialing.len());
        let mut dials = Vec::new();
        for (&addr, entry) in &mut self.known {
            if dials.len() >= room {
                break;
            }
            if entry.attempts >= entry.attempts_max
                || (seeding && entry.was_connected)
                || self.dialing.contains(&addr)
                || self.connected.contains(&addr)
                || banned(addr.ip())
            {
                continue;
            }
            entry.attempts += 1;
            dials.push(addr);
        }
        self.dialing.extend(dials.iter().copied());
        dials
    }

    /// A dial ended; `handshaken` if the peer answered our handshake (even if the connection
    /// is then not kept, as a duplicate of one the peer dialled).
    pub fn dial_ended(&mut self, addr: SocketAddr, handshaken: bool) {
        self.dialing.remove(&addr);
        if let Some(entry) = self.known.get_mut(&addr) {
            entry.was_connected |= handshaken;
        }
    }

    /// A connection to or from `addr` is up.
    pub fn on_connected(&mut self, addr: SocketAddr) {
        self.connected.insert(addr);
        if let Some(entry) = self.known.get_mut(&addr) {
            entry.was_connected = true;
        }
    }

    /// The connection to or from `addr` closed.
    pub fn on_disconnected(&mut self, addr: SocketAddr) {
        self.connected.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn never_dials_itself_twice_at_once_or_beyond_room() {
        let mut book = PeerBook::new(Some(addr("0.0.0.0:7000")), None);
        assert!(!book.add_discovered(addr("127.0.0.1:7000")), "ourselves");
        assert!(book.add_discovered(addr("127.0.0.2:7001")));
        assert!(!book.add_discovered(addr("127.0.0.2:7001")), "deduplicated");
        assert!(book.add_configured(addr("127.0.0.3:7001")));
        assert_eq!(
            book.next_dials(1, false, |_| false),
            vec![addr("127.0.0.2:7001")]
        );
        assert_eq!(
            book.next_dials(1, false, |_| false),
            vec![],
            "room is taken by the dial"
        );
        assert_eq!(
            book.next_dials(5, false, |_| false),
            vec![addr("127.0.0.3:7001")]
        );
        book.dial_ended(addr("127.0.0.2:7001"), true);
        book.on_connected(addr("127.0.0.2:7001"));
        book.dial_ended(addr("127.0.0.3:7001"), false);
        assert_eq!(
            book.next_dials(5, false, |_| false),
            vec![addr("127.0.0.3:7001")]
        );
    }

    #[test]
    fn a_seeder_does_not_redial_a_peer_it_was_connected_to() {
        let mut book = PeerBook::new(None, None);
        let (finished, never_reached) = (addr("127.0.0.2:7001"), addr("127.0.0.3:7001"));
        book.add_configured(finished);
        book.add_configured(never_reached);
        assert_eq!(
            book.next_dials(5, true, |_| false),
            vec![finished, never_reached]
        );
        book.dial_ended(finished, true);
        book.dial_ended(never_reached, false);
        book.on_connected(finished);
        book.on_disconnected(finished);
        assert_eq!(book.next_dials(5, true, |_| false), vec![never_reached]);
        book.dial_ended(never_reached, false);
        // A downloading task dials it again: it may have what we lack.
        assert_eq!(
            book.next_dials(5, false, |_| false),
            vec![finished, never_reached]
        );
    }

    #[test]
    fn discovered_peers_get_bounded_attempts_and_banned_ones_none() {
        let mut book = PeerBook::new(None, None);
        let peer = addr("127.0.0.2:7001");
        book.add_discovered(peer);
        book.add_discovered(addr("127.0.0.9:7001"));
        let mut dials = 0;
        for _ in 0..100 {
            for a in book.next_dials(10, false, |ip| ip == addr("127.0.0.9:1").ip()) {
                assert_eq!(a, peer);
                dials += 1;
                book.dial_ended(a, false);
            }
        }
        assert_eq!(dials, DISCOVERED_DIAL_ATTEMPTS_MAX);
        book.add_discovered(peer);
        assert_eq!(
            book.next_dials(10, false, |_| false).len(),
            2,
            "one more try each"
        );
    }
}
