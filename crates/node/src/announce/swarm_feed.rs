//! Glue between a swarm run ([`crate::swarm::run`]) and the announcer: the tracker
//! configuration that follows from what is being downloaded, and a task that turns the swarm's
//! [`Status`] into the announcer's [`Transfer`].

use std::net::{IpAddr, SocketAddr};

use tokio::sync::{mpsc, watch};
use tracker::{InfoHash, PeerId};

use super::{run, Config, Report, Transfer};
use crate::swarm::{Phase, Source, Status};

/// The trackers of `source` as BEP 12 tiers: a torrent's `announce-list` (or `announce`), a
/// magnet link's `tr` parameters as one tier.
pub fn tiers_of(source: &Source) -> Vec<Vec<String>> {
    match source {
        Source::Torrent(torrent) => torrent.trackers(),
        Source::Magnet(magnet) if magnet.trackers.is_empty() => Vec::new(),
        Source::Magnet(magnet) => vec![magnet.trackers.clone()],
    }
}

/// Removes every tracker from `source` (`--no-trackers`); its info-hash does not change.
pub fn forget_trackers(source: &mut Source) {
    match source {
        Source::Torrent(torrent) => {
            torrent.announce = None;
            torrent.announce_list.clear();
        }
        Source::Magnet(magnet) => magnet.trackers.clear(),
    }
}

/// The announcers' configurations for `source`, sending from `local_ip` (the swarm's outgoing
/// address, so that trackers hand out an address the swarm accepts connections on): one per
/// info-hash the swarm is known by, so a hybrid torrent is announced under its v1 hash and its
/// truncated v2 hash (BEP 52), where v1-only and v2-only peers look for it.
pub fn configs_for(source: &Source, local_ip: Option<IpAddr>, seed: u64) -> Vec<Config> {
    let info_hashes = match source {
        Source::Torrent(torrent) => torrent.info.info_hashes(),
        Source::Magnet(magnet) => magnet.info_hashes,
    };
    let ids = [
        info_hashes.v1.map(|v1| v1.0),
        info_hashes.v2.map(|v2| v2.truncated()),
    ];
    ids.into_iter()
        .flatten()
        .enumerate()
        .map(|(i, id)| {
            let mut config = Config::new(
                tiers_of(source),
                InfoHash(id),
                PeerId(crate::swarm::peer_id(seed)),
                seed ^ i as u64,
            );
            config.local_ip = local_ip;
            config
        })
        .collect()
}

/// What the announcer needs from a swarm's status.
pub fn transfer_of(status: &Status) -> Transfer {
    let progress = &status.progress;
    let metadata_known = progress.piece_count > 0;
    Transfer {
        ready: status.listen_addr.is_some() && status.phase != Phase::Checking,
        port: status.listen_port().unwrap_or(0),
        uploaded: progress.bytes_uploaded,
        downloaded: progress.bytes_downloaded,
        left: metadata_known.then(|| status.bytes_left()),
    }
}

/// Announces the swarm run that `status` follows until that run ends (its status sender is
/// dropped), then sends `stopped`. Peers go to `discovered`, the swarm's peer feed.
pub async fn announce_swarm(
    config: Config,
    mut status: watch::Receiver<Status>,
    discovered: mpsc::Sender<SocketAddr>,
    report: watch::Sender<Report>,
) {
    let (transfer_tx, transfer_rx) = watch::channel(transfer_of(&status.borrow_and_update()));
    let forward = async move {
        while status.changed().await.is_ok() {
            let transfer = transfer_of(&status.borrow_and_update());
            transfer_tx.send_if_modified(|old| {
                let changed = *old != transfer;
                *old = transfer;
                changed
            });
        }
        // Dropping `transfer_tx` here tells the announcer the run is over.
    };
    tokio::join!(
        forward,
        run(
            config,
            transfer_rx,
            discovered,
            report,
            std::future::pending()
        )
    );
}
