//! BEP 10 extension messages: our extended handshake, the peer's, serving the info dictionary
//! over `ut_metadata` (BEP 9) and routing `ut_pex` (BEP 11) to the `pex` module.

use std::borrow::Cow;

use sansio::Timestamp;
use wire::{ExtendedHandshake, Message, MetadataMessage, METADATA_PIECE_LEN};

use super::{Swarm, UT_METADATA_ID, UT_PEX_ID};
use crate::PeerKey;

impl Swarm {
    /// Sends our extended handshake: client, queue length, listen port, and the extensions we
    /// serve (`ut_metadata` once we have the info dictionary, `ut_pex` unless private).
    pub(super) fn send_extended_handshake(&mut self, now: Timestamp, peer: PeerKey) {
        let mut hs = ExtendedHandshake {
            client: Some(self.config.client_name.clone()),
            request_queue_len: Some(self.config.incoming_requests_max as u32),
            listen_port: self.config.listen_port,
            ..ExtendedHandshake::default()
        };
        if !self.config.private {
            hs.extensions.insert("ut_pex".to_owned(), UT_PEX_ID);
        }
        if let Some(metadata) = &self.metadata {
            hs.extensions
                .insert("ut_metadata".to_owned(), UT_METADATA_ID);
            hs.metadata_size = Some(metadata.len() as u64);
        }
        let payload = Cow::Owned(hs.to_bytes());
        self.send(now, peer, Message::Extended { id: 0, payload });
    }

    /// An extension message arrived: the peer's extended handshake (id 0) or one of ours.
    pub(super) fn on_extended(
        &mut self,
        now: Timestamp,
        key: PeerKey,
        id: u8,
        payload: &[u8],
    ) -> Result<(), &'static str> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if !peer.extensions {
            return Err("extended message without the extension bit");
        }
        match id {
            0 => {
                let hs = ExtendedHandshake::parse(payload).map_err(|_| "bad extended handshake")?;
                peer.request_queue_len = hs.request_queue_len;
                peer.listen_port = hs.listen_port.filter(|&p| p != 0).or(peer.listen_port);
                let id = |name| hs.extensions.get(name).copied().filter(|&i| i != 0);
                peer.ut_metadata_id = id("ut_metadata");
                peer.ut_pex_id = id("ut_pex");
                Ok(())
            }
            UT_PEX_ID if !self.config.private => self.on_pex(now, key, payload),
            UT_METADATA_ID => {
                let message =
                    MetadataMessage::parse(payload).map_err(|_| "bad ut_metadata message")?;
                let (MetadataMessage::Request { piece }, Some(their_id)) =
                    (message, peer.ut_metadata_id)
                else {
                    return Ok(());
                };
                let reply = match &self.metadata {
                    Some(info) if (piece as usize) * METADATA_PIECE_LEN < info.len() => {
                        let start = piece as usize * METADATA_PIECE_LEN;
                        let end = (start + METADATA_PIECE_LEN).min(info.len());
                        MetadataMessage::Data {
                            piece,
                            total_size: info.len() as u64,
                            data: &info[start..end],
                        }
                    }
                    _ => MetadataMessage::Reject { piece },
                };
                let payload = Cow::Owned(reply.to_bytes());
                self.send(
                    now,
                    key,
                    Message::Extended {
                        id: their_id,
                        payload,
                    },
                );
                Ok(())
            }
            // Extensions we did not advertise (ut_pex of a private torrent, ...) are ignored.
            _ => Ok(()),
        }
    }
}
