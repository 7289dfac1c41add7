//! [`LookupCache`]: remembers for a moment which script names were found beneath the document
//! root, so a busy script costs no file-system lookup per request — the job PHP's
//! `realpath_cache` does for PHP-FPM and `open_file_cache` for nginx.
//!
//! Only positive answers (a regular file or a directory reached beneath the root without a
//! symlink) are kept, for [`TTL`]: a new file is seen at once, a removed one is 404 within
//! `TTL` (PHP then fails to open it and answers 404 itself meanwhile). Whoever can swap a
//! checked file for a symlink during that window can write into the document root, and so
//! could write a script anyway.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a lookup stays valid.
pub const TTL: Duration = Duration::from_secs(2);
/// Most names kept; past this the cache starts over.
const CAPACITY: usize = 4096;

/// Script name → what was found there (`F`: the lookup's answer), with when.
#[derive(Debug)]
pub(crate) struct LookupCache<F> {
    map: Mutex<HashMap<String, (F, Instant)>>,
}

impl<F> Default for LookupCache<F> {
    fn default() -> Self {
        LookupCache { map: Mutex::new(HashMap::new()) }
    }
}

impl<F: Copy> LookupCache<F> {
    /// The cached answer for `name`, if fresh at `now`.
    pub(crate) fn get(&self, name: &str, now: Instant) -> Option<F> {
        let map = self.map.lock();
        map.get(name).filter(|(_, at)| now.saturating_duration_since(*at) < TTL).map(|(found, _)| *found)
    }

    /// Remembers `found` for `name` as of `now` (a miss: at most once per name and [`TTL`]).
    pub(crate) fn put(&self, name: &str, found: F, now: Instant) {
        let mut map = self.map.lock();
        if map.len() >= CAPACITY && !map.contains_key(name) {
            map.clear();
        }
        map.insert(name.to_owned(), (found, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_while_fresh_and_forgets_after_the_ttl() {
        let cache = LookupCache::default();
        let t0 = Instant::now();
        assert_eq!(cache.get("/a.php", t0), None);
        cache.put("/a.php", 'f', t0);
        assert_eq!(cache.get("/a.php", t0 + TTL / 2), Some('f'));
        assert_eq!(cache.get("/a.php", t0 + TTL), None);
        cache.put("/d", 'd', t0 + TTL);
        assert_eq!(cache.get("/d", t0 + TTL), Some('d'));
    }

    #[test]
    fn starts_over_when_full() {
        let cache = LookupCache::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY + 1 {
            cache.put(&format!("/{i}.php"), 'f', t0);
        }
        assert_eq!(cache.get("/0.php", t0), None);
        assert_eq!(cache.get(&format!("/{CAPACITY}.php"), t0), Some('f'));
    }
}
