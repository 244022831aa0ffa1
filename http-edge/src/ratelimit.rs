//! Per-IP rate limits (GCRA, via `governor`) on register, login and refresh:
//! the first, in-process line of defence. IPv6 clients are keyed by their /64.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A rate like `10/s,burst=20`, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSpec {
    /// No limit.
    Off,
    /// `count` requests per `per`, with bursts of up to `burst`.
    Limit {
        /// Requests per period.
        count: u32,
        /// The period.
        per: Duration,
        /// Largest burst.
        burst: u32,
    },
}

impl FromStr for RateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        portcullis_engine::config::settings::parse_rate(s).map(RateSpec::from)
    }
}

impl From<Option<portcullis_engine::config::RateLimit>> for RateSpec {
    fn from(limit: Option<portcullis_engine::config::RateLimit>) -> RateSpec {
        match limit {
            None => RateSpec::Off,
            Some(l) => RateSpec::Limit {
                count: l.count,
                per: Duration::from_millis(l.period_ms),
                burst: l.burst,
            },
        }
    }
}

impl RateSpec {
    /// The same limit, enforced across pods by a shared token store.
    pub fn shared(self) -> Option<portcullis_engine::config::RateLimit> {
        match self {
            RateSpec::Off => None,
            RateSpec::Limit { count, per, burst } => Some(portcullis_engine::config::RateLimit {
                count,
                period_ms: portcullis_engine::clock::ms(per),
                burst,
            }),
        }
    }
}

/// The routes with per-IP limits.
#[derive(Debug, Clone, Copy)]
pub enum Limited {
    /// `POST /v1/auth/register`.
    Register,
    /// `POST /v1/auth/login`.
    Login,
    /// `POST /v1/auth/refresh`.
    Refresh,
    /// `POST /v1/password/forgot` (each one may send mail).
    PasswordForgot,
    /// The routes that take a mailed token: verification and email-change
    /// confirmation, password reset.
    TokenConfirm,
    /// The signed-in routes that check or change a credential or send mail:
    /// password and email change, MFA enroll/confirm/disable, verification
    /// requests.
    Credential,
    /// Social login: the redirect to a provider, its callback, the code
    /// and ID-token exchanges, and link tokens (each may call a provider).
    Social,
    /// Introspection and revocation (their own, higher limit: resource
    /// servers call them).
    Introspection,
}

/// Routes under the general limit (all but introspection).
const GENERAL: usize = 7;

/// One limiter per limited route.
pub struct IpLimits {
    limiters: [Option<DefaultKeyedRateLimiter<IpAddr>>; GENERAL + 1],
}

impl std::fmt::Debug for IpLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpLimits")
            .field("enabled", &self.limiters.iter().any(Option::is_some))
            .finish()
    }
}

fn limiter(spec: RateSpec) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    match spec {
        RateSpec::Off => None,
        RateSpec::Limit { count, per, burst } => {
            let period = per / count;
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
            Some(RateLimiter::keyed(quota))
        }
    }
}

impl IpLimits {
    /// Limiters for `spec` on every limited route.
    pub fn new(spec: RateSpec) -> IpLimits {
        IpLimits::with_introspection(spec, spec)
    }

    /// Limiters for `spec`, and for `introspection` on introspection and
    /// revocation.
    pub fn with_introspection(spec: RateSpec, introspection: RateSpec) -> IpLimits {
        IpLimits {
            limiters: std::array::from_fn(|i| {
                if i == Limited::Introspection as usize {
                    limiter(introspection)
                } else {
                    limiter(spec)
                }
            }),
        }
    }

    /// Admits one request from `ip`, or says how many seconds to wait.
    pub fn check(&self, route: Limited, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiters[route as usize] else {
            return Ok(());
        };
        limiter
            .check_key(&portcullis_engine::domain::rate_limit_key(ip))
            .map_err(|not_until| {
                use governor::clock::Clock;
                let wait = not_until.wait_time_from(limiter.clock().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }

    /// Forgets addresses whose limits have fully recovered (bounds memory).
    pub fn sweep(&self) {
        for l in self.limiters.iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("off".parse::<RateSpec>().unwrap(), RateSpec::Off);
        assert_eq!(
            "10/s,burst=20".parse::<RateSpec>().unwrap(),
            RateSpec::Limit {
                count: 10,
                per: Duration::from_secs(1),
                burst: 20
            }
        );
        assert_eq!(
            "600/min".parse::<RateSpec>().unwrap(),
            RateSpec::Limit {
                count: 600,
                per: Duration::from_secs(60),
                burst: 600
            }
        );
        for bad in ["10", "x/s", "10/d", "0/s", "10/s,b=2", "10/s,burst=0"] {
            assert!(bad.parse::<RateSpec>().unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn bursts_then_refuses_per_address_and_route() {
        let limits = IpLimits::new("1/h,burst=3".parse().unwrap());
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(Limited::Login, a).is_ok());
        }
        let wait = limits.check(Limited::Login, a).unwrap_err();
        assert!(wait > 3500 && wait <= 3600, "{wait}");
        assert!(
            limits.check(Limited::Login, b).is_ok(),
            "other addresses are unaffected"
        );
        assert!(
            limits.check(Limited::Register, a).is_ok(),
            "other routes are unaffected"
        );
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(Limited::Refresh, v6a).is_ok());
        }
        assert!(limits.check(Limited::Refresh, v6b).is_err(), "same /64");
    }
}
