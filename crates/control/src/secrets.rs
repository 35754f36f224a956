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

/// Every stored resource type, each rewritten through its typed document.
macro_rules! stored_types {
    ($($t:ty),* $(,)?) => {
        /// The kinds [`reseal`] rewrites (a test checks this is every stored kind).
        pub const RESEALED_KINDS: &[openvgw_core::Kind] = &[$(<$t as Resource>::KIND),*];

        fn reseal_resources(store: &Store, out: &mut Resealed) -> Result<()> {
            $(reseal_kind::<$t>(store, out)?;)*
            Ok(())
        }
    };
}

stored_types!(
    VpnGateway,
    Vpc,
    CustomerGateway,
    VpnConnection,
    ConnectionMonitor,
    GatewayCertificate,
    CertificateAssociation,
    Job,
    RouteEntry,
    IpsecServer,
    SslVpnServer,
    SslVpnClientCert,
    VpnUser,
    UserGroup,
    AccessPolicy,
    ClientCa,
);

/// Rewrites every resource and access key with the store's current keyring.
pub fn reseal(store: &Store) -> Result<Resealed> {
    let mut out = Resealed::default();
    reseal_resources(store, &mut out)?;
    out.access_keys = store.write(|tx| tx.reseal_access_keys())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use openvgw_core::ids::RESOURCE_KINDS;

    #[test]
    fn every_stored_kind_is_resealed() {
        let mut want: Vec<&str> = RESOURCE_KINDS.iter().map(|k| k.as_str()).collect();
        let mut got: Vec<&str> = super::RESEALED_KINDS.iter().map(|k| k.as_str()).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(
            got, want,
            "a stored kind is missing from `stored_types!` (its secrets would stay sealed under an old key)"
        );
    }
}
