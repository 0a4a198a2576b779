//! Answering queries (the server half of BEP 5, 32, 42, 44 and 51).
//!
//! Every reply carries our id, our version and the querier's address as we saw it (BEP 42 `ip`).
//! Replies are at most a few hundred bytes and every source address is rate limited before it
//! gets here, so this node cannot be used to amplify traffic toward a spoofed victim.

use std::net::SocketAddr;

use crate::bep44::{check_value, MutableItem, SALT_BYTES_MAX};
use crate::krpc::{error_code, Body, Message, Method, PutRequest, Query, Response, Want};
use crate::{Dht, Item, NodeId, Transmit};
use sansio::Timestamp;

/// Info-hashes returned by one BEP 51 reply (20 keeps the reply well under 1 KiB).
const SAMPLES_PER_REPLY: usize = 20;

impl Dht {
    pub(crate) fn answer_query(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        tid: Vec<u8>,
        query: Query,
    ) {
        let mut reply = Response {
            id: self.id(),
            ..Response::default()
        };
        let want = query.want;
        let result: Result<(), (i64, &'static str)> = match query.method {
            Method::Ping => Ok(()),
            Method::FindNode { target } => {
                self.fill_nodes(&mut reply, &target, want);
                Ok(())
            }
            Method::Unknown {
                target: Some(target),
                ..
            } => {
                self.fill_nodes(&mut reply, &target, want);
                Ok(())
            }
            Method::Unknown { target: None, .. } => {
                Err((error_code::METHOD_UNKNOWN, "method unknown"))
            }
            Method::GetPeers { info_hash } => {
                reply.token = Some(self.tokens.issue(from.ip()));
                reply.values = self.peers.peers(&info_hash, &mut self.rng);
                self.fill_nodes(&mut reply, &info_hash, want);
                Ok(())
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if self.tokens.is_valid(&token, from.ip()) {
                    let port = if implied_port { from.port() } else { port };
                    if port != 0 {
                        self.peers
                            .announce(now, info_hash, SocketAddr::new(from.ip(), port));
                    }
                    Ok(())
                } else {
                    Err((error_code::PROTOCOL, "invalid token"))
                }
            }
            Method::Get { target, seq } => {
                reply.token = Some(self.tokens.issue(from.ip()));
                match self.items.get(&target) {
                    Some(Item::Immutable(value)) => reply.value = Some(value.clone()),
                    Some(Item::Mutable(m)) => {
                        reply.key = Some(m.key);
                        reply.seq = Some(m.seq);
                        if seq.is_none_or(|s| m.seq > s) {
                            reply.value = Some(m.value.clone());
                            reply.signature = Some(m.signature);
                        }
                    }
                    None => {}
                }
                self.fill_nodes(&mut reply, &target, want);
                Ok(())
            }
            Method::Put(put) => self.store_put(now, from, put),
            Method::SampleInfohashes { target } => {
                let (samples, num) = self.peers.sample(SAMPLES_PER_REPLY, &mut self.rng);
                reply.samples = Some(samples);
                reply.num = Some(i64::try_from(num).unwrap_or(i64::MAX));
                reply.interval = Some(self.config.sample_interval_secs.clamp(0, 21600));
                self.fill_nodes(&mut reply, &target, want);
                Ok(())
            }
        };
        match result {
            Ok(()) => {
                self.stats.queries_answered += 1;
                let message = Message {
                    transaction_id: tid,
                    version: Some(self.config.version.to_vec()),
                    requester_ip: Some(from),
                    read_only: false,
                    body: Body::Response(reply),
                };
                self.transmits.push_back(Transmit {
                    to: from,
                    bytes: message.encode(),
                });
            }
            Err((code, text)) => self.send_error(from, tid, code, text),
        }
    }

    /// Adds the K closest nodes we know, in the families the querier wants (BEP 32).
    fn fill_nodes(&self, reply: &mut Response, target: &NodeId, want: Want) {
        let default_family = !want.v4 && !want.v6;
        let ours_wanted = if self.config.ipv6 { want.v6 } else { want.v4 };
        if !(default_family || ours_wanted) {
            return;
        }
        let nodes = self.table.closest(target, self.config.k);
        if self.config.ipv6 {
            reply.nodes6 = nodes;
        } else {
            reply.nodes = nodes;
        }
    }

    fn store_put(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        put: PutRequest,
    ) -> Result<(), (i64, &'static str)> {
        if !self.tokens.is_valid(&put.token, from.ip()) {
            return Err((error_code::PROTOCOL, "invalid token"));
        }
        check_value(&put.value).map_err(|e| (e.code(), "invalid value"))?;
        let stored = match put.mutable {
            None => self.items.put_immutable(now, &put.value).map(|_| ()),
            Some(m) => {
                if m.salt.len() > SALT_BYTES_MAX {
                    return Err((error_code::SALT_TOO_BIG, "salt too big"));
                }
                let item = MutableItem {
                    key: m.key,
                    signature: m.signature,
                    seq: m.seq,
                    salt: m.salt,
                    value: put.value,
                };
                self.items.put_mutable(now, item, m.cas).map(|_| ())
            }
        };
        stored.map_err(|e| {
            let text = match e.code() {
                error_code::INVALID_SIGNATURE => "invalid signature",
                error_code::CAS_MISMATCH => "CAS mismatch",
                error_code::SEQ_TOO_LOW => "sequence number less than current",
                _ => "invalid put",
            };
            (e.code(), text)
        })
    }
}
