//! One task per peer connection: handshake, then bytes in to the decoder and out from the
//! torrent task's messages.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use wire::{Decoder, Handshake, Limits, Message, Reserved};

use super::transport::PeerStreamBox;

/// Time allowed for the peer's handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// A peer silent this long is gone (keep-alives come every 2 minutes at most).
const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes gathered from the outbox into one socket write.
const WRITE_BATCH_BYTES: usize = 128 * 1024;
/// Messages queued towards one peer before it counts as too slow and is dropped.
pub const OUTBOX_LEN_MAX: usize = 2048;

/// Our extension bits.
pub fn our_reserved() -> Reserved {
    Reserved::FAST.with(Reserved::EXTENSION_PROTOCOL)
}

/// What a peer task reports to the torrent task.
#[derive(Debug)]
pub enum PeerReport {
    /// A decoded message.
    Message(u64, Message<'static>),
    /// The connection ended.
    Closed(u64),
}

/// Exchanges handshakes on a fresh connection. Outgoing connections send first; incoming ones
/// check the info-hash before answering, and accept `also` too (a hybrid torrent's truncated v2
/// id, BEP 52), answering with the id the peer named. Returns the peer's handshake and the
/// decoder holding any bytes that came after it.
pub async fn handshake(
    stream: &mut Box<dyn PeerStreamBox>,
    mut ours: Handshake,
    also: Option<[u8; 20]>,
    outgoing: bool,
) -> std::io::Result<(Handshake, Decoder)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    if outgoing {
        stream.write_all(&ours.to_bytes()).await?;
    }
    let mut decoder = Decoder::new(Limits::DEFAULT);
    let mut buf = vec![0u8; 1024];
    let theirs = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            if let Some(hs) = decoder
                .next_handshake()
                .map_err(|_| invalid("garbage handshake"))?
            {
                return Ok::<_, std::io::Error>(hs);
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(invalid("closed during handshake"));
            }
            decoder.feed(&buf[..n]);
        }
    })
    .await
    .map_err(|_| invalid("handshake timed out"))??;
    if theirs.info_hash != ours.info_hash && (outgoing || Some(theirs.info_hash) != also) {
        return Err(invalid("handshake for another torrent"));
    }
    if !outgoing {
        ours.info_hash = theirs.info_hash;
        stream.write_all(&ours.to_bytes()).await?;
    }
    Ok((theirs, decoder))
}

/// Runs a connection until either side ends it: decoded messages go to `reports`, byte
/// buffers from `outbox` go to the socket. Dropping the outbox sender closes the connection.
pub async fn run(
    key: u64,
    addr: SocketAddr,
    stream: Box<dyn PeerStreamBox>,
    mut decoder: Decoder,
    reports: mpsc::Sender<PeerReport>,
    mut outbox: mpsc::Receiver<Vec<u8>>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let read_loop = async {
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        loop {
            loop {
                match decoder.next_message() {
                    Ok(Some(message)) => {
                        if reports
                            .send(PeerReport::Message(key, message.into_owned()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::debug!(%addr, %error, "dropping peer");
                        return;
                    }
                }
            }
            match tokio::time::timeout(IDLE_TIMEOUT, reader.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => decoder.feed(&buf[..n]),
                _ => return,
            }
        }
    };
    let write_loop = async {
        let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES);
        while let Some(first) = outbox.recv().await {
            // Coalesce what is already queued (requests, haves, blocks) into one write: one
            // system call for many small messages.
            let mut next = Some(first);
            while let Some(bytes) = next.take() {
                if batch.is_empty() && bytes.len() >= WRITE_BATCH_BYTES {
                    batch = bytes;
                    break;
                }
                batch.extend_from_slice(&bytes);
                if batch.len() >= WRITE_BATCH_BYTES {
                    break;
                }
                next = outbox.try_recv().ok();
            }
            if writer.write_all(&batch).await.is_err() {
                return;
            }
            batch.clear();
        }
        let _ = writer.shutdown().await;
    };
    tokio::select! {
        () = read_loop => {}
        () = write_loop => {}
    }
    let _ = reports.send(PeerReport::Closed(key)).await;
}
