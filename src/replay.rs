//! The replay cache: a bounded memory of recently accepted MACs, so that a
//! signed request is accepted once. TSIG (`tsig::Verifier`, one cache per
//! key) and the HTTP API's request signatures (`http::auth`, one cache)
//! both use it; this module knows neither.
//!
//! Both schemes accept a request whose time is within a fudge `f` of the
//! server's clock, so a request accepted at `t` can pass the time check
//! again until `t + 2f` at the latest: that is the window callers give. An
//! identifier accepted at `now` is refused as a replay up to and including
//! `now + window`, and accepted again after that.
//!
//! Costs: a lookup hashes the identifier once ([`HashSet`]); entries sit in
//! a [`VecDeque`] in order of expiry, so expired ones leave from the front,
//! each in O(1), as time passes. The cache is bounded by its capacity:
//! when it is full, the oldest entry is evicted to make room, so under a
//! flood of more than `capacity` accepted requests per window the oldest of
//! them could be replayed (the price of the bound; size the capacity above
//! the expected rate times the window). It lives in memory: a restart
//! forgets it.
//!
//! The cache is not synchronised; callers hold it behind a lock.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

/// Recently accepted identifiers (MACs or MAC prefixes by default), each
/// remembered for `window` seconds after it was accepted, at most
/// `capacity` of them.
#[derive(Debug)]
pub struct ReplayCache<K = Arc<[u8]>> {
    window: u64,
    capacity: usize,
    seen: HashSet<K>,
    /// (expiry, identifier), expiry non-decreasing from front to back; the
    /// same identifiers as `seen`.
    order: VecDeque<(u64, K)>,
}

impl<K: Hash + Eq + Clone> ReplayCache<K> {
    /// An empty cache remembering each identifier for `window` seconds and
    /// at most `capacity` identifiers (at least one).
    pub fn new(window: u64, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `id` as accepted at `now` (seconds) unless it was accepted
    /// within the window: `true` means new (accept the request), `false` a
    /// replay (refuse it; the entry keeps its first expiry). When the cache
    /// is full the oldest entry is evicted first.
    pub fn insert(&mut self, id: K, now: u64) -> bool {
        self.expire(now);
        if self.seen.contains(&id) {
            return false;
        }
        while self.order.len() >= self.capacity {
            self.pop_front();
        }
        // A clock that steps back must not put an entry before a later
        // one: it then lives a little longer, never shorter.
        let expires = self
            .order
            .back()
            .map_or(0, |(last, _)| *last)
            .max(now.saturating_add(self.window));
        self.seen.insert(id.clone());
        self.order.push_back((expires, id));
        true
    }

    /// Whether `id` was accepted within the window before `now`.
    pub fn contains(&mut self, id: &K, now: u64) -> bool {
        self.expire(now);
        self.seen.contains(id)
    }

    /// Number of identifiers remembered (expired ones may still count until
    /// the next [`insert`](Self::insert) or [`contains`](Self::contains)).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most identifiers the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long an identifier is remembered, in seconds.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Drops the entries that expired before `now`, oldest first.
    fn expire(&mut self, now: u64) {
        while self.order.front().is_some_and(|(expiry, _)| *expiry < now) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, old)) = self.order.pop_front() {
            self.seen.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::hash::Hasher;

    use super::*;

    fn id(n: u32) -> Arc<[u8]> {
        Arc::from(n.to_be_bytes().as_slice())
    }

    #[test]
    fn a_repeat_inside_the_window_is_refused_and_accepted_after_it() {
        let mut cache = ReplayCache::new(600, 100);
        assert!(cache.insert(id(1), 1000));
        assert!(!cache.insert(id(1), 1000));
        assert!(cache.insert(id(2), 1300));
        // The last second of the window still counts.
        assert!(!cache.insert(id(1), 1600));
        assert!(cache.contains(&id(1), 1600));
        // After it, the same MAC is new again (the time check refuses it by
        // then; the cache need not remember).
        assert!(!cache.contains(&id(1), 1601));
        assert!(cache.insert(id(1), 1601));
        assert!(!cache.insert(id(1), 2000));
        // id(2) expired at 1900 and left the cache when time passed.
        assert_eq!(cache.len(), 1);
        assert!(cache.insert(id(2), 2000));
    }

    #[test]
    fn a_refused_repeat_does_not_extend_the_window() {
        let mut cache = ReplayCache::new(10, 100);
        assert!(cache.insert(id(1), 100));
        assert!(!cache.insert(id(1), 105));
        assert!(cache.insert(id(1), 111));
    }

    #[test]
    fn the_capacity_bound_holds_and_the_oldest_is_evicted_when_full() {
        let mut cache = ReplayCache::new(600, 3);
        for n in 0..3 {
            assert!(cache.insert(id(n), 1000 + u64::from(n)));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.insert(id(3), 1010));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.seen.len(), 3);
        // The oldest, id(0), made room; the others are still refused.
        assert!(cache.contains(&id(1), 1010));
        assert!(!cache.insert(id(2), 1010));
        assert!(!cache.insert(id(3), 1010));
        assert!(cache.insert(id(0), 1010));
        assert_eq!(cache.len(), 3);
        // Thousands of inserts never grow it past the bound.
        for n in 100..5000 {
            assert!(cache.insert(id(n), 1020));
            assert!(cache.len() <= 3 && cache.seen.len() <= 3);
        }
        // A capacity of zero is taken as one.
        let mut tiny = ReplayCache::new(600, 0);
        assert!(tiny.insert(id(1), 0));
        assert!(!tiny.insert(id(1), 0));
        assert_eq!(tiny.capacity(), 1);
    }

    #[test]
    fn a_clock_stepping_back_keeps_entries_in_expiry_order() {
        let mut cache = ReplayCache::new(100, 10);
        assert!(cache.insert(id(1), 1000));
        assert!(cache.insert(id(2), 500));
        // id(2) inherits id(1)'s later expiry instead of sitting behind it
        // with an earlier one.
        assert!(!cache.insert(id(2), 1100));
        assert!(cache.insert(id(2), 1101));
        assert!(cache.insert(id(1), 1101));
    }

    thread_local! {
        /// How many equality comparisons `Counted` keys made.
        static COMPARISONS: Cell<usize> = const { Cell::new(0) };
    }

    /// A key that counts the comparisons a lookup makes: a scan compares
    /// the wanted key with every entry, a hash lookup with about one.
    #[derive(Clone, Debug)]
    struct Counted(u64);

    impl PartialEq for Counted {
        fn eq(&self, other: &Self) -> bool {
            COMPARISONS.set(COMPARISONS.get() + 1);
            self.0 == other.0
        }
    }

    impl Eq for Counted {}

    impl Hash for Counted {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    #[test]
    fn lookups_do_not_scan() {
        let mut cache = ReplayCache::new(600, 100_000);
        for n in 0..100_000 {
            assert!(cache.insert(Counted(n), 1000));
        }
        COMPARISONS.set(0);
        // A replay: found with about one comparison.
        assert!(!cache.insert(Counted(42), 1000));
        assert!(cache.contains(&Counted(99_999), 1000));
        // A new MAC in a full cache: looked up, the oldest evicted (one
        // removal, itself a lookup), then inserted.
        assert!(cache.insert(Counted(100_000), 1000));
        assert!(!cache.contains(&Counted(0), 1000));
        assert_eq!(cache.len(), 100_000);
        let comparisons = COMPARISONS.get();
        assert!(
            comparisons <= 16,
            "{comparisons} comparisons for 5 operations on 100,000 entries"
        );
    }
}
