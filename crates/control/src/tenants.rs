//! Tenants and their access keys (operator commands; they work while `serve` runs).

use std::collections::BTreeMap;

use openvgw_core::config::Config;
use openvgw_core::ids::{random_hex, random_secret};
use openvgw_core::model::{AccessKey, Tenant};
use openvgw_core::{now_ms, IdStyle, Kind, Result, Secret};
use openvgw_store::Store;

/// A new tenant with one access key; the secret is returned only here.
#[derive(Debug, Clone)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub access_key: AccessKey,
}

pub fn create_tenant(store: &Store, config: &Config, name: &str) -> Result<CreatedTenant> {
    let tenant = Tenant {
        id: Kind::Tenant.new_id(IdStyle::Prefixed),
        name: name.to_string(),
        // A project per region of the dialects that scope requests by project (32 hex digits, as Huawei's).
        projects: config.regions.huawei.iter().map(|r| (r.clone(), random_hex(32))).collect::<BTreeMap<_, _>>(),
        created_at: now_ms(),
        disabled: false,
    };
    let access_key = new_access_key(&tenant.id);
    store.write(|tx| {
        tx.insert_tenant(&tenant)?;
        tx.insert_access_key(&access_key)
    })?;
    Ok(CreatedTenant { tenant, access_key })
}

fn new_access_key(tenant_id: &str) -> AccessKey {
    AccessKey {
        id: format!("LTAI{}", random_secret(20)),
        secret: Secret::new(random_secret(30)),
        tenant_id: tenant_id.to_string(),
        created_at: now_ms(),
    }
}

/// The tenant named by id or by name.
pub fn find_tenant(store: &Store, tenant: &str) -> Result<Option<Tenant>> {
    store.read(|tx| lookup(tx, tenant))
}

/// The tenant `tenant` names, by id or else by name, inside a transaction.
fn lookup(tx: &openvgw_store::Tx, tenant: &str) -> Result<Option<Tenant>> {
    match tx.tenant(tenant)? {
        Some(t) => Ok(Some(t)),
        None => tx.tenant_by_name(tenant),
    }
}

/// Another access key for a tenant (key rotation: create the new one, switch clients, delete the old one).
pub fn create_access_key(store: &Store, tenant_id: &str) -> Result<AccessKey> {
    let key = new_access_key(tenant_id);
    store.write(|tx| tx.insert_access_key(&key))?;
    Ok(key)
}

/// Deletes an access key; false if there was none. Running servers refuse it within
/// [`crate::KEY_CACHE_TTL`].
pub fn delete_access_key(store: &Store, access_key_id: &str) -> Result<bool> {
    let deleted = store.write(|tx| tx.delete_access_key(access_key_id))?;
    store.forget_nonces(access_key_id)?;
    Ok(deleted)
}

/// One of a tenant's access keys as operators see it: never its secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub access_key_id: String,
    pub created_at: i64,
}

/// A tenant as operators see it: its state, keys and how many resources of each kind it holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantReport {
    pub tenant_id: String,
    pub name: String,
    pub created_at: i64,
    pub disabled: bool,
    pub projects: BTreeMap<String, String>,
    pub access_keys: Vec<KeyInfo>,
    pub usage: BTreeMap<String, i64>,
}

fn report(tx: &openvgw_store::Tx, t: Tenant) -> Result<TenantReport> {
    let access_keys = tx
        .access_key_ids(&t.id)?
        .into_iter()
        .map(|(access_key_id, created_at)| KeyInfo { access_key_id, created_at })
        .collect();
    let usage = tx.tenant_usage(&t.id)?;
    Ok(TenantReport {
        tenant_id: t.id,
        name: t.name,
        created_at: t.created_at,
        disabled: t.disabled,
        projects: t.projects,
        access_keys,
        usage,
    })
}

/// Every tenant with its keys and usage, oldest first (one consistent read).
pub fn tenant_reports(store: &Store) -> Result<Vec<TenantReport>> {
    store.read(|tx| tx.tenants()?.into_iter().map(|t| report(tx, t)).collect())
}

/// One tenant (by id or name) with its keys and usage.
pub fn tenant_report(store: &Store, tenant: &str) -> Result<Option<TenantReport>> {
    store.read(|tx| lookup(tx, tenant)?.map(|t| report(tx, t)).transpose())
}

/// Disables or re-enables a tenant (by id or name); `None` if there is none. While disabled its keys are refused
/// (`InvalidAccessKeyId.Inactive`, Huawei's `APIGW.0301`), its users cannot sign in and their tokens are refused;
/// its resources and their data plane stay as they are. Running servers notice within [`crate::KEY_CACHE_TTL`].
pub fn set_tenant_disabled(store: &Store, tenant: &str, disabled: bool) -> Result<Option<Tenant>> {
    store.write(|tx| {
        let Some(mut t) = lookup(tx, tenant)? else { return Ok(None) };
        t.disabled = disabled;
        tx.update_tenant(&t)?;
        Ok(Some(t))
    })
}

/// Replaces an access key by a new one of the same tenant in one transaction (the old one stops working at once,
/// on other servers within [`crate::KEY_CACHE_TTL`]); `None` if there is no such key. The new secret is returned
/// only here.
pub fn rotate_access_key(store: &Store, access_key_id: &str) -> Result<Option<AccessKey>> {
    let rotated = store.write(|tx| {
        let Some(old) = tx.access_key(access_key_id)? else { return Ok(None) };
        let new = new_access_key(&old.tenant_id);
        tx.insert_access_key(&new)?;
        tx.delete_access_key(access_key_id)?;
        Ok(Some(new))
    })?;
    if rotated.is_some() {
        store.forget_nonces(access_key_id)?;
    }
    Ok(rotated)
}

/// What [`delete_tenant`] did.
#[derive(Debug)]
pub enum TenantDeletion {
    NoSuchTenant,
    /// Nothing was deleted: the tenant still holds these (kind -> count); delete them through the APIs first.
    HoldsResources(BTreeMap<String, i64>),
    Deleted(Tenant),
}

/// Deletes a tenant (by id or name) that holds no resources, with its keys, users and tokens; running servers
/// refuse its keys within [`crate::KEY_CACHE_TTL`]. A tenant that still holds resources is left as it is.
pub fn delete_tenant(store: &Store, tenant: &str) -> Result<TenantDeletion> {
    let (outcome, keys) = store.write(|tx| {
        let Some(t) = lookup(tx, tenant)? else { return Ok((TenantDeletion::NoSuchTenant, Vec::new())) };
        let usage = tx.tenant_usage(&t.id)?;
        if !usage.is_empty() {
            return Ok((TenantDeletion::HoldsResources(usage), Vec::new()));
        }
        let keys = tx.delete_tenant(&t.id)?;
        Ok((TenantDeletion::Deleted(t), keys))
    })?;
    for key in &keys {
        store.forget_nonces(key)?;
    }
    Ok(outcome)
}
