//! `spore testnet`: spore's main job end to end on one machine, on loopback only.
//!
//! It starts `--nodes` DHT nodes, a seeder of a generated file (its content fixed by `--seed`)
//! that announces itself in the DHT (BEP 5), and `--downloaders` downloaders that are given only
//! the magnet link: each finds peers with DHT get_peers, fetches the metadata from them (BEP 9),
//! downloads, verifies and serves what it has to the others. The run ends when every downloader
//! is complete (or at `--timeout`), with a summary table (or `--json`).
//!
//! Every node has its own loopback address, 127.0.SUBNET.x (the DHT keeps one routing-table
//! entry per IP address, as on the Internet): the seeder is .2, downloaders .10 and up, DHT nodes
//! .100 and up. Linux routes all of 127.0.0.0/8 to the loopback interface, so no setup or root is
//! needed. The working files live in a temporary directory that is removed at the end.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use dht::NodeId;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use metainfo::{CreateOptions, MetaVersion, Torrent};
use node::dht::peer_finder::{self, Schedule};
use node::dht::{DhtHandle, DhtOptions};
use node::swarm::{Options, Source, Status, Summary};
use sansio::RngExt;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::output::Output;

/// Host part of the seeder's address.
const SEEDER_HOST: u8 = 2;
/// Host part of the first downloader's address.
const DOWNLOADER_HOST_FIRST: u8 = 10;
/// Host part of the first DHT node's address.
const DHT_HOST_FIRST: u8 = 100;
/// Peer addresses buffered between a peer finder and its swarm.
const DISCOVERED_QUEUE_MAX: usize = 256;
/// Lookups repeat quickly here: everything is local and the run is short.
const TESTNET_SCHEDULE: Schedule = Schedule {
    lookup_interval_min: Duration::from_millis(500),
    lookup_interval_max: Duration::from_secs(4),
};

/// Arguments of `spore testnet`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DHT nodes in the network.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=150))]
    pub nodes: u8,
    /// Downloaders that start from the magnet link alone.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=80))]
    pub downloaders: u8,
    /// Size of the generated file to share, in MiB.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub size_mib: u64,
    /// Seed for the generated content and every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Third byte of every address: 127.0.SUBNET.x (pick another one to run two at once).
    #[arg(long, default_value_t = 1)]
    pub subnet: u8,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// One downloader's outcome.
#[derive(Serialize)]
struct DownloaderReport {
    addr: IpAddr,
    /// Seconds from start to complete.
    seconds: Option<f64>,
    mib_per_s: Option<f64>,
    /// Most peers connected at once.
    peers_max: usize,
    bytes_downloaded: u64,
    /// The file is byte-identical to the seeder's.
    verified: bool,
}

/// The run's outcome.
#[derive(Serialize)]
struct Report {
    nodes: u8,
    size_bytes: u64,
    magnet: String,
    /// Seconds until the seeder's announce was visible in the DHT.
    announce_seconds: f64,
    downloaders: Vec<DownloaderReport>,
    all_verified: bool,
    seconds: f64,
}

/// Runs the local network.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("spore-testnet-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let seeder_dir = dir.path().join("seeder");
    std::fs::create_dir_all(&seeder_dir)?;
    let name = format!("testnet-{}.bin", args.seed);
    let content = generate(&seeder_dir.join(&name), args.size_mib << 20, args.seed)?;
    let torrent = metainfo::create_torrent(
        &seeder_dir.join(&name),
        &CreateOptions {
            version: MetaVersion::V1,
            ..CreateOptions::default()
        },
        &|_, _| {},
    )
    .context("cannot make the torrent")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(network(&args, out, dir.path(), torrent, &content))?;
    drop(runtime);
    print_report(&report, out);
    if !report.all_verified {
        bail!(
            "not every downloader finished with the right bytes within {} s",
            args.timeout
        );
    }
    Ok(())
}

/// Writes `size` deterministic bytes and returns them.
fn generate(path: &Path, size: u64, seed: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; size as usize];
    sansio::Rng::from_seed(seed).fill(&mut bytes[..]);
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(bytes)
}

fn host(subnet: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, subnet, host))
}

/// A swarm run with its DHT peer finder, on its own address.
struct Peer {
    ip: IpAddr,
    status: watch::Receiver<Status>,
    run: tokio::task::JoinHandle<Result<Summary, node::swarm::Error>>,
}

async fn start_peer(
    ip: IpAddr,
    source: Source,
    out_dir: PathBuf,
    seed: u64,
    bootstrap: SocketAddr,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Peer> {
    let key = NodeId(match &source {
        Source::Torrent(t) => t.info.info_hashes().wire_id(),
        Source::Magnet(m) => m.info_hashes.wire_id(),
    });
    let mut dht_options = DhtOptions::new(SocketAddr::new(ip, 0));
    dht_options.seed = Some(seed);
    let dht = DhtHandle::start(dht_options)
        .await
        .with_context(|| format!("cannot open a DHT socket on {ip} (is 127.0.0.0/8 on lo?)"))?;
    let seed_only = matches!(source, Source::Torrent(_));
    let options = Options {
        out_dir,
        peers: Vec::new(),
        listen: Some(SocketAddr::new(ip, 0)),
        seed_after: true,
        local_ip: Some(ip),
        resume_file: None,
        seed,
        seed_only,
        sequential: false,
        metadata_timeout: node::swarm::METADATA_TIMEOUT_DEFAULT,
    };
    let (status_tx, status) = watch::channel(Status::default());
    let (discovered_tx, discovered) = mpsc::channel(DISCOVERED_QUEUE_MAX);
    peer_finder::spawn(
        dht,
        vec![bootstrap],
        key,
        status.clone(),
        discovered_tx,
        TESTNET_SCHEDULE,
    );
    let mut stop = shutdown.clone();
    let run = tokio::spawn(node::swarm::run(
        source,
        options,
        status_tx,
        discovered,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    ));
    Ok(Peer { ip, status, run })
}

async fn network(
    args: &Args,
    out: &Output,
    dir: &Path,
    torrent: Torrent,
    content: &[u8],
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let bars = MultiProgress::with_draw_target(if out.shows_progress() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let say = |line: String| {
        if out.shows_progress() {
            let _ = bars.println(line);
        }
    };

    let dht_nodes = start_dht_nodes(args).await?;
    let bootstrap = dht_nodes[0].local_addr();
    say(format!(
        "{} DHT nodes joined on 127.0.{}.{}-{}",
        dht_nodes.len(),
        args.subnet,
        DHT_HOST_FIRST,
        DHT_HOST_FIRST + args.nodes - 1
    ));

    let (shutdown_tx, shutdown) = watch::channel(false);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}",
        hex(&torrent.info.info_hashes().wire_id())
    );
    let key = NodeId(torrent.info.info_hashes().wire_id());
    let name = torrent.info.name().to_owned();
    let seeder_ip = host(args.subnet, SEEDER_HOST);
    let seeder = start_peer(
        seeder_ip,
        Source::Torrent(Box::new(torrent)),
        dir.join("seeder"),
        args.seed,
        bootstrap,
        &shutdown,
    )
    .await?;
    let seeder_addr = wait_for_announce(&dht_nodes, key, seeder.status.clone(), deadline).await?;
    let announce_seconds = started.elapsed().as_secs_f64();
    say(format!(
        "seeder {seeder_addr} announced; downloaders get only {magnet}"
    ));

    let mut downloaders = Vec::new();
    for j in 0..args.downloaders {
        let ip = host(args.subnet, DOWNLOADER_HOST_FIRST + j);
        let source = Source::Magnet(Box::new(magnet.parse().context("magnet link")?));
        let out_dir = dir.join(format!("downloader-{j}"));
        std::fs::create_dir_all(&out_dir)?;
        let peer = start_peer(
            ip,
            source,
            out_dir,
            args.seed.wrapping_add(u64::from(j) + 1),
            bootstrap,
            &shutdown,
        )
        .await?;
        downloaders.push(peer);
    }
    let watchers: Vec<_> = downloaders
        .iter()
        .map(|d| {
            tokio::spawn(watch_downloader(
                d.ip,
                d.status.clone(),
                bar(&bars, d.ip),
                deadline,
            ))
        })
        .collect();
    let mut progress = Vec::new();
    for watcher in watchers {
        progress.push(watcher.await.context("progress task")?);
    }
    let _ = shutdown_tx.send(true);
    let _ = seeder.run.await;
    let mut reports = Vec::new();
    for (j, (peer, (seconds, peers_max))) in downloaders.into_iter().zip(progress).enumerate() {
        let summary = peer.run.await.context("downloader task")?;
        let bytes_downloaded = summary.as_ref().map_or(0, |s| s.bytes_downloaded);
        if let Err(err) = &summary {
            say(format!("downloader {}: {err}", peer.ip));
        }
        let path = dir.join(format!("downloader-{j}")).join(&name);
        let verified = seconds.is_some() && std::fs::read(&path).is_ok_and(|b| b == content);
        reports.push(DownloaderReport {
            addr: peer.ip,
            seconds,
            mib_per_s: seconds.map(|s| content.len() as f64 / (1 << 20) as f64 / s.max(1e-3)),
            peers_max,
            bytes_downloaded,
            verified,
        });
    }
    Ok(Report {
        nodes: args.nodes,
        size_bytes: content.len() as u64,
        magnet,
        announce_seconds,
        all_verified: reports.iter().all(|r| r.verified),
        downloaders: reports,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Starts the DHT nodes and joins each through the first; a second round lets the early ones
/// learn of the late ones.
async fn start_dht_nodes(args: &Args) -> anyhow::Result<Vec<DhtHandle>> {
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let bind = SocketAddr::new(host(args.subnet, DHT_HOST_FIRST + i), 0);
        let mut options = DhtOptions::new(bind);
        options.seed = Some(args.seed.wrapping_mul(1000).wrapping_add(u64::from(i)));
        let node = DhtHandle::start(options).await.with_context(|| {
            format!("cannot open a DHT socket on {bind}: this needs 127.0.0.0/8 on the loopback interface (Linux has it)")
        })?;
        nodes.push(node);
    }
    let first = nodes[0].local_addr();
    for _round in 0..2 {
        for node in &nodes[1..] {
            node.bootstrap(vec![first]).await?;
        }
    }
    Ok(nodes)
}

/// Waits until a DHT lookup from the last node finds the seeder's announce; returns the
/// seeder's listen address.
async fn wait_for_announce(
    nodes: &[DhtHandle],
    key: NodeId,
    mut status: watch::Receiver<Status>,
    deadline: Instant,
) -> anyhow::Result<SocketAddr> {
    let listen = tokio::time::timeout_at(deadline, status.wait_for(|s| s.listen_addr.is_some()))
        .await
        .context("the seeder did not start in time")?
        .context("the seeder stopped")?
        .listen_addr
        .context("the seeder has no listen address")?;
    let searcher = &nodes[nodes.len() - 1];
    while Instant::now() < deadline {
        if searcher.get_peers(key).await?.contains(&listen) {
            return Ok(listen);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the seeder's announce never became visible in the DHT")
}

fn bar(bars: &MultiProgress, ip: IpAddr) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(ip.to_string());
    bar.set_message("finding peers");
    bar
}

/// Follows one downloader until complete or the deadline: (seconds to complete, most peers).
async fn watch_downloader(
    ip: IpAddr,
    mut status: watch::Receiver<Status>,
    bar: ProgressBar,
    deadline: Instant,
) -> (Option<f64>, usize) {
    let started = Instant::now();
    loop {
        let s = status.borrow_and_update().clone();
        let peers_max = s.progress.peers_max;
        bar.set_length(s.progress.bytes_total);
        bar.set_position(s.progress.bytes_have);
        bar.set_message(format!(
            "{} peers {}/s",
            s.progress.peers,
            indicatif::HumanBytes(s.progress.download_rate)
        ));
        if s.is_complete() {
            bar.finish_with_message(format!("done, {peers_max} peers"));
            return (Some(started.elapsed().as_secs_f64()), peers_max);
        }
        match tokio::time::timeout_at(deadline, status.changed()).await {
            Ok(Ok(())) => {}
            _ => {
                bar.abandon_with_message(format!("{ip}: did not complete"));
                return (None, status.borrow().progress.peers_max);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn print_report(report: &Report, out: &Output) {
    out.result(report, || {
        let mut text = format!(
            "{} MiB shared through {} DHT nodes; seeder announced after {:.1} s\n\n{:<14} {:>8} {:>9} {:>6} {:>9}\n",
            report.size_bytes >> 20,
            report.nodes,
            report.announce_seconds,
            "downloader",
            "time s",
            "MiB/s",
            "peers",
            "verified"
        );
        for d in &report.downloaders {
            text += &format!(
                "{:<14} {:>8} {:>9} {:>6} {:>9}\n",
                d.addr.to_string(),
                d.seconds.map_or("-".into(), |s| format!("{s:.2}")),
                d.mib_per_s.map_or("-".into(), |r| format!("{r:.1}")),
                d.peers_max,
                if d.verified { "yes" } else { "NO" }
            );
        }
        text += &format!("\ntotal {:.1} s", report.seconds);
        text
    });
}
