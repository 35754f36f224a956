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
    let access_key = AccessKey {
        id: format!("LTAI{}", random_secret(20)),
        secret: Secret::new(random_secret(30)),
        tenant_id: tenant.id.clone(),
        created_at: now_ms(),
    };
    store.write(|tx| {
        tx.insert_tenant(&tenant)?;
        tx.insert_access_key(&access_key)
    })?;
    Ok(CreatedTenant { tenant, access_key })
}
