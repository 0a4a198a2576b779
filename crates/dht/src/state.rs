//! Saving and restoring a node across restarts: our id and the nodes of the routing table, as a
//! small bencoded document (`id`, `nodes`, `nodes6` in compact form). Restored nodes enter the
//! table unconfirmed and are asked first when bootstrapping, so a restarted node rarely needs the
//! public routers (which drop clients that keep coming back).

use bencode::Owned;
use sansio::{Rng, Timestamp};

use crate::krpc::{decode_compact_addr, encode_compact_addr, NodeInfo};
use crate::{Config, Dht, Error, NodeId};

/// Most nodes restored from a saved state.
const SAVED_NODES_MAX: usize = 1000;

impl Dht {
    /// Our id and routing table as bytes for [`Dht::restore`].
    pub fn save_state(&self) -> Vec<u8> {
        let mut nodes = Vec::new();
        let mut nodes6 = Vec::new();
        for entry in self.table.nodes() {
            let out = if entry.node.addr.is_ipv6() {
                &mut nodes6
            } else {
                &mut nodes
            };
            out.extend_from_slice(&entry.node.id.0);
            out.extend_from_slice(&encode_compact_addr(entry.node.addr));
        }
        Owned::dict()
            .with("id", self.id().0.to_vec())
            .with("nodes", nodes)
            .with("nodes6", nodes6)
            .to_bytes()
    }

    /// A node with the id and routing table of a saved state (`config.node_id` wins if set).
    pub fn restore(
        mut config: Config,
        now: Timestamp,
        rng: Rng,
        saved: &[u8],
    ) -> Result<Dht, Error> {
        let value = bencode::decode(saved).map_err(|_| Error::CorruptState("not bencode"))?;
        let dict = value
            .as_dict()
            .ok_or(Error::CorruptState("not a dictionary"))?;
        let id = dict
            .get_bytes("id")
            .and_then(NodeId::from_slice)
            .ok_or(Error::CorruptState("no id"))?;
        config.node_id.get_or_insert(id);
        let mut dht = Dht::new(config, now, rng);
        let mut restored = Vec::new();
        for (key, len) in [("nodes", 26), ("nodes6", 38)] {
            for chunk in dict
                .get_bytes(key)
                .unwrap_or(b"")
                .chunks_exact(len)
                .take(SAVED_NODES_MAX)
            {
                if let (Some(id), Some(addr)) = (
                    NodeId::from_slice(&chunk[..20]),
                    decode_compact_addr(&chunk[20..]),
                ) {
                    restored.push(NodeInfo { id, addr });
                }
            }
        }
        for node in restored {
            dht.offer_to_table(now, node, false);
        }
        // Checking restored nodes may have queued pings; they are harmless and get sent.
        Ok(dht)
    }
}
