//! `spore search`: find torrents in a tracker's index by keywords, ranked by BM25 relevance and
//! live seeders.

use anyhow::Context;
use node::tracker::api::SearchResponse;

use crate::output::Output;

/// Arguments of `spore search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keywords; all must match (prefixes count).
    #[arg(required = true)]
    pub words: Vec<String>,
    /// The index server (a `spore tracker`), e.g. http://127.0.0.1:6969.
    #[arg(long)]
    pub index: String,
    /// Most results shown.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// Runs the search and prints the results.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let url = format!("{}/api/search", args.index.trim_end_matches('/'));
    let words = args.words.join(" ");
    let response: SearchResponse = ureq::get(&url)
        .query("q", &words)
        .query("limit", &args.limit.to_string())
        .call()
        .with_context(|| {
            format!("cannot query the index at {url}; is `spore tracker` running there?")
        })?
        .into_json()
        .context("the index answered with bad JSON")?;
    out.result(&response, || {
        if response.results.is_empty() {
            return format!("no torrent matches \"{words}\"");
        }
        let mut lines = vec![format!(
            "{:<40}  {:>7}  {:>7}  {:>12}  NAME",
            "INFO-HASH", "SEEDERS", "LEECHERS", "BYTES"
        )];
        for hit in &response.results {
            lines.push(format!(
                "{:<40}  {:>7}  {:>7}  {:>12}  {}",
                hit.info_hash, hit.seeders, hit.leechers, hit.total_size, hit.name
            ));
        }
        lines.join("\n")
    });
    Ok(())
}
