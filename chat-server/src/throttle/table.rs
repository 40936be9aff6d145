//! A map of fixed capacity that forgets its least recently used entry to make room, so a
//! client cycling through usernames or addresses cannot make it grow.

use std::hash::Hash;
use std::sync::Mutex;

use hashlink::LruCache;

/// A bounded, shared map from a key to some throttling state.
#[derive(Debug)]
pub(crate) struct Table<K: Eq + Hash, V> {
    entries: Mutex<LruCache<K, V>>,
}

impl<K: Eq + Hash, V: Default> Table<K, V> {
    /// A table holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// Runs `f` on the entry of `key`, created empty when absent (which may evict the least
    /// recently used one), and marks it as the most recently used.
    pub(crate) fn with<R>(&self, key: K, f: impl FnOnce(&mut V) -> R) -> R {
        // A panic while holding the lock cannot leave an entry half-updated in a way that
        // matters more than losing a count, so a poisoned lock is simply taken over.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // `get_mut` and `insert` (not the entry API) keep the order of use and the capacity.
        if let Some(value) = entries.get_mut(&key) {
            return f(value);
        }
        let mut value = V::default();
        let answer = f(&mut value);
        entries.insert(key, value);
        answer
    }

    /// Runs `f` on the entry of `key` if there is one, without creating it.
    pub(crate) fn with_existing<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get_mut(key).map(f)
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &K) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// How many entries are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_grows_past_its_capacity_and_forgets_the_least_recent() {
        let table: Table<String, u32> = Table::new(100);
        table.with("kept".to_owned(), |n| *n = 7);
        for i in 0..10_000 {
            table.with(format!("user{i}"), |n| *n += 1);
            // Touching an entry keeps it among the most recent.
            table.with("kept".to_owned(), |_| ());
            assert!(table.len() <= 100);
        }
        assert_eq!(table.len(), 100);
        assert_eq!(table.with_existing(&"kept".to_owned(), |n| *n), Some(7));
        assert_eq!(table.with_existing(&"user0".to_owned(), |n| *n), None);
    }
}
