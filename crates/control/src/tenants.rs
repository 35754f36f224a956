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
    store.read(|tx| match tx.tenant(tenant)? {
        Some(t) => Ok(Some(t)),
        None => tx.tenant_by_name(tenant),
    })
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
