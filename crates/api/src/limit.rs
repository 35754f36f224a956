//! Request rate limits: token buckets per tenant and operation, and per operation across all tenants.
//!
//! Checked after authentication and routing (so unauthenticated floods cost no bucket and an unknown operation
//! is not limited), before the operation runs. What a refusal looks like on the wire is each dialect's: Alibaba's
//! `Throttling.User` / `Throttling` with `x-acs-retry-after`, Huawei's 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openvgw_core::config::RateLimit;
use openvgw_store::Store;

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
    /// Buckets in the store every replica shares (PostgreSQL); `None`: in this process only.
    shared: Option<Arc<Store>>,
    tenants: Mutex<HashMap<(String, &'static str), Bucket>>,
    operations: Mutex<HashMap<&'static str, Bucket>>,
}

impl RateLimiter {
    /// Limits kept in this process.
    pub fn new(config: RateLimit) -> Self {
        RateLimiter { config, shared: None, tenants: Mutex::default(), operations: Mutex::default() }
    }

    /// Limits kept in `store`, so that every replica sharing it draws from the same buckets.
    pub fn shared(config: RateLimit, store: Arc<Store>) -> Self {
        RateLimiter { shared: Some(store), ..RateLimiter::new(config) }
    }

    /// Takes one request of `operation` by `tenant` from both buckets, or says which one is empty.
    pub fn check(&self, tenant: &str, operation: &'static str) -> Result<(), Throttled> {
        let Some(store) = &self.shared else {
            return self.check_at(tenant, operation, Instant::now());
        };
        let c = &self.config;
        if !c.enabled {
            return Ok(());
        }
        let tenant_key = format!("t:{tenant}:{operation}");
        let op_key = format!("o:{operation}");
        let buckets = [
            (tenant_key.as_str(), c.tenant_per_second, c.tenant_burst),
            (op_key.as_str(), c.operation_per_second, c.operation_burst),
        ];
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        match store.take_tokens(&buckets, i64::try_from(now_ms).unwrap_or(i64::MAX)) {
            Ok(None) => Ok(()),
            Ok(Some((i, wait_ms))) => Err(Throttled {
                by: if i == 0 { Throttle::Tenant } else { Throttle::Operation },
                retry_after: Duration::from_millis(wait_ms),
            }),
            // A limit the store cannot check is not a reason to refuse service.
            Err(e) => {
                tracing::warn!(error = %e, "rate limit not checked: the store failed");
                Ok(())
            }
        }
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
