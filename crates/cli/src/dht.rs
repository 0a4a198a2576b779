//! `spore dht`: talk to the Mainline DHT (BEP 5, 44, 51) from the command line, or run a node.
//!
//! Every command starts a short-lived DHT node on `--bind`, joins through `--bootstrap`, does
//! its one job and prints the result (`--json` for scripts). `spore dht node` runs a node until
//! interrupted and prints its counters; it alone defaults to the public routers when no
//! `--bootstrap` is given.
//!
//! [`TrackerlessArgs`] and [`start_peer_finder`] give `spore get` and `spore seed` trackerless
//! peer discovery (BEP 5 get_peers and announce_peer; see `node::dht::peer_finder`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use dht::{MutableItem, NodeId};
use node::dht::peer_finder::{self, Schedule};
use node::dht::{resolve_bootstrap, DhtHandle, DhtOptions, PUBLIC_ROUTERS};
use node::swarm::{Source, Status};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::output::Output;

/// Arguments of `spore dht`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A DHT node to join through, as HOST:PORT (repeatable).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    bootstrap: Vec<String>,
    /// Local UDP address to bind.
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
    /// BEP 43 read-only node: ask, never answer, and tell others not to add us.
    #[arg(long, global = true)]
    read_only: bool,
    #[command(subcommand)]
    command: DhtCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DhtCommand {
    /// Ping one node.
    Ping {
        /// The node's address.
        addr: SocketAddr,
    },
    /// Find the 8 nodes closest to an id.
    FindNode {
        /// 40 hex digits.
        target: String,
    },
    /// Find peers of a torrent.
    GetPeers {
        /// The info-hash, 40 hex digits.
        info_hash: String,
    },
    /// Announce a torrent on the nodes closest to it.
    Announce {
        /// The info-hash, 40 hex digits.
        info_hash: String,
        /// The peer port to announce (default: the DHT port, BEP 5 implied_port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Store a BEP 44 item: immutable, or mutable with --key.
    Put {
        /// The value: stored as a bencoded string unless --bencoded.
        value: String,
        /// The value is already bencoded.
        #[arg(long)]
        bencoded: bool,
        /// File holding the 32-byte ed25519 seed (raw or 64 hex digits): makes the item mutable.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Salt of a mutable item.
        #[arg(long, default_value = "")]
        salt: String,
        /// Sequence number of a mutable item (default: one more than the stored one).
        #[arg(long)]
        seq: Option<i64>,
        /// Only replace the stored item if its seq is this (BEP 44 CAS).
        #[arg(long)]
        cas: Option<i64>,
    },
    /// Fetch a BEP 44 item: immutable by target, or mutable with --key or --public-key.
    Get {
        /// The immutable item's target, 40 hex digits.
        target: Option<String>,
        /// File holding the ed25519 seed of a mutable item.
        #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
        key: Option<PathBuf>,
        /// The mutable item's public key, 64 hex digits.
        #[arg(long)]
        public_key: Option<String>,
        /// Salt of a mutable item.
        #[arg(long, default_value = "")]
        salt: String,
    },
    /// Ask one node for a sample of its info-hashes (BEP 51).
    Sample {
        /// The node's address.
        addr: SocketAddr,
    },
    /// Run a DHT node and print its counters periodically.
    Node {
        /// Save and restore the routing table here.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Seconds between stats lines.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

/// Runs a `spore dht` command.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, out))
}

fn parse_id(text: &str, what: &str) -> anyhow::Result<NodeId> {
    NodeId::from_hex(text).with_context(|| format!("{what} must be 40 hex digits, got {text:?}"))
}

fn read_seed(path: &PathBuf) -> anyhow::Result<[u8; 32]> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    if let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(seed);
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.len() == 64 {
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .with_context(|| format!("{} is not hex", path.display()))?;
        }
        return Ok(seed);
    }
    bail!(
        "key file {} must hold a 32-byte ed25519 seed, raw or as 64 hex digits",
        path.display()
    )
}

fn parse_public_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        bail!("--public-key must be 64 hex digits");
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(&text[2 * i..2 * i + 2], 16).context("--public-key must be hex")?;
    }
    Ok(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shows a bencoded value as text when it is a printable byte string.
fn show_value(value: &[u8]) -> String {
    match bencode::decode(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
    {
        Some(text) if !text.chars().any(char::is_control) => text,
        _ => String::from_utf8_lossy(value).into_owned(),
    }
}

async fn start(
    args: &Args,
    default_bind: &str,
    needs_bootstrap: bool,
) -> anyhow::Result<DhtHandle> {
    let bind = args
        .bind
        .unwrap_or_else(|| default_bind.parse().expect("constant address"));
    let mut options = DhtOptions::new(bind);
    options.core.read_only = args.read_only;
    let handle = DhtHandle::start(options)
        .await
        .with_context(|| format!("cannot open a DHT socket on {bind}"))?;
    if needs_bootstrap {
        if args.bootstrap.is_empty() {
            bail!("this command needs a node to join through: pass --bootstrap HOST:PORT");
        }
        let addrs = resolve_bootstrap(&args.bootstrap, handle.local_addr()).await?;
        let joined = handle.bootstrap(addrs).await?;
        if joined.closest.is_empty() {
            bail!("no bootstrap node answered ({})", args.bootstrap.join(", "));
        }
    }
    Ok(handle)
}

async fn run_async(args: Args, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        DhtCommand::Ping { addr } => {
            let handle = start(&args, "0.0.0.0:0", false).await?;
            let node = handle.ping(*addr).await?;
            out.result(
                &json!({ "addr": node.addr, "id": node.id.to_hex() }),
                || format!("{} answered: id {}", node.addr, node.id),
            );
        }
        DhtCommand::FindNode { target } => {
            let target = parse_id(target, "the target")?;
            let handle = start(&args, "0.0.0.0:0", true).await?;
            let started = tokio::time::Instant::now();
            let result = handle.find_node(target).await?;
            let seconds = started.elapsed().as_secs_f64();
            let nodes: Vec<_> = result
                .closest
                .iter()
                .map(|n| json!({ "id": n.id.to_hex(), "addr": n.addr }))
                .collect();
            out.result(
                &json!({
                    "target": target.to_hex(),
                    "queried": result.queried,
                    "hops": result.hops,
                    "seconds": seconds,
                    "nodes": nodes,
                }),
                || {
                    result
                        .closest
                        .iter()
                        .map(|n| format!("{} {}\n", n.id, n.addr))
                        .collect()
                },
            );
        }
        DhtCommand::GetPeers { info_hash } => {
            let info_hash = parse_id(info_hash, "the info-hash")?;
            let handle = start(&args, "0.0.0.0:0", true).await?;
            let peers = handle.get_peers(info_hash).await?;
            out.result(
                &json!({ "info_hash": info_hash.to_hex(), "peers": peers }),
                || {
                    if peers.is_empty() {
                        "no peers found".to_string()
                    } else {
                        peers.iter().map(|p| format!("{p}\n")).collect()
                    }
                },
            );
        }
        DhtCommand::Announce { info_hash, port } => {
            let info_hash = parse_id(info_hash, "the info-hash")?;
            let handle = start(&args, "0.0.0.0:0", true).await?;
            let result = handle.announce(info_hash, *port).await?;
            if result.stored == 0 {
                bail!("no node accepted the announce");
            }
            out.result(
                &json!({ "info_hash": info_hash.to_hex(), "stored_at": result.stored }),
                || format!("announced {info_hash} on {} nodes", result.stored),
            );
        }
        DhtCommand::Put {
            value,
            bencoded,
            key,
            salt,
            seq,
            cas,
        } => {
            let value = if *bencoded {
                value.as_bytes().to_vec()
            } else {
                let mut v = Vec::new();
                bencode::encode_bytes(value.as_bytes(), &mut v);
                v
            };
            dht::check_value(&value).context("the value cannot be stored")?;
            let handle = start(&args, "0.0.0.0:0", true).await?;
            match key {
                None => {
                    let (target, result) = handle.put_immutable(value).await?;
                    if result.stored == 0 {
                        bail!("no node stored the item");
                    }
                    out.result(
                        &json!({ "target": target.to_hex(), "stored_at": result.stored }),
                        || format!("stored {target} on {} nodes", result.stored),
                    );
                }
                Some(path) => {
                    let seed = read_seed(path)?;
                    let public_key = dht::public_key(&seed);
                    let seq = match seq {
                        Some(seq) => *seq,
                        None => {
                            let current = handle
                                .get_mutable(public_key, salt.as_bytes().to_vec(), None)
                                .await?;
                            current.map_or(1, |item| item.seq + 1)
                        }
                    };
                    let item = MutableItem::sign(&seed, salt.as_bytes(), seq, &value)?;
                    let target = item.target();
                    let result = handle.put_mutable(item, *cas).await?;
                    if result.stored == 0 {
                        bail!(
                            "no node stored the item (a CAS or seq conflict makes nodes refuse it)"
                        );
                    }
                    out.result(
                        &json!({ "target": target.to_hex(), "public_key": hex(&public_key), "seq": seq, "stored_at": result.stored }),
                        || format!("stored {target} (key {}, seq {seq}) on {} nodes", hex(&public_key), result.stored),
                    );
                }
            }
        }
        DhtCommand::Get {
            target,
            key,
            public_key,
            salt,
        } => {
            let mutable_key = match (key, public_key) {
                (Some(path), _) => Some(dht::public_key(&read_seed(path)?)),
                (None, Some(text)) => Some(parse_public_key(text)?),
                (None, None) => None,
            };
            let target = match (&mutable_key, target) {
                (None, Some(text)) => Some(parse_id(text, "the target")?),
                (None, None) => bail!(
                    "give an immutable item's TARGET, or --key/--public-key for a mutable one"
                ),
                (Some(_), _) => None,
            };
            let handle = start(&args, "0.0.0.0:0", true).await?;
            match (mutable_key, target) {
                (Some(public_key), _) => {
                    let Some(item) = handle
                        .get_mutable(public_key, salt.as_bytes().to_vec(), None)
                        .await?
                    else {
                        bail!(
                            "no mutable item found for key {} and salt {salt:?}",
                            hex(&public_key)
                        );
                    };
                    out.result(
                        &json!({ "target": item.target().to_hex(), "seq": item.seq, "value": show_value(&item.value), "bencoded": String::from_utf8_lossy(&item.value) }),
                        || format!("seq {}: {}", item.seq, show_value(&item.value)),
                    );
                }
                (None, Some(target)) => {
                    let Some(value) = handle.get_immutable(target).await? else {
                        bail!("no item found for {target}");
                    };
                    out.result(
                        &json!({ "target": target.to_hex(), "value": show_value(&value), "bencoded": String::from_utf8_lossy(&value) }),
                        || show_value(&value),
                    );
                }
                (None, None) => unreachable!("checked above"),
            }
        }
        DhtCommand::Sample { addr } => {
            let handle = start(&args, "0.0.0.0:0", false).await?;
            let reply = handle.sample(*addr, handle.id()).await?;
            let samples: Vec<String> = reply.samples.iter().map(NodeId::to_hex).collect();
            out.result(&json!({ "addr": addr, "num": reply.num, "interval": reply.interval, "samples": samples }), || {
                let mut text = format!("{addr} stores {} info-hashes; sample:\n", reply.num);
                text.extend(samples.iter().map(|s| format!("{s}\n")));
                text
            });
        }
        DhtCommand::Node {
            state,
            interval,
            seconds,
        } => run_node(&args, state.clone(), *interval, *seconds, out).await?,
    }
    Ok(())
}

async fn run_node(
    args: &Args,
    state: Option<PathBuf>,
    interval: u64,
    seconds: Option<u64>,
    out: &Output,
) -> anyhow::Result<()> {
    let bind = args
        .bind
        .unwrap_or_else(|| "0.0.0.0:6881".parse().expect("constant address"));
    let mut options = DhtOptions::new(bind);
    options.state_file = state;
    options.core.read_only = args.read_only;
    let handle = DhtHandle::start(options)
        .await
        .with_context(|| format!("cannot open a DHT socket on {bind}"))?;
    let hosts: Vec<String> = if args.bootstrap.is_empty() {
        PUBLIC_ROUTERS.iter().map(|s| s.to_string()).collect()
    } else {
        args.bootstrap.clone()
    };
    let addrs = resolve_bootstrap(&hosts, handle.local_addr()).await?;
    eprintln!(
        "DHT node {} on {}, joining through {}",
        handle.id(),
        handle.local_addr(),
        hosts.join(", ")
    );
    handle.bootstrap(addrs).await?;
    let deadline = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut ticker = tokio::time::interval(Duration::from_secs(interval.max(1)));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
        }
        let stats = handle.stats().await?;
        out.result(
            &json!({
                "routing_table_nodes": stats.routing_table_nodes,
                "buckets": stats.buckets,
                "peers_stored": stats.peers_stored,
                "info_hashes_stored": stats.info_hashes_stored,
                "items_stored": stats.items_stored,
                "queries_answered": stats.queries_answered,
                "dropped_rate_limited": stats.dropped_rate_limited,
                "dropped_invalid": stats.dropped_invalid,
            }),
            || format!(
                "nodes {} in {} buckets | peers {} ({} torrents) | items {} | answered {} | dropped {} limited, {} invalid",
                stats.routing_table_nodes, stats.buckets, stats.peers_stored, stats.info_hashes_stored,
                stats.items_stored, stats.queries_answered, stats.dropped_rate_limited, stats.dropped_invalid
            ),
        );
    }
    Ok(())
}

/// The DHT flags of `spore get` and `spore seed`: trackerless peer discovery.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TrackerlessArgs {
    /// A DHT node to join through, as HOST:PORT (repeatable). Default: the public routers,
    /// unless the DHT is bound to a loopback address.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Do not use the DHT: find peers only through --peer (and trackers).
    #[arg(long, conflicts_with = "dht_bootstrap")]
    pub no_dht: bool,
    /// UDP address of the DHT node (default: the --bind IP, or any, on a free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub dht_bind: Option<SocketAddr>,
}

/// The key a torrent is announced under in the DHT: the v1 info-hash, or the truncated v2 one.
pub fn dht_key(source: &Source) -> NodeId {
    let hashes = match source {
        Source::Torrent(t) => t.info.info_hashes(),
        Source::Magnet(m) => m.info_hashes,
    };
    NodeId(hashes.wire_id())
}

/// Starts a DHT node and the peer finder for `source` (unless `--no-dht`): it joins through
/// `--dht-bootstrap` (or the public routers), announces the swarm's listen port and pushes the
/// peers it finds into `discovered`. The task ends with the swarm.
pub async fn start_peer_finder(
    args: &TrackerlessArgs,
    local_ip: Option<IpAddr>,
    source: &Source,
    status: watch::Receiver<Status>,
    discovered: mpsc::Sender<SocketAddr>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if args.no_dht {
        return Ok(None);
    }
    let bind = args.dht_bind.unwrap_or_else(|| {
        SocketAddr::new(local_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 0)
    });
    let handle = DhtHandle::start(DhtOptions::new(bind))
        .await
        .with_context(|| format!("cannot open a DHT socket on {bind} (or pass --no-dht)"))?;
    let hosts: Vec<String> = if !args.dht_bootstrap.is_empty() {
        args.dht_bootstrap.clone()
    } else if bind.ip().is_loopback() {
        // A loopback socket cannot reach the Internet's routers: a local run (a test, a bench).
        tracing::info!("DHT bound to loopback and no --dht-bootstrap: not joining the public DHT");
        Vec::new()
    } else {
        PUBLIC_ROUTERS.iter().map(|s| s.to_string()).collect()
    };
    let bootstrap = match resolve_bootstrap(&hosts, handle.local_addr()).await {
        Ok(addrs) => addrs,
        // Offline with --peer given is a normal way to run: warn, do not fail.
        Err(err) if args.dht_bootstrap.is_empty() => {
            tracing::warn!(%err, "cannot reach the public DHT routers; continuing without the DHT");
            Vec::new()
        }
        Err(err) => return Err(err).context("check the --dht-bootstrap addresses"),
    };
    Ok(Some(peer_finder::spawn(
        handle,
        bootstrap,
        dht_key(source),
        status,
        discovered,
        Schedule::default(),
    )))
}
