//! Tenants and their access keys (stored beside the resources, not as resources).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// Region -> the tenant's project id there, for dialects that scope requests by project.
    pub projects: BTreeMap<String, String>,
    pub created_at: i64,
}

impl Tenant {
    /// The region a project id of this tenant stands for.
    pub fn region_of_project(&self, project_id: &str) -> Option<&str> {
        self.projects.iter().find(|(_, p)| p.as_str() == project_id).map(|(r, _)| r.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    /// Needed in clear to verify HMAC signatures; lives only in the store, never logged.
    pub secret: Secret,
    pub tenant_id: String,
    pub created_at: i64,
}
