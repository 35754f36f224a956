//! `openvgw`: the VPN gateway service (`serve`) and its admin commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use openvgw::{open_store, server, tenant_json};
use openvgw_core::config::Config;

#[derive(Parser)]
#[command(name = "openvgw", version, about = "Self-hostable cloud VPN gateway service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Configuration file (TOML); built-in defaults otherwise.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the database and generated files live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and the reconciler.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on.
        #[arg(long)]
        listen: Option<String>,
        /// Log format: json (default) or text.
        #[arg(long, default_value = "json")]
        log_format: String,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with one access key; prints it as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// List tenants (no secrets).
    List {
        #[command(flatten)]
        common: Common,
    },
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let mut config = match &common.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(d) = &common.data_dir {
        config.server.data_dir = d.clone();
    }
    Ok(config)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "text" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, listen, log_format } => {
            init_logging(&log_format);
            let mut config = load_config(&common)?;
            if let Some(l) = listen {
                config.server.listen = l;
            }
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(server::serve(config))
        }
        Command::Tenant { command: TenantCommand::Create { name, common } } => {
            let config = load_config(&common)?;
            let store = open_store(&config.server.data_dir)?;
            let created = openvgw_control::tenants::create_tenant(&store, &config, &name)?;
            println!("{}", tenant_json(&created));
            Ok(())
        }
        Command::Tenant { command: TenantCommand::List { common } } => {
            let config = load_config(&common)?;
            let store = open_store(&config.server.data_dir)?;
            for t in store.read(|tx| tx.tenants())? {
                println!("{}", serde_json::json!({"tenant_id": t.id, "name": t.name, "projects": t.projects}));
            }
            Ok(())
        }
    }
}
