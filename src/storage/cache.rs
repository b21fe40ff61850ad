//! A short memory of the rows the hot paths read: client records, client
//! lock-outs, each client's standing client-credentials grant, the state of
//! grants that access tokens name, and denylist answers.
//!
//! Why: a token or introspection request that finds everything here is
//! answered without a database round trip and without leaving the HTTP
//! worker thread, which is most of what such a request used to cost
//! (docs/benchmarks.md).
//!
//! The bound: an entry is used for at most `database.cache_ttl_ms` (at most
//! one second, DESIGN.md §4), so a revocation made on another instance or by
//! the CLI is seen within that time. A change made through this instance
//! calls [`Cache::forget_all`], which retires every entry at once. Entries
//! remember the generation that was current when their rows were *read*,
//! so a read that raced a local revocation is never kept. Nothing is read
//! from here once it is older than the bound, so when the database goes
//! away requests fail (503) within that time instead of answering from a
//! memory nobody can refresh (fail closed).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::grants::Grant;
use super::throttles::ThrottleRecord;
use super::{DbConnection, StorageError, clients, grants, throttles};
use crate::domain::{Client, ClientId};

/// Most entries one shelf holds. When a shelf is full, its stale entries
/// go; when none are stale, all of them do (a burst of distinct keys then
/// costs one database read each, as it would without a cache).
const CAPACITY: usize = 100_000;

/// Frees `value` on a short-lived thread of its own: for large maps that
/// would otherwise be freed while a lock every request needs is held. If no
/// thread can be started, it is freed here.
pub fn drop_elsewhere<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("tessera-free".to_owned())
        .spawn(move || drop(value));
}

/// What introspection needs to know about the grant an access token names.
#[derive(Debug, Clone)]
pub struct GrantState {
    pub grant: Grant,
    /// The user's name, for `username` (none for client-credentials grants).
    pub username: Option<String>,
    /// Whether any access token of this grant is on the denylist. When not,
    /// a token of the grant needs no denylist lookup of its own.
    pub has_denylisted_tokens: bool,
}

struct Entry<V> {
    value: V,
    stored_at: Instant,
    generation: u64,
}

/// One kind of cached answer, by key.
pub struct Shelf<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
}

impl<V: Clone + Send + 'static> Shelf<V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str, ttl: Duration, generation: u64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.generation == generation && entry.stored_at.elapsed() < ttl)
            .then(|| entry.value.clone())
    }

    fn put(&self, key: &str, value: V, read_at: Instant, generation: u64, ttl: Duration) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.stored_at.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                drop_elsewhere(std::mem::take(&mut *entries));
            }
        }
        entries.insert(
            key.to_owned(),
            Entry {
                value,
                stored_at: read_at,
                generation,
            },
        );
    }

    fn remove(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// The per-instance memory. One per process, shared by every worker.
pub struct Cache {
    ttl: Duration,
    generation: AtomicU64,
    clients: Shelf<Option<Client>>,
    throttles: Shelf<Option<ThrottleRecord>>,
    standing_grants: Shelf<Option<Grant>>,
    grant_states: Shelf<Option<GrantState>>,
    denylist: Shelf<bool>,
}

impl Cache {
    /// A cache whose entries live `ttl_ms` milliseconds; 0 keeps nothing.
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            ttl: Duration::from_millis(ttl_ms),
            generation: AtomicU64::new(0),
            clients: Shelf::new(),
            throttles: Shelf::new(),
            standing_grants: Shelf::new(),
            grant_states: Shelf::new(),
            denylist: Shelf::new(),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Retires every entry: called after this instance revokes anything or
    /// changes a client, a user or a grant, so its own next answer reads
    /// the new state.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// The way the hot paths read storage: through the cache, and through a
/// connection when there is one. An `Access` without a connection answers
/// from memory only; the first thing it cannot answer fails with
/// [`StorageError::NeedsDatabase`] before anything was written, and the
/// caller runs the same code again on the blocking pool with a connection.
pub struct Access<'a> {
    conn: Option<&'a mut DbConnection>,
    cache: &'a Cache,
    /// The generation when this access began: what it reads is stored
    /// under it, so a read older than a local change is never kept.
    generation: u64,
    began: Instant,
    /// Read every row from the database (and remember it): for requests
    /// that write durably anyway, where a fresh read costs little and makes
    /// an operator's change count at once.
    fresh: bool,
}

impl<'a> Access<'a> {
    /// Memory only: for the HTTP worker thread.
    pub fn memory(cache: &'a Cache) -> Self {
        Self {
            conn: None,
            generation: cache.generation(),
            began: Instant::now(),
            fresh: false,
            cache,
        }
    }

    /// Memory first, then `conn`: for the blocking pool.
    pub fn database(conn: &'a mut DbConnection, cache: &'a Cache) -> Self {
        Self {
            conn: Some(conn),
            generation: cache.generation(),
            began: Instant::now(),
            fresh: false,
            cache,
        }
    }

    /// `conn` for every read (what is read is still remembered): for the
    /// requests that write durably (code exchange, refresh, revocation).
    pub fn fresh(conn: &'a mut DbConnection, cache: &'a Cache) -> Self {
        Self {
            fresh: true,
            ..Self::database(conn, cache)
        }
    }

    /// The connection, or `NeedsDatabase` when answering from memory.
    pub fn db(&mut self) -> Result<&mut DbConnection, StorageError> {
        self.conn.as_deref_mut().ok_or(StorageError::NeedsDatabase)
    }

    /// The connection, if there is one.
    pub fn connection(&mut self) -> Option<&mut DbConnection> {
        self.conn.as_deref_mut()
    }

    /// Retires every cached entry (after a change this access made).
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }

    fn through<V: Clone + Send + 'static>(
        &mut self,
        shelf: fn(&Cache) -> &Shelf<V>,
        key: &str,
        load: impl FnOnce(&mut DbConnection) -> Result<V, StorageError>,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<V, StorageError> {
        let cache = self.cache;
        if !cache.ttl.is_zero()
            && !self.fresh
            && let Some(value) = shelf(cache).get(key, cache.ttl, cache.generation())
        {
            return Ok(value);
        }
        let value = load(self.db()?)?;
        if !cache.ttl.is_zero() && keep(&value) {
            // Stamped with when this access began: the entry never outlives
            // the bound counted from before the read.
            shelf(cache).put(key, value.clone(), self.began, self.generation, cache.ttl);
        }
        Ok(value)
    }

    /// A client by id (enabled or not). Unknown ids are not remembered, so
    /// a client registered on another instance works here at once.
    pub fn client(&mut self, id: &ClientId) -> Result<Option<Client>, StorageError> {
        self.through(
            |c| &c.clients,
            id.as_str(),
            |conn| clients::find(conn, id),
            Option::is_some,
        )
    }

    /// The failure counter under `key` (client lock-outs).
    pub fn throttle(&mut self, key: &str) -> Result<Option<ThrottleRecord>, StorageError> {
        self.through(
            |c| &c.throttles,
            key,
            |conn| throttles::find(conn, key),
            |_| true,
        )
    }

    /// Counts a failure under `key` in the database and forgets the cached
    /// counter, so this instance's next check sees it.
    pub fn record_failure(
        &mut self,
        key: &str,
        now: crate::domain::UnixTime,
        window_start: crate::domain::UnixTime,
    ) -> Result<(), StorageError> {
        throttles::record_failure(self.db()?, key, now, window_start)?;
        self.cache.throttles.remove(key);
        Ok(())
    }

    /// The client's active client-credentials grant, if it has one (none
    /// is not remembered: the caller creates one).
    pub fn standing_grant(&mut self, client_id: &ClientId) -> Result<Option<Grant>, StorageError> {
        self.through(
            |c| &c.standing_grants,
            client_id.as_str(),
            |conn| grants::find_active_for(conn, None, client_id),
            Option::is_some,
        )
    }

    /// The state of grant `id` as `load` reads it (`None`: not live).
    pub fn grant_state(
        &mut self,
        id: &str,
        load: impl FnOnce(&mut DbConnection) -> Result<Option<GrantState>, StorageError>,
    ) -> Result<Option<GrantState>, StorageError> {
        self.through(|c| &c.grant_states, id, load, |_| true)
    }

    /// Whether the access token `jti` is on the denylist.
    pub fn is_denylisted(&mut self, jti: &str) -> Result<bool, StorageError> {
        self.through(
            |c| &c.denylist,
            jti,
            |conn| super::revoked_tokens::is_revoked(conn, jti),
            |_| true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_until_the_bound_and_not_after() {
        let shelf = Shelf::new();
        let ttl = Duration::from_millis(40);
        shelf.put("k", 1, Instant::now(), 0, ttl);
        assert_eq!(shelf.get("k", ttl, 0), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(shelf.get("k", ttl, 0), None);
    }

    #[test]
    fn forgetting_retires_every_entry_and_every_read_that_began_before_it() {
        let cache = Cache::new(1000);
        let before = Access::memory(&cache);
        cache.forget_all();
        // A read that began before the change is stored under the old
        // generation, so it is never served.
        cache
            .denylist
            .put("jti", false, before.began, before.generation, cache.ttl);
        assert_eq!(
            cache.denylist.get("jti", cache.ttl, cache.generation()),
            None
        );
        let after = Access::memory(&cache);
        cache
            .denylist
            .put("jti", false, after.began, after.generation, cache.ttl);
        assert_eq!(
            cache.denylist.get("jti", cache.ttl, cache.generation()),
            Some(false)
        );
        cache.forget_all();
        assert_eq!(
            cache.denylist.get("jti", cache.ttl, cache.generation()),
            None
        );
    }

    #[test]
    fn memory_only_access_asks_for_the_database_on_a_miss() {
        let cache = Cache::new(1000);
        let mut access = Access::memory(&cache);
        assert!(matches!(
            access.is_denylisted("never-seen"),
            Err(StorageError::NeedsDatabase)
        ));
    }

    #[test]
    fn a_zero_bound_keeps_nothing() {
        let cache = Cache::new(0);
        let access = Access::memory(&cache);
        cache
            .denylist
            .put("jti", true, access.began, access.generation, cache.ttl);
        assert_eq!(
            cache.denylist.get("jti", cache.ttl, cache.generation()),
            None
        );
    }

    #[test]
    fn a_full_shelf_makes_room() {
        let shelf = Shelf::new();
        let ttl = Duration::from_secs(60);
        for i in 0..CAPACITY {
            shelf.put(&i.to_string(), i, Instant::now(), 0, ttl);
        }
        shelf.put("one more", 0, Instant::now(), 0, ttl);
        assert!(shelf.len() <= CAPACITY);
        assert_eq!(shelf.get("one more", ttl, 0), Some(0));
    }
}
