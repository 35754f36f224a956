//! `openvgw`: the VPN gateway service (`serve`) and its admin commands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use openvgw::{open_store, server, tenant_json, write_private};
use openvgw_control::connections::PeerFormat;
use openvgw_core::config::Config;
use openvgw_store::Store;

mod operator;
use operator::{stamp, state, table, usage_text};

/// Request handling allocates many short-lived buffers (documents, responses) across worker and blocking threads;
/// glibc's allocator took a fifth of the CPU of a cheap signed call in the profile (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Where the database (SQLite, unless --store names another) and generated files live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The store, overriding `[store] url`: postgres://user:password@host:port/database (shared by replicas) or a
    /// SQLite file path. Default: SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
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
        /// Data-plane driver, overriding the config: simulated, netns (root) or agents (gateways on the hosts
        /// running `openvgw agent`, which attach to `[dataplane.agents] listen`).
        #[arg(long, value_parser = ["simulated", "netns", "agents"])]
        dataplane: Option<String>,
        /// Log format: json (default) or text.
        #[arg(long, default_value = "json")]
        log_format: String,
    },
    /// Render the customer side's configuration of a connection (strongSwan or libreswan).
    PeerConfig {
        /// The connection id (vco-…).
        #[arg(long)]
        connection: String,
        /// strongswan (swanctl.conf) or libreswan (ipsec.conf + ipsec.secrets).
        #[arg(long, value_parser = ["strongswan", "libreswan"])]
        format: String,
        /// Write the files into this directory (secrets with mode 0600) instead of printing them.
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Always wrap ESP in UDP (for gateways running userspace ESP).
        #[arg(long)]
        udp_encap: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Started by `openvgw agent` (netns): outlives it, and removes the host's gateways if the agent dies and no
    /// other agent takes the lease before the control plane's limit passes.
    #[command(hide = true)]
    AgentGuard {
        /// The agent whose lease this guards.
        #[arg(long)]
        pid: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Run a gateway host: join the control plane once (with a token from `openvgw admin agent token`; the
    /// identity is kept in the data directory), then attach to it and hold the gateways it places here with this
    /// host's data plane. The agent connects out: it may sit behind NAT.
    Agent {
        /// The control plane's agents' port: https://host:port (`[dataplane.agents] listen` of `serve`). Give it
        /// once per replica when `serve` runs as replicas: the host attaches to every one (the replica that
        /// reconciles drives it; any of them keeps it from standing down).
        #[arg(long, required = true)]
        control: Vec<String>,
        /// The agents' CA certificate (PEM), as `openvgw admin agent token` writes it.
        #[arg(long)]
        ca: PathBuf,
        /// A one-time join token; needed the first time only.
        #[arg(long)]
        token: Option<String>,
        /// How people will know this host; default: its host name.
        #[arg(long)]
        name: Option<String>,
        /// This host's driver: netns (root) or simulated.
        #[arg(long, default_value = "netns", value_parser = ["simulated", "netns"])]
        dataplane: String,
        /// How many gateways this host takes (0: no limit).
        #[arg(long, default_value_t = 0)]
        capacity: u32,
        /// Log format: json (default) or text.
        #[arg(long, default_value = "json")]
        log_format: String,
        #[command(flatten)]
        common: Common,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's IAM users (who sign in with a password for a token).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Operator tasks on the store.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Write a logical dump of every table (one consistent snapshot; the service may keep running). Secrets are
    /// in it as stored — sealed with the master key, which the dump does not hold: keep the key apart from it.
    Backup {
        /// The dump file (created with mode 0600); `-` writes to standard output.
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Load a dump into an empty store (a new data directory or database); a store holding anything is refused.
    Restore {
        /// The dump file; `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Rewrite every stored secret under the current master key (after a rotation, or an upgrade from a version
    /// that kept secrets in clear); online, in short transactions.
    Reseal {
        #[command(flatten)]
        common: Common,
    },
    /// Manage the console's operators: people who sign in with a password and see every tenant and the data plane.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Gateway hosts (`openvgw agent`): join tokens, the agents that joined, revocation.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Show a gateway as the store has it next to what the netns data plane has now: its namespace, daemons,
    /// tunnels (IKE/IPsec SA state, health check, BGP session) and SSL-VPN sessions. It only looks; run it on the
    /// data plane's host (root), beside `serve`.
    Gateway {
        /// The gateway's id (either dialect's).
        #[arg(long)]
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
}

/// A command about one thing named by `--name`.
#[derive(clap::Args)]
struct Named {
    #[arg(long)]
    name: String,
    #[command(flatten)]
    common: Common,
}

/// A list command's arguments.
#[derive(clap::Args)]
struct Listing {
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator (a name of 1-64 letters, digits, '.', '_' or '-'); its password is generated and printed
    /// once (the store keeps only its hash).
    Create(Named),
    /// List the operators.
    List(Listing),
    /// Delete an operator; its console sessions end at once.
    Delete(Named),
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create a one-time join token (printed once; the store keeps its digest) and write the agents' CA
    /// certificate, which `openvgw agent --ca` checks the control plane against.
    Token {
        /// How long the token may be used, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Where to write the CA certificate (PEM).
        #[arg(long)]
        ca_out: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// List the agents that joined, with the gateways placed on each.
    List(Listing),
    /// Revoke an agent: from its next attach on it is refused (its certificate is no longer admitted).
    Revoke {
        /// The agent's id (agt-…).
        #[arg(long)]
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input unless given.
    Create {
        /// The tenant's id or name (the name is the user's "domain" at sign-in).
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// The password (8-128 characters); prefer standard input, which leaves no trace in the shell history.
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// A tenant to act on.
#[derive(clap::Args)]
struct TenantArg {
    /// The tenant's id or name.
    #[arg(long)]
    tenant: String,
    #[command(flatten)]
    common: Common,
}

/// A tenant to show.
#[derive(clap::Args)]
struct TenantView {
    /// The tenant's id or name.
    #[arg(long)]
    tenant: String,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with one access key; prints it as JSON.
    Create(Named),
    /// List tenants: state, access keys and the resources each holds (never secrets). A table; --json for scripts.
    List(Listing),
    /// Show one tenant (by id or name): its projects, access keys (ids only) and resources.
    Show(TenantView),
    /// Disable a tenant (by id or name): its access keys are refused, its users cannot sign in and their tokens
    /// stop working, on running servers within a second. Its resources and tunnels are left as they are.
    Disable(TenantArg),
    /// Delete a tenant (by id or name) with its access keys, users and tokens. A tenant that still holds
    /// resources is refused (delete them through the APIs first).
    Delete(TenantArg),
    /// Enable a disabled tenant again (by id or name).
    Enable(TenantArg),
    /// List a tenant's access keys (ids and creation times; secrets are shown only when a key is made).
    Keys(TenantView),
    /// Replace an access key by a new one of the same tenant, in one step (prints the new key as JSON; the old
    /// one is refused at once, by running servers within a second).
    RotateKey {
        #[arg(long)]
        access_key_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Create another access key for a tenant (by id or name); prints it as JSON. Running servers accept it
    /// within a second.
    CreateKey {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete (revoke) an access key. Running servers refuse it within a second.
    DeleteKey {
        #[arg(long)]
        access_key_id: String,
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
    if let Some(url) = &common.store {
        config.store.url = Some(url.clone());
    }
    Ok(config)
}

fn peer_config(store: &Store, id: &str, format: &str, out: Option<&Path>, udp_encap: bool) -> anyhow::Result<()> {
    let pc = store.read(|tx| openvgw_control::connections::peer_config_unscoped(tx, id))?;
    let format = if format == "strongswan" { PeerFormat::Strongswan } else { PeerFormat::Libreswan };
    for file in pc.render(format, udp_encap)? {
        match out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(file.name);
                if file.secret {
                    write_private(&path, &file.text)?;
                } else {
                    std::fs::write(&path, &file.text)?;
                }
                eprintln!("wrote {}", path.display());
            }
            None => print!("# ---- {} ----\n{}", file.name, file.text),
        }
    }
    Ok(())
}

/// A new file only the owner can read.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

fn tenant_report(common: &Common, tenant: &str) -> anyhow::Result<openvgw_control::tenants::TenantReport> {
    let store = open_store(&load_config(common)?)?;
    openvgw_control::tenants::tenant_report(&store, tenant)?.ok_or_else(|| anyhow::anyhow!("no tenant {tenant}"))
}

fn set_disabled(common: &Common, tenant: &str, disabled: bool) -> anyhow::Result<()> {
    let store = open_store(&load_config(common)?)?;
    let t = openvgw_control::tenants::set_tenant_disabled(&store, tenant, disabled)?
        .ok_or_else(|| anyhow::anyhow!("no tenant {tenant}"))?;
    println!("{}", serde_json::json!({"tenant_id": t.id, "name": t.name, "disabled": t.disabled}));
    Ok(())
}

fn driver_kind(name: &str) -> openvgw_core::config::DriverKind {
    match name {
        "netns" => openvgw_core::config::DriverKind::Netns,
        "agents" => openvgw_core::config::DriverKind::Agents,
        _ => openvgw_core::config::DriverKind::Simulated,
    }
}

/// `openvgw agent`: the identity (joining if needed), then sessions until SIGTERM or Ctrl-C.
/// `common` as command-line arguments again (for a process this one starts).
fn common_args(common: &Common) -> Vec<std::ffi::OsString> {
    let mut args = Vec::new();
    for (flag, value) in [("--config", &common.config), ("--data-dir", &common.data_dir)] {
        if let Some(v) = value {
            args.push(flag.into());
            args.push(v.clone().into_os_string());
        }
    }
    args
}

async fn run_agent(
    config: Config,
    control: Vec<String>,
    ca: &Path,
    token: Option<String>,
    name: String,
    capacity: u32,
) -> anyhow::Result<()> {
    let ca_pem = std::fs::read_to_string(ca).with_context(|| format!("cannot read {}", ca.display()))?;
    let eps: Vec<openvgw_agent::host::Endpoint> =
        control.into_iter().map(|url| openvgw_agent::host::Endpoint { url, ca_pem: ca_pem.clone() }).collect();
    let id = openvgw::agents::identity(&eps, &config.server.data_dir, token.as_deref(), &name).await?;
    let driver = openvgw::server::driver_for(&config)?;
    let urls: Vec<&str> = eps.iter().map(|e| e.url.as_str()).collect();
    println!("openvgw agent {} ({name}) attaching to {}", id.agent_id, urls.join(", "));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let host = match config.dataplane.driver {
        openvgw_core::config::DriverKind::Netns => {
            let lease = openvgw_agent::host::Lease::resume(openvgw::agents::lease_path(&config.server.data_dir));
            openvgw_agent::host::Host::with_lease(id, driver, capacity, lease)
        }
        _ => openvgw_agent::host::Host::new(id, driver, capacity),
    };
    let session = tokio::spawn(host.run(eps, stop_rx));
    openvgw::server::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = session.await;
    Ok(())
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
        Command::Serve { common, listen, dataplane, log_format } => {
            init_logging(&log_format);
            let mut config = load_config(&common)?;
            if let Some(l) = listen {
                config.server.listen = l;
            }
            if let Some(d) = dataplane {
                config.dataplane.driver = driver_kind(&d);
            }
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(server::serve(config))
        }
        Command::Agent { control, ca, token, name, dataplane, capacity, log_format, common } => {
            init_logging(&log_format);
            let mut config = load_config(&common)?;
            config.dataplane.driver = driver_kind(&dataplane);
            if dataplane == "netns" {
                // What the netns driver builds outlives this process: so does the guard of its lease.
                openvgw::agents::spawn_guard(&common_args(&common))?;
            }
            let name = match name {
                Some(n) => n,
                None => std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(run_agent(config, control, &ca, token, name, capacity))
        }
        Command::AgentGuard { pid, common } => {
            init_logging("text");
            let mut config = load_config(&common)?;
            config.dataplane.driver = driver_kind("netns");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(openvgw::agents::guard(&config, pid))
        }
        Command::Admin { command: AdminCommand::Agent { command } } => admin_agent(command),
        Command::PeerConfig { connection, format, output_dir, udp_encap, common } => {
            let config = load_config(&common)?;
            let store = open_store(&config)?;
            peer_config(&store, &connection, &format, output_dir.as_deref(), udp_encap)
        }
        Command::Tenant { command: TenantCommand::Create(Named { name, common }) } => {
            let config = load_config(&common)?;
            let store = open_store(&config)?;
            let created = openvgw_control::tenants::create_tenant(&store, &config, &name)?;
            println!("{}", tenant_json(&created));
            Ok(())
        }
        Command::Tenant { command: TenantCommand::CreateKey { tenant, common } } => {
            let config = load_config(&common)?;
            let store = open_store(&config)?;
            let t = openvgw_control::tenants::find_tenant(&store, &tenant)?
                .ok_or_else(|| anyhow::anyhow!("no tenant {tenant}"))?;
            let key = openvgw_control::tenants::create_access_key(&store, &t.id)?;
            println!(
                "{}",
                serde_json::json!({
                    "tenant_id": t.id,
                    "access_key_id": key.id,
                    "access_key_secret": key.secret.expose(),
                })
            );
            Ok(())
        }
        Command::Tenant { command: TenantCommand::DeleteKey { access_key_id, common } } => {
            let config = load_config(&common)?;
            let store = open_store(&config)?;
            if !openvgw_control::tenants::delete_access_key(&store, &access_key_id)? {
                anyhow::bail!("no access key {access_key_id}");
            }
            println!("{}", serde_json::json!({ "deleted": access_key_id }));
            Ok(())
        }
        Command::User { command: UserCommand::Create { tenant, name, password, common } } => {
            let config = load_config(&common)?;
            let store = open_store(&config)?;
            let t = openvgw_control::tenants::find_tenant(&store, &tenant)?
                .ok_or_else(|| anyhow::anyhow!("no tenant {tenant}"))?;
            let password = match password {
                Some(p) => p,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let user = openvgw_control::iam::create_iam_user(&store, &t.id, &name, &password)?;
            println!(
                "{}",
                serde_json::json!({"user_id": user.id, "name": user.name, "tenant_id": t.id, "domain": t.name})
            );
            Ok(())
        }
        Command::Admin { command: AdminCommand::Gateway { id, json, common } } => {
            operator::gateway_view(&load_config(&common)?, &id, json)
        }
        Command::Admin {
            command: AdminCommand::Operator { command: OperatorCommand::Create(Named { name, common }) },
        } => {
            let store = open_store(&load_config(&common)?)?;
            let password = openvgw_control::console::create_operator(&store, &name)?;
            println!("operator: {name}\npassword: {}", password.expose());
            eprintln!("sign in at /console/ with it; it is not shown again");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Operator { command: OperatorCommand::List(Listing { json, common }) },
        } => {
            let store = open_store(&load_config(&common)?)?;
            let operators = store.read(|tx| tx.operators())?;
            if json {
                let list: Vec<serde_json::Value> =
                    operators.iter().map(|(n, at)| serde_json::json!({"name": n, "created_at": at})).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows = operators.iter().map(|(n, at)| vec![n.clone(), operator::stamp(*at)]).collect();
                print!("{}", operator::table(&["NAME", "CREATED"], rows));
            }
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Operator { command: OperatorCommand::Delete(Named { name, common }) },
        } => {
            let store = open_store(&load_config(&common)?)?;
            if !store.write(|tx| tx.delete_operator(&name))? {
                anyhow::bail!("no operator {name}");
            }
            eprintln!("deleted operator {name}; its sessions ended");
            Ok(())
        }
        Command::Admin { command: AdminCommand::Reseal { common } } => {
            let config = load_config(&common)?;
            let store = open_store(&config)?;
            let done = openvgw_control::secrets::reseal(&store)?;
            eprintln!("resealed {} resources and {} access keys", done.resources, done.access_keys);
            Ok(())
        }
        Command::Admin { command: AdminCommand::Backup { output, common } } => {
            let config = load_config(&common)?;
            let store = openvgw::open_store_raw(&config)?;
            let summary = if output.as_os_str() == "-" {
                store.backup(&mut std::io::stdout().lock())?
            } else {
                let file = create_private(&output)?;
                let mut out = std::io::BufWriter::new(file);
                let summary = store.backup(&mut out)?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                summary
            };
            eprintln!("backed up {} rows from {} ({})", summary.rows(), store.location(), store.backend());
            Ok(())
        }
        Command::Admin { command: AdminCommand::Restore { input, common } } => {
            let config = load_config(&common)?;
            let store = openvgw::open_store_raw(&config)?;
            let summary = if input.as_os_str() == "-" {
                store.restore(&mut std::io::stdin().lock())?
            } else {
                let file = std::fs::File::open(&input).with_context(|| format!("cannot read {}", input.display()))?;
                store.restore(&mut std::io::BufReader::new(file))?
            };
            eprintln!("restored {} rows into {} ({})", summary.rows(), store.location(), store.backend());
            Ok(())
        }
        Command::Tenant { command: TenantCommand::List(Listing { json, common }) } => {
            let store = open_store(&load_config(&common)?)?;
            let reports = openvgw_control::tenants::tenant_reports(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
                return Ok(());
            }
            let rows = reports
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.tenant_id.clone(),
                        state(r.disabled).into(),
                        r.access_keys.len().to_string(),
                        usage_text(&r.usage),
                        stamp(r.created_at),
                    ]
                })
                .collect();
            print!("{}", table(&["NAME", "ID", "STATE", "KEYS", "RESOURCES", "CREATED"], rows));
            Ok(())
        }
        Command::Tenant { command: TenantCommand::Show(TenantView { tenant, json, common }) } => {
            let r = tenant_report(&common, &tenant)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!("name:      {}\nid:        {}\nstate:     {}", r.name, r.tenant_id, state(r.disabled));
            println!("created:   {}\nresources: {}", stamp(r.created_at), usage_text(&r.usage));
            for (region, project) in &r.projects {
                println!("project:   {region} {project}");
            }
            for k in &r.access_keys {
                println!("key:       {} (created {})", k.access_key_id, stamp(k.created_at));
            }
            Ok(())
        }
        Command::Tenant { command: TenantCommand::Disable(TenantArg { tenant, common }) } => {
            set_disabled(&common, &tenant, true)
        }
        Command::Tenant { command: TenantCommand::Enable(TenantArg { tenant, common }) } => {
            set_disabled(&common, &tenant, false)
        }
        Command::Tenant { command: TenantCommand::Delete(TenantArg { tenant, common }) } => {
            use openvgw_control::tenants::TenantDeletion;
            let store = open_store(&load_config(&common)?)?;
            match openvgw_control::tenants::delete_tenant(&store, &tenant)? {
                TenantDeletion::NoSuchTenant => anyhow::bail!("no tenant {tenant}"),
                TenantDeletion::HoldsResources(usage) => {
                    anyhow::bail!("tenant {tenant} still holds resources ({}): delete them first", usage_text(&usage))
                }
                TenantDeletion::Deleted(t) => {
                    println!("{}", serde_json::json!({"deleted": t.id, "name": t.name}));
                    Ok(())
                }
            }
        }
        Command::Tenant { command: TenantCommand::Keys(TenantView { tenant, json, common }) } => {
            let r = tenant_report(&common, &tenant)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r.access_keys)?);
                return Ok(());
            }
            let rows = r.access_keys.iter().map(|k| vec![k.access_key_id.clone(), stamp(k.created_at)]).collect();
            print!("{}", table(&["ACCESS KEY ID", "CREATED"], rows));
            Ok(())
        }
        Command::Tenant { command: TenantCommand::RotateKey { access_key_id, common } } => {
            let store = open_store(&load_config(&common)?)?;
            let key = openvgw_control::tenants::rotate_access_key(&store, &access_key_id)?
                .ok_or_else(|| anyhow::anyhow!("no access key {access_key_id}"))?;
            println!(
                "{}",
                serde_json::json!({
                    "tenant_id": key.tenant_id,
                    "access_key_id": key.id,
                    "access_key_secret": key.secret.expose(),
                    "replaced": access_key_id,
                })
            );
            Ok(())
        }
    }
}

fn admin_agent(command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Token { ttl, ca_out, json, common } => {
            let store = open_store(&load_config(&common)?)?;
            let ca = openvgw_control::agents::agent_ca(&store)?;
            std::fs::write(&ca_out, &ca.cert_pem).with_context(|| format!("cannot write {}", ca_out.display()))?;
            let token = openvgw_control::agents::create_join_token(&store, ttl)?;
            if json {
                let doc = serde_json::json!({"token": token.expose(), "ttl_s": ttl, "ca": ca_out});
                println!("{doc}");
            } else {
                println!("token: {}", token.expose());
                println!("ca:    {} (give it to the agent as --ca)", ca_out.display());
                eprintln!("the token joins one agent within {ttl} s; it is not shown again");
            }
            Ok(())
        }
        AgentCommand::List(Listing { json, common }) => {
            let store = open_store(&load_config(&common)?)?;
            let (agents, placed) = store.read(|tx| Ok((tx.agents()?, tx.agent_placements()?)))?;
            let held =
                |id: &str| placed.iter().filter(|p| p.agent_id == id).map(|p| p.gateway_id.clone()).collect::<Vec<_>>();
            if json {
                let list: Vec<serde_json::Value> = agents
                    .iter()
                    .map(|a| {
                        let mut v = serde_json::to_value(a).unwrap_or_default();
                        v["gateways"] = serde_json::json!(held(&a.id));
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows = agents
                    .iter()
                    .map(|a| {
                        let revoked = a.revoked_at.map(stamp).unwrap_or_else(|| "-".into());
                        vec![a.id.clone(), a.name.clone(), stamp(a.joined_at), revoked, held(&a.id).len().to_string()]
                    })
                    .collect();
                print!("{}", table(&["ID", "NAME", "JOINED", "REVOKED", "GATEWAYS"], rows));
            }
            Ok(())
        }
        AgentCommand::Revoke { id, common } => {
            let store = open_store(&load_config(&common)?)?;
            openvgw_control::agents::revoke_agent(&store, &id)?;
            println!("{}", serde_json::json!({"agent_id": id, "revoked": true}));
            Ok(())
        }
    }
}
