//! One task per peer connection: handshake, then bytes in to the decoder and out from the
//! torrent task's messages.

use std::borrow::Cow;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use wire::{Decoder, Handshake, Limits, Message, Reserved};

use super::block_pool;
use super::transport::PeerStreamBox;

/// Time allowed for the peer's handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// A peer silent this long is gone (keep-alives come every 2 minutes at most).
const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Room offered to each socket read (what loopback can deliver in one call).
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// Bytes gathered from the outbox into one socket write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Buffers gathered into one socket write (well under the system's `IOV_MAX` of 1024).
const WRITE_BATCH_BUFFERS_MAX: usize = 64;
/// Messages queued towards one peer before it counts as too slow and is dropped.
pub const OUTBOX_LEN_MAX: usize = 2048;

/// Our extension bits.
pub fn our_reserved() -> Reserved {
    Reserved::FAST.with(Reserved::EXTENSION_PROTOCOL)
}

/// What a peer task reports to the torrent task.
#[derive(Debug)]
pub enum PeerReport {
    /// The messages decoded from one read, in order (one wake-up of the torrent task per read
    /// rather than per message).
    Messages(u64, Vec<Message<'static>>),
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
        loop {
            let mut messages = Vec::new();
            let broken = loop {
                match decoder.next_message() {
                    Ok(Some(message)) => messages.push(owned(message)),
                    Ok(None) => break false,
                    Err(error) => {
                        tracing::debug!(%addr, %error, "dropping peer");
                        break true;
                    }
                }
            };
            if !messages.is_empty()
                && reports
                    .send(PeerReport::Messages(key, messages))
                    .await
                    .is_err()
            {
                return;
            }
            if broken {
                return;
            }
            let room = decoder.spare(READ_CHUNK_BYTES);
            match tokio::time::timeout(IDLE_TIMEOUT, reader.read(room)).await {
                Ok(Ok(n)) if n > 0 => decoder.advance(n),
                _ => return,
            }
        }
    };
    let write_loop = async {
        let mut queued = std::collections::VecDeque::new();
        while let Some(first) = outbox.recv().await {
            // Gather what is already queued (requests, haves, block heads and data) into one
            // vectored write: one system call for many messages, and no copy of the blocks.
            let mut queued_bytes = first.len();
            queued.push_back(first);
            while queued_bytes < WRITE_BATCH_BYTES && queued.len() < WRITE_BATCH_BUFFERS_MAX {
                let Ok(next) = outbox.try_recv() else { break };
                queued_bytes += next.len();
                queued.push_back(next);
            }
            if write_all_vectored(&mut writer, &mut queued).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    };
    tokio::select! {
        () = read_loop => {}
        () = write_loop => {}
    }
    let _ = reports.send(PeerReport::Closed(key)).await;
}

/// The message with its payload copied out of the decoder; a block's into a pooled buffer.
fn owned(message: Message<'_>) -> Message<'static> {
    match message {
        Message::Piece { index, begin, data } => {
            let mut owned = block_pool::take(data.len());
            owned.copy_from_slice(&data);
            Message::Piece {
                index,
                begin,
                data: Cow::Owned(owned),
            }
        }
        other => other.into_owned(),
    }
}

/// Writes every queued buffer, in order, with vectored writes; empties the queue.
async fn write_all_vectored(
    writer: &mut (impl AsyncWriteExt + Unpin),
    queued: &mut std::collections::VecDeque<Vec<u8>>,
) -> std::io::Result<()> {
    // An empty buffer would make a write of nothing look like a closed socket.
    queued.retain(|buffer| !buffer.is_empty());
    // Bytes of the front buffer already written.
    let mut written_of_front = 0;
    while let Some(front) = queued.front() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&front[written_of_front..]))
            .chain(queued.iter().skip(1).map(|b| IoSlice::new(b)))
            .collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while let Some(front) = queued.front() {
            let left = front.len() - written_of_front;
            if n < left {
                written_of_front += n;
                break;
            }
            n -= left;
            written_of_front = 0;
            if let Some(done) = queued.pop_front() {
                block_pool::give(done);
            }
        }
    }
    Ok(())
}
