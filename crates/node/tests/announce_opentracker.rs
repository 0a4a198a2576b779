//! The tracker client against a real tracker (Debian's opentracker) on loopback, over HTTP and
//! UDP: announces register us with the right state, peers flow into the swarm's channel,
//! `completed` and `stopped` move the counts that scrape reports, BEP 12 tiers fall through
//! dead trackers, and a tracker's failure reason is reported without stopping anything.

#[path = "announce_support/opentracker.rs"]
mod opentracker;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use node::announce::{self, Config, Report, Transfer};
use opentracker::OpenTracker;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracker::{Event, InfoHash, PeerId, ScrapeStats};

/// Bound on every wait for the announcer.
const WAIT: Duration = Duration::from_secs(20);

fn config(tiers: Vec<Vec<String>>, info_hash: [u8; 20], id: u8) -> Config {
    let mut config = Config::new(tiers, InfoHash(info_hash), PeerId([id; 20]), u64::from(id));
    config.udp_timeout_first = Duration::from_millis(500);
    config.udp_attempts = 2;
    config.http_timeout = Duration::from_secs(5);
    config
}

/// One announcer task with the handles a test needs.
struct Peer {
    transfer: watch::Sender<Transfer>,
    report: watch::Receiver<Report>,
    discovered: mpsc::Receiver<SocketAddr>,
    task: JoinHandle<()>,
}

impl Peer {
    fn start(config: Config, port: u16, left: u64) -> Peer {
        let (transfer, transfer_rx) = watch::channel(Transfer {
            ready: true,
            port,
            uploaded: 0,
            downloaded: 0,
            left: Some(left),
        });
        let (report_tx, report) = watch::channel(Report::default());
        let (discovered_tx, discovered) = mpsc::channel(64);
        let task = tokio::spawn(announce::run(
            config,
            transfer_rx,
            discovered_tx,
            report_tx,
            std::future::pending(),
        ));
        Peer {
            transfer,
            report,
            discovered,
            task,
        }
    }

    async fn wait(&mut self, what: &str, condition: impl FnMut(&Report) -> bool) -> Report {
        let reached = tokio::time::timeout(WAIT, self.report.wait_for(condition))
            .await
            .map(|r| r.map(|report| report.clone()));
        match reached {
            Ok(Ok(report)) => report,
            _ => panic!("announcer never got to {what}: {:?}", *self.report.borrow()),
        }
    }

    /// Waits until `peer` comes out of the discovered-peers channel (opentracker also hands
    /// a peer its own address back; the swarm skips that one).
    async fn discover(&mut self, peer: SocketAddr) {
        for _ in 0..16 {
            let next = tokio::time::timeout(WAIT, self.discovered.recv())
                .await
                .expect("no peer discovered in time")
                .expect("announcer ended");
            if next == peer {
                return;
            }
        }
        panic!("{peer} was never discovered");
    }

    /// Ends the run (as a finished swarm does) and waits for the `stopped` announce.
    async fn stop(self) {
        drop(self.transfer);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("announcer did not stop in time")
            .expect("announcer panicked");
        assert!(self.report.borrow().finished);
    }
}

async fn scrape(url: &str, info_hash: [u8; 20]) -> ScrapeStats {
    let stats = announce::scrape(&config(vec![], info_hash, 99), url, &[InfoHash(info_hash)])
        .await
        .unwrap_or_else(|e| panic!("scrape of {url} failed: {e}"));
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].0, InfoHash(info_hash));
    stats[0].1
}

/// A seeder and a leecher announce through `url`: each sees the other, and the counts follow
/// `started`, `completed` and `stopped`.
async fn lifecycle(url: String, info_hash: [u8; 20]) {
    let tiers = vec![vec![url.clone()]];
    let mut seeder = Peer::start(config(tiers.clone(), info_hash, 1), 41001, 0);
    let first = seeder
        .wait("its first announce", |r| r.announces >= 1)
        .await;
    assert_eq!(first.last_event, Some(Event::Started));
    assert_eq!(first.last_tracker.as_deref(), Some(url.as_str()));

    let mut leecher = Peer::start(config(tiers, info_hash, 2), 41002, 5000);
    let joined = leecher
        .wait("its first announce", |r| r.announces >= 1)
        .await;
    assert_eq!(
        joined.swarm,
        Some((1, 1)),
        "seeders and leechers in the answer"
    );
    leecher.discover("127.0.0.1:41001".parse().unwrap()).await;
    assert_eq!(
        scrape(&url, info_hash).await,
        ScrapeStats {
            complete: 1,
            downloaded: 0,
            incomplete: 1
        }
    );

    // The download completes: `completed` goes out at once, once.
    leecher.transfer.send_modify(|t| {
        t.left = Some(0);
        t.downloaded = 5000;
    });
    let done = leecher
        .wait("`completed`", |r| r.last_event == Some(Event::Completed))
        .await;
    assert_eq!(done.announces, 2);
    assert_eq!(
        scrape(&url, info_hash).await,
        ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 0
        }
    );
    // A seeder that was complete from the start never sends `completed`: the final
    // `downloaded` count of 1 below proves it saw this update and stayed quiet.
    seeder.transfer.send_modify(|t| t.uploaded = 5000);

    leecher.stop().await;
    seeder.stop().await;
    assert_eq!(
        scrape(&url, info_hash).await,
        ScrapeStats {
            complete: 0,
            downloaded: 1,
            incomplete: 0
        }
    );
}

#[tokio::test]
async fn http_announce_lifecycle_and_scrape_against_opentracker() {
    let info_hash = [0x11; 20];
    let tracker = OpenTracker::start(Ipv4Addr::new(127, 0, 0, 1), &[info_hash]);
    lifecycle(tracker.http_url(), info_hash).await;
}

#[tokio::test]
async fn udp_announce_lifecycle_and_scrape_against_opentracker() {
    let info_hash = [0x22; 20];
    let tracker = OpenTracker::start(Ipv4Addr::new(127, 0, 0, 1), &[info_hash]);
    lifecycle(tracker.udp_url(), info_hash).await;
}

#[tokio::test]
async fn dead_trackers_and_failure_reasons_fall_through_to_the_next_tier() {
    let info_hash = [0x33; 20];
    let tracker = OpenTracker::start(Ipv4Addr::new(127, 0, 0, 1), &[info_hash]);
    // Ports with nobody behind them: refused at once over TCP, ICMP-unreachable over UDP.
    let dead = opentracker::free_port(Ipv4Addr::new(127, 0, 0, 1));
    let first_tier = vec![
        format!("udp://{dead}/announce"),
        format!("http://{dead}/announce"),
        "wss://tracker.invalid/announce".to_owned(),
    ];
    let tiers = vec![first_tier.clone(), vec![tracker.udp_url()]];
    let mut peer = Peer::start(config(tiers, info_hash, 3), 41003, 100);
    let report = peer
        .wait("an answered announce", |r| r.announces >= 1)
        .await;
    assert_eq!(
        report.last_tracker.as_deref(),
        Some(tracker.udp_url().as_str())
    );
    let error = report.last_error.expect("the dead trackers were reported");
    assert!(
        first_tier.iter().any(|url| error.starts_with(url.as_str())),
        "{error}"
    );
    peer.stop().await;

    // A torrent the tracker refuses: the reason is reported with the URL (opentracker gives
    // one over HTTP and stays silent over UDP), and the task carries on.
    let refused = [0x44; 20];
    for (url, reason) in [
        (tracker.http_url(), "not authorized"),
        (tracker.udp_url(), "no answer"),
    ] {
        let mut peer = Peer::start(config(vec![vec![url.clone()]], refused, 4), 41004, 100);
        let report = peer
            .wait("a failed announce", |r| r.failed_announces >= 1)
            .await;
        let error = report.last_error.expect("the failure was reported");
        assert!(error.starts_with(&url) && error.contains(reason), "{error}");
        assert!(!peer.task.is_finished());
        assert_eq!(report.announces, 0);
        peer.stop().await;
    }
}

#[tokio::test]
async fn a_finished_swarm_does_not_wait_for_a_silent_tracker() {
    // A UDP "tracker" that reads requests and never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let mut config = config(vec![vec![url]], [0x55; 20], 5);
    // BEP 15's schedule: 15 s, then 30 s, then 60 s before giving up.
    config.udp_timeout_first = Duration::from_secs(15);
    config.udp_attempts = 3;
    let peer = Peer::start(config, 41005, 100);
    let mut request = [0u8; 64];
    let (len, _) = tokio::time::timeout(WAIT, silent.recv_from(&mut request))
        .await
        .expect("the announcer sent its connect")
        .unwrap();
    assert_eq!(len, 16, "a BEP 15 connect request");
    // The swarm ends while the connect is unanswered: the announcer ends too (within WAIT,
    // far less than the 105 s of retries), with nothing to stop.
    peer.stop().await;
}

#[tokio::test]
async fn a_download_that_completes_and_ends_at_once_still_reports_completed_then_stopped() {
    let info_hash = [0x66; 20];
    let tracker = OpenTracker::start(Ipv4Addr::new(127, 0, 0, 1), &[info_hash]);
    let url = tracker.http_url();
    let mut peer = Peer::start(config(vec![vec![url.clone()]], info_hash, 6), 41006, 100);
    peer.wait("its first announce", |r| r.announces >= 1).await;
    // What `spore get` does on finishing: the last status says complete, then the run ends.
    peer.transfer.send_modify(|t| {
        t.left = Some(0);
        t.downloaded = 100;
    });
    peer.stop().await;
    assert_eq!(
        scrape(&url, info_hash).await,
        ScrapeStats {
            complete: 0,
            downloaded: 1,
            incomplete: 0
        }
    );
}
