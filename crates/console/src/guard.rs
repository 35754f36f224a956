//! Bounds guessing at the sign-in form: after `MAX_FAILURES` failed sign-ins of one name (an access key id or an
//! operator) within `WINDOW_MS`, that name's sign-ins are refused until the window ends, without checking the
//! secret (so a guess then learns nothing, and costs no password hash). Memory is bounded: at `CAPACITY` names
//! tracked, names whose window has ended are forgotten, and if none has, a name not yet tracked is refused too.
//! Per process: each replica counts its own.

use std::collections::HashMap;
use std::sync::Mutex;

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_MS: i64 = 60_000;
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct SignInGuard {
    failures: Mutex<HashMap<String, Failures>>,
}

struct Failures {
    count: u32,
    since_ms: i64,
}

impl SignInGuard {
    /// `Err(seconds)` when `name` may not try again yet.
    pub fn check(&self, name: &str, now_ms: i64) -> Result<(), i64> {
        let Ok(mut map) = self.failures.lock() else { return Err(WINDOW_MS / 1000) };
        let wait = |f: &Failures| (f.since_ms + WINDOW_MS - now_ms).max(1000) / 1000;
        match map.get(name) {
            Some(f) if now_ms - f.since_ms >= WINDOW_MS => {
                map.remove(name);
                Ok(())
            }
            Some(f) if f.count >= MAX_FAILURES => Err(wait(f)),
            Some(_) => Ok(()),
            None if map.len() < CAPACITY => Ok(()),
            None => {
                map.retain(|_, f| now_ms - f.since_ms < WINDOW_MS);
                match map.values().map(|f| f.since_ms).min() {
                    Some(oldest) if map.len() >= CAPACITY => Err(((oldest + WINDOW_MS - now_ms).max(1000)) / 1000),
                    _ => Ok(()),
                }
            }
        }
    }

    pub fn failed(&self, name: &str, now_ms: i64) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() >= CAPACITY && !map.contains_key(name) {
                return;
            }
            let f = map.entry(name.to_string()).or_insert(Failures { count: 0, since_ms: now_ms });
            f.count += 1;
        }
    }

    pub fn succeeded(&self, name: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(name);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_refused_after_its_failures_until_the_window_ends() {
        let g = SignInGuard::default();
        for _ in 0..MAX_FAILURES {
            assert_eq!(g.check("key:a", 0), Ok(()));
            g.failed("key:a", 0);
        }
        assert_eq!(g.check("key:a", 1_000), Err(59));
        assert_eq!(g.check("key:b", 1_000), Ok(()), "other names are not held back");
        assert_eq!(g.check("key:a", WINDOW_MS), Ok(()), "the window ended");
        g.failed("key:b", 0);
        g.succeeded("key:b");
        for _ in 0..MAX_FAILURES - 1 {
            g.failed("key:b", 0);
        }
        assert_eq!(g.check("key:b", 0), Ok(()), "a success starts the count again");
    }

    #[test]
    fn memory_is_bounded_and_a_full_table_refuses_new_names() {
        let g = SignInGuard::default();
        for i in 0..CAPACITY {
            g.failed(&format!("key:{i}"), 0);
        }
        g.failed("key:late", 0);
        assert_eq!(g.failures.lock().unwrap().len(), CAPACITY);
        assert_eq!(g.check("key:new", 10_000), Err(50), "a full table of live windows refuses a new name");
        assert_eq!(g.check("key:1", 10_000), Ok(()), "a tracked name below its limit goes on");
        assert_eq!(g.check("key:new", WINDOW_MS), Ok(()), "ended windows are forgotten");
        assert!(g.failures.lock().unwrap().len() < CAPACITY);
    }
}
