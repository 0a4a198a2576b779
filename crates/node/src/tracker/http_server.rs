//! The tracker's HTTP listener: a fast path for announce and scrape (BEP 3, BEP 48) and hyper
//! (the axum router of [`super::api`]) for everything else.
//!
//! Implementation notes: most BitTorrent clients open one connection per announce and send the
//! whole request at once. Served through hyper, each costs about eight system calls (accept,
//! register with epoll, two reads, writev, shutdown, deregister, close). The fast path answers a
//! complete `GET /announce` or `/scrape` that is already in the socket buffer right after
//! accept with one read, one write and a close, never registering the socket with the reactor;
//! that is what lets the tracker keep up with opentracker over HTTP (docs/BENCHMARKS.md).
//! Anything else (a request still in flight, a partial head, another path or method, a response
//! the socket cannot take at once) goes to hyper with the bytes already read put back in front.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

use super::Shared;

/// Largest request head the fast path reads (a maximal announce query plus headers).
const HEAD_BYTES_MAX: usize = tracker::http::QUERY_BYTES_MAX + 2048;
/// Pause after an accept error such as running out of file descriptors, so the loop does not
/// spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Starts `workers` tasks accepting connections on `listener`, until they are aborted. Each
/// answers the connections it accepts, so announces are served on every core.
// `AsyncFd::new` is deprecated for not checking I/O safety at the type level; its replacement
// is `unsafe`, which the workspace denies. The condition it asks for holds here: the AsyncFd
// owns the listener, so the descriptor stays open and the same until the AsyncFd drops.
#[allow(deprecated)]
pub(crate) fn spawn(
    listener: TcpListener,
    shared: &Arc<Shared>,
    router: &Router,
    workers: usize,
) -> io::Result<Vec<JoinHandle<()>>> {
    listener.set_nonblocking(true)?;
    let listener = Arc::new(AsyncFd::new(listener)?);
    Ok((0..workers.max(1))
        .map(|_| {
            tokio::spawn(accept_loop(
                listener.clone(),
                shared.clone(),
                router.clone(),
            ))
        })
        .collect())
}

async fn accept_loop(listener: Arc<AsyncFd<TcpListener>>, shared: Arc<Shared>, router: Router) {
    loop {
        let mut ready = match listener.readable().await {
            Ok(ready) => ready,
            Err(err) => {
                tracing::error!("tracker HTTP listener: {err}");
                return;
            }
        };
        match ready.try_io(|l| l.get_ref().accept()) {
            Ok(Ok((stream, peer))) => serve_connection(stream, peer, &shared, &router),
            Ok(Err(err)) => {
                tracing::debug!("tracker HTTP accept: {err}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
            // Another worker took the connection.
            Err(_would_block) => {}
        }
    }
}

fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, router: &Router) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut head = vec![0u8; HEAD_BYTES_MAX];
    let read = match (&stream).read(&mut head) {
        Ok(0) => return,
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => return,
    };
    head.truncate(read);
    if let Some(response) = fast_answer(&head, peer, shared) {
        match (&stream).write(&response) {
            Ok(n) if n == response.len() => return, // Dropping the stream closes it.
            Ok(n) => {
                // The socket took part of it: hand the rest to the async path.
                let rest = response[n..].to_vec();
                tokio::spawn(finish_write(stream, rest));
                return;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                tokio::spawn(finish_write(stream, response));
                return;
            }
            Err(_) => return,
        }
    }
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let io = Prefixed {
        prefix: head,
        offset: 0,
        inner: stream,
    };
    let service = hyper_util::service::TowerToHyperService::new(
        router.clone().layer(axum::Extension(ConnectInfo(peer))),
    );
    tokio::spawn(async move {
        let served = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), service)
            .await;
        if let Err(err) = served {
            tracing::debug!("tracker HTTP connection from {peer}: {err}");
        }
    });
}

async fn finish_write(stream: TcpStream, rest: Vec<u8>) {
    if let Ok(mut stream) = tokio::net::TcpStream::from_std(stream) {
        let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, &rest).await;
    }
}

/// The whole HTTP response for a complete announce or scrape request in `head`, or `None` when
/// the request is anything else (or not complete yet).
fn fast_answer(head: &[u8], peer: SocketAddr, shared: &Shared) -> Option<Vec<u8>> {
    if !head.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let line_end = head.iter().position(|&b| b == b'\r')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "GET" || !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (endpoint, passkey) = match path.split_once('/').map(|(_, p)| p.split_once('/')) {
        Some(Some((endpoint, key))) if !key.is_empty() && !key.contains(['/', '%']) => {
            (endpoint, Some(key))
        }
        Some(Some(_)) => return None,
        Some(None) => (path.strip_prefix('/')?, None),
        None => return None,
    };
    let now = shared.clock.now();
    let body = match endpoint {
        "announce" => shared
            .core()
            .handle_http_announce(now, peer.ip(), passkey, query),
        "scrape" => shared
            .core()
            .handle_http_scrape(now, peer.ip(), passkey, query),
        _ => return None,
    };
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    Some(response)
}

/// A stream that first yields bytes already read from it.
struct Prefixed {
    prefix: Vec<u8>,
    offset: usize,
    inner: tokio::net::TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.offset < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.offset);
            let start = self.offset;
            buf.put_slice(&self.prefix[start..start + n]);
            self.offset += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_announce_and_scrape_gets_are_fast() {
        let shared = Shared::for_tests();
        let peer: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let answer = |head: &str| fast_answer(head.as_bytes(), peer, &shared);
        assert!(answer("GET /announce?x=1 HTTP/1.0\r\n\r\n").is_some());
        assert!(answer("GET /announce/k3y?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").is_some());
        assert!(answer("GET /scrape HTTP/1.1\r\n\r\n").is_some());
        for slow in [
            "GET /announce?x=1 HTTP/1.0\r\n",     // head not complete yet
            "POST /announce HTTP/1.0\r\n\r\n",    // another method
            "GET / HTTP/1.1\r\n\r\n",             // the page
            "GET /api/stats HTTP/1.1\r\n\r\n",    // the API
            "GET /announce/a/b HTTP/1.1\r\n\r\n", // not a route
            "GET /announce/ HTTP/1.1\r\n\r\n",    // empty passkey
            "GET /announce/%41 HTTP/1.1\r\n\r\n", // escaped passkey: axum decodes it
            "GET /announce HTTP/2\r\n\r\n",
        ] {
            assert!(answer(slow).is_none(), "{slow:?}");
        }
        let body = answer("GET /announce HTTP/1.0\r\n\r\n").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("bad request: missing info_hashe"), "{text}");
    }
}
