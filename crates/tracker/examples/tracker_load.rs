//! A load generator for BitTorrent trackers on loopback, used by `bench/tracker_bench.py` to
//! compare `spore tracker` with opentracker under the same load.
//!
//! ```text
//! tracker_load hashes   --torrents N                      # the info-hashes, hex, one a line
//! tracker_load populate --udp ADDR --torrents N --peers M # announce every peer once, over UDP
//! tracker_load udp      --udp ADDR  --seconds S ...       # BEP 15 announces for S seconds
//! tracker_load http     --http ADDR --seconds S ...       # BEP 3 announces for S seconds
//! ```
//!
//! The population is `torrents * peers` peers; peer `k` belongs to torrent `k % torrents`, has
//! port `10000 + k / torrents` (opentracker tells peers apart by address, spore by peer id,
//! so both are distinct) and is a seeder when `k` is even. Every announce asks for 50 peers.
//! UDP keeps a window of requests in flight per thread and counts answers; HTTP opens one
//! connection per announce (HTTP/1.0, as most clients do) from each of its threads. The result
//! is one JSON line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use tracker::http::{AnnounceRequest, AnnounceResponse};
use tracker::udp::{Announce, Request, Response, PACKET_BYTES_MAX};
use tracker::{Event, InfoHash, PeerId};

/// Peers asked for in every announce (the common client default).
const NUMWANT: u32 = 50;
/// How long a UDP thread waits for an answer before it counts the window as lost.
const UDP_TIMEOUT: Duration = Duration::from_millis(200);
/// How long an HTTP request may take before it counts as failed.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// A UDP thread asks for a fresh connection id this often (BEP 15 ids live about two minutes).
const CONNECTION_ID_REFRESH: Duration = Duration::from_secs(30);

struct Options {
    mode: String,
    udp: Option<SocketAddr>,
    http: Option<SocketAddr>,
    torrents: u64,
    peers: u64,
    threads: u64,
    window: u64,
    seconds: f64,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: tracker_load MODE [--flag value]...")?;
    let mut o = Options {
        mode,
        udp: None,
        http: None,
        torrents: 1000,
        peers: 100,
        threads: 2,
        window: 32,
        seconds: 10.0,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--udp" => o.udp = Some(value.parse().map_err(|e| bad(&e))?),
            "--http" => o.http = Some(value.parse().map_err(|e| bad(&e))?),
            "--torrents" => o.torrents = value.parse().map_err(|e| bad(&e))?,
            "--peers" => o.peers = value.parse().map_err(|e| bad(&e))?,
            "--threads" => o.threads = value.parse().map_err(|e| bad(&e))?,
            "--window" => o.window = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => o.seconds = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.torrents == 0 || o.peers == 0 || o.threads == 0 || o.window == 0 {
        return Err("--torrents, --peers, --threads and --window must be positive".into());
    }
    Ok(o)
}

fn info_hash(torrent: u64) -> InfoHash {
    let digest = Sha1::digest(format!("spore tracker bench {torrent}"));
    InfoHash(digest.into())
}

/// Peer `k` of the population: its torrent, id, port and bytes left.
fn peer(o: &Options, k: u64) -> (InfoHash, PeerId, u16, u64) {
    let mut id = *b"-SB0001-000000000000";
    id[8..].copy_from_slice(format!("{k:012}").as_bytes());
    let port = 10_000 + (k / o.torrents) % 50_000;
    let left = if k.is_multiple_of(2) { 0 } else { 1 << 20 };
    (info_hash(k % o.torrents), PeerId(id), port as u16, left)
}

fn udp_announce(o: &Options, connection_id: u64, transaction_id: u32, k: u64) -> Vec<u8> {
    let (info_hash, peer_id, port, left) = peer(o, k);
    Request::Announce {
        connection_id,
        transaction_id,
        announce: Announce {
            info_hash,
            peer_id,
            downloaded: 0,
            left,
            uploaded: 0,
            event: Event::None,
            ip: 0,
            key: transaction_id,
            num_want: NUMWANT as i32,
            port,
        },
    }
    .encode()
}

fn udp_connect(socket: &UdpSocket, buf: &mut [u8]) -> Option<u64> {
    for attempt in 0..10u32 {
        socket
            .send(
                &Request::Connect {
                    transaction_id: attempt,
                }
                .encode(),
            )
            .ok()?;
        let Ok(len) = socket.recv(buf) else { continue };
        if let Ok(Response::Connect { connection_id, .. }) = Response::decode(&buf[..len], false) {
            return Some(connection_id);
        }
    }
    None
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
}

/// One UDP thread: peers `first, first + step, ...` (wrapping at `total` unless `once`), a
/// window of requests in flight, until `deadline` or, with `once`, until each peer was answered.
#[allow(clippy::disallowed_methods)] // A load generator measures real time.
fn udp_thread(o: &Options, first: u64, step: u64, once: bool, deadline: Instant, counts: &Counts) {
    let total = o.torrents * o.peers;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    socket.connect(o.udp.expect("--udp")).expect("connect");
    socket.set_read_timeout(Some(UDP_TIMEOUT)).expect("timeout");
    let mut buf = vec![0u8; PACKET_BYTES_MAX];
    let Some(mut connection_id) = udp_connect(&socket, &mut buf) else {
        counts.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut connected_at = Instant::now();
    // In flight: transaction id -> peer, so a lost request can be sent again in `once` mode.
    let mut in_flight = std::collections::BTreeMap::new();
    let mut next = first;
    let mut transaction_id = 0u32;
    while Instant::now() < deadline {
        while (in_flight.len() as u64) < o.window && (!once || next < total) {
            transaction_id = transaction_id.wrapping_add(1);
            let k = next % total;
            next += step;
            if socket
                .send(&udp_announce(o, connection_id, transaction_id, k))
                .is_ok()
            {
                in_flight.insert(transaction_id, k);
            }
        }
        if in_flight.is_empty() {
            break;
        }
        match socket.recv(&mut buf) {
            Ok(len) => match Response::decode(&buf[..len], false) {
                Ok(Response::Announce { transaction_id, .. }) => {
                    if in_flight.remove(&transaction_id).is_some() {
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Response::Error { transaction_id, .. }) => {
                    in_flight.remove(&transaction_id);
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                }
            },
            Err(_) => {
                // The window was lost (the kernel drops datagrams under overload): send again.
                counts
                    .timeouts
                    .fetch_add(in_flight.len() as u64, Ordering::Relaxed);
                let lost: Vec<u64> = std::mem::take(&mut in_flight).into_values().collect();
                for k in lost {
                    transaction_id = transaction_id.wrapping_add(1);
                    if socket
                        .send(&udp_announce(o, connection_id, transaction_id, k))
                        .is_ok()
                    {
                        in_flight.insert(transaction_id, k);
                    }
                }
            }
        }
        if connected_at.elapsed() > CONNECTION_ID_REFRESH && in_flight.is_empty() {
            if let Some(id) = udp_connect(&socket, &mut buf) {
                connection_id = id;
                connected_at = Instant::now();
            }
        }
    }
}

fn http_announce(o: &Options, addr: SocketAddr, k: u64) -> Result<(), String> {
    let (info_hash, peer_id, port, left) = peer(o, k);
    let query = AnnounceRequest {
        info_hash,
        peer_id,
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: Event::None,
        numwant: Some(NUMWANT),
        compact: true,
        ip: None,
        key: None,
        tracker_id: None,
    }
    .to_query();
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /announce?{query} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::with_capacity(1024);
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    AnnounceResponse::decode(&response[body_at + 4..]).map_err(|e| e.to_string())?;
    Ok(())
}

#[allow(clippy::disallowed_methods)] // A load generator measures real time.
fn http_thread(o: &Options, first: u64, step: u64, deadline: Instant, counts: &Counts) {
    let addr = o.http.expect("--http");
    let total = o.torrents * o.peers;
    let mut next = first;
    while Instant::now() < deadline {
        match http_announce(o, addr, next % total) {
            Ok(()) => counts.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => counts.errors.fetch_add(1, Ordering::Relaxed),
        };
        next += step;
    }
}

#[allow(clippy::disallowed_methods)] // A load generator measures real time.
fn main() {
    let o = match parse_args() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if o.mode == "hashes" {
        for t in 0..o.torrents {
            println!("{}", info_hash(t).to_hex());
        }
        return;
    }
    let once = o.mode == "populate";
    let limit = if once {
        Duration::from_secs(120)
    } else {
        Duration::from_secs_f64(o.seconds)
    };
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let deadline = start + limit;
    let threads: Vec<_> = (0..o.threads)
        .map(|i| {
            let (o, counts) = (o.clone(), counts.clone());
            std::thread::spawn(move || match o.mode.as_str() {
                "udp" | "populate" => udp_thread(&o, i, o.threads, once, deadline, &counts),
                "http" => http_thread(&o, i, o.threads, deadline, &counts),
                other => panic!("unknown mode {other} (hashes, populate, udp, http)"),
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a load thread panicked");
    }
    let seconds = start.elapsed().as_secs_f64();
    let ok = counts.ok.load(Ordering::Relaxed);
    println!(
        "{{\"mode\":\"{}\",\"ok\":{ok},\"errors\":{},\"timeouts\":{},\"seconds\":{seconds:.3},\"per_second\":{:.0}}}",
        o.mode,
        counts.errors.load(Ordering::Relaxed),
        counts.timeouts.load(Ordering::Relaxed),
        ok as f64 / seconds
    );
}
