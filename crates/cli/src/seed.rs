//! `spore seed`: serve a torrent's data to peers until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use node::swarm::{Options, Source};

use crate::get::{drive, load_source, report, resume_file, seed_from_clock, PeerArgs};
use crate::output::Output;

/// Seed a torrent from data already on disk.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// The data: the torrent's file or directory, or the directory that contains it.
    pub data_path: PathBuf,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    pub listen: SocketAddr,
    /// Where peers come from.
    #[command(flatten)]
    pub peers: PeerArgs,
}

/// Runs `spore seed`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let mut source = load_source(&args.torrent.to_string_lossy())?;
    if args.peers.no_trackers {
        node::announce::forget_trackers(&mut source);
    }
    let Source::Torrent(torrent) = &source else {
        bail!("seed needs a .torrent file, not a magnet link");
    };
    let name = torrent.info.name().to_owned();
    // Accept either the directory holding the content or the content itself.
    let root = if args.data_path.join(&name).exists() {
        args.data_path.clone()
    } else if args
        .data_path
        .file_name()
        .is_some_and(|f| f == name.as_str())
    {
        args.data_path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
    } else {
        bail!(
            "{} does not contain `{name}`: give the torrent's data or the directory holding it",
            args.data_path.display()
        );
    };
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    // Beside the data, where `spore get -o DIR` keeps it: a download seeded from its directory
    // starts without a recheck. Where no directory can be made there (read-only data), every
    // start rechecks.
    let record = resume_file(&root, &source).ok();
    let options = Options {
        out_dir: root,
        peers: args.peers.peers,
        listen: Some(args.listen),
        seed_after: true,
        local_ip: args.peers.bind,
        resume_file: record,
        seed: seed_from_clock(),
        seed_only: true,
        sequential: false,
        metadata_timeout: node::swarm::METADATA_TIMEOUT_DEFAULT,
    };
    let summary = drive(source, options, out, true, &args.peers.dht).context("cannot seed")?;
    report(&summary, out);
    Ok(())
}
