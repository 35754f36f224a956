//! The resource model: what the store persists and every dialect renders, in vendor-neutral terms.
//!
//! Every resource belongs to one tenant and one region ([`Scope`]); lookups always filter on both, so another
//! tenant's or region's resource is simply not found. Attributes only one vendor has (Alibaba's charge type,
//! Huawei's enterprise project) live in [`Extensions`], typed by the dialect that owns them.

mod client;
mod gateway;
mod site;
mod tenant;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use client::*;
pub use gateway::*;
pub use site::*;
pub use tenant::*;

use crate::ids::Kind;

/// Scope every stored resource lives in. Built once per request by the dialect, after it checked that it serves
/// the region; operations trust it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub tenant_id: String,
    pub region: String,
}

impl Scope {
    pub fn new(tenant_id: impl Into<String>, region: impl Into<String>) -> Self {
        Scope { tenant_id: tenant_id.into(), region: region.into() }
    }
}

/// Secondary keys the store indexes for lookups and filters. Typed, so that a filter cannot name a field that no
/// longer exists: each resource says what it indexes under which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    /// A VPC id given by the user (gateways, VPC records).
    VpcId,
    /// A customer gateway's identity (`ip:<addr>` / `fqdn:<name>`), unique per scope.
    PeerIdentity,
    /// The customer gateway a connection goes to.
    CustomerGateway,
    /// The connection a route points at.
    NextHop,
    RouteDest,
    CertificateId,
    CertificateType,
    /// The user group a user belongs to or a policy applies to.
    UserGroup,
    /// What a gateway serves (`site` / `client` / `both`), for dialects that list them apart.
    GatewayRole,
    /// The gateway a record belongs to when it is not its parent (jobs, monitors).
    GatewayId,
    /// The enterprise project (or other grouping) a resource belongs to.
    ResourceGroup,
}

impl Index {
    pub fn as_str(self) -> &'static str {
        match self {
            Index::VpcId => "vpc_id",
            Index::PeerIdentity => "peer_identity",
            Index::CustomerGateway => "customer_gateway",
            Index::NextHop => "next_hop",
            Index::RouteDest => "route_dest",
            Index::CertificateId => "certificate_id",
            Index::CertificateType => "certificate_type",
            Index::UserGroup => "user_group",
            Index::GatewayRole => "gateway_role",
            Index::GatewayId => "gateway_id",
            Index::ResourceGroup => "resource_group",
        }
    }
}

/// Implemented by every stored resource type.
/// `Clone + Sync`: the store keeps decoded documents and hands out copies.
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn scope(&self) -> &Scope;
    /// The owning resource in the tree of [`Kind::children`] (gateway of a connection, server of a user, …).
    fn parent_id(&self) -> Option<&str> {
        None
    }
    fn name(&self) -> &str {
        ""
    }
    /// Secondary keys (see [`Index`]).
    fn index(&self) -> Vec<(Index, String)> {
        Vec::new()
    }
    fn created_at(&self) -> i64;
}

/// Implements [`Resource`] for a struct with `id`, `scope` and `created_at` fields.
macro_rules! resource {
    ($t:ty, $kind:expr $(, parent = $parent:ident)? $(, name = $name:ident)?) => {
        impl $crate::model::Resource for $t {
            const KIND: $crate::ids::Kind = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn scope(&self) -> &$crate::model::Scope {
                &self.scope
            }
            fn created_at(&self) -> i64 {
                self.created_at
            }
            $(fn parent_id(&self) -> Option<&str> {
                Some(&self.$parent)
            })?
            $(fn name(&self) -> &str {
                &self.$name
            })?
            fn index(&self) -> Vec<($crate::model::Index, String)> {
                self.index_keys()
            }
        }
    };
}
pub(crate) use resource;

/// Vendor-only attributes of a resource, one typed record per dialect, opaque to everything else.
///
/// Shared behind an `Arc` (copied on write): resources are cloned out of the store's cache of decoded documents,
/// and a deep copy of these trees was most of such a clone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extensions(std::sync::Arc<BTreeMap<String, serde_json::Value>>);

impl Serialize for Extensions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(|m| Extensions(std::sync::Arc::new(m)))
    }
}

/// A dialect's record in [`Extensions`].
pub trait Extension: Serialize + DeserializeOwned + Default {
    /// Unique per dialect and resource kind, e.g. `aliyun`.
    const KEY: &'static str;
}

impl Extensions {
    pub fn of<E: Extension>(e: &E) -> Self {
        let mut x = Extensions::default();
        x.set(e);
        x
    }

    /// The dialect's record; its default when the resource was created through another dialect.
    pub fn get<E: Extension>(&self) -> E {
        self.0.get(E::KEY).and_then(|v| E::deserialize(v).ok()).unwrap_or_default()
    }

    pub fn set<E: Extension>(&mut self, e: &E) {
        if let Ok(v) = serde_json::to_value(e) {
            std::sync::Arc::make_mut(&mut self.0).insert(E::KEY.to_string(), v);
        }
    }
}

/// A user tag on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// `a,b,c` for a list of blocks (the form several APIs show them in).
pub fn join_nets(nets: &[ipnet::Ipv4Net]) -> String {
    nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
