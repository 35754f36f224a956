//! The `openvgw` service assembly: HTTP server, metrics, and helpers shared by the admin commands.

pub mod agents;
pub mod http;
pub mod metrics;
pub mod server;

use std::io::Write;
use std::path::Path;

use std::sync::Arc;

use anyhow::Context;
use openvgw_control::tenants::CreatedTenant;
use openvgw_core::config::Config;
use openvgw_core::secret::{Keyring, MasterKey};
use openvgw_store::Store;

/// Opens the store the configuration names: `[store] url` (PostgreSQL, or a SQLite file path) or SQLite in the data
/// directory. The data directory is created either way (it holds generated files). Blocking: call it outside the
/// async runtime or on a blocking thread.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = open_store_raw(config)?;
    let shared = store.is_shared();
    Ok(store.with_keyring(keyring(config, shared)?))
}

/// The store without the master key: for commands that copy stored values as they are (backup, restore), so that
/// an operator can take a backup without holding the key, and the backup holds sealed values only.
pub fn open_store_raw(config: &Config) -> anyhow::Result<Store> {
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

/// The keyring that seals secrets at rest: `OPENVGW_MASTER_KEY` or `[secrets] master_key_file`, plus previous
/// keys for a rotation. Without one, an embedded (SQLite) deployment generates its own and keeps it in the data
/// directory (mode 0600); a shared (PostgreSQL) one refuses to start, since its replicas must all hold the same key.
pub fn keyring(config: &Config, shared_store: bool) -> anyhow::Result<Arc<Keyring>> {
    let read_key = |path: &Path| -> anyhow::Result<MasterKey> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        MasterKey::from_base64(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    let primary = if let Ok(text) = std::env::var("OPENVGW_MASTER_KEY") {
        MasterKey::from_base64(&text).map_err(|e| anyhow::anyhow!("OPENVGW_MASTER_KEY: {e}"))?
    } else if let Some(path) = &config.secrets.master_key_file {
        read_key(path)?
    } else if shared_store {
        anyhow::bail!(
            "a PostgreSQL store needs the master key every replica shares: set OPENVGW_MASTER_KEY (base64 of 32 \
             bytes, e.g. `openssl rand -base64 32`) or [secrets] master_key_file"
        );
    } else {
        let path = config.server.data_dir.join("master.key");
        if !path.exists() {
            std::fs::create_dir_all(&config.server.data_dir)?;
            write_private(&path, &format!("{}\n", MasterKey::generate_base64()))?;
            tracing::info!(path = %path.display(), "generated the master key that seals secrets at rest");
        }
        read_key(&path)?
    };
    let mut previous = Vec::new();
    for path in &config.secrets.previous_key_files {
        previous.push(read_key(path)?);
    }
    if let Ok(list) = std::env::var("OPENVGW_PREVIOUS_MASTER_KEYS") {
        for (i, text) in list.split(',').filter(|t| !t.trim().is_empty()).enumerate() {
            previous.push(
                MasterKey::from_base64(text).map_err(|e| anyhow::anyhow!("OPENVGW_PREVIOUS_MASTER_KEYS #{i}: {e}"))?,
            );
        }
    }
    Ok(Arc::new(Keyring::new(primary, previous)))
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
