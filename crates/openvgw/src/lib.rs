//! The `openvgw` service assembly: HTTP server, metrics, and helpers shared by the admin commands.

pub mod metrics;
pub mod server;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use openvgw_control::tenants::CreatedTenant;
use openvgw_core::config::Config;
use openvgw_store::Store;

/// Opens the store the configuration names: `[store] url` (PostgreSQL, or a SQLite file path) or SQLite in the data
/// directory. The data directory is created either way (it holds generated files). Blocking: call it outside the
/// async runtime or on a blocking thread.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let store = match &config.store.url {
        Some(url) => Store::open_url(url)?,
        None => Store::open(&data_dir.join("openvgw.db"))?,
    };
    Ok(store)
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
