//! Client-side token buckets keyed by (action, machine id / app / org).
//!
//! A request reserves a token first and then sleeps (with `tokio::time`) until the token is
//! due, so concurrent callers are spaced fairly. Buckets are evicted once full again: a full
//! bucket behaves exactly like a fresh one, so eviction changes no decision, and memory stays
//! bounded by the number of keys used within the last `burst / rate` seconds.

use crate::config::{Rate, RateLimitPolicy};
use crate::error::Error;
use crate::request::Action;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    rate: Rate,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.last = now;
    }

    fn is_full_at(&self, now: Instant) -> bool {
        let mut b = *self;
        b.refill(now);
        b.tokens >= f64::from(self.rate.burst)
    }
}

/// The per-client limiter.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    policy: RateLimitPolicy,
    buckets: Mutex<HashMap<(Action, String), Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(policy: RateLimitPolicy) -> Self {
        Self {
            policy,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The rate of an action, `None` when not limited.
    fn rate_for(&self, action: Action) -> Option<Rate> {
        if !self.policy.enabled {
            return None;
        }
        let rate = match action {
            Action::GraphQl => return None,
            Action::Get => self.policy.get,
            Action::List | Action::ListApps => self.policy.list,
            Action::Create
            | Action::Start
            | Action::Stop
            | Action::Suspend
            | Action::Destroy
            | Action::Wait
            | Action::Lease => self.policy.action,
        };
        (rate.per_second > 0.0 && rate.burst > 0).then_some(rate)
    }

    /// Reserves a token at `now` and returns how long to wait before using it. Fails (and
    /// reserves nothing) when the wait would exceed the policy's `max_wait` or `limit`,
    /// whichever is shorter (the caller passes what is left of its call's total budget).
    pub(crate) fn reserve(
        &self,
        action: Action,
        key: &str,
        now: Instant,
        limit: Duration,
    ) -> Result<Duration, Error> {
        let Some(rate) = self.rate_for(action) else {
            return Ok(Duration::ZERO);
        };
        // A poisoned lock only means another thread panicked mid-update of plain numbers;
        // the map is still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.policy.max_buckets {
            buckets.retain(|_, b| !b.is_full_at(now));
        }
        let bucket = buckets.entry((action, key.to_owned())).or_insert(Bucket {
            tokens: f64::from(rate.burst),
            last: now,
            rate,
        });
        bucket.refill(now);
        let deficit = 1.0 - bucket.tokens;
        let wait = if deficit > 0.0 {
            Duration::from_secs_f64(deficit / rate.per_second)
        } else {
            Duration::ZERO
        };
        let max_wait = self.policy.max_wait.min(limit);
        if wait > max_wait {
            return Err(Error::LocalRateLimit {
                action: action.as_str(),
                key: key.to_owned(),
                wait,
                max_wait,
            });
        }
        bucket.tokens -= 1.0;
        Ok(wait)
    }

    /// Waits for a token, at most `max_wait` or `limit` (see [`RateLimiter::reserve`]).
    pub(crate) async fn acquire(
        &self,
        action: Action,
        key: &str,
        limit: Duration,
    ) -> Result<(), Error> {
        let wait = self.reserve(action, key, Instant::now(), limit)?;
        if !wait.is_zero() {
            tracing::debug!(
                action = action.as_str(),
                key,
                wait_ms = wait.as_millis() as u64,
                "client-side rate limit: waiting"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    #[cfg(test)]
    fn bucket_count(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;

    /// No call budget: only the policy's `max_wait` bounds the wait.
    const NO_LIMIT: Duration = Duration::MAX;

    /// Fly's published budget exactly (the defaults pace 10 % under it); exact numbers keep the
    /// arithmetic below readable.
    fn fly_budget() -> RateLimitPolicy {
        RateLimitPolicy {
            action: Rate::new(1.0, 3),
            get: Rate::new(5.0, 10),
            list: Rate::new(1.0, 3),
            ..RateLimitPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_machine_is_held_to_one_per_second_after_a_burst_of_three() {
        let rl = RateLimiter::new(fly_budget());
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..6 {
            rl.acquire(Action::Start, "m1", NO_LIMIT).await.unwrap();
            at.push((Instant::now() - t0).as_millis());
        }
        assert_eq!(at, vec![0, 0, 0, 1000, 2000, 3000]);
    }

    #[tokio::test(start_paused = true)]
    async fn distinct_machines_and_actions_do_not_wait() {
        let rl = RateLimiter::new(fly_budget());
        let t0 = Instant::now();
        for i in 0..50 {
            rl.acquire(Action::Start, &format!("m{i}"), NO_LIMIT)
                .await
                .unwrap();
        }
        for _ in 0..3 {
            rl.acquire(Action::Stop, "m0", NO_LIMIT).await.unwrap();
            rl.acquire(Action::Destroy, "m0", NO_LIMIT).await.unwrap();
        }
        assert_eq!(Instant::now(), t0);
    }

    #[test]
    fn get_has_its_own_budget() {
        let rl = RateLimiter::new(fly_budget());
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(
                rl.reserve(Action::Get, "m", now, NO_LIMIT).unwrap(),
                Duration::ZERO
            );
        }
        assert_eq!(
            rl.reserve(Action::Get, "m", now, NO_LIMIT).unwrap(),
            Duration::from_millis(200)
        );
        assert_eq!(
            rl.reserve(Action::Get, "m", now, NO_LIMIT).unwrap(),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn too_long_a_wait_is_an_error_and_reserves_nothing() {
        let policy = RateLimitPolicy {
            max_wait: Duration::from_millis(1500),
            ..fly_budget()
        };
        let rl = RateLimiter::new(policy);
        let now = Instant::now();
        for _ in 0..4 {
            rl.reserve(Action::Create, "app", now, NO_LIMIT).unwrap();
        }
        // 5th needs 2 s > 1.5 s.
        let e = rl
            .reserve(Action::Create, "app", now, NO_LIMIT)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::LocalRateLimit {
                    action: "create",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            rl.reserve(
                Action::Create,
                "app",
                now + Duration::from_millis(600),
                NO_LIMIT
            )
            .is_ok()
        );
    }

    #[test]
    fn a_call_budget_shorter_than_max_wait_bounds_the_wait() {
        let rl = RateLimiter::new(fly_budget());
        let now = Instant::now();
        for _ in 0..3 {
            rl.reserve(Action::Stop, "m", now, Duration::ZERO).unwrap();
        }
        // The 4th needs 1 s: within `max_wait` (30 s) but not within a 500 ms budget.
        let e = rl
            .reserve(Action::Stop, "m", now, Duration::from_millis(500))
            .unwrap_err();
        assert!(
            matches!(e, Error::LocalRateLimit { wait, max_wait, .. }
                if wait == Duration::from_secs(1) && max_wait == Duration::from_millis(500)),
            "{e}"
        );
        // Nothing was reserved: with a longer budget the same token is due in 1 s.
        assert_eq!(
            rl.reserve(Action::Stop, "m", now, Duration::from_secs(1))
                .unwrap(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn disabled_never_waits_and_graphql_is_never_limited() {
        let rl = RateLimiter::new(RateLimitPolicy::disabled());
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                rl.reserve(Action::Start, "m", now, NO_LIMIT).unwrap(),
                Duration::ZERO
            );
        }
        let rl = RateLimiter::new(fly_budget());
        for _ in 0..100 {
            assert_eq!(
                rl.reserve(Action::GraphQl, "", now, NO_LIMIT).unwrap(),
                Duration::ZERO
            );
        }
        assert_eq!(rl.bucket_count(), 0);
    }

    #[test]
    fn idle_buckets_are_evicted() {
        let policy = RateLimitPolicy {
            max_buckets: 8,
            ..fly_budget()
        };
        let rl = RateLimiter::new(policy);
        let now = Instant::now();
        for i in 0..8 {
            rl.reserve(Action::Start, &format!("m{i}"), now, NO_LIMIT)
                .unwrap();
        }
        assert_eq!(rl.bucket_count(), 8);
        // Two seconds later every bucket is full again, so the next insert sweeps them all.
        rl.reserve(
            Action::Start,
            "fresh",
            now + Duration::from_secs(2),
            NO_LIMIT,
        )
        .unwrap();
        assert_eq!(rl.bucket_count(), 1);
        // Busy buckets survive a sweep.
        for i in 0..8 {
            rl.reserve(
                Action::Stop,
                &format!("m{i}"),
                now + Duration::from_secs(3),
                NO_LIMIT,
            )
            .unwrap();
        }
        rl.reserve(Action::Stop, "x", now + Duration::from_secs(3), NO_LIMIT)
            .unwrap();
        assert!(rl.bucket_count() >= 9);
    }
}
