//! openvgw-agent: the data plane on other hosts. The control plane's [`hub::AgentHub`] is a [`Driver`] whose calls
//! travel to the agent that holds each gateway; [`host`] is the agent's side, which connects out, authenticates with
//! mutual TLS (a client certificate got once for a one-time join token) and answers the calls with the host's own
//! driver (`netns`). The protocol is gRPC (`proto/agent.proto`); the reconciler above the hub is unchanged, because
//! the driver's interface was already "desired state in, what is there out".
//!
//! [`Driver`]: openvgw_dataplane::Driver

pub mod host;
pub mod hub;
pub mod port;
mod wire;

/// The generated protocol (`proto/agent.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("openvgw.agent.v1");
}

/// The name agents check the control plane's certificate against (a DNS SAN of it), wherever they reach it:
/// addresses change (NAT, failover of the control plane), the name in the certificate does not.
pub const CONTROL_NAME: &str = "openvgw-control";

/// Longest accepted join token, agent name and certificate request (the API's bounds for hostile input).
pub const MAX_TOKEN: usize = 128;
pub const MAX_NAME: usize = 64;
pub const MAX_CSR: usize = 8 * 1024;
