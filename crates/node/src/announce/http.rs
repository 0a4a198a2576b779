//! HTTP and HTTPS tracker requests (BEP 3 announce, BEP 48 scrape) with `reqwest` (rustls);
//! the bytes on the wire come from [`tracker::http`]'s codecs.
//!
//! Implementation notes: requests leave from the swarm's local address when it has one, since
//! trackers record the address a request comes from as the peer's. Bodies are read up to
//! [`tracker::http::RESPONSE_BYTES_MAX`] bytes; a tracker that answers a failure with a non-2xx
//! status still has its bencoded `failure reason` reported.

use std::net::IpAddr;
use std::time::Duration;

use tracker::http::{self as codec, AnnounceResponse, ScrapeRequest, ScrapeResponse};
use tracker::InfoHash;

use super::{Error, Params};

/// A reusable HTTP(S) client for trackers.
pub(crate) struct HttpClient {
    client: reqwest::Client,
    /// Tracker ids handed out by trackers (`tracker id`), echoed as `trackerid`, by URL.
    tracker_ids: std::collections::BTreeMap<String, Vec<u8>>,
}

impl HttpClient {
    /// A client whose every request (connect to last byte) ends within `timeout`, sent from
    /// `local_ip` when given.
    pub(crate) fn new(timeout: Duration, local_ip: Option<IpAddr>) -> Result<HttpClient, Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("spore/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .local_address(local_ip)
            .no_proxy()
            // Announces are minutes apart and trackers (opentracker) close idle connections:
            // a pooled connection would fail the next request.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::Transport(format!("cannot set up the HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            tracker_ids: std::collections::BTreeMap::new(),
        })
    }

    /// One announce to `url`.
    pub(crate) async fn announce(
        &mut self,
        url: &str,
        params: &Params,
    ) -> Result<AnnounceResponse, Error> {
        let request = codec::AnnounceRequest {
            info_hash: params.info_hash,
            peer_id: params.peer_id,
            port: params.port,
            uploaded: params.uploaded,
            downloaded: params.downloaded,
            left: params.left,
            event: params.event,
            numwant: Some(params.numwant),
            compact: true,
            ip: None,
            key: Some(format!("{:08x}", params.key).into_bytes()),
            tracker_id: self.tracker_ids.get(url).cloned(),
        };
        let body = self
            .get(codec::with_query(url, &request.to_query()))
            .await?;
        let response = AnnounceResponse::decode(&body)?;
        if let Some(id) = &response.tracker_id {
            self.tracker_ids.insert(url.to_owned(), id.clone());
        }
        Ok(response)
    }

    /// One scrape of `info_hashes` at the scrape URL that belongs to announce URL `url`.
    pub(crate) async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, Error> {
        let scrape_url = codec::scrape_url(url).ok_or(Error::ScrapeUnsupported)?;
        let request = ScrapeRequest {
            info_hashes: info_hashes.to_vec(),
        };
        let body = self
            .get(codec::with_query(&scrape_url, &request.to_query()))
            .await?;
        Ok(ScrapeResponse::decode(&body)?)
    }

    /// GETs `url` and returns the body of a 2xx answer, or the tracker's failure reason from
    /// any answer that carries one.
    async fn get(&self, url: String) -> Result<Vec<u8>, Error> {
        let mut response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Transport(describe(&e)))?;
        let status = response.status();
        let limit = codec::RESPONSE_BYTES_MAX;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Transport(describe(&e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(tracker::Error::TooLarge("response").into());
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(body);
        }
        match AnnounceResponse::decode(&body) {
            Err(tracker::Error::Failure(reason)) => Err(tracker::Error::Failure(reason).into()),
            _ => Err(Error::HttpStatus(status.as_u16())),
        }
    }
}

/// The error with its causes (reqwest's top-level message alone says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
