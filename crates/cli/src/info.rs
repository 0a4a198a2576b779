//! `spore info`: show what a .torrent file or a magnet link describes.

use std::path::PathBuf;

use anyhow::Context;
use metainfo::{Magnet, MetaVersion, Torrent};

use crate::output::Output;

/// Arguments of `spore info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .torrent file, or a magnet link (quote it: it contains `&`).
    #[arg(value_name = "TORRENT|MAGNET")]
    pub source: String,
}

/// Prints the torrent's or magnet's contents.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    if args
        .source
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
    {
        let magnet: Magnet = args.source.parse()?;
        show_magnet(&magnet, out);
        return Ok(());
    }
    let path = PathBuf::from(&args.source);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: give a .torrent file or a magnet: link",
            path.display()
        )
    })?;
    let torrent = Torrent::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable torrent", path.display()))?;
    show_torrent(&torrent, out);
    Ok(())
}

/// `v1`, `v2` or `hybrid`.
pub(crate) fn version_name(version: MetaVersion) -> &'static str {
    match version {
        MetaVersion::V1 => "v1",
        MetaVersion::V2 => "v2",
        MetaVersion::Hybrid => "hybrid",
    }
}

/// Sizes in binary units: `1.5 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn show_torrent(torrent: &Torrent, out: &Output) {
    let info = &torrent.info;
    let hashes = info.info_hashes();
    let magnet = torrent.magnet().to_string();
    let content_size: u64 = info
        .files()
        .iter()
        .filter(|f| !f.is_pad())
        .map(|f| f.length)
        .sum();
    let files: Vec<serde_json::Value> = info
        .files()
        .iter()
        .map(|f| {
            serde_json::json!({
                "path": f.display_path(),
                "size": f.length,
                "offset": f.offset,
                "pad": f.is_pad(),
                "attr": f.attributes.to_attr_string(),
                "symlink_path": f.symlink_path.as_ref().map(|p| p.join("/")),
                "pieces_root": f.pieces_root.map(|r| metainfo::InfoHashV2(r).to_string()),
            })
        })
        .collect();
    let json = serde_json::json!({
        "name": info.name(),
        "version": version_name(info.version()),
        "info_hash_v1": hashes.v1.map(|h| h.to_string()),
        "info_hash_v2": hashes.v2.map(|h| h.to_string()),
        "total_size": info.total_size(),
        "content_size": content_size,
        "piece_length": info.piece_length(),
        "num_pieces": info.num_pieces(),
        "private": info.is_private(),
        "source": info.source(),
        "comment": torrent.comment,
        "created_by": torrent.created_by,
        "creation_date": torrent.creation_date,
        "trackers": torrent.trackers(),
        "web_seeds": torrent.url_list,
        "files": files,
        "magnet": magnet,
    });
    out.result(&json, || {
        let mut text = format!("name:         {}\n", info.name());
        if let Some(v1) = hashes.v1 {
            text += &format!("info-hash v1: {v1}\n");
        }
        if let Some(v2) = hashes.v2 {
            text += &format!("info-hash v2: {v2}\n");
        }
        text += &format!(
            "version:      {}{}\n",
            version_name(info.version()),
            if info.is_private() { ", private" } else { "" }
        );
        text += &format!(
            "size:         {} ({content_size} bytes)\n",
            human_bytes(content_size)
        );
        text += &format!(
            "pieces:       {} of {}\n",
            info.num_pieces(),
            human_bytes(info.piece_length())
        );
        if let Some(comment) = &torrent.comment {
            text += &format!("comment:      {comment}\n");
        }
        for (i, tier) in torrent.trackers().iter().enumerate() {
            text += &format!("tracker tier {}: {}\n", i + 1, tier.join(" "));
        }
        for seed in &torrent.url_list {
            text += &format!("web seed:     {seed}\n");
        }
        text += &format!("files ({}):\n", info.files().len());
        for f in info.files() {
            let mark = if f.is_pad() { " [pad]" } else { "" };
            text += &format!("  {:>12}  {}{mark}\n", f.length, f.display_path());
        }
        text + &format!("magnet:       {magnet}\n")
    });
}

fn show_magnet(magnet: &Magnet, out: &Output) {
    let hashes = magnet.info_hashes;
    let json = serde_json::json!({
        "name": magnet.display_name,
        "info_hash_v1": hashes.v1.map(|h| h.to_string()),
        "info_hash_v2": hashes.v2.map(|h| h.to_string()),
        "trackers": magnet.trackers,
        "web_seeds": magnet.web_seeds,
        "peers": magnet.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "select_only": magnet.select_only.iter().map(|r| [r.start(), r.end()]).collect::<Vec<_>>(),
        "magnet": magnet.to_string(),
    });
    out.result(&json, || {
        let mut text = String::from("magnet link (metadata comes from peers)\n");
        if let Some(name) = &magnet.display_name {
            text += &format!("name:         {name}\n");
        }
        if let Some(v1) = hashes.v1 {
            text += &format!("info-hash v1: {v1}\n");
        }
        if let Some(v2) = hashes.v2 {
            text += &format!("info-hash v2: {v2}\n");
        }
        for tracker in &magnet.trackers {
            text += &format!("tracker:      {tracker}\n");
        }
        for seed in &magnet.web_seeds {
            text += &format!("web seed:     {seed}\n");
        }
        for peer in &magnet.peers {
            text += &format!("peer:         {peer}\n");
        }
        text
    });
}
