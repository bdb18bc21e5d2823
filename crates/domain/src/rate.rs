//! Rate limiting as the domain sees it: what a request is counted against, and the GCRA
//! arithmetic that turns a bucket's theoretical arrival time into what the `RateLimit`
//! headers and `GET /api/me/limits` say. The decision itself is the store's (one locked row,
//! exact across instances); this is pure and unit-tested.

use std::net::IpAddr;

use skein_shared::limits::{ClassBudget, RateRule, RouteClass};
use skein_shared::{ApiKeyId, ConversationId, MessageId, UserId, WorkspaceId};
use time::{Duration, OffsetDateTime};

/// Whose budget a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spender {
    /// A person, or an API key (its service user).
    Caller { user: UserId, api_key: Option<ApiKeyId> },
    /// An unauthenticated request (`auth`), by client address.
    Address(IpAddr),
}

/// What the request is about, when it names it: a workspace's profile applies to requests
/// about its conversations and messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Place {
    #[default]
    Nowhere,
    Workspace(WorkspaceId),
    Conversation(ConversationId),
    Message(MessageId),
}

/// One request to count.
#[derive(Clone, Copy, Debug)]
pub struct RateRequest {
    pub class: RouteClass,
    pub spender: Spender,
    pub place: Place,
}

impl RateRequest {
    /// Who spends, as the store keys buckets (with the class and the profile that applies):
    /// `u:<user>`, or `ip:<address>`. IPv6 addresses count per /64, what one client usually
    /// holds.
    pub fn spender_key(&self) -> String {
        match self.spender {
            Spender::Caller { user, .. } => format!("u:{user}"),
            Spender::Address(IpAddr::V4(v4)) => format!("ip:{v4}"),
            Spender::Address(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => format!("ip:{v4}"),
                None => {
                    let s = v6.segments();
                    format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// The store's answer for a limited class: the rule that applied and the bucket's time.
#[derive(Clone, Debug)]
pub struct Taken {
    pub profile: String,
    pub rule: RateRule,
    pub allowed: bool,
    /// After this request when allowed; as it stands when refused.
    pub tat: OffsetDateTime,
}

/// A limited request's standing, for the headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateStatus {
    pub profile: String,
    pub rule: RateRule,
    pub remaining: u32,
    /// Seconds until the budget is full.
    pub reset_secs: u64,
    /// Present when refused: seconds until one request would pass.
    pub retry_after_secs: Option<u64>,
}

impl RateStatus {
    pub fn of(taken: Taken, now: OffsetDateTime) -> Self {
        let rule = taken.rule;
        let retry_after_secs = (!taken.allowed).then(|| {
            let passes_at = taken.tat + interval(rule) - window(rule);
            ceil_secs(passes_at - now).max(1)
        });
        Self {
            remaining: remaining(rule, taken.tat, now),
            reset_secs: ceil_secs(taken.tat - now),
            retry_after_secs,
            profile: taken.profile,
            rule,
        }
    }
}

/// Where a bucket stands: its theoretical arrival time and the emission interval (seconds
/// per request) it was counted with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub tat: OffsetDateTime,
    pub interval_secs: f64,
}

/// A class's budget at `now` for a bucket (`None`: never used, or used long enough ago to be
/// full). A bucket counted under another rule keeps its number of requests used, as the
/// store's `skein_rate_take` counts it.
pub fn budget(rule: RateRule, bucket: Option<Bucket>, now: OffsetDateTime) -> ClassBudget {
    let tat = match bucket {
        None => now,
        Some(b) => {
            let ahead = (b.tat - now).max(Duration::ZERO);
            let now_interval = interval(rule).as_seconds_f64();
            if b.interval_secs > 0.0 && (b.interval_secs - now_interval).abs() > f64::EPSILON {
                now + ahead * (now_interval / b.interval_secs)
            } else {
                now + ahead
            }
        }
    };
    ClassBudget {
        route_class: rule.route_class,
        burst: rule.burst,
        per_seconds: rule.per_seconds,
        remaining: remaining(rule, tat, now),
        reset_secs: ceil_secs(tat - now),
    }
}

/// Requests that pass now: how many emission intervals fit between `tat` and the window.
fn remaining(rule: RateRule, tat: OffsetDateTime, now: OffsetDateTime) -> u32 {
    let ahead = (tat - now).max(Duration::ZERO);
    let room = window(rule) - ahead;
    if room <= Duration::ZERO {
        return 0;
    }
    let n = room.as_seconds_f64() / interval(rule).as_seconds_f64();
    // A bucket that is a hair short of the next request (float rounding) still has it.
    ((n + 1e-9).floor() as u32).min(rule.burst)
}

fn interval(rule: RateRule) -> Duration {
    Duration::seconds_f64(f64::from(rule.per_seconds) / f64::from(rule.burst.max(1)))
}

fn window(rule: RateRule) -> Duration {
    Duration::seconds(i64::from(rule.per_seconds))
}

fn ceil_secs(d: Duration) -> u64 {
    if d <= Duration::ZERO { 0 } else { d.as_seconds_f64().ceil() as u64 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const RULE: RateRule = RateRule { route_class: RouteClass::Post, burst: 10, per_seconds: 20 };

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn taken(allowed: bool, tat_after_now: Duration) -> Taken {
        Taken { profile: "p".into(), rule: RULE, allowed, tat: now() + tat_after_now }
    }

    #[test]
    fn a_first_request_leaves_burst_minus_one() {
        // One request moves the time on by one interval (2 s).
        let status = RateStatus::of(taken(true, Duration::seconds(2)), now());
        assert_eq!((status.remaining, status.reset_secs, status.retry_after_secs), (9, 2, None));
    }

    #[test]
    fn the_last_request_of_a_burst_leaves_none() {
        let status = RateStatus::of(taken(true, Duration::seconds(20)), now());
        assert_eq!((status.remaining, status.reset_secs), (0, 20));
    }

    #[test]
    fn a_refused_request_waits_one_interval_past_the_window() {
        // Full bucket: tat is 20 s ahead; the next request passes when it is 18 s ahead.
        let status = RateStatus::of(taken(false, Duration::seconds(20)), now());
        assert_eq!((status.remaining, status.retry_after_secs), (0, Some(2)));
        let barely = RateStatus::of(taken(false, Duration::milliseconds(18_100)), now());
        assert_eq!(barely.retry_after_secs, Some(1));
    }

    #[test]
    fn an_unused_bucket_is_full() {
        let at = |tat, interval_secs| Some(Bucket { tat, interval_secs });
        let full = budget(RULE, None, now());
        assert_eq!((full.remaining, full.reset_secs), (10, 0));
        let old = budget(RULE, at(now() - Duration::hours(1), 2.0), now());
        assert_eq!(old.remaining, 10);
        let half = budget(RULE, at(now() + Duration::seconds(10), 2.0), now());
        assert_eq!((half.remaining, half.reset_secs), (5, 10));
    }

    #[test]
    fn a_bucket_counted_under_another_rule_keeps_its_requests_used() {
        // Six requests at 10 s each (60 s ahead) are 12 s ahead at 2 s each: 4 of 10 left.
        let moved = budget(RULE, Some(Bucket { tat: now() + Duration::seconds(60), interval_secs: 10.0 }), now());
        assert_eq!((moved.remaining, moved.reset_secs), (4, 12));
    }

    #[test]
    fn spenders_are_people_or_addresses_and_ipv6_counts_per_64() {
        let user = UserId::generate();
        let by = |spender, class| RateRequest { class, spender, place: Place::Nowhere }.spender_key();
        let caller = Spender::Caller { user, api_key: None };
        assert_eq!(by(caller, RouteClass::Post), format!("u:{user}"));
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(by(Spender::Address(a), RouteClass::Auth), by(Spender::Address(b), RouteClass::Auth));
        assert_eq!(by(Spender::Address(mapped), RouteClass::Auth), by(Spender::Address(v4), RouteClass::Auth));
    }
}
