//! The `openvgw` service assembly: HTTP server, metrics, and helpers shared by the admin commands.

pub mod http;
pub mod metrics;
pub mod server;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use openvgw_control::tenants::CreatedTenant;
use openvgw_store::Store;

pub fn open_store(data_dir: &Path) -> anyhow::Result<Store> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(Store::open(&data_dir.join("openvgw.db"))?)
}

/// Writes a file only the owner can read (it holds secrets).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub fn tenant_json(c: &CreatedTenant) -> serde_json::Value {
    serde_json::json!({
        "tenant_id": c.tenant.id,
        "name": c.tenant.name,
        "access_key_id": c.access_key.id,
        "access_key_secret": c.access_key.secret.expose(),
        "projects": c.tenant.projects,
    })
}
