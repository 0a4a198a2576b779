//! Length-prefixed peer messages: BEP 3 core, BEP 6 fast, BEP 10 extended, BEP 52 hashes.

use std::borrow::Cow;

use crate::Error;

/// One block: `length` bytes at `begin` in piece `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRequest {
    /// Piece index.
    pub index: u32,
    /// Offset within the piece.
    pub begin: u32,
    /// Length in bytes.
    pub length: u32,
}

/// A BEP 52 hash request (and the header of `hashes` and `hash reject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The file's merkle root.
    pub pieces_root: [u8; 32],
    /// Layer of the requested hashes (0 = 16 KiB leaves).
    pub base_layer: u32,
    /// Offset of the first hash within the layer.
    pub index: u32,
    /// Number of hashes.
    pub length: u32,
    /// Number of uncle layers requested for the proof.
    pub proof_layers: u32,
}

/// Message ids on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageId {
    /// BEP 3.
    Choke = 0,
    /// BEP 3.
    Unchoke = 1,
    /// BEP 3.
    Interested = 2,
    /// BEP 3.
    NotInterested = 3,
    /// BEP 3.
    Have = 4,
    /// BEP 3.
    Bitfield = 5,
    /// BEP 3.
    Request = 6,
    /// BEP 3.
    Piece = 7,
    /// BEP 3.
    Cancel = 8,
    /// BEP 5.
    Port = 9,
    /// BEP 6.
    Suggest = 0x0d,
    /// BEP 6.
    HaveAll = 0x0e,
    /// BEP 6.
    HaveNone = 0x0f,
    /// BEP 6.
    Reject = 0x10,
    /// BEP 6.
    AllowedFast = 0x11,
    /// BEP 10.
    Extended = 20,
    /// BEP 52.
    HashRequest = 21,
    /// BEP 52.
    Hashes = 22,
    /// BEP 52.
    HashReject = 23,
}

/// A peer message. Decoded messages borrow their payloads from the decoder's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Zero-length keep-alive.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces we have.
    Interested,
    /// The sender wants nothing from us.
    NotInterested,
    /// The sender has verified this piece.
    Have(u32),
    /// The sender's pieces, high bit first.
    Bitfield(Cow<'a, [u8]>),
    /// Asks for a block.
    Request(BlockRequest),
    /// A block of data.
    Piece {
        /// Piece index.
        index: u32,
        /// Offset within the piece.
        begin: u32,
        /// The bytes.
        data: Cow<'a, [u8]>,
    },
    /// Withdraws a request.
    Cancel(BlockRequest),
    /// The sender's DHT port.
    Port(u16),
    /// BEP 6: a piece the sender suggests we download.
    Suggest(u32),
    /// BEP 6: the sender has every piece.
    HaveAll,
    /// BEP 6: the sender has no piece.
    HaveNone,
    /// BEP 6: the sender will not serve this request.
    Reject(BlockRequest),
    /// BEP 6: we may request this piece even while choked.
    AllowedFast(u32),
    /// BEP 10: an extension message (`id` 0 is the extended handshake).
    Extended {
        /// Extension message id, as the receiver assigned it.
        id: u8,
        /// Bencoded payload (and trailing raw bytes for `ut_metadata` data).
        payload: Cow<'a, [u8]>,
    },
    /// BEP 52: asks for merkle hashes.
    HashRequest(HashRequest),
    /// BEP 52: merkle hashes (concatenated 32-byte hashes, then proof).
    Hashes {
        /// What was asked.
        request: HashRequest,
        /// The hashes.
        hashes: Cow<'a, [u8]>,
    },
    /// BEP 52: the sender will not serve this hash request.
    HashReject(HashRequest),
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    // Callers check the payload length first.
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn block_at(bytes: &[u8]) -> BlockRequest {
    BlockRequest {
        index: u32_at(bytes, 0),
        begin: u32_at(bytes, 4),
        length: u32_at(bytes, 8),
    }
}

fn hash_request_at(bytes: &[u8]) -> HashRequest {
    let mut pieces_root = [0u8; 32];
    pieces_root.copy_from_slice(&bytes[..32]);
    HashRequest {
        pieces_root,
        base_layer: u32_at(bytes, 32),
        index: u32_at(bytes, 36),
        length: u32_at(bytes, 40),
        proof_layers: u32_at(bytes, 44),
    }
}

const HASH_REQUEST_LEN: usize = 48;

impl<'a> Message<'a> {
    /// Parses one message body (the bytes after the length prefix; empty is a keep-alive).
    /// Only the shape is checked here; [`crate::Decoder`] adds the torrent-specific checks.
    pub fn parse(body: &'a [u8]) -> Result<Message<'a>, Error> {
        let Some((&id, payload)) = body.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let expect = |len: usize| -> Result<(), Error> {
            if payload.len() == len {
                Ok(())
            } else {
                Err(Error::BadLength {
                    id,
                    len: payload.len(),
                })
            }
        };
        let at_least = |len: usize| -> Result<(), Error> {
            if payload.len() >= len {
                Ok(())
            } else {
                Err(Error::BadLength {
                    id,
                    len: payload.len(),
                })
            }
        };
        Ok(match id {
            0 => expect(0).map(|()| Message::Choke)?,
            1 => expect(0).map(|()| Message::Unchoke)?,
            2 => expect(0).map(|()| Message::Interested)?,
            3 => expect(0).map(|()| Message::NotInterested)?,
            4 => expect(4).map(|()| Message::Have(u32_at(payload, 0)))?,
            5 => Message::Bitfield(Cow::Borrowed(payload)),
            6 => expect(12).map(|()| Message::Request(block_at(payload)))?,
            7 => {
                at_least(8)?;
                Message::Piece {
                    index: u32_at(payload, 0),
                    begin: u32_at(payload, 4),
                    data: Cow::Borrowed(&payload[8..]),
                }
            }
            8 => expect(12).map(|()| Message::Cancel(block_at(payload)))?,
            9 => expect(2).map(|()| Message::Port(u16::from_be_bytes([payload[0], payload[1]])))?,
            0x0d => expect(4).map(|()| Message::Suggest(u32_at(payload, 0)))?,
            0x0e => expect(0).map(|()| Message::HaveAll)?,
            0x0f => expect(0).map(|()| Message::HaveNone)?,
            0x10 => expect(12).map(|()| Message::Reject(block_at(payload)))?,
            0x11 => expect(4).map(|()| Message::AllowedFast(u32_at(payload, 0)))?,
            20 => {
                at_least(1)?;
                Message::Extended {
                    id: payload[0],
                    payload: Cow::Borrowed(&payload[1..]),
                }
            }
            21 => {
                expect(HASH_REQUEST_LEN).map(|()| Message::HashRequest(hash_request_at(payload)))?
            }
            22 => {
                at_least(HASH_REQUEST_LEN)?;
                Message::Hashes {
                    request: hash_request_at(payload),
                    hashes: Cow::Borrowed(&payload[HASH_REQUEST_LEN..]),
                }
            }
            23 => {
                expect(HASH_REQUEST_LEN).map(|()| Message::HashReject(hash_request_at(payload)))?
            }
            other => return Err(Error::UnknownMessage(other)),
        })
    }

    /// Appends the message, with its length prefix, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        let put_block = |out: &mut Vec<u8>, id: MessageId, b: &BlockRequest| {
            out.push(id as u8);
            out.extend_from_slice(&b.index.to_be_bytes());
            out.extend_from_slice(&b.begin.to_be_bytes());
            out.extend_from_slice(&b.length.to_be_bytes());
        };
        let put_hash = |out: &mut Vec<u8>, id: MessageId, r: &HashRequest| {
            out.push(id as u8);
            out.extend_from_slice(&r.pieces_root);
            for v in [r.base_layer, r.index, r.length, r.proof_layers] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        };
        let put_u32 = |out: &mut Vec<u8>, id: MessageId, v: u32| {
            out.push(id as u8);
            out.extend_from_slice(&v.to_be_bytes());
        };
        match self {
            Message::KeepAlive => {}
            Message::Choke => out.push(MessageId::Choke as u8),
            Message::Unchoke => out.push(MessageId::Unchoke as u8),
            Message::Interested => out.push(MessageId::Interested as u8),
            Message::NotInterested => out.push(MessageId::NotInterested as u8),
            Message::Have(i) => put_u32(out, MessageId::Have, *i),
            Message::Bitfield(bits) => {
                out.push(MessageId::Bitfield as u8);
                out.extend_from_slice(bits);
            }
            Message::Request(b) => put_block(out, MessageId::Request, b),
            Message::Piece { index, begin, data } => {
                out.push(MessageId::Piece as u8);
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Cancel(b) => put_block(out, MessageId::Cancel, b),
            Message::Port(p) => {
                out.push(MessageId::Port as u8);
                out.extend_from_slice(&p.to_be_bytes());
            }
            Message::Suggest(i) => put_u32(out, MessageId::Suggest, *i),
            Message::HaveAll => out.push(MessageId::HaveAll as u8),
            Message::HaveNone => out.push(MessageId::HaveNone as u8),
            Message::Reject(b) => put_block(out, MessageId::Reject, b),
            Message::AllowedFast(i) => put_u32(out, MessageId::AllowedFast, *i),
            Message::Extended { id, payload } => {
                out.push(MessageId::Extended as u8);
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Message::HashRequest(r) => put_hash(out, MessageId::HashRequest, r),
            Message::Hashes { request, hashes } => {
                put_hash(out, MessageId::Hashes, request);
                out.extend_from_slice(hashes);
            }
            Message::HashReject(r) => put_hash(out, MessageId::HashReject, r),
        }
        let body_len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&body_len.to_be_bytes());
    }

    /// The encoded message as a head and, for a block, its data apart (moved, not copied): sent
    /// back to back, with one vectored write, they are [`Message::to_bytes`].
    pub fn into_frames(self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Message::Piece { index, begin, data } => {
                let mut head = Vec::with_capacity(13);
                Message::Piece {
                    index,
                    begin,
                    data: Cow::Borrowed(&[]),
                }
                .encode_into(&mut head);
                // The length prefix counts the data that follows the head.
                let len = 9 + data.len() as u32;
                head[..4].copy_from_slice(&len.to_be_bytes());
                (head, Some(data.into_owned()))
            }
            other => (other.to_bytes(), None),
        }
    }

    /// The encoded message, length prefix included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// A copy that owns its payload.
    pub fn into_owned(self) -> Message<'static> {
        let own = |c: Cow<'a, [u8]>| Cow::Owned(c.into_owned());
        match self {
            Message::KeepAlive => Message::KeepAlive,
            Message::Choke => Message::Choke,
            Message::Unchoke => Message::Unchoke,
            Message::Interested => Message::Interested,
            Message::NotInterested => Message::NotInterested,
            Message::Have(i) => Message::Have(i),
            Message::Bitfield(b) => Message::Bitfield(own(b)),
            Message::Request(b) => Message::Request(b),
            Message::Piece { index, begin, data } => Message::Piece {
                index,
                begin,
                data: own(data),
            },
            Message::Cancel(b) => Message::Cancel(b),
            Message::Port(p) => Message::Port(p),
            Message::Suggest(i) => Message::Suggest(i),
            Message::HaveAll => Message::HaveAll,
            Message::HaveNone => Message::HaveNone,
            Message::Reject(b) => Message::Reject(b),
            Message::AllowedFast(i) => Message::AllowedFast(i),
            Message::Extended { id, payload } => Message::Extended {
                id,
                payload: own(payload),
            },
            Message::HashRequest(r) => Message::HashRequest(r),
            Message::Hashes { request, hashes } => Message::Hashes {
                request,
                hashes: own(hashes),
            },
            Message::HashReject(r) => Message::HashReject(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        assert_eq!(Message::KeepAlive.to_bytes(), [0, 0, 0, 0]);
        assert_eq!(Message::Have(258).to_bytes(), [0, 0, 0, 5, 4, 0, 0, 1, 2]);
        assert_eq!(Message::HaveAll.to_bytes(), [0, 0, 0, 1, 0x0e]);
        assert_eq!(Message::Port(6881).to_bytes(), [0, 0, 0, 3, 9, 0x1a, 0xe1]);
    }

    #[test]
    fn wrong_payload_sizes_are_errors() {
        assert_eq!(
            Message::parse(&[4, 0, 0]),
            Err(Error::BadLength { id: 4, len: 2 })
        );
        assert_eq!(
            Message::parse(&[0, 1]),
            Err(Error::BadLength { id: 0, len: 1 })
        );
        assert_eq!(Message::parse(&[99]), Err(Error::UnknownMessage(99)));
        assert!(Message::parse(&[7, 0, 0, 0]).is_err());
    }
}
