//! Tenants and their access keys.

use std::collections::BTreeMap;

use openvgw_core::config::Config;
use openvgw_core::ids::{random_secret, random_token};
use openvgw_core::model::{AccessKey, Tenant};
use openvgw_core::{now_ms, Kind, Result};
use openvgw_store::Store;

/// A new tenant with one access key; the secret is returned only here.
#[derive(Debug, Clone)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub access_key: AccessKey,
}

pub fn create_tenant(store: &Store, config: &Config, name: &str) -> Result<CreatedTenant> {
    let tenant = Tenant {
        id: Kind::Tenant.new_id(),
        name: name.to_string(),
        // Huawei project ids are 32 lower-case hex-like characters.
        projects: config.regions.huawei.iter().map(|r| (r.clone(), random_token(32))).collect::<BTreeMap<_, _>>(),
        created_at: now_ms(),
    };
    let access_key = AccessKey {
        id: format!("LTAI{}", random_secret(20)),
        secret: random_secret(30),
        tenant_id: tenant.id.clone(),
        created_at: now_ms(),
    };
    store.write(|tx| {
        tx.insert_tenant(&tenant)?;
        tx.insert_access_key(&access_key)
    })?;
    Ok(CreatedTenant { tenant, access_key })
}

/// Looks up an access key (every request; no cache, so keys created by another process work at once).
pub fn access_key(store: &Store, id: &str) -> Result<Option<AccessKey>> {
    store.read(|tx| tx.access_key(id))
}
