//! Trackerless peer discovery for one torrent (BEP 5): get_peers lookups that feed the swarm's
//! `discovered` channel, and announce_peer of the swarm's listen port.
//!
//! [`run`] follows the swarm's [`Status`]: it announces the torrent once the listener's port is
//! known (the core then re-announces it every [`::dht::REANNOUNCE_INTERVAL`] while the DHT node
//! lives), and while the download is incomplete it looks up peers on a bounded back-off schedule
//! ([`Schedule`]). Every lookup pushes all the addresses it finds (once each): the swarm
//! deduplicates, and a repeat lets a later phase (the download after a magnet's metadata fetch)
//! or a reconnect use an address again. It returns when the swarm ends (the status sender or
//! the `discovered` receiver is dropped).
//!
//! Implementation notes: lookups repeat because a torrent's swarm changes while we download
//! (new seeders announce, downloaders finish); the interval doubles from `lookup_interval_min`
//! to `lookup_interval_max` so a long download costs a lookup every few minutes, not a flood.
//! A complete torrent needs no lookups: peers find it through its announce.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use ::dht::NodeId;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::DhtHandle;
use crate::swarm::Status;

/// Most distinct addresses one lookup passes to the swarm; the rest are ignored.
pub const LOOKUP_PEERS_MAX: usize = 1024;

/// When get_peers lookups repeat while a download is incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Wait after the first lookup; doubles after each one.
    pub lookup_interval_min: Duration,
    /// The longest wait between lookups.
    pub lookup_interval_max: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            lookup_interval_min: Duration::from_secs(2),
            lookup_interval_max: Duration::from_secs(5 * 60),
        }
    }
}

/// Joins the DHT through `bootstrap` (if any), then runs [`run`]; all in a new task.
pub fn spawn(
    dht: DhtHandle,
    bootstrap: Vec<SocketAddr>,
    info_hash: NodeId,
    status: watch::Receiver<Status>,
    discovered: mpsc::Sender<SocketAddr>,
    schedule: Schedule,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !bootstrap.is_empty() {
            match dht.bootstrap(bootstrap).await {
                Ok(joined) if joined.closest.is_empty() => {
                    tracing::warn!(
                        "no DHT bootstrap node answered: peers come only from the saved table"
                    )
                }
                Ok(joined) => tracing::info!(nodes = joined.closest.len(), "joined the DHT"),
                Err(err) => tracing::warn!(%err, "DHT bootstrap failed"),
            }
        }
        run(dht, info_hash, status, discovered, schedule).await;
    })
}

/// Finds peers of the torrent in `status` through `dht` and announces it; see the module docs.
///
/// `info_hash` is the torrent's DHT key (the v1 info-hash, or the truncated v2 one).
pub async fn run(
    dht: DhtHandle,
    info_hash: NodeId,
    mut status: watch::Receiver<Status>,
    discovered: mpsc::Sender<SocketAddr>,
    schedule: Schedule,
) {
    let mut announced_port = None;
    let mut interval = schedule.lookup_interval_min;
    let mut next_lookup = Instant::now();
    loop {
        let (port, complete) = {
            let s = status.borrow_and_update();
            (s.listen_port(), s.is_complete())
        };
        if let Some(port) = port.filter(|p| Some(*p) != announced_port) {
            announced_port = Some(port);
            // In its own task: a slow node must not delay lookups or the end of the swarm.
            let dht = dht.clone();
            tokio::spawn(async move {
                match dht.announce(info_hash, Some(port)).await {
                    Ok(result) => {
                        tracing::info!(%info_hash, port, stored = result.stored, "announced on the DHT")
                    }
                    Err(err) => tracing::warn!(%err, "DHT announce failed"),
                }
            });
        }
        let own = port.map(|p| SocketAddr::new(dht.local_addr().ip(), p));
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(next_lookup), if !complete => {
                let open = lookup(&dht, info_hash, own, &discovered).await;
                if !open {
                    return;
                }
                next_lookup = Instant::now() + interval;
                interval = (interval * 2).min(schedule.lookup_interval_max);
            }
            () = discovered.closed() => return,
        }
    }
}

/// One get_peers lookup; pushes each address it finds once. Returns false once the swarm has
/// stopped listening.
async fn lookup(
    dht: &DhtHandle,
    info_hash: NodeId,
    own: Option<SocketAddr>,
    discovered: &mpsc::Sender<SocketAddr>,
) -> bool {
    let mut batches = match dht.get_peers_stream(info_hash).await {
        Ok(batches) => batches,
        Err(err) => {
            tracing::warn!(%err, "DHT lookup failed");
            return true;
        }
    };
    let mut pushed = BTreeSet::new();
    while let Some(batch) = batches.recv().await {
        for peer in batch {
            if Some(peer) == own || pushed.len() >= LOOKUP_PEERS_MAX || !pushed.insert(peer) {
                continue;
            }
            if discovered.send(peer).await.is_err() {
                return false;
            }
        }
    }
    tracing::debug!(%info_hash, found = pushed.len(), "DHT get_peers lookup done");
    true
}
