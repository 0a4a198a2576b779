//! The streaming decoder: bytes in as they arrive, checked messages out.
//!
//! Implementation notes: bytes are appended to one buffer and consumed from a moving start, so a
//! `piece` message is handed out as a slice of that buffer (no copy); the buffer is compacted on
//! the next [`Decoder::feed`] or [`Decoder::spare`]. A driver may read from its socket straight
//! into [`Decoder::spare`] and commit with [`Decoder::advance`], saving a copy per byte. A length prefix beyond [`Limits::message_bytes_max`] is an error
//! before anything is buffered for it, so memory per peer is bounded.

use crate::{Error, Handshake, Message, BLOCK_LEN};

/// Bounds on what a peer may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message body accepted (length prefix value).
    pub message_bytes_max: u32,
    /// Largest block a peer may request or send.
    pub block_bytes_max: u32,
}

impl Limits {
    /// Room for a 128 KiB block (some clients use 32 KiB) and a bitfield of 1 Mi pieces.
    pub const DEFAULT: Limits = Limits {
        message_bytes_max: 1024 * 1024 / 8 + 1024 + 128 * 1024,
        block_bytes_max: 8 * BLOCK_LEN,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Turns a peer's byte stream into messages. Feed bytes, then call
/// [`Decoder::next_handshake`] once and [`Decoder::next_message`] until it yields `None`.
#[derive(Debug)]
pub struct Decoder {
    /// `buf[start..end]` is received and not yet consumed; `buf[end..]` is room to read into.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    limits: Limits,
    piece_count: Option<u32>,
}

impl Decoder {
    /// A decoder with these limits; the piece count is unknown until [`Decoder::set_piece_count`].
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            end: 0,
            limits,
            piece_count: None,
        }
    }

    /// Enables the checks that need the torrent's size (bitfield length, piece indices).
    pub fn set_piece_count(&mut self, pieces: u32) {
        self.piece_count = Some(pieces);
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.advance(bytes.len());
    }

    /// Room for at least `room` more bytes, to read from the socket into; then call
    /// [`Decoder::advance`] with the count read. The buffer stays within one message plus `room`
    /// as long as complete messages are taken out before reading more.
    pub fn spare(&mut self, room: usize) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + room {
            self.buf.resize(self.end + room, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Commits `count` bytes written into [`Decoder::spare`] (capped at its length).
    pub fn advance(&mut self, count: usize) {
        self.end = (self.end + count).min(self.buf.len());
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered_len(&self) -> usize {
        self.end - self.start
    }

    /// The peer's handshake, once its 68 bytes have arrived.
    pub fn next_handshake(&mut self) -> Result<Option<Handshake>, Error> {
        let handshake = Handshake::parse(&self.buf[self.start..self.end])?;
        if handshake.is_some() {
            self.start += crate::HANDSHAKE_LEN;
        }
        Ok(handshake)
    }

    /// The next complete message, or `None` until more bytes arrive. An error means: drop the
    /// peer (the stream cannot be resynchronised).
    pub fn next_message(&mut self) -> Result<Option<Message<'_>>, Error> {
        let pending = &self.buf[self.start..self.end];
        let Some(prefix) = pending.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len > self.limits.message_bytes_max {
            return Err(Error::MessageTooLong {
                len,
                max: self.limits.message_bytes_max,
            });
        }
        let end = 4 + len as usize;
        if pending.len() < end {
            return Ok(None);
        }
        let body_start = self.start + 4;
        self.start += end;
        let message = Message::parse(&self.buf[body_start..body_start + len as usize])?;
        check(&message, self.limits, self.piece_count)?;
        Ok(Some(message))
    }
}

/// Torrent-specific checks: indices in range, bitfield size, block sizes.
fn check(message: &Message<'_>, limits: Limits, piece_count: Option<u32>) -> Result<(), Error> {
    let index_ok = |index: u32| match piece_count {
        Some(pieces) if index >= pieces => Err(Error::PieceOutOfRange { index, pieces }),
        _ => Ok(()),
    };
    let block_ok = |len: u32| {
        if len > limits.block_bytes_max || len == 0 {
            Err(Error::BlockTooLong {
                len,
                max: limits.block_bytes_max,
            })
        } else {
            Ok(())
        }
    };
    match message {
        Message::Have(i) | Message::Suggest(i) | Message::AllowedFast(i) => index_ok(*i),
        Message::Request(b) | Message::Cancel(b) | Message::Reject(b) => {
            index_ok(b.index)?;
            block_ok(b.length)
        }
        Message::Piece { index, data, .. } => {
            index_ok(*index)?;
            block_ok(data.len() as u32)
        }
        Message::Bitfield(bits) => match piece_count {
            Some(pieces) if !bitfield_fits(bits, pieces) => Err(Error::BadBitfield {
                len: bits.len(),
                pieces,
            }),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whether `bits` has exactly the bytes for `pieces` and its spare trailing bits are clear.
pub(crate) fn bitfield_fits(bits: &[u8], pieces: u32) -> bool {
    let bytes = pieces.div_ceil(8) as usize;
    if bits.len() != bytes {
        return false;
    }
    let spare = bytes as u32 * 8 - pieces;
    match bits.last() {
        Some(last) if spare > 0 => last & ((1u8 << spare) - 1) == 0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlockRequest;
    use std::borrow::Cow;

    #[test]
    fn messages_split_across_reads() {
        let mut bytes = Message::Have(3).to_bytes();
        bytes.extend(Message::Unchoke.to_bytes());
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.set_piece_count(10);
        decoder.feed(&bytes[..6]);
        assert_eq!(decoder.next_message(), Ok(None));
        decoder.feed(&bytes[6..]);
        assert_eq!(decoder.next_message(), Ok(Some(Message::Have(3))));
        assert_eq!(decoder.next_message(), Ok(Some(Message::Unchoke)));
        assert_eq!(decoder.next_message(), Ok(None));
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn reading_into_spare_room_equals_feeding() {
        let mut bytes = Message::Have(7).to_bytes();
        bytes.extend(Message::Interested.to_bytes());
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.set_piece_count(10);
        for chunk in bytes.chunks(3) {
            let room = decoder.spare(64);
            assert!(room.len() >= 64);
            room[..chunk.len()].copy_from_slice(chunk);
            decoder.advance(chunk.len());
            while let Some(message) = decoder.next_message().unwrap() {
                assert!(matches!(message, Message::Have(7) | Message::Interested));
            }
        }
        assert_eq!(decoder.buffered_len(), 0);
        decoder.advance(1 << 20);
        assert!(
            decoder.buffered_len() <= 64 + 3,
            "advance is capped at the room given"
        );
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.feed(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decoder.next_message(),
            Err(Error::MessageTooLong { .. })
        ));
    }

    #[test]
    fn bitfield_must_fit_piece_count() {
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.set_piece_count(10);
        decoder.feed(&Message::Bitfield(Cow::Borrowed(&[0xff, 0xc0])).to_bytes());
        assert!(decoder.next_message().unwrap().is_some());
        for bad in [&[0xff][..], &[0xff, 0xe0], &[0xff, 0xc0, 0]] {
            decoder.feed(&Message::Bitfield(Cow::Borrowed(bad)).to_bytes());
            assert!(matches!(
                decoder.next_message(),
                Err(Error::BadBitfield { .. })
            ));
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.set_piece_count(4);
        let request = |index, length| {
            Message::Request(BlockRequest {
                index,
                begin: 0,
                length,
            })
        };
        decoder.feed(&request(4, 16384).to_bytes());
        assert!(matches!(
            decoder.next_message(),
            Err(Error::PieceOutOfRange { .. })
        ));
        decoder.feed(&request(1, 1 << 24).to_bytes());
        assert!(matches!(
            decoder.next_message(),
            Err(Error::BlockTooLong { .. })
        ));
    }
}
