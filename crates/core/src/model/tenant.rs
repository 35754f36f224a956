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
    /// Set by `openvgw tenant disable`: its keys and tokens are refused until it is enabled again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
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

/// A user who signs in with a password to get a token (token auth), within one tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IamUser {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// PHC string (argon2id).
    pub password_hash: Secret,
    pub created_at: i64,
}

/// A token issued to an IAM user, scoped to one region (project). Only a digest of the token is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    /// Hex SHA-256 of the token.
    pub digest: String,
    pub tenant_id: String,
    pub user_id: String,
    pub region: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Someone who runs the service (created by `openvgw admin operator`): signs in to the console with a password and
/// sees every tenant and the data plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operator {
    pub name: String,
    /// PHC string (argon2id).
    pub password_hash: Secret,
    pub created_at: i64,
}

/// Who a console session acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ConsolePrincipal {
    /// Signed in with an access key pair: that tenant's resources, as its API calls would see them.
    Tenant { tenant_id: String, access_key_id: String },
    /// An operator: every tenant, and the data plane's health.
    Operator { name: String },
}

/// A signed-in console session. Only a digest of its cookie is stored, so a copy of the store signs nobody in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the session cookie's value.
    pub digest: String,
    pub principal: ConsolePrincipal,
    /// The token every form and state-changing request must carry (CSRF).
    pub csrf: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A gateway host (`openvgw agent`) the control plane certified: it joined with a one-time token and attaches with
/// the certificate of `serial` (lowercase hex) until revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    pub serial: String,
    pub joined_at: i64,
    pub revoked_at: Option<i64>,
}

/// Which gateway host holds a gateway, and the gateway's VPC (a VPC's gateways are kept on one host while it has
/// room: each host routes the VPCs it serves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPlacement {
    pub gateway_id: String,
    pub agent_id: String,
    pub vpc_id: String,
}
