//! `spore tracker`: run a BitTorrent tracker (HTTP and UDP) with a searchable torrent index and a
//! web page, on the addresses given.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use node::tracker::TrackerOptions;
use tracker::server::{Config, RateLimit};
use tracker::InfoHash;

use crate::output::Output;

/// Arguments of `spore tracker`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve HTTP announce, scrape, the JSON API and the web page here.
    #[arg(long, default_value = "127.0.0.1:6969")]
    pub http: SocketAddr,
    /// Serve UDP announces (BEP 15) here.
    #[arg(long, default_value = "127.0.0.1:6969")]
    pub udp: SocketAddr,
    /// Do not serve HTTP.
    #[arg(long)]
    pub no_http: bool,
    /// Do not serve UDP.
    #[arg(long)]
    pub no_udp: bool,
    /// The index database (SQLite). Without it the index lives in memory and dies with the
    /// process.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Track only the torrents listed in this file: one hex info-hash a line, `#` comments.
    #[arg(long)]
    pub whitelist: Option<PathBuf>,
    /// Private mode: announces must use /announce/<passkey> with a passkey from this file
    /// (one user a line: `NAME PASSKEY` or just `PASSKEY`).
    #[arg(long)]
    pub private_users: Option<PathBuf>,
    /// Announce interval handed to clients, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub interval: u64,
    /// Requests per second allowed from one address (bursts of twice that); 0 turns the limit
    /// off.
    #[arg(long, default_value_t = 100)]
    pub rate_limit: u32,
    /// Seed for the tracker's randomness, for reproducible runs only: UDP connection ids derive
    /// from it, so a known seed lets anyone forge them. Default: random.
    #[arg(long)]
    pub seed: Option<u64>,
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let interval = Duration::from_secs(args.interval.max(1));
    let mut config = Config {
        interval,
        min_interval: (interval / 4).max(Duration::from_secs(1)),
        peer_ttl: interval * 2 + Duration::from_secs(60),
        ..Config::default()
    };
    if args.rate_limit > 0 {
        config.rate_limit = Some(RateLimit {
            per_second: args.rate_limit,
            burst: args.rate_limit.saturating_mul(2),
        });
    } else {
        config.rate_limit = None;
    }
    if let Some(path) = &args.whitelist {
        let mut list = BTreeSet::new();
        for (n, line) in read_lines(path)?.iter().enumerate() {
            let hash = InfoHash::from_hex(line).with_context(|| {
                format!(
                    "{} entry {}: not a 40-digit hex info-hash",
                    path.display(),
                    n + 1
                )
            })?;
            list.insert(hash);
        }
        config.whitelist = Some(list);
    }
    if let Some(path) = &args.private_users {
        let keys: BTreeSet<String> = read_lines(path)?
            .iter()
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect();
        anyhow::ensure!(!keys.is_empty(), "{} lists no passkey", path.display());
        config.passkeys = Some(keys);
    }
    Ok(config)
}

/// Runs the tracker until Ctrl-C.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(args.no_http && args.no_udp),
        "--no-http and --no-udp together leave nothing to serve"
    );
    let options = TrackerOptions {
        http: (!args.no_http).then_some(args.http),
        udp: (!args.no_udp).then_some(args.udp),
        db: args.db.clone(),
        config: config(&args)?,
        seed: args.seed.unwrap_or_else(node::random_seed),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = node::tracker::start(options)
            .await
            .context("cannot start the tracker")?;
        let http = running.http_addr.map(|a| format!("http://{a}/announce"));
        let udp = running.udp_addr.map(|a| format!("udp://{a}/announce"));
        out.result(&serde_json::json!({ "http": http, "udp": udp }), || {
            let mut lines = Vec::new();
            if let Some(h) = &http {
                lines.push(format!("tracker: {h}  (web page and API at the same host)"));
            }
            if let Some(u) = &udp {
                lines.push(format!("tracker: {u}"));
            }
            lines.join("\n")
        });
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = running.wait() => anyhow::bail!("the tracker stopped on a socket error"),
        }
        Ok(())
    })
}
