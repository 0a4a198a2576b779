//! Peer exchange, BEP 11 (`ut_pex`): telling peers whom we are connected to, and learning
//! from them whom they are connected to. Never for private torrents (BEP 27): the parent
//! neither advertises nor routes `ut_pex` then.
//!
//! Sending: at most one message per [`Config::pex_interval`](super::Config) to each peer that
//! advertised `ut_pex`, as soon as there is something to say. The first carries our current
//! connections, later ones the difference since the last (`added` with flags, `dropped`), at
//! most [`PEX_SENT_PER_LIST_MAX`] per list; what did not fit goes in the next. A connection is
//! only passed on when we know where it listens: we dialled it, or its extended handshake
//! gave a port.
//!
//! Receiving: each peer gets a small burst of [`PEX_RECEIVE_BURST`] messages, then one per
//! [`PEX_RECEIVE_INTERVAL_MIN`]; messages beyond that are ignored, and a peer whose messages
//! are ignored [`PEX_IGNORED_TO_DROP`] times in a row is flooding and is dropped. Of each
//! message at most [`PEX_ACCEPTED_PER_MESSAGE_MAX`] new addresses are taken; addresses we are
//! connected to, banned ones and unusable ones are skipped, and so are local addresses
//! (loopback, private ranges) unless the sender is local too: a stranger on the Internet must
//! not make us dial into our own network. `dropped` is not acted on: a peer that left someone
//! may still be alive for us.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sansio::Timestamp;
use wire::{Message, PexMessage};

use super::{Event, Swarm};
use crate::PeerKey;

/// Our `ut_pex` extension id (what peers send to us).
pub const UT_PEX_ID: u8 = 2;
/// `added.f` flag: the peer is a seed.
pub const PEX_FLAG_SEED: u8 = 0x02;
/// `added.f` flag: the peer accepts connections (we reached it by dialling).
pub const PEX_FLAG_REACHABLE: u8 = 0x10;
/// Most entries we put in `added` (and in `dropped`) of one message, as BEP 11 asks.
pub const PEX_SENT_PER_LIST_MAX: usize = 50;
/// Most new addresses taken from one received message.
pub const PEX_ACCEPTED_PER_MESSAGE_MAX: usize = 50;
/// Messages a peer may send back to back before the rate limit applies.
pub const PEX_RECEIVE_BURST: u32 = 3;
/// Once the burst is spent, one message per this much time is read.
pub const PEX_RECEIVE_INTERVAL_MIN: Duration = Duration::from_secs(45);
/// Consecutive ignored messages after which the sender is dropped as a flooder.
pub const PEX_IGNORED_TO_DROP: u32 = 4;

/// Peer exchange state for one connected peer.
#[derive(Debug)]
pub(crate) struct PexPeer {
    /// The addresses (ours to them) it has been told about and not told dropped: `None`
    /// until the first message.
    told: Option<BTreeSet<SocketAddr>>,
    /// Not before then may the next message go to it.
    next_send_at: Timestamp,
    /// Messages it may send now (a token bucket of [`PEX_RECEIVE_BURST`]).
    allowance: u32,
    /// When the next token comes.
    refill_at: Timestamp,
    /// Its messages ignored in a row for coming too often.
    ignored_in_row: u32,
}

impl PexPeer {
    pub fn new(now: Timestamp) -> PexPeer {
        PexPeer {
            told: None,
            next_send_at: now,
            allowance: PEX_RECEIVE_BURST,
            refill_at: now,
            ignored_in_row: 0,
        }
    }

    /// Takes a token for a received message; false when none is left.
    fn take_token(&mut self, now: Timestamp) -> bool {
        // Bounded: at most PEX_RECEIVE_BURST rounds.
        while self.allowance < PEX_RECEIVE_BURST && now >= self.refill_at {
            self.allowance += 1;
            self.refill_at = self.refill_at + PEX_RECEIVE_INTERVAL_MIN;
        }
        if self.allowance == 0 {
            return false;
        }
        if self.allowance == PEX_RECEIVE_BURST {
            self.refill_at = now + PEX_RECEIVE_INTERVAL_MIN;
        }
        self.allowance -= 1;
        true
    }
}

/// Loopback, private, link-local and unique-local addresses: reachable only nearby.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
    }
}

/// Whether an address could be a peer at all.
fn is_dialable(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

impl Swarm {
    /// Where each connected peer listens (when known), with the flags to pass on about it.
    fn pex_connections(&self) -> BTreeMap<PeerKey, (SocketAddr, u8)> {
        self.peers
            .iter()
            .filter_map(|(&key, peer)| {
                let addr = peer.listen_addr()?;
                let mut flags = 0;
                if peer.outgoing {
                    flags |= PEX_FLAG_REACHABLE;
                }
                if peer.has.is_full() {
                    flags |= PEX_FLAG_SEED;
                }
                Some((key, (addr, flags)))
            })
            .collect()
    }

    /// Sends each peer that speaks `ut_pex` and is due what changed since its last message.
    pub(super) fn send_pex_due(&mut self, now: Timestamp) {
        let connections = self.pex_connections();
        let due: Vec<(PeerKey, u8)> = self
            .peers
            .iter()
            .filter(|(_, p)| now >= p.pex.next_send_at)
            .filter_map(|(&key, p)| Some((key, p.ut_pex_id?)))
            .collect();
        for (key, their_id) in due {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let current: BTreeMap<SocketAddr, u8> = connections
                .iter()
                .filter(|(&other, _)| other != key)
                .map(|(_, &(addr, flags))| (addr, flags))
                .filter(|&(addr, _)| Some(addr) != peer.listen_addr() && addr != peer.addr)
                .collect();
            let told = peer.pex.told.get_or_insert_with(BTreeSet::new);
            let added: Vec<(SocketAddr, u8)> = current
                .iter()
                .filter(|(addr, _)| !told.contains(*addr))
                .map(|(&addr, &flags)| (addr, flags))
                .take(PEX_SENT_PER_LIST_MAX)
                .collect();
            let dropped: Vec<SocketAddr> = told
                .iter()
                .filter(|addr| !current.contains_key(*addr))
                .copied()
                .take(PEX_SENT_PER_LIST_MAX)
                .collect();
            if added.is_empty() && dropped.is_empty() {
                // Nothing to say: ask again next tick, so news goes out at once.
                continue;
            }
            told.extend(added.iter().map(|(addr, _)| *addr));
            for addr in &dropped {
                told.remove(addr);
            }
            peer.pex.next_send_at = now + self.config.pex_interval;
            let payload = PexMessage { added, dropped }.to_bytes().into();
            let message = Message::Extended {
                id: their_id,
                payload,
            };
            self.send(now, key, message);
        }
    }

    /// A `ut_pex` message arrived: rate-limit it, then report the addresses worth dialling.
    pub(super) fn on_pex(
        &mut self,
        now: Timestamp,
        key: PeerKey,
        payload: &[u8],
    ) -> Result<(), &'static str> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if !peer.pex.take_token(now) {
            peer.pex.ignored_in_row += 1;
            if peer.pex.ignored_in_row >= PEX_IGNORED_TO_DROP {
                return Err("ut_pex flood");
            }
            return Ok(());
        }
        peer.pex.ignored_in_row = 0;
        let sender_is_local = is_local(peer.addr.ip());
        let message = PexMessage::parse(payload).map_err(|_| "bad ut_pex message")?;
        let known: BTreeSet<SocketAddr> = self
            .peers
            .values()
            .flat_map(|p| [Some(p.addr), p.listen_addr()])
            .flatten()
            .collect();
        let mut discovered = Vec::new();
        for (addr, _flags) in message.added {
            if discovered.len() >= PEX_ACCEPTED_PER_MESSAGE_MAX {
                break;
            }
            let usable = is_dialable(addr)
                && (sender_is_local || !is_local(addr.ip()))
                && !known.contains(&addr)
                && !self.banned.contains(&addr.ip())
                && !discovered.contains(&addr);
            if usable {
                discovered.push(addr);
            }
        }
        if !discovered.is_empty() {
            self.events.push_back(Event::PeersDiscovered(discovered));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "pex_tests.rs"]
mod tests;
