//! BEP 44 items stored on behalf of others: immutable items are checked against their target,
//! mutable ones against their signature, `seq` and `cas`. Items expire after two hours unless
//! put again; the store is capped and evicts the oldest item when full.

use std::collections::BTreeMap;
use std::time::Duration;

use sansio::Timestamp;

use crate::bep44::{check_value, immutable_target, Item, MutableItem};
use crate::error::Error;
use crate::node_id::NodeId;

/// Caps and lifetimes of the item store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemStoreLimits {
    /// Most items kept.
    pub items_max: usize,
    /// How long an item is kept after its last put.
    pub item_ttl: Duration,
}

impl Default for ItemStoreLimits {
    fn default() -> Self {
        ItemStoreLimits {
            items_max: 1000,
            item_ttl: Duration::from_secs(2 * 60 * 60),
        }
    }
}

/// The stored items.
#[derive(Clone, Debug)]
pub struct ItemStore {
    limits: ItemStoreLimits,
    items: BTreeMap<NodeId, (Item, Timestamp)>,
}

impl ItemStore {
    /// An empty store.
    pub fn new(limits: ItemStoreLimits) -> ItemStore {
        ItemStore {
            limits,
            items: BTreeMap::new(),
        }
    }

    /// Stores an immutable item; returns its target.
    pub fn put_immutable(&mut self, now: Timestamp, value: &[u8]) -> Result<NodeId, Error> {
        check_value(value)?;
        let target = immutable_target(value);
        self.insert(now, target, Item::Immutable(value.to_vec()));
        Ok(target)
    }

    /// Stores a mutable item after checking its signature, `seq` and the optional `cas`.
    pub fn put_mutable(
        &mut self,
        now: Timestamp,
        item: MutableItem,
        cas: Option<i64>,
    ) -> Result<NodeId, Error> {
        item.verify()?;
        let target = item.target();
        if let Some((Item::Mutable(stored), _)) = self.items.get(&target) {
            if cas.is_some_and(|cas| cas != stored.seq) {
                return Err(Error::CasMismatch);
            }
            if item.seq < stored.seq {
                return Err(Error::SeqTooLow);
            }
        }
        self.insert(now, target, Item::Mutable(item));
        Ok(target)
    }

    fn insert(&mut self, now: Timestamp, target: NodeId, item: Item) {
        if !self.items.contains_key(&target) && self.items.len() >= self.limits.items_max {
            if let Some(oldest) = self
                .items
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            {
                self.items.remove(&oldest);
            }
        }
        self.items.insert(target, (item, now));
    }

    /// The item stored under `target`.
    pub fn get(&self, target: &NodeId) -> Option<&Item> {
        self.items.get(target).map(|(item, _)| item)
    }

    /// Drops items not put again within the lifetime.
    pub fn expire(&mut self, now: Timestamp) {
        let ttl = self.limits.item_ttl;
        self.items
            .retain(|_, (_, at)| now.saturating_since(*at) < ttl);
    }

    /// Number of stored items.
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutable_puts_obey_seq_and_cas() {
        let mut store = ItemStore::new(ItemStoreLimits::default());
        let now = Timestamp::ZERO;
        let seed = [9u8; 32];
        let v1 = MutableItem::sign(&seed, b"s", 1, b"1:a").unwrap();
        let v2 = MutableItem::sign(&seed, b"s", 2, b"1:b").unwrap();
        let target = store.put_mutable(now, v2.clone(), None).unwrap();
        assert_eq!(store.put_mutable(now, v1, None), Err(Error::SeqTooLow));
        let v3 = MutableItem::sign(&seed, b"s", 3, b"1:c").unwrap();
        assert_eq!(
            store.put_mutable(now, v3.clone(), Some(1)),
            Err(Error::CasMismatch)
        );
        store.put_mutable(now, v3.clone(), Some(2)).unwrap();
        assert_eq!(store.get(&target), Some(&Item::Mutable(v3)));
        let mut forged = v2;
        forged.seq = 9;
        assert_eq!(
            store.put_mutable(now, forged, None),
            Err(Error::InvalidSignature)
        );
    }

    #[test]
    fn items_expire_and_the_store_is_capped() {
        let mut store = ItemStore::new(ItemStoreLimits {
            items_max: 2,
            item_ttl: Duration::from_secs(10),
        });
        let t0 = Timestamp::ZERO;
        let a = store.put_immutable(t0, b"1:a").unwrap();
        store
            .put_immutable(t0 + Duration::from_secs(1), b"1:b")
            .unwrap();
        store
            .put_immutable(t0 + Duration::from_secs(2), b"1:c")
            .unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.get(&a).is_none(), "oldest evicted");
        store.expire(t0 + Duration::from_secs(11));
        assert_eq!(store.len(), 1);
        assert!(store.put_immutable(t0, b"garbage").is_err());
    }
}
