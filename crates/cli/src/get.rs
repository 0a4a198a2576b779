//! `spore get`: download a torrent or magnet link from peers, with a live progress bar.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use node::swarm::{Options, Phase, Source, Status, Summary};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::output::{print_line, Output};

/// Download a torrent (file or magnet link) from peers.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .torrent file or a magnet link.
    pub source: String,
    /// Download directory.
    #[arg(short, long, default_value = ".")]
    pub out: PathBuf,
    /// Keep seeding after the download completes, until Ctrl-C.
    #[arg(long)]
    pub seed_after: bool,
    /// Stream: fetch pieces in order from the start (to play the file while it downloads)
    /// instead of rarest first.
    #[arg(long)]
    pub sequential: bool,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub listen: SocketAddr,
    /// Where peers come from.
    #[command(flatten)]
    pub peers: PeerArgs,
}

/// Where peers come from, for `get` and `seed`.
#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    /// A peer to connect to (repeatable), as IP:PORT.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<SocketAddr>,
    /// Local IP for outgoing connections.
    #[arg(long, value_name = "IP")]
    pub bind: Option<IpAddr>,
    /// Do not announce to the torrent's trackers.
    #[arg(long)]
    pub no_trackers: bool,
    /// Trackerless peer discovery.
    #[command(flatten)]
    pub dht: crate::dht::TrackerlessArgs,
}

/// Reads a .torrent file or parses a magnet link.
pub fn load_source(source: &str) -> anyhow::Result<Source> {
    if source.starts_with("magnet:") {
        let magnet = source.parse().context("this magnet link is not valid")?;
        return Ok(Source::Magnet(Box::new(magnet)));
    }
    let bytes =
        std::fs::read(source).with_context(|| format!("cannot read the torrent file {source}"))?;
    let torrent = metainfo::Torrent::from_bytes(&bytes)
        .with_context(|| format!("{source} is not a valid .torrent file"))?;
    Ok(Source::Torrent(Box::new(torrent)))
}

fn info_hash_hex(source: &Source) -> String {
    let hashes = match source {
        Source::Torrent(t) => t.info.info_hashes(),
        Source::Magnet(m) => m.info_hashes,
    };
    hashes
        .wire_id()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Addresses from peer feeders (trackers, DHT) queued for the torrent task.
const DISCOVERED_PEERS_QUEUE_LEN: usize = 256;

/// The final report.
#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    complete: bool,
    pieces: u32,
    pieces_at_start: u32,
    bytes_downloaded: u64,
    bytes_uploaded: u64,
    hash_failures: u32,
    peers_banned: Vec<String>,
    seconds: f64,
}

/// Runs a download or seed to its end, showing progress; shared by `get` and `seed`.
pub fn drive(
    source: Source,
    options: Options,
    out: &Output,
    announce_ready: bool,
    dht: &crate::dht::TrackerlessArgs,
) -> anyhow::Result<Summary> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (status_tx, status_rx) = watch::channel(Status::default());
        let bar = out.shows_progress().then(progress_bar);
        let display = tokio::spawn(show_progress(
            status_rx.clone(),
            bar.clone(),
            out.is_json(),
            announce_ready,
        ));
        // The peer-discovery seam: feeders (tracker announcer, DHT peer finder) get a clone of
        // `peer_feed` and of `status_rx`, and send the peer addresses they learn.
        let (peer_feed, discovered) = mpsc::channel(DISCOVERED_PEERS_QUEUE_LEN);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        // Ends by itself when the swarm run drops its status sender.
        let _dht_finder = crate::dht::start_peer_finder(
            dht,
            options.local_ip,
            &source,
            status_rx.clone(),
            peer_feed.clone(),
        )
        .await?;
        // Tracker announces (BEP 3/12/15), one announcer per info-hash: after the run ends
        // each sends `stopped` and returns.
        let trackers: Vec<_> = node::announce::configs_for(&source, options.local_ip, options.seed)
            .into_iter()
            .map(|config| {
                tokio::spawn(node::announce::announce_swarm(
                    config,
                    status_rx.clone(),
                    peer_feed.clone(),
                    watch::channel(node::announce::Report::default()).0,
                ))
            })
            .collect();
        let result = node::swarm::run(source, options, status_tx, discovered, shutdown).await;
        drop((peer_feed, status_rx));
        for announcer in trackers {
            let _ = announcer.await;
        }
        let _ = display.await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(result?)
    })
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn show_progress(
    mut status: watch::Receiver<Status>,
    bar: Option<ProgressBar>,
    json: bool,
    announce_ready: bool,
) {
    let mut announced = false;
    while status.changed().await.is_ok() {
        let s = status.borrow_and_update().clone();
        if announce_ready && !announced && s.phase == Phase::Seeding {
            announced = true;
            let addr = s.listen_addr.map(|a| a.to_string()).unwrap_or_default();
            if json {
                print_line(&serde_json::json!({ "seeding": addr }).to_string());
            } else if let Some(bar) = &bar {
                bar.println(format!("seeding on {addr}"));
            } else {
                print_line(&format!("seeding on {addr}"));
            }
        }
        if let Some(bar) = &bar {
            let p = s.progress;
            bar.set_length(p.bytes_total);
            if s.phase == Phase::Checking {
                bar.set_position(s.bytes_checked);
                bar.set_message("checking the data on disk");
                continue;
            }
            bar.set_position(p.bytes_have);
            bar.set_message(format!(
                "↓ {}/s ↑ {}/s {} peers",
                indicatif::HumanBytes(p.download_rate),
                indicatif::HumanBytes(p.upload_rate),
                p.peers
            ));
        }
    }
}

/// Prints the summary in the chosen form.
pub fn report(summary: &Summary, out: &Output) {
    let report = Report {
        name: &summary.name,
        complete: summary.complete,
        pieces: summary.piece_count,
        pieces_at_start: summary.pieces_at_start,
        bytes_downloaded: summary.bytes_downloaded,
        bytes_uploaded: summary.bytes_uploaded,
        hash_failures: summary.hash_failures,
        peers_banned: summary
            .peers_banned
            .iter()
            .map(ToString::to_string)
            .collect(),
        seconds: summary.seconds,
    };
    out.result(&report, || {
        format!(
            "{}: {} ({} pieces, {} already on disk), {} down, {} up in {:.1} s",
            summary.name,
            if summary.complete {
                "complete"
            } else {
                "incomplete"
            },
            summary.piece_count,
            summary.pieces_at_start,
            indicatif::HumanBytes(summary.bytes_downloaded),
            indicatif::HumanBytes(summary.bytes_uploaded),
            summary.seconds
        )
    });
}

/// Where the resume record of `source` downloaded into (or seeded from) `out_dir` lives.
pub fn resume_file(out_dir: &Path, source: &Source) -> anyhow::Result<PathBuf> {
    let dir = out_dir.join(".spore");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("{}.resume", info_hash_hex(source))))
}

/// Runs `spore get`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let mut source = load_source(&args.source)?;
    if args.peers.no_trackers {
        node::announce::forget_trackers(&mut source);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let options = Options {
        resume_file: Some(resume_file(&args.out, &source)?),
        out_dir: args.out,
        peers: args.peers.peers,
        listen: Some(args.listen),
        seed_after: args.seed_after,
        local_ip: args.peers.bind,
        seed: seed_from_clock(),
        seed_only: false,
        sequential: args.sequential,
        metadata_timeout: node::swarm::METADATA_TIMEOUT_DEFAULT,
    };
    let summary = drive(source, options, out, args.seed_after, &args.peers.dht)?;
    report(&summary, out);
    if !summary.complete {
        bail!("stopped before the download completed; run the same command again to resume");
    }
    Ok(())
}

/// A seed for the swarm core's random choices, different on every run.
// The CLI is a driver: it may read the clock to seed the cores.
#[allow(clippy::disallowed_methods)]
pub fn seed_from_clock() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}
