//! Request limits: a sliding window of recent requests per (bucket, client), the client being
//! an IP address or an API token. Kept in memory, so each `edl` process counts on its own (see
//! docs/SECURITY.md).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// Who a limit counts: a client address, or an API token by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    Ip(IpAddr),
    Token(i64),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Self {
        Client::Ip(ip)
    }
}

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(&'static str, Client), VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Counts a request; `Ok(remaining)` with the requests left in the window, or
    /// `Err(wait)` when it is over the limit, with how long until the next would be allowed.
    pub fn check(
        &self,
        bucket: &'static str,
        client: impl Into<Client>,
        limit: RateLimit,
        now: Instant,
    ) -> Result<u32, Duration> {
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock only means a panic elsewhere; failing open keeps the site up.
            return Ok(limit.count);
        };
        if windows.len() > 50_000 {
            windows.retain(|_, w| w.back().is_some_and(|t| now.duration_since(*t) < limit.per));
        }
        let window = windows.entry((bucket, client.into())).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.per)
        {
            window.pop_front();
        }
        if window.len() >= limit.count as usize {
            let oldest = window.front().copied().unwrap_or(now);
            return Err(limit.per.saturating_sub(now.duration_since(oldest)));
        }
        window.push_back(now);
        Ok(limit.count.saturating_sub(window.len() as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_count_then_refuses_until_the_window_moves() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            count: 3,
            per: Duration::from_secs(60),
        };
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        let t0 = Instant::now();
        for (i, left) in [(0, 2), (1, 1), (2, 0)] {
            assert_eq!(
                limiter.check("login", ip, limit, t0 + Duration::from_secs(i)),
                Ok(left)
            );
        }
        let wait = limiter
            .check("login", ip, limit, t0 + Duration::from_secs(10))
            .expect_err("limited");
        assert_eq!(wait, Duration::from_secs(50));
        // Other addresses and other buckets are counted apart.
        assert!(limiter
            .check("login", other, limit, t0 + Duration::from_secs(10))
            .is_ok());
        assert!(limiter
            .check("apply", ip, limit, t0 + Duration::from_secs(10))
            .is_ok());
        // A token is counted apart from every address.
        assert_eq!(
            limiter.check(
                "login",
                Client::Token(7),
                limit,
                t0 + Duration::from_secs(10)
            ),
            Ok(2)
        );
        // Once the first request leaves the window, one more is allowed.
        assert!(limiter
            .check("login", ip, limit, t0 + Duration::from_secs(60))
            .is_ok());
    }
}
