//! What the swarm knows about one connected peer, and its request pipeline size.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use sansio::Timestamp;
use wire::{BlockRequest, BLOCK_LEN};

use crate::swarm::PexPeer;
use crate::{Bitfield, RateMeter};

/// Round-trip estimate before the first block arrives.
const RTT_INITIAL: Duration = Duration::from_millis(100);
/// The pipeline covers at least this much time at the peer's rate, so that a queueing delay at
/// the sender (which inflates the measured round trip) does not starve the pipe.
const PIPELINE_TIME_MIN: Duration = Duration::from_millis(500);

/// One connected peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub fast: bool,
    pub extensions: bool,
    pub has: Bitfield,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Our requests to the peer and when they were sent.
    pub outstanding: BTreeMap<BlockRequest, Timestamp>,
    /// The peer's requests being read from disk for it.
    pub incoming: BTreeSet<BlockRequest>,
    /// Pieces we may request while choked (BEP 6).
    pub allowed_fast: BTreeSet<u32>,
    pub download: RateMeter,
    pub upload: RateMeter,
    pub rtt: Duration,
    pub last_block_at: Timestamp,
    pub last_sent_at: Timestamp,
    pub strikes: u32,
    /// The peer's `reqq` (how many requests it accepts), if it said.
    pub request_queue_len: Option<u32>,
    /// The id the peer wants `ut_metadata` messages sent with.
    pub ut_metadata_id: Option<u8>,
    /// We dialled it (its address is where it listens).
    pub outgoing: bool,
    /// The port it listens on, from its extended handshake.
    pub listen_port: Option<u16>,
    /// The id the peer wants `ut_pex` messages sent with.
    pub ut_pex_id: Option<u8>,
    /// Peer exchange with it (BEP 11).
    pub pex: PexPeer,
}

impl Peer {
    pub fn new(
        now: Timestamp,
        addr: SocketAddr,
        fast: bool,
        extensions: bool,
        pieces: u32,
    ) -> Peer {
        Peer {
            addr,
            fast,
            extensions,
            has: Bitfield::new(pieces),
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            outstanding: BTreeMap::new(),
            incoming: BTreeSet::new(),
            allowed_fast: BTreeSet::new(),
            download: RateMeter::default(),
            upload: RateMeter::default(),
            rtt: RTT_INITIAL,
            last_block_at: now,
            last_sent_at: now,
            strikes: 0,
            request_queue_len: None,
            ut_metadata_id: None,
            outgoing: false,
            listen_port: None,
            ut_pex_id: None,
            pex: PexPeer::new(now),
        }
    }

    /// Where it accepts connections, if known: its address when we dialled it, else its
    /// address with the port from its extended handshake.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        if self.outgoing {
            Some(self.addr)
        } else {
            self.listen_port
                .map(|port| SocketAddr::new(self.addr.ip(), port))
        }
    }

    /// Folds one request's round trip into the estimate (EWMA, 1/8 weight as TCP does).
    pub fn observe_rtt(&mut self, sample: Duration) {
        self.rtt = (self.rtt * 7 + sample) / 8;
    }

    /// How many requests to keep outstanding: the bandwidth-delay product in blocks, bounded.
    pub fn pipeline_len(&mut self, now: Timestamp, min: usize, max: usize) -> usize {
        let rate = self.download.rate(now) as f64;
        let window = self.rtt.max(PIPELINE_TIME_MIN).as_secs_f64() * 2.0;
        let blocks = (rate * window / f64::from(BLOCK_LEN)).ceil() as usize;
        let cap = self
            .request_queue_len
            .map_or(max, |q| (q as usize).clamp(1, max));
        blocks.clamp(min.min(cap), cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_grows_with_rate_and_is_bounded() {
        let addr = "127.0.0.2:1".parse().unwrap();
        let mut peer = Peer::new(Timestamp::ZERO, addr, true, true, 4);
        let now = Timestamp::from_millis(20_000);
        assert_eq!(peer.pipeline_len(now, 4, 128), 4);
        // 20 MB/s over a 100 ms round trip (floored to 500 ms, doubled): ~1220 blocks, capped.
        peer.download.record(now, 400_000_000);
        assert_eq!(peer.pipeline_len(now, 4, 128), 128);
        peer.request_queue_len = Some(50);
        assert_eq!(peer.pipeline_len(now, 4, 128), 50);
    }
}
