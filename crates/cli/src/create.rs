//! `spore create`: make a .torrent of a file or directory (v1, v2 or hybrid).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use metainfo::{CreateOptions, FileOrder, MetaVersion, Torrent};

use crate::info::{human_bytes, version_name};
use crate::output::Output;

/// Arguments of `spore create`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file or directory to share.
    pub path: PathBuf,
    /// v1 only (BEP 3): SHA-1 pieces, for clients without BEP 52.
    #[arg(long, group = "meta_version")]
    pub v1: bool,
    /// v2 only (BEP 52): per-file SHA-256 merkle trees; not readable by v1-only clients.
    #[arg(long, group = "meta_version")]
    pub v2: bool,
    /// v1 and v2 in one torrent (the default, as in libtorrent): every client can use it, and
    /// v2 clients verify each file by its merkle root. Costs pad files between files.
    #[arg(long, group = "meta_version")]
    pub hybrid: bool,
    /// Bytes per piece: a power of two (16 KiB at least for v2 and hybrid), with an optional
    /// K or M suffix (KiB, MiB). Default: libtorrent's choice by total size.
    #[arg(long, value_name = "BYTES", value_parser = parse_piece_length)]
    pub piece_length: Option<u64>,
    /// A tracker URL; repeat for more. The first is `announce`.
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// A web seed URL (BEP 19); repeat for more.
    #[arg(long = "web-seed", value_name = "URL")]
    pub web_seeds: Vec<String>,
    /// Mark the torrent private (BEP 27): peers only from its trackers.
    #[arg(long)]
    pub private: bool,
    /// A comment stored in the torrent.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Sort v1 files by path and pad them (libtorrent's canonical order) so the info-hash is the
    /// same on every machine; without it v1 files keep the file system's order, like libtorrent.
    #[arg(long)]
    pub sort_files: bool,
    /// Where to write the torrent. Default: `<name>.torrent` in the current directory.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `256K`, `4M` or plain bytes.
fn parse_piece_length(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.strip_suffix(['K', 'k']) {
        Some(d) => (d, 1024),
        None => match text.strip_suffix(['M', 'm']) {
            Some(d) => (d, 1024 * 1024),
            None => (text, 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{text:?} is not a size such as 262144, 256K or 4M"))
}

/// Seconds since the Unix epoch, for `creation date`.
#[allow(clippy::disallowed_methods)] // The CLI is the driver: it may read the clock.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Hashes the content and writes the torrent.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let version = match (args.v1, args.v2) {
        (true, _) => MetaVersion::V1,
        (_, true) => MetaVersion::V2,
        _ => MetaVersion::Hybrid,
    };
    if !args.path.exists() {
        anyhow::bail!(
            "{} does not exist: give the file or directory to share",
            args.path.display()
        );
    }
    let options = CreateOptions {
        version,
        piece_length: args.piece_length,
        trackers: args.trackers,
        web_seeds: args.web_seeds,
        private: args.private,
        comment: args.comment,
        created_by: Some(concat!("spore/", env!("CARGO_PKG_VERSION")).to_string()),
        creation_date: Some(now_unix()),
        file_order: if args.sort_files {
            FileOrder::Canonical
        } else {
            FileOrder::Filesystem
        },
    };
    let bar = if out.shows_progress() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    let torrent = metainfo::create_torrent(&args.path, &options, &|bytes, total| {
        bar.set_length(total);
        bar.inc(bytes);
    })
    .with_context(|| format!("cannot create a torrent of {}", args.path.display()))?;
    bar.finish_and_clear();

    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", torrent.info.name())));
    write_torrent(&output, &torrent, args.force)?;
    report(&output, &torrent, out);
    Ok(())
}

fn write_torrent(output: &PathBuf, torrent: &Torrent, force: bool) -> anyhow::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut file = open.open(output).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists: pass --force to overwrite it, or -o to choose another file",
                output.display()
            )
        } else {
            anyhow::Error::new(err).context(format!("cannot write {}", output.display()))
        }
    })?;
    file.write_all(&torrent.to_bytes())
        .with_context(|| format!("cannot write {}", output.display()))
}

fn report(output: &std::path::Path, torrent: &Torrent, out: &Output) {
    let info = &torrent.info;
    let hashes = info.info_hashes();
    let magnet = torrent.magnet().to_string();
    let json = serde_json::json!({
        "torrent": output.display().to_string(),
        "name": info.name(),
        "version": version_name(info.version()),
        "info_hash_v1": hashes.v1.map(|h| h.to_string()),
        "info_hash_v2": hashes.v2.map(|h| h.to_string()),
        "piece_length": info.piece_length(),
        "num_pieces": info.num_pieces(),
        "total_size": info.total_size(),
        "magnet": magnet,
    });
    out.result(&json, || {
        let mut text = format!(
            "wrote {} ({} torrent, {} in {} pieces of {})\n",
            output.display(),
            version_name(info.version()),
            human_bytes(info.total_size()),
            info.num_pieces(),
            human_bytes(info.piece_length())
        );
        if let Some(v1) = hashes.v1 {
            text += &format!("info-hash v1: {v1}\n");
        }
        if let Some(v2) = hashes.v2 {
            text += &format!("info-hash v2: {v2}\n");
        }
        text + &format!("magnet:       {magnet}\n")
    });
}
