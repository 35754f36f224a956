//! The one list of actions this dialect serves. The list produces the `Action` enum, its wire names and the
//! dispatch, so an action cannot be listed without a handler (and a handler is typed: parameters in, a
//! `Serialize` response out).

use openvgw_control::{Ctx, Service};
use openvgw_core::model::Scope;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{from_core, WireError};
use crate::handlers;
use crate::params::Params;

macro_rules! actions {
    ($($name:ident => $module:ident :: $handler:ident),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($name),+
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$name),+];

            /// The wire name (`Action=` / `x-acs-action`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$name => stringify!($name)),+
                }
            }
        }

        /// Runs one action (on a blocking thread: the store is synchronous).
        pub(crate) fn dispatch(call: &Call) -> Result<Reply, WireError> {
            match call.action {
                $(Action::$name => reply(handlers::$module::$handler(call)?)),+
            }
        }
    };
}

actions! {
    CreateVpnGateway => gateways::create,
    ModifyVpnGatewayAttribute => gateways::modify,
    DescribeVpnGateways => gateways::describe_all,
    DescribeVpnGateway => gateways::describe,
    DeleteVpnGateway => gateways::delete,
    TagResources => tags::tag,
    ListTagResources => tags::list,
    UnTagResources => tags::untag,
    AssociateVpnGatewayWithCertificate => certificates::associate,
    DissociateVpnGatewayWithCertificate => certificates::dissociate,
    ListVpnCertificateAssociations => certificates::list,
    CreateCustomerGateway => customer_gateways::create,
    ModifyCustomerGatewayAttribute => customer_gateways::modify,
    DescribeCustomerGateways => customer_gateways::describe_all,
    DescribeCustomerGateway => customer_gateways::describe,
    DeleteCustomerGateway => customer_gateways::delete,
    CreateVpnRouteEntry => routes::create_destination,
    CreateVpnPbrRouteEntry => routes::create_policy,
    PublishVpnRouteEntry => routes::publish,
    DescribeVpnRouteEntries => routes::describe_destination,
    DescribeVpnPbrRouteEntries => routes::describe_policy,
    ModifyVpnRouteEntryWeight => routes::modify_destination_weight,
    ModifyVpnPbrRouteEntryWeight => routes::modify_policy_weight,
    DeleteVpnRouteEntry => routes::delete_destination,
    DeleteVpnPbrRouteEntry => routes::delete_policy,
    CreateVpnConnection => connections::create,
    ModifyVpnConnectionAttribute => connections::modify,
    DescribeVpnConnections => connections::describe_all,
    DescribeVpnConnection => connections::describe,
    DownloadVpnConnectionConfig => connections::download_config,
    DeleteVpnConnection => connections::delete,
    CreateSslVpnServer => ssl::create_server,
    ModifySslVpnServer => ssl::modify_server,
    DescribeSslVpnServers => ssl::describe_servers,
    DeleteSslVpnServer => ssl::delete_server,
    CreateSslVpnClientCert => ssl::create_cert,
    ModifySslVpnClientCert => ssl::rename_cert,
    DescribeSslVpnClientCerts => ssl::describe_certs,
    DescribeSslVpnClientCert => ssl::describe_cert,
    DescribeVpnSslServerLogs => ssl::server_logs,
    DeleteSslVpnClientCert => ssl::delete_cert,
    CreateIpsecServer => ipsec_servers::create,
    ListIpsecServers => ipsec_servers::list,
    UpdateIpsecServer => ipsec_servers::update,
    DeleteIpsecServer => ipsec_servers::delete,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Self::ALL.iter().copied().find(|a| a.name() == s)
    }

    /// Whether the answer depends on nothing but stored state and the parameters (no clock, no live data-plane
    /// state), so that it may be kept while the store is unchanged (see [`openvgw_api::ReadCache`]).
    pub fn answer_is_stored_state(self) -> bool {
        matches!(
            self,
            Action::DescribeVpnGateways
                | Action::DescribeVpnGateway
                | Action::DescribeCustomerGateways
                | Action::DescribeCustomerGateway
                | Action::DescribeVpnRouteEntries
                | Action::DescribeVpnPbrRouteEntries
                | Action::ListTagResources
        )
    }

    /// Tag operations report any missing resource as `InvalidResourceId.NotFound`.
    pub fn is_tagging(self) -> bool {
        matches!(self, Action::TagResources | Action::UnTagResources | Action::ListTagResources)
    }
}

/// A handler's answer as JSON text (an object), before the request id is added.
pub struct Reply(String);

impl Reply {
    /// `body` serialised (what a handler's response becomes).
    pub fn of<T: Serialize>(body: &T) -> Result<Reply, WireError> {
        reply(body)
    }

    /// The text, to be kept (see [`openvgw_api::ReadCache`]).
    pub(crate) fn into_text(self) -> String {
        self.0
    }

    /// A kept answer, with room for the request id that follows (so that adding it does not copy the text again).
    pub(crate) fn kept(text: &str) -> Reply {
        let mut own = String::with_capacity(text.len() + 64);
        own.push_str(text);
        Reply(own)
    }

    /// The answer with `RequestId` as its last member: appended to the text, so a listing is serialised once. (Last,
    /// as the tree this replaced put it; no handler's response has a member of that name.)
    pub(crate) fn with_request_id(self, request_id: &str) -> String {
        let id = Value::from(request_id).to_string();
        let mut text = self.0;
        if !(text.starts_with('{') && text.ends_with('}')) {
            return format!("{{\"RequestId\":{id}}}");
        }
        text.pop();
        if text.trim_end() != "{" {
            text.push(',');
        }
        text.push_str("\"RequestId\":");
        text.push_str(&id);
        text.push('}');
        text
    }

    /// The answer as a tree (for XML, which few clients ask for).
    pub(crate) fn to_value(&self) -> Value {
        match serde_json::from_str::<Value>(&self.0) {
            Ok(v) if v.is_object() => v,
            _ => Value::Object(Default::default()),
        }
    }
}

fn reply<T: Serialize>(body: T) -> Result<Reply, WireError> {
    // Straight to text: an intermediate `Value` cost about a tenth of a listing's CPU.
    serde_json::to_string(&body).map(Reply).map_err(|e| {
        tracing::error!(error = %e, "response did not serialise");
        WireError::internal()
    })
}

/// Parameters that identify or sign a request rather than describe the operation (left out of idempotency hashes).
const NON_BUSINESS: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "ClientToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
];

/// One authenticated request on its way to a handler.
pub struct Call<'a> {
    pub svc: &'a Service,
    pub action: Action,
    pub scope: &'a Scope,
    pub p: &'a Params,
}

impl Call<'_> {
    /// Maps a core error with this action's exceptions.
    pub fn core(&self, e: openvgw_core::Error) -> WireError {
        from_core(&e, self.action)
    }

    /// The parameters that describe the operation, sorted.
    fn business_params(&self) -> Vec<(&String, &String)> {
        let mut pairs: Vec<(&String, &String)> =
            self.p.pairs().filter(|(k, _)| !NON_BUSINESS.contains(&k.as_str())).collect();
        pairs.sort();
        pairs
    }

    /// What a kept answer of this call is found by: everything it depends on (the format is not: a kept answer
    /// is JSON text, and XML is made from it).
    pub fn read_key(&self) -> String {
        let head = ["aliyun", self.scope.tenant_id.as_str(), self.scope.region.as_str(), self.action.name()];
        let params = self.business_params().into_iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
        openvgw_api::ReadCache::key(head.into_iter().chain(params))
    }

    /// The context of a mutation: scope, client token, a digest of the business parameters, DryRun.
    pub fn ctx(&self) -> Result<Ctx, WireError> {
        let client_token = self.p.string("ClientToken");
        if let Some(t) = &client_token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(WireError::invalid("ClientToken", "at most 64 ASCII characters"));
            }
        }
        let mut h = Sha256::new();
        for (k, v) in self.business_params() {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        Ok(Ctx {
            scope: self.scope.clone(),
            operation: self.action.name().to_string(),
            client_token,
            params_hash: hex::encode(h.finalize()),
            dry_run: self.p.dry_run()?,
            ids: openvgw_core::IdStyle::Prefixed,
            queue_changes: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_its_name() {
        assert_eq!(Action::ALL.len(), 45, "the seed's 43 actions, DeleteVpnGateway and DescribeSslVpnClientCert");
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(*a));
        }
        assert_eq!(Action::parse("createvpngateway"), None, "action names are case-sensitive");
    }

    #[test]
    fn the_request_id_is_spliced_into_every_reply_shape() {
        let text = |v: &str| Reply(v.to_string()).with_request_id("ID-\"1\"");
        let parse = |t: String| serde_json::from_str::<Value>(&t).expect("valid JSON");
        assert_eq!(parse(text("{}")), serde_json::json!({"RequestId": "ID-\"1\""}));
        assert_eq!(parse(text("{ }")), serde_json::json!({"RequestId": "ID-\"1\""}));
        assert_eq!(parse(text("null")), serde_json::json!({"RequestId": "ID-\"1\""}));
        let listed = parse(text(r#"{"TotalCount":1,"VpnGateways":{"VpnGateway":[{"Name":"a"}]}}"#));
        assert_eq!(listed["RequestId"], "ID-\"1\"");
        assert_eq!(listed["VpnGateways"]["VpnGateway"][0]["Name"], "a");
        assert_eq!(listed.as_object().map(|o| o.len()), Some(3));
        // XML goes through a tree.
        assert_eq!(Reply("{\"A\":1}".into()).to_value(), serde_json::json!({"A": 1}));
        assert_eq!(Reply("null".into()).to_value(), serde_json::json!({}));
    }
}
