//! Who may take a place: connections counted per address and per user (each held by a guard
//! that gives the place back when the session ends), and token buckets for message rates, one
//! per connection and one per user shared by all its connections.
//!
//! Must not: know rooms, documents or sockets.

use compact_str::CompactString;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A token bucket: `rate` per second, up to `burst`.
pub(crate) struct RateLimit {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl RateLimit {
    /// A full bucket.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        RateLimit { tokens: f64::from(burst), rate: f64::from(rate), burst: f64::from(burst), last: Instant::now() }
    }

    /// Takes a token if there is one.
    pub(crate) fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

type Counts<K> = Arc<Mutex<HashMap<K, usize>>>;

/// Connections per address and per user, and the users' shared rate buckets. A std mutex each:
/// held only to count, never across an await.
#[derive(Default)]
pub(crate) struct Admission {
    addresses: Counts<IpAddr>,
    users: Counts<CompactString>,
    rates: Arc<Mutex<HashMap<CompactString, Arc<Mutex<RateLimit>>>>>,
}

/// A place taken; given back when dropped.
pub(crate) struct Place<K: std::hash::Hash + Eq + Clone> {
    counts: Counts<K>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Place<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(&self.key) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                counts.remove(&self.key);
            }
            None => debug_assert!(false, "invariant: a place is counted until it is given back"),
        }
    }
}

fn take<K: std::hash::Hash + Eq + Clone>(counts: &Counts<K>, key: K, max: usize) -> Option<Place<K>> {
    let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
    let n = map.entry(key.clone()).or_insert(0);
    if *n >= max {
        if *n == 0 {
            map.remove(&key);
        }
        return None;
    }
    *n += 1;
    Some(Place { counts: counts.clone(), key })
}

impl Admission {
    /// A place for one more connection from `address`, if it has fewer than `max`.
    pub(crate) fn address(&self, address: IpAddr, max: usize) -> Option<Place<IpAddr>> {
        take(&self.addresses, address, max)
    }

    /// A place for one more connection of `user`, if it has fewer than `max`.
    pub(crate) fn user(&self, user: &str, max: usize) -> Option<Place<CompactString>> {
        take(&self.users, CompactString::from(user), max)
    }

    /// The rate bucket `user`'s connections share (made full the first time). Buckets of users
    /// with no connection left are dropped when another user's is made.
    pub(crate) fn user_rate(&self, user: &str, rate: u32, burst: u32) -> Arc<Mutex<RateLimit>> {
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = rates.get(user) {
            return bucket.clone();
        }
        // Only buckets still shared by a session survive: the map stays bounded by the users
        // connected now.
        rates.retain(|_, b| Arc::strong_count(b) > 1);
        let bucket = Arc::new(Mutex::new(RateLimit::new(rate, burst)));
        rates.insert(CompactString::from(user), bucket.clone());
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_and_given_back() {
        let a = Admission::default();
        let ip: IpAddr = "127.0.0.2".parse().expect("ip");
        let first = a.address(ip, 2).expect("1");
        let second = a.address(ip, 2).expect("2");
        assert!(a.address(ip, 2).is_none());
        assert!(a.address("127.0.0.3".parse().expect("ip"), 2).is_some(), "another address has its own places");
        drop(first);
        let third = a.address(ip, 2).expect("a place given back is taken again");
        drop((second, third));
        assert!(a.addresses.lock().expect("lock").is_empty(), "nothing left counted");
        let u = a.user("alice", 1).expect("alice");
        assert!(a.user("alice", 1).is_none());
        drop(u);
        assert!(a.users.lock().expect("lock").is_empty());
    }

    #[test]
    fn a_user_shares_one_bucket_across_connections() {
        let a = Admission::default();
        let one = a.user_rate("alice", 1, 2);
        let two = a.user_rate("alice", 1, 2);
        assert!(one.lock().expect("lock").allow());
        assert!(two.lock().expect("lock").allow());
        assert!(!one.lock().expect("lock").allow(), "the burst of 2 is shared");
        drop((one, two));
        let _bob = a.user_rate("bob", 1, 2);
        assert_eq!(a.rates.lock().expect("lock").len(), 1, "alice's unused bucket was dropped");
    }
}
