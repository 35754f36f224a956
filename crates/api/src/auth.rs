//! Authentication shared by every dialect: the dialect extracts the credential, this checks it against the store.
//! The order is fixed: key lookup, signature, freshness window, replay — so that nothing unauthenticated reaches
//! the replay cache.

use std::sync::Arc;

use openvgw_auth::AuthError;
use openvgw_control::Service;
use openvgw_store::{Durable, NonceCheck};
use time::{Duration, OffsetDateTime};

use crate::ApiRequest;

/// Who an authenticated request acts for, and how it proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub via: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// A request signed with this access key.
    AccessKey(String),
    /// A token issued to an IAM user, valid for one region only.
    Token { user_id: String, region: String },
}

/// A signature a request carries, checked once the secret of its access key is known.
pub trait SignedRequest: Send {
    fn access_key_id(&self) -> &str;
    /// Verifies the signature (constant-time).
    fn verify(&self, req: &ApiRequest, secret: &str) -> Result<(), AuthError>;
    /// The signed timestamp must be within `window` of `now`.
    fn check_freshness(&self, now: OffsetDateTime, window: Duration) -> Result<(), AuthError>;
    /// What makes this request unique for replay protection: a nonce, or the signature itself for schemes
    /// without one; `None` when a replay would be harmless and the scheme cannot tell one from a repeat.
    fn replay_key(&self) -> Option<&str>;
}

/// What a request presents.
pub enum Presented {
    Signature(Box<dyn SignedRequest>),
    /// A token issued by a sign-in (`X-Auth-Token`).
    Token(String),
    /// Nothing, for the few endpoints that need no credential (a dialect's sign-in).
    Anonymous,
}

pub(crate) enum Failure {
    Auth(AuthError),
    Internal(openvgw_core::Error),
}

/// Longest nonce (or replay key) remembered; longer ones are refused, so a signed request cannot store a large row.
pub const MAX_NONCE_LEN: usize = 128;

pub struct Authenticator {
    svc: Arc<Service>,
    window: Duration,
    /// One set of rate limits for every dialect.
    limiter: crate::limit::RateLimiter,
}

impl Authenticator {
    pub fn new(svc: Arc<Service>) -> Arc<Self> {
        let window = Duration::seconds(i64::try_from(svc.config().server.signature_window_s).unwrap_or(900));
        // On a shared store (replicas) the buckets are shared too; a single process keeps them in memory.
        let limit = svc.config().rate_limit.clone();
        let limiter = if svc.store().is_shared() {
            crate::limit::RateLimiter::shared(limit, svc.store().clone())
        } else {
            crate::limit::RateLimiter::new(limit)
        };
        Arc::new(Authenticator { svc, window, limiter })
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.svc
    }

    pub(crate) fn limiter(&self) -> &crate::limit::RateLimiter {
        &self.limiter
    }

    /// Who the request acts for, and the commit of its replay record: the request must not be answered before
    /// that is on disk (a restart or another replica would accept it again), but its work may run meanwhile.
    pub(crate) fn authenticate(
        &self,
        req: &ApiRequest,
        presented: Presented,
    ) -> Result<(Option<Principal>, Durable), Failure> {
        let signed = match presented {
            Presented::Anonymous => return Ok((None, Durable::done())),
            Presented::Token(token) => {
                let t =
                    self.svc.token(&token).map_err(Failure::Internal)?.ok_or(Failure::Auth(AuthError::TokenInvalid))?;
                let via = Credential::Token { user_id: t.user_id, region: t.region };
                return Ok((Some(Principal { tenant_id: t.tenant_id, via }), Durable::done()));
            }
            Presented::Signature(s) => s,
        };
        let key_id = signed.access_key_id().to_string();
        let known = self
            .svc
            .access_key(&key_id)
            .map_err(Failure::Internal)?
            .ok_or_else(|| Failure::Auth(AuthError::AccessKeyNotFound { access_key_id: key_id.clone() }))?;
        let key = known.key;
        signed.verify(req, key.secret.expose()).map_err(Failure::Auth)?;
        // Only a correctly signed request learns that the key's tenant is disabled.
        if known.tenant_disabled {
            return Err(Failure::Auth(AuthError::AccessKeyDisabled { access_key_id: key_id }));
        }
        let now = OffsetDateTime::now_utc();
        signed.check_freshness(now, self.window).map_err(Failure::Auth)?;
        let durable = match signed.replay_key() {
            Some(nonce) => self.check_replay(&key_id, nonce, now)?,
            None => Durable::done(),
        };
        Ok((Some(Principal { tenant_id: key.tenant_id, via: Credential::AccessKey(key_id) }), durable))
    }

    /// One replay record for every dialect (a key is a key whichever API it signs for), kept in the store so that a
    /// restart or another replica does not accept the request again. Nonces are remembered for twice the window: a
    /// request dated +window stays fresh until now + 2 * window.
    fn check_replay(&self, key_id: &str, nonce: &str, now: OffsetDateTime) -> Result<Durable, Failure> {
        if nonce.len() > MAX_NONCE_LEN {
            return Err(Failure::Auth(AuthError::SignatureNonceTooLong { max: MAX_NONCE_LEN }));
        }
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let retention_ms: i128 = (self.window * 2i32).whole_milliseconds();
        let retention_ms = i64::try_from(retention_ms).unwrap_or(i64::MAX);
        match self.svc.use_nonce(key_id, nonce, now_ms, retention_ms).map_err(Failure::Internal)? {
            (NonceCheck::New, durable) => Ok(durable),
            (NonceCheck::Used, _) => Err(Failure::Auth(AuthError::SignatureNonceUsed)),
            (NonceCheck::Full, _) => Err(Failure::Auth(AuthError::ReplayCacheFull)),
        }
    }
}
