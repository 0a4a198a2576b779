//! spore → spore over TCP on loopback, in one process: seeds a torrent of random content and
//! downloads it, then prints throughput, CPU time and peak memory (seeder and downloader
//! together). A quick measure of the swarm driver; the side-by-side benchmark with libtorrent
//! and aria2 is the benchmark script's job.
//!
//!   cargo run --release -p node --example swarm_loopback -- [SIZE_MIB] [PIECE_KIB]

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use node::swarm::{Options, Phase, Source, Status};
use sansio::RngExt;
use tokio::sync::{mpsc, watch};

/// Bound on the download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

fn cpu_seconds() -> f64 {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn options(ip: IpAddr, dir: &std::path::Path, peers: Vec<SocketAddr>, seed_only: bool) -> Options {
    // Distinct seeds give distinct peer ids (a peer with our own id is taken for ourselves).
    Options {
        out_dir: dir.to_path_buf(),
        peers,
        listen: Some(SocketAddr::new(ip, 0)),
        seed_after: seed_only,
        local_ip: Some(ip),
        resume_file: None,
        seed: u64::from(seed_only),
        seed_only,
        sequential: false,
        metadata_timeout: node::swarm::METADATA_TIMEOUT_DEFAULT,
    }
}

// A benchmark driver: it reads the wall clock to time the download.
#[allow(clippy::disallowed_methods)]
#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let size_mib = args.first().copied().unwrap_or(256);
    let piece_kib = args.get(1).copied().unwrap_or(1024);
    let work = tempfile::tempdir().unwrap();
    let content = work.path().join("seed");
    std::fs::create_dir_all(&content).unwrap();
    let file = content.join("payload.bin");
    let mut rng = sansio::Rng::from_seed(42);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..size_mib {
        rng.fill(&mut chunk[..]);
        out.write_all(&chunk).unwrap();
    }
    drop(out);
    let create = metainfo::CreateOptions {
        version: metainfo::MetaVersion::V1,
        piece_length: Some(piece_kib * 1024),
        ..metainfo::CreateOptions::default()
    };
    let torrent = metainfo::create_torrent(&file, &create, &|_, _| {}).unwrap();
    eprintln!("created a {size_mib} MiB torrent");
    let seeder_ip = IpAddr::from([127, 4, 0, 2]);
    let getter_ip = IpAddr::from([127, 4, 0, 3]);

    let (seed_status, mut seed_rx) = watch::channel(Status::default());
    let (_seed_feed, seed_discovered) = mpsc::channel(1);
    let (stop_seed, seed_stopped) = tokio::sync::oneshot::channel::<()>();
    let seeder = tokio::spawn(node::swarm::run(
        Source::Torrent(Box::new(torrent.clone())),
        options(seeder_ip, &content, vec![], true),
        seed_status,
        seed_discovered,
        async move {
            let _ = seed_stopped.await;
        },
    ));
    let ready = seed_rx
        .wait_for(|s| s.phase == Phase::Seeding && s.listen_addr.is_some())
        .await
        .unwrap()
        .clone();
    let seeder_addr = ready.listen_addr.unwrap();
    eprintln!("seeding on {seeder_addr}");

    let cpu_before = cpu_seconds();
    let started = std::time::Instant::now();
    let (get_status, _get_rx) = watch::channel(Status::default());
    let (_get_feed, get_discovered) = mpsc::channel(1);
    let download = node::swarm::run(
        Source::Torrent(Box::new(torrent.clone())),
        options(
            getter_ip,
            &work.path().join("get"),
            vec![seeder_addr],
            false,
        ),
        get_status,
        get_discovered,
        std::future::pending(),
    );
    let summary = tokio::time::timeout(DOWNLOAD_TIMEOUT, download)
        .await
        .expect("download timed out")
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let _ = stop_seed.send(());
    let _ = seeder.await;
    assert!(summary.complete);
    let gib = size_mib as f64 / 1024.0;
    println!(
        "{{\"size_mib\":{size_mib},\"piece_kib\":{piece_kib},\"seconds\":{seconds:.2},\"mib_s\":{:.1},\"cpu_s_per_gib_both_peers\":{:.2},\"peak_rss_mib_both_peers\":{:.0}}}",
        size_mib as f64 / seconds,
        cpu / gib,
        peak_rss_mib()
    );
}
