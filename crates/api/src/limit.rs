//! Request rate limits: token buckets per tenant and operation, and per operation across all tenants.
//!
//! Checked after authentication and routing (so unauthenticated floods cost no bucket and an unknown operation
//! is not limited), before the operation runs. What a refusal looks like on the wire is each dialect's: Alibaba's
//! `Throttling.User` / `Throttling` with `x-acs-retry-after`, Huawei's 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openvgw_core::config::RateLimit;

/// Buckets kept at most; beyond this the full (idle) ones are dropped first, so that a flood of new tenants cannot
/// grow memory without bound. A dropped bucket is full, so dropping one never throttles anybody.
const MAX_BUCKETS: usize = 100_000;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// This tenant's rate for this operation.
    Tenant,
    /// The rate of this operation for everybody together.
    Operation,
}

#[derive(Debug, Clone, Copy)]
pub struct Throttled {
    pub by: Throttle,
    /// When a retry can succeed.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Refills to `now`, then takes a token if there is one; otherwise how long until there is.
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    fn full(&self, now: Instant, rate: f64, burst: f64) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate >= burst
    }
}

pub struct RateLimiter {
    config: RateLimit,
    tenants: Mutex<HashMap<(String, &'static str), Bucket>>,
    operations: Mutex<HashMap<&'static str, Bucket>>,
}

impl RateLimiter {
    pub fn new(config: RateLimit) -> Self {
        RateLimiter { config, tenants: Mutex::default(), operations: Mutex::default() }
    }

    /// Takes one request of `operation` by `tenant` from both buckets, or says which one is empty.
    pub fn check(&self, tenant: &str, operation: &'static str) -> Result<(), Throttled> {
        self.check_at(tenant, operation, Instant::now())
    }

    fn check_at(&self, tenant: &str, operation: &'static str, now: Instant) -> Result<(), Throttled> {
        let c = &self.config;
        if !c.enabled {
            return Ok(());
        }
        {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            if tenants.len() >= MAX_BUCKETS && !tenants.contains_key(&(tenant.to_string(), operation)) {
                tenants.retain(|_, b| !b.full(now, c.tenant_per_second, c.tenant_burst));
            }
            let fresh = Bucket { tokens: c.tenant_burst, at: now };
            let b = tenants.entry((tenant.to_string(), operation)).or_insert(fresh);
            b.take(now, c.tenant_per_second, c.tenant_burst)
                .map_err(|retry_after| Throttled { by: Throttle::Tenant, retry_after })?;
        }
        let mut ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = Bucket { tokens: c.operation_burst, at: now };
        let b = ops.entry(operation).or_insert(fresh);
        b.take(now, c.operation_per_second, c.operation_burst)
            .map_err(|retry_after| Throttled { by: Throttle::Operation, retry_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(tenant: f64, burst: f64, op: f64, op_burst: f64) -> RateLimiter {
        RateLimiter::new(RateLimit {
            enabled: true,
            tenant_per_second: tenant,
            tenant_burst: burst,
            operation_per_second: op,
            operation_burst: op_burst,
        })
    }

    #[test]
    fn a_tenant_gets_its_burst_then_its_rate() {
        let l = limiter(10.0, 3.0, 1000.0, 1000.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("a", "Op", t0).is_ok());
        }
        let e = l.check_at("a", "Op", t0).expect_err("burst spent");
        assert_eq!(e.by, Throttle::Tenant);
        assert!(e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_millis(100), "{e:?}");
        // Other tenants and other operations have their own buckets.
        assert!(l.check_at("b", "Op", t0).is_ok());
        assert!(l.check_at("a", "Other", t0).is_ok());
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check_at("a", "Op", t1).is_ok());
        assert!(l.check_at("a", "Op", t1).is_err());
    }

    #[test]
    fn the_operation_limit_covers_every_tenant() {
        let l = limiter(1000.0, 1000.0, 1.0, 2.0);
        let t0 = Instant::now();
        assert!(l.check_at("a", "Op", t0).is_ok());
        assert!(l.check_at("b", "Op", t0).is_ok());
        assert_eq!(l.check_at("c", "Op", t0).map_err(|e| e.by), Err(Throttle::Operation));
    }

    #[test]
    fn disabled_never_refuses() {
        let cfg = RateLimit { enabled: false, tenant_burst: 1.0, tenant_per_second: 1.0, ..Default::default() };
        let l = RateLimiter::new(cfg);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(l.check_at("a", "Op", t0).is_ok());
        }
    }
}
