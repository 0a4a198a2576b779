//! The `spore` command: a thin layer over the library crates. Every subcommand lives in its own
//! module and is a call into the node, the cores or the simulator; nothing here implements a
//! protocol.

mod dht;
mod output;
mod testnet;

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
    /// Talk to the Mainline DHT (ping, find-node, get-peers, announce, put, get, sample) or run a node.
    Dht(dht::Args),
    /// Run a local network on loopback and show spore's main job end to end.
    Testnet(testnet::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let out = Output::new(cli.json, cli.quiet);
    let result = match cli.command {
        Command::Dht(args) => dht::run(args, &out),
        Command::Testnet(args) => testnet::run(args, &out),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            out.error(&err);
            std::process::ExitCode::FAILURE
        }
    }
}

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
