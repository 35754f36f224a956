//! Gateway hosts (`openvgw agent`): the CA that certifies them and the control plane they attach to, one-time join
//! tokens, and the record of who joined (revocable). The transport itself is openvgw-agent's.

use openvgw_core::ids::random_secret;
use openvgw_core::model::{AgentPlacement, AgentRecord};
use openvgw_core::{now_ms, Error, Result, Secret};
use openvgw_pki::CaMaterial;
use openvgw_store::Store;

use crate::iam::digest;

/// The agents' CA, made (and stored, its key sealed) the first time it is asked for.
pub fn agent_ca(store: &Store) -> Result<CaMaterial> {
    if let Some((cert_pem, key)) = store.read(|tx| tx.agent_ca())? {
        return Ok(CaMaterial { cert_pem, key_pem: key.expose().to_string() });
    }
    let ca = openvgw_pki::new_ca("openvgw agents").map_err(Error::internal)?;
    store.write(|tx| tx.insert_agent_ca(&ca.cert_pem, &Secret::new(ca.key_pem.clone())))?;
    // Another process may have stored its own first: the stored one is the CA.
    let (cert_pem, key) = store.read(|tx| tx.agent_ca())?.ok_or_else(|| Error::internal("agent CA not stored"))?;
    Ok(CaMaterial { cert_pem, key_pem: key.expose().to_string() })
}

/// A new one-time join token valid for `ttl_s` seconds: shown once, only its digest is kept.
pub fn create_join_token(store: &Store, ttl_s: u64) -> Result<Secret> {
    let token = format!("ovgw-join-{}", random_secret(40));
    let now = now_ms();
    let ttl_ms = i64::try_from(ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    store.write(|tx| tx.insert_agent_token(&digest(&token), now, now.saturating_add(ttl_ms)))?;
    Ok(Secret::new(token))
}

/// Spends a join token for a new agent; whether it was valid.
pub fn redeem_join_token(store: &Store, token: &str, name: &str, agent_id: &str, serial: &str) -> Result<bool> {
    let now = now_ms();
    let record =
        AgentRecord { id: agent_id.into(), name: name.into(), serial: serial.into(), joined_at: now, revoked_at: None };
    store.write(|tx| tx.redeem_agent_token(&digest(token), now, &record))
}

/// Whether the agent may attach with the certificate of `serial`: it joined with it and is not revoked.
pub fn agent_admitted(store: &Store, agent_id: &str, serial: &str) -> Result<bool> {
    let agent = store.read(|tx| tx.agent(agent_id))?;
    Ok(agent.is_some_and(|a| a.revoked_at.is_none() && a.serial.eq_ignore_ascii_case(serial)))
}

/// Revokes an agent: its sessions are refused from its next attach on. `NotFound` for an unknown or revoked one.
pub fn revoke_agent(store: &Store, agent_id: &str) -> Result<()> {
    if store.write(|tx| tx.revoke_agent(agent_id, now_ms()))? {
        Ok(())
    } else {
        Err(Error::NotFound { kind: openvgw_core::Kind::Tenant, id: format!("agent {agent_id}") })
    }
}

/// Every placed gateway with the agent holding it.
pub fn placements(store: &Store) -> Result<Vec<AgentPlacement>> {
    store.read(|tx| tx.agent_placements())
}

/// Records where a gateway is.
pub fn place(store: &Store, placement: &AgentPlacement) -> Result<()> {
    store.write(|tx| tx.place_gateway(placement, now_ms()))
}

/// Records that nobody holds the gateway any more.
pub fn unplace(store: &Store, gateway_id: &str) -> Result<()> {
    store.write(|tx| tx.unplace_gateway(gateway_id))
}
