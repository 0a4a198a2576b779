//! The lookups a node runs for its user and its own upkeep: starting one from the routing
//! table, feeding it replies, the store phase of `announce_peer` and `put` (BEP 5, 44), and
//! reporting the result. The iterative lookup itself is [`crate::Lookup`].

use super::*;

/// What a lookup is for, and what it does once it has found the closest nodes.
#[derive(Clone, Debug)]
pub(crate) enum LookupKind {
    Bootstrap,
    Refresh,
    FindNode,
    GetPeers {
        announce_port: Option<Option<u16>>,
    },
    Get {
        key: Option<[u8; 32]>,
        salt: Vec<u8>,
        seq_min: Option<i64>,
        put: Option<Box<(Item, Option<i64>)>>,
    },
}

/// A lookup in progress, with what it has gathered so far.
#[derive(Clone, Debug)]
pub(crate) struct RunningLookup {
    lookup: Lookup,
    kind: LookupKind,
    result: LookupResult,
    /// Store messages (announce/put) still awaiting an answer once the lookup phase ended.
    stores_pending: usize,
    storing: bool,
}

impl Dht {
    pub(crate) fn table_seeds(&self, target: &NodeId) -> Vec<(Option<NodeId>, SocketAddr)> {
        self.table
            .closest(target, self.config.k * 2)
            .into_iter()
            .map(|n| (Some(n.id), n.addr))
            .collect()
    }

    pub(crate) fn start_table_lookup(
        &mut self,
        now: Timestamp,
        query: QueryId,
        target: NodeId,
        kind: LookupKind,
    ) {
        let seeds = self.table_seeds(&target);
        self.start_lookup(now, query, target, seeds, kind);
    }

    pub(crate) fn start_lookup(
        &mut self,
        now: Timestamp,
        query: QueryId,
        target: NodeId,
        seeds: Vec<(Option<NodeId>, SocketAddr)>,
        kind: LookupKind,
    ) {
        if self.lookups.len() >= self.config.lookups_max {
            self.events.push_back(Event::LookupDone {
                query,
                result: LookupResult::default(),
            });
            return;
        }
        let lookup = Lookup::new(target, &seeds, self.config.k, self.config.alpha);
        self.lookups.insert(
            query,
            RunningLookup {
                lookup,
                kind,
                result: LookupResult::default(),
                stores_pending: 0,
                storing: false,
            },
        );
        self.advance_lookup(now, query);
    }

    /// Sends the lookup's next queries, or finishes it.
    fn advance_lookup(&mut self, now: Timestamp, query: QueryId) {
        let Some(running) = self.lookups.get_mut(&query) else {
            return;
        };
        if running.storing {
            if running.stores_pending == 0 {
                self.finish_lookup(query);
            }
            return;
        }
        let target = running.lookup.target();
        let next = running.lookup.next_queries();
        let method = match &running.kind {
            LookupKind::Bootstrap | LookupKind::Refresh | LookupKind::FindNode => {
                Method::FindNode { target }
            }
            LookupKind::GetPeers { .. } => Method::GetPeers { info_hash: target },
            LookupKind::Get { seq_min, .. } => Method::Get {
                target,
                seq: *seq_min,
            },
        };
        for (id, addr) in next {
            if !self.send_query(now, addr, id, method.clone(), Purpose::Lookup(query)) {
                if let Some(r) = self.lookups.get_mut(&query) {
                    r.lookup.on_failure(addr);
                }
            }
        }
        let done = self.lookups.get(&query).is_some_and(|r| r.lookup.is_done());
        if done {
            self.start_store_phase(now, query);
        }
    }

    /// After the lookup phase: announce or put on the closest nodes, then finish.
    fn start_store_phase(&mut self, now: Timestamp, query: QueryId) {
        let Some(running) = self.lookups.get_mut(&query) else {
            return;
        };
        running.storing = true;
        let closest = running.lookup.closest_responded();
        running.result.closest = closest.iter().map(|(n, _)| *n).collect();
        running.result.queried = running.lookup.queried();
        running.result.hops = running.lookup.hops();
        let target = running.lookup.target();
        let store = match &running.kind {
            LookupKind::GetPeers {
                announce_port: Some(port),
            } => Some(Method::AnnouncePeer {
                info_hash: target,
                port: port.unwrap_or(0),
                implied_port: port.is_none(),
                token: Vec::new(),
            }),
            LookupKind::Get { put: Some(put), .. } => Some(Method::Put(put_request(&put.0, put.1))),
            _ => None,
        };
        if let Some(method) = store {
            for (node, token) in closest {
                let Some(token) = token else { continue };
                let method = with_token(&method, token);
                if self.send_query(now, node.addr, Some(node.id), method, Purpose::Store(query)) {
                    if let Some(r) = self.lookups.get_mut(&query) {
                        r.stores_pending += 1;
                    }
                }
            }
        }
        self.advance_lookup(now, query);
    }

    fn finish_lookup(&mut self, query: QueryId) {
        let Some(running) = self.lookups.remove(&query) else {
            return;
        };
        let mut result = running.result;
        if let LookupKind::Get { put: Some(put), .. } = running.kind {
            result.item = Some(put.0);
        } else if matches!(running.kind, LookupKind::Refresh) {
            return;
        }
        self.events.push_back(Event::LookupDone { query, result });
    }

    /// A store message (announce or put) of `query` got an answer (`stored`) or failed.
    pub(crate) fn on_store_answered(&mut self, now: Timestamp, query: QueryId, stored: bool) {
        if let Some(r) = self.lookups.get_mut(&query) {
            r.stores_pending = r.stores_pending.saturating_sub(1);
            r.result.stored += usize::from(stored);
        }
        self.advance_lookup(now, query);
    }

    /// Tells lookup `query` what became of one of its queries (`update`), then moves it on.
    pub(crate) fn update_lookup(
        &mut self,
        now: Timestamp,
        query: QueryId,
        update: impl FnOnce(&mut Lookup),
    ) {
        if let Some(r) = self.lookups.get_mut(&query) {
            update(&mut r.lookup);
        }
        self.advance_lookup(now, query);
    }

    pub(crate) fn on_lookup_reply(
        &mut self,
        now: Timestamp,
        query: QueryId,
        node: NodeInfo,
        response: Response,
    ) {
        let nodes = self.usable_nodes(response.nodes.clone(), response.nodes6.clone());
        let Some(running) = self.lookups.get_mut(&query) else {
            return;
        };
        let mut immutable_found = false;
        match &running.kind {
            LookupKind::GetPeers { .. } if !response.values.is_empty() => {
                running.result.peers += response.values.len();
                self.events.push_back(Event::Peers {
                    query,
                    peers: response.values.clone(),
                });
            }
            LookupKind::Get {
                key,
                salt,
                seq_min,
                put,
            } => {
                let found = found_item(running.lookup.target(), *key, salt, &response);
                if let Some(item) = found {
                    let newer = match (&item, &running.result.item) {
                        (Item::Mutable(new), Some(Item::Mutable(old))) => new.seq > old.seq,
                        (Item::Mutable(new), _) => seq_min.is_none_or(|min| new.seq > min),
                        (Item::Immutable(_), old) => old.is_none(),
                    };
                    if newer {
                        immutable_found = matches!(item, Item::Immutable(_)) && put.is_none();
                        running.result.item = Some(item.clone());
                        self.events.push_back(Event::ItemFound { query, item });
                    }
                }
            }
            _ => {}
        }
        running
            .lookup
            .on_response(node.addr, node.id, &nodes, response.token);
        if immutable_found {
            // An immutable item is the same everywhere: the first verified copy ends the get.
            running.result.closest = running
                .lookup
                .closest_responded()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            running.result.queried = running.lookup.queried();
            running.result.hops = running.lookup.hops();
            self.finish_lookup(query);
            return;
        }
        self.advance_lookup(now, query);
    }
}

fn put_request(item: &Item, cas: Option<i64>) -> PutRequest {
    match item {
        Item::Immutable(value) => PutRequest {
            token: Vec::new(),
            value: value.clone(),
            mutable: None,
        },
        Item::Mutable(m) => PutRequest {
            token: Vec::new(),
            value: m.value.clone(),
            mutable: Some(MutableFields {
                key: m.key,
                signature: m.signature,
                seq: m.seq,
                salt: m.salt.clone(),
                cas,
            }),
        },
    }
}

fn with_token(method: &Method, token: Vec<u8>) -> Method {
    match method.clone() {
        Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            ..
        } => Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        },
        Method::Put(put) => Method::Put(PutRequest { token, ..put }),
        other => other,
    }
}

/// A verified item from a `get` reply, if it carries one for `target`.
fn found_item(
    target: NodeId,
    key: Option<[u8; 32]>,
    salt: &[u8],
    response: &Response,
) -> Option<Item> {
    let value = response.value.clone()?;
    match key {
        None => (immutable_target(&value) == target).then_some(Item::Immutable(value)),
        Some(key) => {
            let item = MutableItem {
                key,
                signature: response.signature?,
                seq: response.seq?,
                salt: salt.to_vec(),
                value,
            };
            if response.key.is_some_and(|k| k != key) || item.verify().is_err() {
                return None;
            }
            Some(Item::Mutable(item))
        }
    }
}
