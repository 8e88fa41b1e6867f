//! Limits kept per client address: whose page may open a socket, how many sockets one address
//! may hold and how fast it may open new ones, and how many wrong guesses (join codes,
//! facilitator links) it may make before it has to wait.
//!
//! Counting is per address because that is all the server knows of a client without accounts.
//! A hall's Wi-Fi is often one address for everybody, so the defaults leave room for a whole
//! event on one address; an attacker gets no more than that event would.

use axum::http::{HeaderMap, header};
use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The guard's settings (from the server's configuration).
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Open WebSocket connections allowed from one address.
    pub max_per_ip: usize,
    /// New WebSocket connections one address may open per second, and the burst above that.
    pub connects_per_second: u32,
    pub connects_burst: u32,
    /// Wrong join codes or facilitator secrets one address may send per minute (also the
    /// burst); past that it waits, right or wrong.
    pub wrong_guesses_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins besides the server's own whose pages may open sockets.
    pub allowed_origins: Vec<String>,
}

/// Why a socket was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds as many sockets as it may.
    TooMany,
    /// The address opened too many sockets just now.
    TooFast,
}

impl Refusal {
    /// What the person is told (with HTTP 429).
    pub fn message(self) -> &'static str {
        match self {
            Refusal::TooMany => {
                "Too many connections from your network. Close some tabs and try again."
            }
            Refusal::TooFast => {
                "Too many new connections from your network just now. Try again in a few seconds."
            }
        }
    }
}

/// Decides, by client address, who may open a socket and who may keep guessing. Cheap to
/// clone: every copy shares the same counts.
#[derive(Clone)]
pub struct Guard {
    per_ip: Arc<DashMap<IpAddr, usize>>,
    max_per_ip: usize,
    connects: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Wrong guesses per address in its current minute. A plain count, checked before the
    /// request is answered: a token bucket cannot be looked at without taking a token.
    wrong_guesses: Arc<DashMap<IpAddr, GuessWindow>>,
    wrong_guesses_per_minute: u32,
    trusted_proxies: Arc<Vec<IpAddr>>,
    allowed_origins: Arc<Vec<String>>,
}

/// One address's wrong guesses since `start`.
#[derive(Debug, Clone, Copy)]
struct GuessWindow {
    start: Instant,
    wrong: u32,
}

/// How long an address's count of wrong guesses lasts.
const GUESS_WINDOW: Duration = Duration::from_secs(60);

/// The key addresses are counted by: an IPv6 client can choose among the 2^64 addresses of its
/// network, so it is counted as that network.
pub(crate) fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Guard {
    pub fn new(config: GuardConfig) -> Self {
        let connects = Quota::per_second(at_least_one(config.connects_per_second))
            .allow_burst(at_least_one(config.connects_burst));
        Self {
            per_ip: Arc::new(DashMap::new()),
            max_per_ip: config.max_per_ip.max(1),
            connects: Arc::new(RateLimiter::keyed(connects)),
            wrong_guesses: Arc::new(DashMap::new()),
            wrong_guesses_per_minute: config.wrong_guesses_per_minute.max(1),
            trusted_proxies: Arc::new(config.trusted_proxies),
            allowed_origins: Arc::new(
                config
                    .allowed_origins
                    .into_iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    /// Browsers always send `Origin` on a WebSocket upgrade; a foreign page's socket is refused.
    /// Tools that send no `Origin` (not browsers, so they cannot ride a visitor's session) are
    /// let through.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        let own = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| host.to_ascii_lowercase())
            .is_some_and(|host| {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            });
        own || self.allowed_origins.contains(&origin)
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    /// last address that proxy appended to `X-Forwarded-For`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok())
            .unwrap_or(peer)
    }

    /// Takes a connection slot for this address, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<IpSlot, Refusal> {
        let ip = counted_as(ip);
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Refusal::TooMany);
        }
        // Each new socket costs a welcome with the whole board: a crowd of them at once from
        // one address would crowd out everyone else's changes.
        if self.connects.check_key(&ip).is_err() {
            return Err(Refusal::TooFast);
        }
        *count += 1;
        Ok(IpSlot {
            ip,
            per_ip: self.per_ip.clone(),
        })
    }

    /// `Err(wait)` while this address has used up its wrong guesses for the minute: it is not
    /// told whether its next guess is right until then.
    pub fn may_guess(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(w) = self.wrong_guesses.get(&counted_as(ip)).map(|w| *w) else {
            return Ok(());
        };
        let left = GUESS_WINDOW.saturating_sub(w.start.elapsed());
        if w.wrong >= self.wrong_guesses_per_minute && !left.is_zero() {
            Err(left)
        } else {
            Ok(())
        }
    }

    /// Counts a wrong join code or facilitator secret against this address.
    pub fn wrong_guess(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut w = self
            .wrong_guesses
            .entry(counted_as(ip))
            .or_insert(GuessWindow {
                start: now,
                wrong: 0,
            });
        if now.duration_since(w.start) >= GUESS_WINDOW {
            *w = GuessWindow {
                start: now,
                wrong: 0,
            };
        }
        w.wrong = w.wrong.saturating_add(1);
    }

    /// Forgets addresses whose buckets are full again and whose minute is over, so the maps
    /// hold only recent clients.
    pub fn forget_idle(&self) {
        self.connects.retain_recent();
        self.connects.shrink_to_fit();
        self.wrong_guesses
            .retain(|_, w| w.start.elapsed() < GUESS_WINDOW);
    }
}

/// One open connection counted against its address; released on drop.
pub struct IpSlot {
    ip: IpAddr,
    per_ip: Arc<DashMap<IpAddr, usize>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(mut count) = self.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
        }
        self.per_ip.remove_if(&self.ip, |_, c| *c == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(wrong_per_minute: u32) -> Guard {
        Guard::new(GuardConfig {
            max_per_ip: 2,
            connects_per_second: 1,
            connects_burst: 100,
            wrong_guesses_per_minute: wrong_per_minute,
            trusted_proxies: vec![],
            allowed_origins: vec![],
        })
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let g = guard(2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _one = g.admit(a).unwrap();
        let _two = g.admit(b).unwrap();
        assert_eq!(g.admit(a).err(), Some(Refusal::TooMany));
        assert!(g.admit(elsewhere).is_ok());
        g.wrong_guess(a);
        g.wrong_guess(b);
        assert!(g.may_guess(a).is_err());
        assert!(g.may_guess(elsewhere).is_ok());
        // An IPv4 client seen through an IPv6 socket is the IPv4 address.
        let mapped: IpAddr = "::ffff:192.0.2.5".parse().unwrap();
        assert_eq!(counted_as(mapped), "192.0.2.5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_wait_is_at_most_a_minute_and_ends_with_it() {
        let g = guard(1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(g.may_guess(ip).is_ok());
        g.wrong_guess(ip);
        let wait = g.may_guess(ip).unwrap_err();
        assert!(wait <= GUESS_WINDOW && wait > GUESS_WINDOW / 2, "{wait:?}");
        // The same count, as if the minute were over: the address may guess again.
        g.wrong_guesses.insert(
            ip,
            GuessWindow {
                start: Instant::now() - GUESS_WINDOW,
                wrong: 1,
            },
        );
        assert!(g.may_guess(ip).is_ok());
        g.forget_idle();
        assert!(g.wrong_guesses.is_empty());
    }
}
