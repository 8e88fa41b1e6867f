//! Pacing of new TCP connections per client address, before any of their HTTP is read.
//!
//! Refusing a socket costs the server an HTTP exchange, and hundreds of them opened at once from
//! one address were all handled at once: in the benchmark, a burst of 500 (400 of them refused
//! with 429) delayed everyone else's changes by tens of milliseconds, although its total cost
//! was under a tenth of a second of CPU. So each address may have a burst of connections
//! handled at once and then a steady number a second; the rest wait their turn, each with its
//! own start time (no thundering herd of waiters), and past a number waiting they are refused
//! at once. A hall's sockets reconnecting together fit in the burst (100 by default); a hall
//! loading its pages at the same moment waits a second or so for some of them.
//!
//! Like HAProxy's `rate-limit sessions`, but per address. (governor, used for the other limits,
//! answers "now or not": it has no way to hand out turns in the future.) The schedule is the
//! generic cell rate algorithm in its queueing form: `next` is when the address's next
//! connection would be due if it were paced evenly, and a connection may start up to
//! `burst - 1` intervals ahead of that.
//!
//! Connections from a trusted proxy are never paced: they are many clients, and the proxy
//! should pace them itself.

use crate::guard::counted_as;
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pacing settings (from the server's configuration).
#[derive(Debug, Clone)]
pub struct PacingConfig {
    /// Connections one address may have handled per second after its burst.
    pub per_second: f64,
    /// Connections one address may have handled at once.
    pub burst: u32,
    /// Connections from one address that may wait their turn; more are refused at once.
    pub max_waiting: usize,
    /// Proxies whose connections are not paced.
    pub trusted_proxies: Vec<IpAddr>,
}

/// When a new connection is handled.
#[derive(Debug)]
pub enum Turn {
    Now,
    /// At this instant; the connection counts as waiting until this is dropped.
    Later(Waiting),
    /// Too many from this address are waiting already: answer 429 and close.
    Refuse,
}

/// Hands out turns to new connections, per address. Cheap to clone: copies share the counts.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    /// How far ahead of its even pace an address may be: `burst - 1` intervals.
    tolerance: Duration,
    max_waiting: usize,
    trusted_proxies: Arc<Vec<IpAddr>>,
    per_ip: Arc<DashMap<IpAddr, Pace>>,
}

#[derive(Debug)]
struct Pace {
    /// When this address's next connection is due at the even pace.
    next: Instant,
    /// Its connections waiting for their turn.
    waiting: usize,
}

impl Pacer {
    pub fn new(config: PacingConfig) -> Self {
        // At least one a thousand seconds; a rate of zero or less would never serve anyone.
        let per_second = if config.per_second.is_finite() {
            config.per_second.max(0.001)
        } else {
            1e9
        };
        let interval = Duration::from_secs_f64(1.0 / per_second);
        Self {
            interval,
            tolerance: interval.saturating_mul(config.burst.max(1) - 1),
            max_waiting: config.max_waiting,
            trusted_proxies: Arc::new(config.trusted_proxies),
            per_ip: Arc::new(DashMap::new()),
        }
    }

    /// The turn of a connection just accepted from `peer`.
    pub fn turn(&self, peer: IpAddr) -> Turn {
        if self.trusted_proxies.contains(&peer) {
            return Turn::Now;
        }
        let ip = counted_as(peer);
        let now = Instant::now();
        let mut pace = self.per_ip.entry(ip).or_insert(Pace {
            next: now,
            waiting: 0,
        });
        let due = pace.next.max(now);
        // How far past its burst the address is (durations, not instants: an instant hours
        // before now may not exist on a machine that started less than that ago).
        let wait = (due - now).saturating_sub(self.tolerance);
        if !wait.is_zero() && pace.waiting >= self.max_waiting {
            return Turn::Refuse;
        }
        pace.next = due + self.interval;
        if wait.is_zero() {
            return Turn::Now;
        }
        pace.waiting += 1;
        Turn::Later(Waiting {
            at: now + wait,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }

    /// Forgets addresses that are back to their full burst and have nobody waiting.
    pub fn forget_idle(&self) {
        self.forget_idle_at(Instant::now());
    }

    fn forget_idle_at(&self, now: Instant) {
        self.per_ip.retain(|_, p| p.waiting > 0 || p.next > now);
    }
}

/// A connection waiting for its turn; counted against its address until dropped.
#[derive(Debug)]
pub struct Waiting {
    at: Instant,
    ip: IpAddr,
    per_ip: Arc<DashMap<IpAddr, Pace>>,
}

impl Waiting {
    /// When the connection's turn comes.
    pub fn at(&self) -> Instant {
        self.at
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut pace) = self.per_ip.get_mut(&self.ip) {
            pace.waiting = pace.waiting.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(per_second: f64, burst: u32, max_waiting: usize) -> Pacer {
        Pacer::new(PacingConfig {
            per_second,
            burst,
            max_waiting,
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_goes_at_once_then_each_waits_one_interval_more_then_the_rest_are_refused() {
        let p = pacer(10.0, 3, 2);
        let hall = ip("203.0.113.7");
        for _ in 0..3 {
            assert!(matches!(p.turn(hall), Turn::Now));
        }
        let start = Instant::now();
        let Turn::Later(fourth) = p.turn(hall) else {
            panic!("the fourth waits")
        };
        let Turn::Later(fifth) = p.turn(hall) else {
            panic!("the fifth waits")
        };
        // Evenly spaced, a tenth of a second apart, the first of them within one interval.
        assert!(fourth.at() > start && fourth.at() <= start + Duration::from_millis(100));
        assert_eq!(fifth.at() - fourth.at(), Duration::from_millis(100));
        // Two are waiting: the next is refused, and is not counted.
        assert!(matches!(p.turn(hall), Turn::Refuse));
        // Another address is not held back, nor is a trusted proxy.
        assert!(matches!(p.turn(ip("198.51.100.2")), Turn::Now));
        for _ in 0..10 {
            assert!(matches!(p.turn(ip("10.0.0.1")), Turn::Now));
        }
        // One that stops waiting (its client left, or it was served) makes room for another.
        drop(fourth);
        let Turn::Later(sixth) = p.turn(hall) else {
            panic!("the sixth waits")
        };
        assert!(sixth.at() > fifth.at());
    }

    #[test]
    fn an_ipv6_network_is_paced_as_one_address_and_idle_addresses_are_forgotten() {
        let p = pacer(1000.0, 1, 10);
        assert!(matches!(p.turn(ip("2001:db8::1")), Turn::Now));
        let Turn::Later(w) = p.turn(ip("2001:db8::2")) else {
            panic!("the same /64 waits")
        };
        assert!(p.per_ip.len() == 1);
        // Not while one waits, nor while the burst is not back; then it is.
        p.forget_idle();
        assert_eq!(p.per_ip.len(), 1);
        drop(w);
        p.forget_idle_at(Instant::now() + Duration::from_secs(1));
        assert!(p.per_ip.is_empty());
    }
}
