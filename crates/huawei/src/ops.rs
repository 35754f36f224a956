//! The one list of operations this dialect serves. The list produces the `Op` enum with its SDK names, the route
//! table, the typed dispatch (request body type in, response type out, the documented success status) and the
//! OpenAPI document — so an operation cannot be routed without a handler, and a handler cannot answer with a type
//! the document does not describe.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::handlers::{connections, customer_gateways, gateways, monitors, p2c, quotas, servers, tags, users};
use crate::route::Route;
use crate::{iam, Reply};

/// Where an operation's errors come from: the reference gives client-to-site operations their own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Site-to-cloud gateways, customer gateways, connections, monitors, quotas, tags.
    S2c,
    /// Client-to-site gateways, VPN servers, client CAs, users, groups, access policies.
    P2c,
    /// The IAM calls (token sign-in, project lookup).
    Iam,
}

/// The body of an operation that takes none: whatever is sent is ignored (the SDK sends nothing, some tools `{}`).
#[derive(Debug, Default, JsonSchema)]
pub struct NoBody;

impl<'de> Deserialize<'de> for NoBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NoBody)
    }
}

/// The answer of an operation documented with an empty body (`204 No Content`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct NoContent;

/// An answer that carries only the request id.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequestIdOnly {
    pub request_id: String,
}

macro_rules! ops {
    ($($variant:ident = $name:literal : $method:literal $path:literal, $family:ident, $status:literal,
        $module:ident :: $handler:ident ($body:ty) -> $resp:ty;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op {
            $($variant),+
        }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$variant),+];

            /// The SDK's name of the operation (`VpnClient.<name>`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name),+
                }
            }

            pub fn family(self) -> Family {
                match self {
                    $(Op::$variant => Family::$family),+
                }
            }

            /// The documented success status.
            pub fn status(self) -> u16 {
                match self {
                    $(Op::$variant => $status),+
                }
            }

            pub fn method(self) -> &'static str {
                match self {
                    $(Op::$variant => $method),+
                }
            }

            pub fn path(self) -> &'static str {
                match self {
                    $(Op::$variant => $path),+
                }
            }
        }

        pub const ROUTES: &[Route<Op>] = &[
            $(Route { method: $method, template: $path, target: Op::$variant }),+
        ];

        /// Runs one operation (on a blocking thread: the store is synchronous).
        pub(crate) fn dispatch(call: &Call) -> Result<Reply, HwError> {
            match call.op {
                $(Op::$variant => {
                    let body: $body = call.body()?;
                    let out: $resp = $module::$handler(call, body)?;
                    reply(call, $status, out)
                }),+
            }
        }

        /// Decodes `bytes` as the operation's request body, as `dispatch` does before the handler runs.
        pub(crate) fn decode_body(op: Op, bytes: &[u8]) -> Result<(), HwError> {
            match op {
                $(Op::$variant => crate::call::parse_body::<$body>(bytes).map(drop)),+
            }
        }

        /// Request and response schemas of every operation, for the OpenAPI document.
        pub(crate) fn schemas(g: &mut schemars::SchemaGenerator) -> Vec<(Op, Option<schemars::Schema>, schemars::Schema)> {
            vec![$((
                Op::$variant,
                (std::any::type_name::<$body>() != std::any::type_name::<NoBody>())
                    .then(|| g.subschema_for::<$body>()),
                g.subschema_for::<$resp>(),
            )),+]
        }
    };
}

ops! {
    // Site-to-cloud VPN gateways.
    CreateVgw = "create_vgw": "POST" "/v5/{project_id}/vpn-gateways", S2c, 201,
        gateways::create(gateways::CreateBody) -> gateways::Created;
    ShowVgw = "show_vgw": "GET" "/v5/{project_id}/vpn-gateways/{vgw_id}", S2c, 200,
        gateways::show(NoBody) -> gateways::Shown;
    ListVgws = "list_vgws": "GET" "/v5/{project_id}/vpn-gateways", S2c, 200,
        gateways::list(NoBody) -> gateways::Listed;
    UpdateVgw = "update_vgw": "PUT" "/v5/{project_id}/vpn-gateways/{vgw_id}", S2c, 200,
        gateways::update(gateways::UpdateBody) -> gateways::Updated;
    UpdatePostpaidVgwSpecification = "update_postpaid_vgw_specification":
        "POST" "/v5/{project_id}/vpn-gateways/{vgw_id}/update-specification", S2c, 200,
        gateways::update_specification(gateways::SpecificationBody) -> gateways::Updated;
    DeleteVgw = "delete_vgw": "DELETE" "/v5/{project_id}/vpn-gateways/{vgw_id}", S2c, 204,
        gateways::delete(NoBody) -> NoContent;
    ListAvailabilityZones = "list_availability_zones": "GET" "/v5/{project_id}/vpn-gateways/availability-zones", S2c,
        200, gateways::availability_zones(NoBody) -> gateways::Zones;
    ListExtendedAvailabilityZones = "list_extended_availability_zones":
        "GET" "/v5.1/{project_id}/vpn-gateways/availability-zones", S2c, 200,
        gateways::extended_availability_zones(NoBody) -> gateways::ExtendedZones;
    ShowVpnGatewayRoutingTable = "show_vpn_gateway_routing_table":
        "GET" "/v5/{project_id}/vpn-gateways/{vgw_id}/routing-table", S2c, 200,
        gateways::routing_table(NoBody) -> gateways::RoutingTable;
    CreateVgwCertificate = "create_vgw_certificate": "POST" "/v5/{project_id}/vpn-gateways/{vgw_id}/certificate", S2c,
        201, gateways::upload_certificate(gateways::CertificateBody) -> gateways::CertificateConfig;
    ShowVpnGatewayCertificate = "show_vpn_gateway_certificate":
        "GET" "/v5/{project_id}/vpn-gateways/{vgw_id}/certificate", S2c, 200,
        gateways::show_certificate(NoBody) -> gateways::CertificateShown;
    UpdateVgwCertificate = "update_vgw_certificate":
        "PUT" "/v5/{project_id}/vpn-gateways/{vgw_id}/certificate/{certificate_id}", S2c, 200,
        gateways::update_certificate(gateways::CertificateUpdateBody) -> gateways::CertificateConfig;
    ListVpnGatewayCertificates = "list_vpn_gateway_certificates": "GET" "/v5/{project_id}/vpn-gateway-certificates",
        S2c, 200, gateways::list_certificates(NoBody) -> gateways::CertificateList;
    UpgradeVpnGateway = "upgrade_vpn_gateway": "POST" "/v5/{project_id}/vpn-gateways/{vgw_id}/upgrade", S2c, 202,
        gateways::upgrade(gateways::UpgradeBody) -> gateways::Upgraded;
    ListVpnGatewayJobs = "list_vpn_gateway_jobs": "GET" "/v5/{project_id}/vpn-gateways/jobs", S2c, 200,
        gateways::list_jobs(NoBody) -> gateways::JobList;
    DeleteVpnGatewayJob = "delete_vpn_gateway_job": "DELETE" "/v5/{project_id}/vpn-gateways/jobs/{job_id}", S2c, 204,
        gateways::delete_job(NoBody) -> NoContent;

    // Customer gateways.
    CreateCgw = "create_cgw": "POST" "/v5/{project_id}/customer-gateways", S2c, 201,
        customer_gateways::create(customer_gateways::CreateBody) -> customer_gateways::One;
    ShowCgw = "show_cgw": "GET" "/v5/{project_id}/customer-gateways/{customer_gateway_id}", S2c, 200,
        customer_gateways::show(NoBody) -> customer_gateways::One;
    ListCgws = "list_cgws": "GET" "/v5/{project_id}/customer-gateways", S2c, 200,
        customer_gateways::list(NoBody) -> customer_gateways::Listed;
    UpdateCgw = "update_cgw": "PUT" "/v5/{project_id}/customer-gateways/{customer_gateway_id}", S2c, 200,
        customer_gateways::update(customer_gateways::UpdateBody) -> customer_gateways::One;
    DeleteCgw = "delete_cgw": "DELETE" "/v5/{project_id}/customer-gateways/{customer_gateway_id}", S2c, 204,
        customer_gateways::delete(NoBody) -> NoContent;

    // VPN connections.
    CreateVpnConnection = "create_vpn_connection": "POST" "/v5/{project_id}/vpn-connection", S2c, 201,
        connections::create(connections::CreateBody) -> connections::Created;
    BatchCreateVpnConnection = "batch_create_vpn_connection": "POST" "/v5/{project_id}/vpn-connections/batch-create",
        S2c, 201, connections::batch_create(connections::BatchBody) -> connections::BatchCreated;
    ShowVpnConnection = "show_vpn_connection": "GET" "/v5/{project_id}/vpn-connection/{vpn_connection_id}", S2c, 200,
        connections::show(NoBody) -> connections::Shown;
    ListVpnConnections = "list_vpn_connections": "GET" "/v5/{project_id}/vpn-connection", S2c, 200,
        connections::list(NoBody) -> connections::Listed;
    UpdateVpnConnection = "update_vpn_connection": "PUT" "/v5/{project_id}/vpn-connection/{vpn_connection_id}", S2c,
        200, connections::update(connections::UpdateBody) -> connections::Updated;
    DeleteVpnConnection = "delete_vpn_connection": "DELETE" "/v5/{project_id}/vpn-connection/{vpn_connection_id}",
        S2c, 204, connections::delete(NoBody) -> NoContent;
    ShowVpnConnectionLog = "show_vpn_connection_log":
        "GET" "/v5/{project_id}/vpn-connection/{vpn_connection_id}/log", S2c, 200,
        connections::logs(NoBody) -> connections::Logs;
    ResetVpnConnection = "reset_vpn_connection": "POST" "/v5/{project_id}/vpn-connection/{vpn_connection_id}/reset",
        S2c, 200, connections::reset(NoBody) -> RequestIdOnly;
    ListConnectionIpsecSa = "list_connection_ipsec_sa":
        "GET" "/v5/{project_id}/vpn-connection/{vpn_connection_id}/ipsec-sa", S2c, 200,
        connections::ipsec_sas(NoBody) -> connections::SaList;
    ExportVpnConnectionPeerConfiguration = "export_vpn_connection_peer_configuration":
        "POST" "/v5/{project_id}/vpn-connection/{vpn_connection_id}/peer-configuration/export", S2c, 200,
        connections::export_peer_config(connections::ExportBody) -> connections::PeerConfig;
    ListPeerConfigurationSupportedDevices = "list_peer_configuration_supported_devices":
        "GET" "/v5/{project_id}/peer-configuration/supported-devices", S2c, 200,
        connections::supported_devices(NoBody) -> connections::Devices;

    // Connection monitors.
    CreateConnectionMonitor = "create_connection_monitor": "POST" "/v5/{project_id}/connection-monitors", S2c, 201,
        monitors::create(monitors::CreateBody) -> monitors::Created;
    ShowConnectionMonitor = "show_connection_monitor":
        "GET" "/v5/{project_id}/connection-monitors/{connection_monitor_id}", S2c, 200,
        monitors::show(NoBody) -> monitors::Shown;
    ListConnectionMonitors = "list_connection_monitors": "GET" "/v5/{project_id}/connection-monitors", S2c, 200,
        monitors::list(NoBody) -> monitors::Listed;
    DeleteConnectionMonitor = "delete_connection_monitor":
        "DELETE" "/v5/{project_id}/connection-monitors/{connection_monitor_id}", S2c, 204,
        monitors::delete(NoBody) -> NoContent;

    // Quotas and tags.
    ShowQuotasInfo = "show_quotas_info": "GET" "/v5/{project_id}/vpn/quotas", S2c, 200,
        quotas::show(NoBody) -> quotas::Shown;
    ListResourcesByTags = "list_resources_by_tags":
        "POST" "/v5/{project_id}/{resource_type}/resource-instances/filter", S2c, 200,
        tags::filter(tags::FilterBody) -> tags::Filtered;
    CountResourcesByTags = "count_resources_by_tags":
        "POST" "/v5/{project_id}/{resource_type}/resource-instances/count", S2c, 200,
        tags::count(tags::FilterBody) -> tags::Counted;
    BatchCreateResourceTags = "batch_create_resource_tags":
        "POST" "/v5/{project_id}/{resource_type}/{resource_id}/tags/create", S2c, 204,
        tags::create(tags::TagsBody) -> NoContent;
    BatchDeleteResourceTags = "batch_delete_resource_tags":
        "POST" "/v5/{project_id}/{resource_type}/{resource_id}/tags/delete", S2c, 204,
        tags::delete(tags::TagsBody) -> NoContent;
    ShowResourceTags = "show_resource_tags": "GET" "/v5/{project_id}/{resource_type}/{resource_id}/tags", S2c, 200,
        tags::show(NoBody) -> tags::ResourceTags;
    ListProjectTags = "list_project_tags": "GET" "/v5/{project_id}/{resource_type}/tags", S2c, 200,
        tags::project(NoBody) -> tags::ProjectTags;

    // Client-to-site (P2C) gateways.
    CreateP2cVgw = "create_p2c_vgw": "POST" "/v5/{project_id}/p2c-vpn-gateways", P2c, 201,
        p2c::create(p2c::CreateBody) -> p2c::IdOnly;
    ShowP2cVgw = "show_p2c_vgw": "GET" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}", P2c, 200,
        p2c::show(NoBody) -> p2c::Shown;
    ListP2cVgws = "list_p2c_vgws": "GET" "/v5/{project_id}/p2c-vpn-gateways", P2c, 200,
        p2c::list(NoBody) -> p2c::Listed;
    UpdateP2cVgw = "update_p2c_vgw": "PUT" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}", P2c, 200,
        p2c::update(p2c::UpdateBody) -> p2c::IdOnly;
    DeleteP2cVgw = "delete_p2c_vgw": "DELETE" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}", P2c, 204,
        p2c::delete(NoBody) -> NoContent;
    ListP2cVgwAvailabilityZones = "list_p2c_vgw_availability_zones":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/availability-zones", P2c, 200,
        p2c::availability_zones(NoBody) -> p2c::Zones;
    ListP2cVgwConnections = "list_p2c_vgw_connections":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/connections", P2c, 200,
        p2c::connections(NoBody) -> p2c::Connections;
    DeleteP2cVgwConnection = "delete_p2c_vgw_connection":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/connections/{connection_id}/disconnect", P2c, 200,
        p2c::disconnect(NoBody) -> RequestIdOnly;
    UpgradeP2cVpnGateway = "upgrade_p2c_vpn_gateway": "POST" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/upgrade",
        P2c, 202, gateways::upgrade(gateways::UpgradeBody) -> gateways::Upgraded;
    ListP2cVpnGatewayJobs = "list_p2c_vpn_gateway_jobs": "GET" "/v5/{project_id}/p2c-vpn-gateways/jobs", P2c, 200,
        gateways::list_jobs(NoBody) -> gateways::JobList;
    DeleteP2cVpnGatewayJob = "delete_p2c_vpn_gateway_job":
        "DELETE" "/v5/{project_id}/p2c-vpn-gateways/jobs/{job_id}", P2c, 204,
        gateways::delete_job(NoBody) -> NoContent;
    UpdateVpnConnectionsLogConfig = "update_vpn_connections_log_config":
        "PUT" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/log-config", P2c, 200,
        p2c::put_log_config(p2c::LogConfigBody) -> p2c::LogConfigShown;
    ShowVpnConnectionsLogConfig = "show_vpn_connections_log_config":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/log-config", P2c, 200,
        p2c::show_log_config(NoBody) -> p2c::LogConfigShown;
    DeleteVpnConnectionsLogConfig = "delete_vpn_connections_log_config":
        "DELETE" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/log-config", P2c, 204,
        p2c::delete_log_config(NoBody) -> NoContent;

    // VPN servers and client CA certificates.
    CreateVpnServer = "create_vpn_server": "POST" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/vpn-servers", P2c,
        201, servers::create(servers::CreateBody) -> servers::IdOnly;
    ListVpnServersByVgw = "list_vpn_servers_by_vgw":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/{p2c_vgw_id}/vpn-servers", P2c, 200,
        servers::list_by_gateway(NoBody) -> servers::Listed;
    ListVpnServersByProject = "list_vpn_servers_by_project": "GET" "/v5/{project_id}/vpn-servers", P2c, 200,
        servers::list_by_project(NoBody) -> servers::Listed;
    UpdateVpnServer = "update_vpn_server": "PUT" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}", P2c,
        200, servers::update(servers::UpdateBody) -> RequestIdOnly;
    ExportClientConfig = "export_client_config":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/client-config/export", P2c, 200,
        servers::export_client_config(servers::ExportBody) -> servers::ClientConfig;
    CheckClientCaCertificate = "check_client_ca_certificate":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/client-ca-certificates/check", P2c, 200,
        servers::check_client_ca(servers::ClientCaBody) -> servers::Checked;
    ImportClientCa = "import_client_ca":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/client-ca-certificates", P2c, 201,
        servers::import_client_ca(servers::ClientCaBody) -> servers::IdOnlyCa;
    ShowClientCa = "show_client_ca":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/client-ca-certificates/{client_ca_certificate_id}",
        P2c, 200, servers::show_client_ca(NoBody) -> servers::ClientCaShown;
    UpdateClientCa = "update_client_ca":
        "PUT" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/client-ca-certificates/{client_ca_certificate_id}",
        P2c, 200, servers::update_client_ca(servers::ClientCaRenameBody) -> RequestIdOnly;
    DeleteClientCa = "delete_client_ca":
        "DELETE" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/client-ca-certificates/{client_ca_certificate_id}",
        P2c, 204, servers::delete_client_ca(NoBody) -> NoContent;

    // Users, user groups and access policies.
    CreateVpnUser = "create_vpn_user": "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users",
        P2c, 201, users::create(users::CreateBody) -> users::UserIdOnly;
    BatchCreateVpnUsers = "batch_create_vpn_users":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/batch-create", P2c, 201,
        users::batch_create(users::BatchCreateBody) -> users::BatchCreated;
    ShowVpnUser = "show_vpn_user":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/{user_id}", P2c, 200,
        users::show(NoBody) -> users::UserShown;
    ListVpnUsers = "list_vpn_users": "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users",
        P2c, 200, users::list(NoBody) -> users::UserList;
    UpdateVpnUser = "update_vpn_user":
        "PUT" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/{user_id}", P2c, 200,
        users::update(users::UpdateBody) -> users::UserShown;
    DeleteVpnUser = "delete_vpn_user":
        "DELETE" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/{user_id}", P2c, 204,
        users::delete(NoBody) -> NoContent;
    BatchDeleteVpnUsers = "batch_delete_vpn_users":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/batch-delete", P2c, 200,
        users::batch_delete(users::UserRefsBody) -> RequestIdOnly;
    UpdateVpnUserPassword = "update_vpn_user_password":
        "PUT" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/{user_id}/password", P2c, 200,
        users::change_password(users::PasswordBody) -> RequestIdOnly;
    ResetVpnUserPassword = "reset_vpn_user_password":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/users/{user_id}/reset-password", P2c,
        200, users::reset_password(users::ResetBody) -> RequestIdOnly;
    CreateVpnUserGroup = "create_vpn_user_group":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups", P2c, 201,
        users::create_group(users::GroupCreateBody) -> users::GroupIdOnly;
    ShowVpnUserGroup = "show_vpn_user_group":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups/{group_id}", P2c, 200,
        users::show_group(NoBody) -> users::GroupShown;
    ListVpnUserGroups = "list_vpn_user_groups":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups", P2c, 200,
        users::list_groups(NoBody) -> users::GroupList;
    UpdateVpnUserGroup = "update_vpn_user_group":
        "PUT" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups/{group_id}", P2c, 200,
        users::update_group(users::GroupUpdateBody) -> users::GroupShown;
    DeleteVpnUserGroup = "delete_vpn_user_group":
        "DELETE" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups/{group_id}", P2c, 204,
        users::delete_group(NoBody) -> NoContent;
    AddVpnUsersToGroup = "add_vpn_users_to_group":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups/{group_id}/add-users", P2c, 201,
        users::add_to_group(users::UserRefsBody) -> RequestIdOnly;
    RemoveVpnUsersFromGroup = "remove_vpn_users_from_group":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups/{group_id}/remove-users", P2c,
        201, users::remove_from_group(users::UserRefsBody) -> RequestIdOnly;
    ListVpnUsersInGroup = "list_vpn_users_in_group":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/groups/{group_id}/users", P2c, 200,
        users::list_in_group(NoBody) -> users::MemberList;
    CreateVpnAccessPolicy = "create_vpn_access_policy":
        "POST" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/access-policies", P2c, 201,
        users::create_policy(users::PolicyCreateBody) -> users::PolicyIdOnly;
    ShowVpnAccessPolicy = "show_vpn_access_policy":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/access-policies/{policy_id}", P2c, 200,
        users::show_policy(NoBody) -> users::PolicyShown;
    ListVpnAccessPolicies = "list_vpn_access_policies":
        "GET" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/access-policies", P2c, 200,
        users::list_policies(NoBody) -> users::PolicyList;
    UpdateVpnAccessPolicy = "update_vpn_access_policy":
        "PUT" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/access-policies/{policy_id}", P2c, 200,
        users::update_policy(users::PolicyUpdateBody) -> users::PolicyShown;
    DeleteVpnAccessPolicy = "delete_vpn_access_policy":
        "DELETE" "/v5/{project_id}/p2c-vpn-gateways/vpn-servers/{vpn_server_id}/access-policies/{policy_id}", P2c,
        204, users::delete_policy(NoBody) -> NoContent;

    // IAM: what the SDKs and tools call besides the VPN API.
    KeystoneCreateUserTokenByPassword = "keystone_create_user_token_by_password": "POST" "/v3/auth/tokens", Iam, 201,
        iam::create_token(iam::TokenBody) -> iam::TokenIssued;
    KeystoneListProjects = "keystone_list_projects": "GET" "/v3/projects", Iam, 200,
        iam::list_projects(NoBody) -> iam::Projects;
}

impl Op {
    /// Operations that need no credential (the password sign-in).
    pub fn anonymous(self) -> bool {
        self == Op::KeystoneCreateUserTokenByPassword
    }

    /// Whether the answer depends on nothing but stored state and the request (no clock, no live data-plane state),
    /// so that it may be kept while the store is unchanged (see `openvgw_api::ReadCache`).
    pub fn answer_is_stored_state(self) -> bool {
        matches!(self, Op::ListCgws | Op::ShowCgw | Op::ListVgws | Op::ShowVgw)
    }

    /// Operations of the VPN API proper (what the VPN SDK's `VpnClient` has).
    pub fn is_vpn(self) -> bool {
        self.family() != Family::Iam
    }
}

fn reply<T: Serialize>(call: &Call, status: u16, out: T) -> Result<Reply, HwError> {
    let headers = std::mem::take(&mut *call.extra_headers.borrow_mut());
    if status == 204 {
        return Ok(Reply { status, body: None, headers });
    }
    // Straight to text: an intermediate `Value` cost about a tenth of a listing's CPU.
    let body = serde_json::to_string(&out).map_err(|e| {
        tracing::error!(error = %e, "response did not serialise");
        HwError::internal()
    })?;
    Ok(Reply { status, body: (body != "null").then_some(body), headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_operation_is_served_once() {
        let vpn: Vec<&Op> = Op::ALL.iter().filter(|o| o.is_vpn()).collect();
        assert_eq!(vpn.len(), 89, "huaweicloudsdkvpn 3.1.219 has 89 operations");
        let mut names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len(), "operation names are unique");
        let mut routes: Vec<(&str, &str)> = Op::ALL.iter().map(|o| (o.method(), o.path())).collect();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(routes.len(), Op::ALL.len(), "no two operations share a route");
    }

    #[test]
    fn every_route_finds_its_operation() {
        for op in Op::ALL {
            // Parameters become values no literal segment has.
            let path: String = op
                .path()
                .split('/')
                .map(|s| if s.starts_with('{') { "x0y1z2" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            match crate::route::find(ROUTES, op.method(), &path) {
                crate::route::Matched::Found(found, _) => assert_eq!(found, *op, "{path}"),
                _ => panic!("{} {path} does not route", op.method()),
            }
        }
    }
}
