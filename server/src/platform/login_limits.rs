//! Failed sign-ins counted per account and per address over a sliding window, so a password
//! cannot be guessed at speed. An account or address past its limit is refused before its
//! password is checked, until its oldest failure in the window ages out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// An address may fail this many times the account limit: a few users behind one NAT.
const ADDRESS_FACTOR: usize = 4;
/// Keys kept before idle ones are dropped, so a spray of names cannot grow the map unbounded.
const MAX_KEYS: usize = 50_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

pub struct LoginLimits {
    per_account: usize,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginLimits {
    pub fn new(per_account: usize) -> LoginLimits {
        LoginLimits { per_account, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(org: &str, username: &str, from: Option<IpAddr>) -> Vec<(Key, usize)> {
        let mut keys = vec![(Key::Account(format!("{org}/{username}")), 1)];
        keys.extend(from.map(|a| (Key::Address(a), ADDRESS_FACTOR)));
        keys
    }

    /// `Err(seconds to wait)` when the account or the address has failed too often.
    pub fn check(&self, org: &str, username: &str, from: Option<IpAddr>) -> Result<(), u64> {
        if self.per_account == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap();
        let mut wait = Duration::ZERO;
        for (key, factor) in Self::keys(org, username, from) {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < WINDOW);
                if times.len() >= self.per_account * factor {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max(WINDOW.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.as_secs().max(1))
        }
    }

    pub fn failed(&self, org: &str, username: &str, from: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for (key, _) in Self::keys(org, username, from) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    /// A right password clears the account's failures (not the address's).
    pub fn succeeded(&self, org: &str, username: &str) {
        self.failures.lock().unwrap().remove(&Key::Account(format!("{org}/{username}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_after_its_limit_and_cleared_by_success() {
        let limits = LoginLimits::new(3);
        let from = Some("127.0.0.9".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limits.check("acme", "dev", from), Ok(()));
            limits.failed("acme", "dev", from);
        }
        let wait = limits.check("acme", "dev", from).unwrap_err();
        assert!(wait > 14 * 60 && wait <= 15 * 60, "{wait}");
        // Another account from another address is not held.
        assert_eq!(limits.check("acme", "ops", Some("127.0.0.10".parse().unwrap())), Ok(()));
        limits.succeeded("acme", "dev");
        assert_eq!(limits.check("acme", "dev", from), Ok(()));
    }

    #[test]
    fn an_address_trying_many_accounts_is_held() {
        let limits = LoginLimits::new(2);
        let from = Some("127.0.0.9".parse().unwrap());
        for i in 0..(2 * ADDRESS_FACTOR) {
            assert_eq!(limits.check("acme", &format!("user{i}"), from), Ok(()));
            limits.failed("acme", &format!("user{i}"), from);
        }
        assert!(limits.check("acme", "someone-new", from).is_err());
        assert_eq!(limits.check("acme", "someone-new", Some("127.0.0.10".parse().unwrap())), Ok(()));
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limits = LoginLimits::new(0);
        for _ in 0..10 {
            limits.failed("acme", "dev", None);
        }
        assert_eq!(limits.check("acme", "dev", None), Ok(()));
    }
}
