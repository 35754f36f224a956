//! openvgw-control: the operations of the VPN service, shared by every API dialect.
//!
//! A dialect parses its wire format into the typed inputs here, calls one operation, and renders the typed result.
//! Operations validate through `openvgw_core::validate`, enforce quotas and lifecycle rules, and change the store in
//! exactly one transaction. Changes the data plane must realise bump the gateway's generation and wake the
//! reconciler; nothing here waits for the data plane.

pub mod connections;
pub mod customer_gateways;
pub mod gateways;
pub mod ipsec_servers;
pub mod routes;
pub mod ssl;
pub mod tags;
pub mod tenants;

use std::sync::Arc;

use openvgw_core::config::Config;
use openvgw_core::model::{GatewayStatus, Resource, Scope, VpnGateway};
use openvgw_core::{now_ms, Error, Field, Result};
use openvgw_dataplane::Driver;
use openvgw_store::{IdempotencyRecord, Store, Tx};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;

/// Everything an operation needs to know about the request besides its inputs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub scope: Scope,
    /// The operation name, part of the idempotency key.
    pub action: String,
    pub client_token: Option<String>,
    /// Digest of the request's business parameters (a repeat with other parameters is a mismatch).
    pub params_hash: String,
    pub dry_run: bool,
}

/// Page-number paging (`PageNumber` from 1).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub number: u64,
    pub size: u64,
}

impl Page {
    pub fn offset(&self) -> u64 {
        (self.number.saturating_sub(1)).saturating_mul(self.size)
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Token paging (`NextToken`/`MaxResults`): the token is an opaque offset.
#[derive(Debug, Clone)]
pub struct TokenPage {
    pub offset: u64,
    pub max: u64,
}

impl TokenPage {
    pub fn parse(token: Option<&str>, max: u64) -> Result<TokenPage> {
        let offset = match token.filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => t
                .strip_prefix("ovt")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::invalid(Field::NextToken, "not a token this service issued"))?,
        };
        Ok(TokenPage { offset, max })
    }

    /// The token for the page after this one, or "" when `more` is false.
    pub fn next(&self, more: bool) -> String {
        if more {
            format!("ovt{:x}", self.offset + self.max)
        } else {
            String::new()
        }
    }
}

/// An item with its user tags.
#[derive(Debug, Clone)]
pub struct Tagged<T> {
    pub item: T,
    pub tags: Vec<openvgw_core::model::Tag>,
}

pub struct Service {
    pub store: Arc<Store>,
    pub config: Arc<Config>,
    pub driver: Arc<dyn Driver>,
    reconcile: Arc<Notify>,
}

impl Service {
    pub fn new(store: Arc<Store>, config: Arc<Config>, driver: Arc<dyn Driver>) -> Self {
        Service { store, config, driver, reconcile: Arc::new(Notify::new()) }
    }

    /// The signal the reconciler waits on.
    pub fn reconcile_signal(&self) -> Arc<Notify> {
        self.reconcile.clone()
    }

    pub fn check_region(&self, region: &str) -> Result<()> {
        if self.config.is_aliyun_region(region) {
            Ok(())
        } else {
            Err(Error::UnknownRegion(region.to_string()))
        }
    }

    /// Runs a mutation: DryRun validates in a rolled-back transaction; a repeated `ClientToken` returns the first
    /// result (or a mismatch error) without running `f` again; otherwise `f` runs and commits atomically together
    /// with the idempotency record.
    pub fn mutate<T, F>(&self, ctx: &Ctx, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&Tx) -> Result<T>,
    {
        if ctx.dry_run {
            self.store.write_rollback(f)?;
            return Err(Error::DryRunOperation);
        }
        let ttl_ms = self.config.server.idempotency_ttl_s as i64 * 1000;
        let out = self.store.write(|tx| {
            if let Some(token) = &ctx.client_token {
                if let Some(rec) = tx.idempotency(&ctx.scope.tenant_id, &ctx.action, token)? {
                    if rec.created_at > now_ms() - ttl_ms {
                        if rec.params_hash != ctx.params_hash {
                            return Err(Error::IdempotentParameterMismatch);
                        }
                        return serde_json::from_str(&rec.result).map_err(Error::internal);
                    }
                }
            }
            let out = f(tx)?;
            if let Some(token) = &ctx.client_token {
                let rec = IdempotencyRecord {
                    params_hash: ctx.params_hash.clone(),
                    result: serde_json::to_string(&out).map_err(Error::internal)?,
                    created_at: now_ms(),
                };
                tx.put_idempotency(&ctx.scope.tenant_id, &ctx.action, token, &rec)?;
            }
            Ok(out)
        })?;
        self.reconcile.notify_one();
        Ok(out)
    }

    pub fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.store.read(f)
    }
}

/// The gateway a child change applies to; it must be `active` (anything in flight answers "configuring").
pub(crate) fn gateway_for_change(tx: &Tx, scope: &Scope, id: &str) -> Result<VpnGateway> {
    let gw: VpnGateway = tx.require(scope, id)?;
    if gw.status() != GatewayStatus::Active {
        return Err(Error::GatewayConfiguring);
    }
    Ok(gw)
}

/// Records that the gateway's data plane must change.
pub(crate) fn bump(tx: &Tx, mut gw: VpnGateway) -> Result<VpnGateway> {
    gw.generation += 1;
    tx.update(&gw)?;
    Ok(gw)
}

pub(crate) fn quota(count: u64, limit: u64, q: openvgw_core::Quota) -> Result<()> {
    if count >= limit {
        Err(Error::QuotaFull { quota: q, limit })
    } else {
        Ok(())
    }
}

/// A resource of `R` in scope that must exist.
pub fn require<R: Resource>(tx: &Tx, scope: &Scope, id: &str) -> Result<R> {
    tx.require(scope, id)
}
