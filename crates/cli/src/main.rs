//! The `spore` command: a thin layer over the library crates. Every subcommand lives in its own
//! module and is a call into the node, the cores or the simulator; nothing here implements a
//! protocol.

mod create;
mod dht;
mod get;
mod info;
mod output;
mod publish;
mod search;
mod seed;
mod sim;
mod testnet;
mod tracker;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// spore: a peer-to-peer node for BitTorrent torrents, magnet links and the Mainline DHT.
#[derive(Parser, Debug)]
#[command(name = "spore", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print results as JSON on stdout, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a .torrent of a file or directory (v1, v2 or hybrid), hashing on all cores.
    Create(create::Args),
    /// Show what a .torrent file or a magnet link describes.
    Info(info::Args),
    /// Talk to the Mainline DHT (ping, find-node, get-peers, announce, put, get, sample) or run a node.
    Dht(dht::Args),
    /// Run a BitTorrent tracker (HTTP and UDP) with a searchable index and a web page.
    Tracker(tracker::Args),
    /// Publish a torrent's metadata to a tracker's index.
    Publish(publish::Args),
    /// Search a tracker's index by keywords.
    Search(search::Args),
    /// Download a torrent or magnet link from peers (BitTorrent peer wire protocol).
    Get(get::Args),
    /// Seed a torrent from data on disk until Ctrl-C.
    Seed(seed::Args),
    /// Run a local network on loopback and show spore's main job end to end.
    Testnet(testnet::Args),
    /// Simulate a DHT network of thousands of real cores in virtual time (see docs/SIMULATOR.md).
    Sim(sim::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    raise_open_files_limit();
    let out = Output::new(cli.json, cli.quiet);
    let result = match cli.command {
        Command::Create(args) => create::run(args, &out),
        Command::Dht(args) => dht::run(args, &out),
        Command::Info(args) => info::run(args, &out),
        Command::Get(args) => get::run(args, &out),
        Command::Seed(args) => seed::run(args, &out),
        Command::Testnet(args) => testnet::run(args, &out),
        Command::Tracker(args) => tracker::run(args, &out),
        Command::Publish(args) => publish::run(args, &out),
        Command::Search(args) => search::run(args, &out),
        Command::Sim(args) => sim::run(args, &out),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            out.error(&err);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Lets the process open as many files as the system allows it: the soft limit is often 1,024,
/// and a download keeps every file of its torrent open (two descriptors for large files).
#[cfg(unix)]
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current < maximum {
            limit.current = Some(maximum);
            if let Err(error) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!(%error, "could not raise the open-files limit");
            }
        }
    }
}

#[cfg(not(unix))]
fn raise_open_files_limit() {}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
