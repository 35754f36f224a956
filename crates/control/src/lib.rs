//! openvgw-control: the operations of the VPN service, shared by every API dialect.
//!
//! A dialect parses its wire format, checks values against its vendor's documented ranges (with
//! `openvgw_core::validate`), fills in its vendor's defaults, and calls one operation here with typed inputs.
//! Operations enforce what holds for every vendor — references, quotas, address pools, lifecycle rules, overlaps —
//! and change the store in exactly one transaction. Changes the data plane must realise bump the gateway's
//! generation and wake the reconciler; nothing here waits for the data plane.

pub mod agents;
pub mod certificates;
pub mod clients;
pub mod connections;
pub mod console;
pub mod customer_gateways;
pub mod gateways;
pub mod iam;
pub mod ipsec_servers;
mod keycache;
pub mod monitors;
pub mod reconcile;
pub mod routes;
pub mod secrets;
pub mod ssl;
pub mod tags;
pub mod tenants;

use std::sync::Arc;

use openvgw_core::config::Config;
use openvgw_core::model::{GatewayStatus, Resource, Scope, Tag, Tenant, VpnGateway};
use openvgw_core::{now_ms, Error, IdStyle, Kind, Quota, Result};
use openvgw_dataplane::Driver;
use openvgw_store::{Durable, IdempotencyRecord, NonceCheck, Store, Tx};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;

/// Everything an operation needs to know about the request besides its inputs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub scope: Scope,
    /// The operation as the dialect names it; part of the idempotency key.
    pub operation: String,
    pub client_token: Option<String>,
    /// Digest of the request's business parameters (a repeat with other parameters is a mismatch).
    pub params_hash: String,
    pub dry_run: bool,
    /// How the dialect's ids look.
    pub ids: IdStyle,
    /// Whether a gateway still applying earlier changes takes new ones (applied together with them), or refuses
    /// them as busy (Alibaba's `VpnGateway.Configuring`). Gateways being created or deleted refuse either way.
    pub queue_changes: bool,
}

impl Ctx {
    pub fn new_id(&self, kind: Kind) -> String {
        kind.new_id(self.ids)
    }
}

/// Whether a committed change wakes the reconciler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Reconciler,
    Nobody,
}

/// An item with its user tags.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Tagged<T> {
    pub item: T,
    pub tags: Vec<Tag>,
}

pub struct Service {
    store: Arc<Store>,
    config: Arc<Config>,
    driver: Arc<dyn Driver>,
    reconcile: Arc<Notify>,
    keys: keycache::KeyCache,
}

pub use keycache::{KnownKey, KEY_CACHE_TTL};

impl Service {
    pub fn new(store: Arc<Store>, config: Arc<Config>, driver: Arc<dyn Driver>) -> Self {
        Service { store, config, driver, reconcile: Arc::new(Notify::new()), keys: keycache::KeyCache::default() }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The signal the reconciler waits on.
    pub fn reconcile_signal(&self) -> Arc<Notify> {
        self.reconcile.clone()
    }

    /// Looks up an access key and whether its tenant is disabled (every signed request), from a cache whose answers
    /// are younger than [`KEY_CACHE_TTL`]: a key created, deleted or rotated, or a tenant disabled, by another
    /// process (`openvgw tenant …`, another replica) takes effect here within that time.
    pub fn access_key(&self, id: &str) -> Result<Option<KnownKey>> {
        self.keys.get(id, || {
            self.store.read(|tx| {
                let Some(key) = tx.access_key(id)? else { return Ok(None) };
                let tenant_disabled = tx.tenant(&key.tenant_id)?.is_none_or(|t| t.disabled);
                Ok(Some(KnownKey { key, tenant_disabled }))
            })
        })
    }

    pub fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.store.read(|tx| tx.tenant(id))
    }

    /// The tenant a sign-in names (its "domain").
    pub fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        self.store.read(|tx| tx.tenant_by_name(name))
    }

    /// Runs a mutation: DryRun validates in a rolled-back transaction; a repeated client token returns the first
    /// result (or a mismatch error) without running `f` again; otherwise `f` runs and commits atomically together
    /// with the idempotency record.
    pub(crate) fn mutate<T, F>(&self, ctx: &Ctx, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&Tx) -> Result<T>,
    {
        self.mutate_then(ctx, Wake::Reconciler, f)
    }

    /// [`Service::mutate`] for a change no data-plane intent depends on (a customer gateway nothing uses yet or
    /// any more, tags): the reconciler is not woken for it. Creating customer gateways at thousands per second
    /// otherwise kept it reading every gateway back to back, on the cores the requests need.
    pub(crate) fn mutate_store_only<T, F>(&self, ctx: &Ctx, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&Tx) -> Result<T>,
    {
        self.mutate_then(ctx, Wake::Nobody, f)
    }

    fn mutate_then<T, F>(&self, ctx: &Ctx, wake: Wake, f: F) -> Result<T>
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
                if let Some(rec) = tx.idempotency(&ctx.scope.tenant_id, &ctx.operation, token)? {
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
                tx.put_idempotency(&ctx.scope.tenant_id, &ctx.operation, token, &rec)?;
            }
            Ok(out)
        })?;
        if wake == Wake::Reconciler {
            self.reconcile.notify_one();
        }
        Ok(out)
    }

    /// The first answer of a repeated client token, when the operation ran before with the same parameters (a
    /// mismatch is an error). Lets a dialect answer a retry before checks that the first run changed the outcome of.
    pub fn replayed<T: DeserializeOwned>(&self, ctx: &Ctx) -> Result<Option<T>> {
        let Some(token) = &ctx.client_token else {
            return Ok(None);
        };
        let ttl_ms = self.config.server.idempotency_ttl_s as i64 * 1000;
        // Decoded inside the read: a stored answer holding a secret holds it sealed.
        self.store.read(|tx| match tx.idempotency(&ctx.scope.tenant_id, &ctx.operation, token)? {
            Some(r) if r.created_at > now_ms() - ttl_ms => {
                if r.params_hash != ctx.params_hash {
                    return Err(Error::IdempotentParameterMismatch);
                }
                serde_json::from_str(&r.result).map(Some).map_err(Error::internal)
            }
            _ => Ok(None),
        })
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.store.read(f)
    }

    /// The version kept answers of pure reads are checked against (`Store::data_version`: answers read after it was
    /// `v` are current while it is), or `None` when none may be kept (`server.read_cache` off, or a store without
    /// one). Read it before the store is read for the answer.
    pub fn read_cache_version(&self) -> Option<i64> {
        if !self.config.server.read_cache {
            return None;
        }
        self.store.data_version()
    }

    /// The store (operator tasks, leases).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Records the first use of a signed request's nonce until `now_ms + retention_ms`, in the store: every replica
    /// sharing it sees the same answer, and a restart forgets nothing. At most `max_nonces_per_key` are kept per key.
    /// Returns with the answer before the record is on disk: wait on the [`Durable`] before answering the request.
    pub fn use_nonce(
        &self,
        access_key_id: &str,
        nonce: &str,
        now_ms: i64,
        retention_ms: i64,
    ) -> Result<(NonceCheck, Durable)> {
        let cap = self.config.server.max_nonces_per_key;
        self.store.use_nonce_deferred(access_key_id, nonce, now_ms, now_ms.saturating_add(retention_ms), cap)
    }

    /// Forgets nonces that can no longer pass the freshness check; returns how many.
    pub fn purge_nonces(&self) -> Result<u64> {
        self.store.purge_nonces(now_ms())
    }

    /// Forgets client tokens older than the idempotency window; returns how many.
    pub fn purge_idempotency(&self) -> Result<u64> {
        let cutoff = now_ms() - self.config.server.idempotency_ttl_s as i64 * 1000;
        self.store.write(|tx| tx.purge_idempotency(cutoff))
    }
}

/// The gateway a change applies to: `active`, or (where the dialect queues changes) still applying earlier ones.
pub(crate) fn gateway_for_change(tx: &Tx, ctx: &Ctx, id: &str) -> Result<VpnGateway> {
    let gw: VpnGateway = tx.require(&ctx.scope, id)?;
    match gw.status() {
        GatewayStatus::Active => Ok(gw),
        GatewayStatus::Updating if ctx.queue_changes => Ok(gw),
        status => Err(Error::GatewayBusy { status, id: gw.id }),
    }
}

/// Records that the gateway's data plane must change.
pub(crate) fn bump(tx: &Tx, mut gw: VpnGateway) -> Result<VpnGateway> {
    gw.generation += 1;
    gw.updated_at = now_ms();
    tx.update(&gw)?;
    Ok(gw)
}

pub(crate) fn quota(count: u64, limit: u64, q: Quota) -> Result<()> {
    if count >= limit {
        Err(Error::QuotaFull { quota: q, limit })
    } else {
        Ok(())
    }
}

pub(crate) fn with_tags<R: Resource>(tx: &Tx, item: R) -> Result<Tagged<R>> {
    Ok(Tagged { tags: tx.tags_of(item.id())?, item })
}

/// A page with each item's tags, read in one query instead of one per item.
pub(crate) fn page_with_tags<R: Resource>(
    tx: &Tx,
    page: openvgw_core::Page<R>,
) -> Result<openvgw_core::Page<Tagged<R>>> {
    let ids: Vec<&str> = page.items.iter().map(|r| r.id()).collect();
    let mut tags = tx.tags_of_many(&ids)?;
    page.try_map(|item| Ok(Tagged { tags: tags.remove(item.id()).unwrap_or_default(), item }))
}

/// A dialect's change to its own extension record, checked against the merged result inside the transaction.
pub type ExtUpdate = Arc<dyn Fn(&mut openvgw_core::model::Extensions) -> Result<()> + Send + Sync>;

/// Whether `after` differs from `before` in more than the fields `cosmetic` copies over (names, descriptions):
/// such changes neither wait for the gateway nor start a reconfiguration.
pub(crate) fn changes_more_than<T: Clone + Serialize>(
    before: &T,
    after: &T,
    cosmetic: impl Fn(&mut T, &T),
) -> Result<bool> {
    let mut probe = before.clone();
    cosmetic(&mut probe, after);
    // Compared in clear: a sealed secret serializes differently every time.
    openvgw_core::secret::in_clear(|| {
        Ok(serde_json::to_value(&probe).map_err(Error::internal)?
            != serde_json::to_value(after).map_err(Error::internal)?)
    })
}
