//! The copy-on-write registry snapshot: keys to `Arc<[Subscription]>`, sharded so that a
//! write copies one shard (plus the shard table's pointers), never the whole registry.

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::event::{EventKey, TypeKey};
use crate::subscription::Subscription;
use crate::sync::Arc;

/// A pass-through hasher for `TypeId` (already a hash), FxHash for everything else.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        // A `TypeId` hashes as one u64 that is already a hash: pass it through.
        if self.hash == 0 {
            self.hash = word;
        } else {
            self.add(word);
        }
    }
}

pub(crate) type KeyBuild = BuildHasherDefault<KeyHasher>;

#[inline]
fn shard_index<K: std::hash::Hash + ?Sized>(key: &K, mask: usize) -> usize {
    let hash = KeyBuild::default().hash_one(key);
    // Mix again so the shard index does not reuse the bits the map's buckets use.
    (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & mask
}

pub(crate) struct TypedEntry {
    pub(crate) key: TypeKey,
    pub(crate) subs: Arc<[Subscription]>,
    /// The emit fast path's resolved view of `subs` (a `fast::Route<T>`, or `None` when
    /// they do not qualify), built by the first fast emit after the list changed and kept
    /// for as long as the list is: it depends on nothing else.
    #[cfg(not(loom))]
    pub(crate) route: std::sync::OnceLock<Option<crate::emitter::AnyRoute>>,
}

/// One shard of the registry.
#[derive(Clone, Default)]
pub(crate) struct Shard {
    typed: HashMap<TypeId, Arc<TypedEntry>, KeyBuild>,
    named: HashMap<Arc<str>, Arc<[Subscription]>, KeyBuild>,
}

/// What emitters read: every key's subscriptions, in subscription (id) order.
pub(crate) struct Snapshot {
    shards: Box<[Arc<Shard>]>,
    any: Arc<[Subscription]>,
    mask: usize,
}

impl Snapshot {
    pub(crate) fn empty(shards: usize) -> Self {
        let shards = shards.next_power_of_two();
        let empty = Arc::new(Shard::default());
        Self {
            shards: (0..shards).map(|_| empty.clone()).collect(),
            any: Arc::from(Vec::new()),
            mask: shards - 1,
        }
    }

    #[inline]
    pub(crate) fn typed(&self, id: TypeId) -> Option<&Arc<[Subscription]>> {
        self.typed_entry(id).map(|entry| &entry.subs)
    }

    #[inline]
    pub(crate) fn typed_entry(&self, id: TypeId) -> Option<&TypedEntry> {
        let shard = &self.shards[shard_index(&id, self.mask)];
        shard.typed.get(&id).map(|entry| &**entry)
    }

    #[inline]
    pub(crate) fn named(&self, name: &str) -> Option<(&Arc<str>, &Arc<[Subscription]>)> {
        let shard = &self.shards[shard_index(name, self.mask)];
        shard.named.get_key_value(name)
    }

    #[inline]
    pub(crate) fn any(&self) -> &Arc<[Subscription]> {
        &self.any
    }

    /// The subscriptions of one key.
    pub(crate) fn get(&self, key: &EventKey) -> Option<&Arc<[Subscription]>> {
        match key {
            EventKey::Type(key) => self.typed(key.id()),
            EventKey::Named(name) => self.named(name).map(|(_, subs)| subs),
            EventKey::Any => (!self.any.is_empty()).then_some(&self.any),
        }
    }

    /// Every key with at least one subscription.
    pub(crate) fn keys(&self) -> Vec<EventKey> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            keys.extend(shard.typed.values().map(|entry| EventKey::Type(entry.key)));
            keys.extend(shard.named.keys().map(|name| EventKey::Named(name.clone())));
        }
        if !self.any.is_empty() {
            keys.push(EventKey::Any);
        }
        keys
    }

    pub(crate) fn key_count(&self) -> usize {
        let keyed: usize = self
            .shards
            .iter()
            .map(|shard| shard.typed.len() + shard.named.len())
            .sum();
        keyed + usize::from(!self.any.is_empty())
    }

    /// Starts a copy-on-write edit.
    pub(crate) fn edit(&self) -> Edit {
        Edit {
            shards: self.shards.to_vec(),
            any: self.any.clone(),
            mask: self.mask,
        }
    }
}

/// A snapshot being rewritten by the (one) writer: shards are copied on first touch.
pub(crate) struct Edit {
    shards: Vec<Arc<Shard>>,
    any: Arc<[Subscription]>,
    mask: usize,
}

impl Edit {
    /// Rewrites one key's list; an empty result removes the key.
    pub(crate) fn update(&mut self, key: &EventKey, change: impl FnOnce(&mut Vec<Subscription>)) {
        match key {
            EventKey::Any => {
                let mut list = self.any.to_vec();
                change(&mut list);
                self.any = Arc::from(list);
            }
            EventKey::Type(type_key) => {
                let id = type_key.id();
                let shard = Arc::make_mut(&mut self.shards[shard_index(&id, self.mask)]);
                let mut list = shard
                    .typed
                    .get(&id)
                    .map(|entry| entry.subs.to_vec())
                    .unwrap_or_default();
                change(&mut list);
                if list.is_empty() {
                    shard.typed.remove(&id);
                } else {
                    shard.typed.insert(
                        id,
                        Arc::new(TypedEntry {
                            key: *type_key,
                            subs: Arc::from(list),
                            #[cfg(not(loom))]
                            route: std::sync::OnceLock::new(),
                        }),
                    );
                }
            }
            EventKey::Named(name) => {
                let shard = Arc::make_mut(&mut self.shards[shard_index(&**name, self.mask)]);
                let (name, mut list) = match shard.named.get_key_value(&**name) {
                    Some((stored, subs)) => (stored.clone(), subs.to_vec()),
                    None => (name.clone(), Vec::new()),
                };
                change(&mut list);
                if list.is_empty() {
                    shard.named.remove(&*name);
                } else {
                    shard.named.insert(name, Arc::from(list));
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Snapshot {
        Snapshot {
            shards: self.shards.into_boxed_slice(),
            any: self.any,
            mask: self.mask,
        }
    }
}
