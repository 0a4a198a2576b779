//! `spore publish`: send a torrent's metadata (name, files, sizes, info-hashes, magnet) to a
//! tracker's index so others can find it with `spore search`.

use std::path::PathBuf;

use anyhow::Context;
use node::tracker::api::{PublishRequest, PublishResponse};

use crate::output::Output;

/// Arguments of `spore publish`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// The index server (a `spore tracker`), e.g. http://127.0.0.1:6969.
    #[arg(long)]
    pub index: String,
}

/// Publishes the torrent.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.torrent)
        .with_context(|| format!("cannot read {}", args.torrent.display()))?;
    let torrent = metainfo::Torrent::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid torrent", args.torrent.display()))?;
    let request = PublishRequest::from_record(&node::tracker::record_from_torrent(&torrent));
    let url = format!("{}/api/publish", args.index.trim_end_matches('/'));
    let response: PublishResponse = match ureq::post(&url).send_json(&request) {
        Ok(resp) => resp
            .into_json()
            .context("the index answered with bad JSON")?,
        Err(ureq::Error::Status(code, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            anyhow::bail!("the index refused the torrent ({code}): {body}")
        }
        Err(err) => {
            return Err(err).with_context(|| {
                format!("cannot reach the index at {url}; is `spore tracker` running there?")
            })
        }
    };
    out.result(&response, || {
        format!("published {} ({})", request.name, response.info_hash)
    });
    Ok(())
}
