//! `openvgw admin reseal`: rewrites every stored secret under the current master key — after a rotation (values
//! sealed with a previous key) and after an upgrade from a version that kept secrets in clear. Runs online, in
//! short transactions, so the service keeps answering; each resource is read and written back through its typed
//! document, so every `Secret` field is sealed whatever its shape.

use openvgw_core::model::{
    AccessPolicy, CertificateAssociation, ClientCa, ConnectionMonitor, CustomerGateway, GatewayCertificate,
    IpsecServer, Job, Resource, RouteEntry, SslVpnClientCert, SslVpnServer, UserGroup, Vpc, VpnConnection, VpnGateway,
    VpnUser,
};
use openvgw_core::Result;
use openvgw_store::Store;

/// Resources rewritten per transaction (short transactions keep API writes flowing during a reseal).
const BATCH: usize = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    pub resources: u64,
    pub access_keys: u64,
}

fn reseal_kind<R: Resource>(store: &Store, out: &mut Resealed) -> Result<()> {
    let ids = store.read(|tx| tx.ids_of_kind(R::KIND))?;
    for chunk in ids.chunks(BATCH) {
        out.resources += store.write(|tx| {
            let mut n = 0;
            for id in chunk {
                // Deleted since the id list was read: nothing to rewrite.
                if let Some(r) = tx.get_unscoped::<R>(id)? {
                    tx.update(&r)?;
                    n += 1;
                }
            }
            Ok(n)
        })?;
    }
    Ok(())
}

/// Rewrites every resource and access key with the store's current keyring.
pub fn reseal(store: &Store) -> Result<Resealed> {
    let mut out = Resealed::default();
    reseal_kind::<VpnGateway>(store, &mut out)?;
    reseal_kind::<Vpc>(store, &mut out)?;
    reseal_kind::<CustomerGateway>(store, &mut out)?;
    reseal_kind::<VpnConnection>(store, &mut out)?;
    reseal_kind::<ConnectionMonitor>(store, &mut out)?;
    reseal_kind::<GatewayCertificate>(store, &mut out)?;
    reseal_kind::<CertificateAssociation>(store, &mut out)?;
    reseal_kind::<Job>(store, &mut out)?;
    reseal_kind::<RouteEntry>(store, &mut out)?;
    reseal_kind::<IpsecServer>(store, &mut out)?;
    reseal_kind::<SslVpnServer>(store, &mut out)?;
    reseal_kind::<SslVpnClientCert>(store, &mut out)?;
    reseal_kind::<VpnUser>(store, &mut out)?;
    reseal_kind::<UserGroup>(store, &mut out)?;
    reseal_kind::<AccessPolicy>(store, &mut out)?;
    reseal_kind::<ClientCa>(store, &mut out)?;
    out.access_keys = store.write(|tx| tx.reseal_access_keys())?;
    Ok(out)
}
