//! `openvgw serve`: one HTTP port for every dialect, the reconciler, graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use openvgw_aliyun::Aliyun;
use openvgw_api::{ApiServer, Authenticator, Outcome};
use openvgw_control::Service;
use openvgw_core::config::{Config, DriverKind};
use openvgw_dataplane::netns::NetnsDriver;
use openvgw_dataplane::simulated::SimulatedDriver;
use openvgw_dataplane::Driver;
use openvgw_huawei::Huawei;
use openvgw_reconciler::Reconciler;
use openvgw_store::Store;
use tokio::sync::watch;

use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    svc: Arc<Service>,
    aliyun: Arc<ApiServer<Aliyun>>,
    huawei: Arc<ApiServer<Huawei>>,
    metrics: Arc<Metrics>,
}

pub fn driver_for(config: &Config) -> anyhow::Result<Arc<dyn Driver>> {
    match config.dataplane.driver {
        DriverKind::Simulated => {
            let s = &config.dataplane.simulated;
            Ok(Arc::new(SimulatedDriver::new(
                Duration::from_millis(s.provision_delay_ms),
                Duration::from_millis(s.apply_delay_ms),
            )))
        }
        DriverKind::Netns => {
            let state_dir = config.server.data_dir.join("dataplane");
            Ok(Arc::new(NetnsDriver::new(&config.dataplane, &config.vpcs, state_dir)?))
        }
        DriverKind::Agents => anyhow::bail!("the agents' driver is the hub `serve` runs (crate::agents::start_hub)"),
    }
}

/// One port for every dialect: Alibaba's RPC API at `/`, Huawei's REST API under `/v5`, `/v5.1` and `/v3` (IAM),
/// plus health, metrics, the OpenAPI description and the web console under `/console/`.
pub fn app(svc: Arc<Service>, metrics: Arc<Metrics>) -> Router {
    let auth = Authenticator::new(svc.clone());
    let aliyun = ApiServer::new(Aliyun::new(svc.clone(), metrics.reads()), auth.clone());
    let huawei = ApiServer::new(Huawei::new(svc.clone(), metrics.reads()), auth);
    // The console's forms call the same two servers the SDKs reach, on the signed-in tenant's behalf.
    let apis = openvgw_console::create::Apis { aliyun: aliyun.clone(), huawei: huawei.clone() };
    let console = openvgw_console::Console::new(svc.clone(), apis);
    tokio::spawn(console.clone().sample(Duration::from_secs(5)));
    let state = AppState { svc, aliyun, huawei, metrics };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_handler))
        .route("/openapi/huawei.json", get(huawei_openapi))
        .route("/", axum::routing::any(aliyun_handler))
        .route("/v5/{*rest}", axum::routing::any(huawei_handler))
        .route("/v5.1/{*rest}", axum::routing::any(huawei_handler))
        .route("/v3/{*rest}", axum::routing::any(huawei_handler))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
        .merge(console.router())
}

async fn aliyun_handler(State(st): State<AppState>, req: Request<Body>) -> Response {
    st.aliyun.clone().serve(req).await
}

async fn huawei_handler(State(st): State<AppState>, req: Request<Body>) -> Response {
    st.huawei.clone().serve(req).await
}

async fn huawei_openapi() -> Response {
    ([("content-type", "application/json")], openvgw_huawei::openapi::document().to_string()).into_response()
}

async fn metrics_handler(State(st): State<AppState>) -> Response {
    let svc = st.svc.clone();
    let metrics = st.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.render(&svc)).await {
        Ok(text) => ([("content-type", "text/plain; version=0.0.4")], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"Code":"NotFound","Message":"No such API path."}"#,
    )
        .into_response()
}

async fn record(State(st): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    if let Some(o) = resp.extensions().get::<Outcome>() {
        st.metrics.observe(o.dialect, o.operation, &o.code, started.elapsed().as_secs_f64());
    }
    resp
}

/// Creates the default tenant on first start and prints its key pair once.
fn bootstrap(store: &Store, config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    if !store.read(|tx| tx.tenants())?.is_empty() {
        return Ok(());
    }
    let created = match openvgw_control::tenants::create_tenant(store, config, "default") {
        Ok(c) => c,
        // Another replica sharing the database created it first.
        Err(openvgw_core::Error::AlreadyExists { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let path = data_dir.join("default-credentials.json");
    let doc = crate::tenant_json(&created);
    crate::write_private(&path, &format!("{doc}\n"))?;
    println!("Created the default tenant {}.", created.tenant.id);
    println!("  AccessKeyId:     {}", created.access_key.id);
    println!("  AccessKeySecret: {}", created.access_key.secret.expose());
    println!("This key pair is shown once; it is also stored in {} (mode 0600).", path.display());
    Ok(())
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let data_dir = config.server.data_dir.clone();
    // The store is synchronous (PostgreSQL's client must not block the runtime): open and bootstrap it on a
    // blocking thread.
    let (config, store) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Config, Arc<Store>)> {
        let store = Arc::new(crate::open_store(&config)?);
        // A wrong master key would make every signed request fail; refuse to start instead.
        store
            .read(|tx| tx.check_sealed())
            .map_err(|e| anyhow::anyhow!("the master key does not open the stored secrets: {e}"))?;
        bootstrap(&store, &config, &config.server.data_dir)?;
        Ok((config, store))
    })
    .await??;
    tracing::info!(backend = store.backend(), location = %store.location(), "store open");
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let hub = match config.dataplane.driver {
        DriverKind::Agents => Some(crate::agents::start_hub(store.clone(), &config, stop_rx.clone()).await?),
        _ => None,
    };
    let driver: Arc<dyn Driver> = match &hub {
        Some(hub) => hub.clone(),
        None => driver_for(&config)?,
    };
    tracing::info!(driver = driver.name(), data_dir = %data_dir.display(), "data plane ready");
    let svc = Arc::new(Service::new(store.clone(), config.clone(), driver));
    let reconciler = Reconciler::new(svc.clone(), Duration::from_secs(1));
    let leader = reconciler.leader_flag();
    if let Some(hub) = &hub {
        // Replicas on one store: only the one that reconciles moves gateways; the others follow its placements.
        hub.follow(leader.clone());
    }
    tracing::info!(holder = reconciler.holder(), "reconciler starting (acts while it holds the store's lease)");
    let reconciler_task = tokio::spawn(reconciler.run(stop_rx.clone()));
    let purge_task = tokio::spawn(purge_idempotency(svc.clone(), stop_rx.clone()));

    let addr: SocketAddr =
        config.server.listen.parse().with_context(|| format!("bad listen address {}", config.server.listen))?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let limits = crate::http::Limits::from_config(&config.server);
    tracing::info!(%addr, max_connections = limits.max_connections, "openvgw listening");
    println!("openvgw listening on http://{addr}");
    let conns = Arc::new(crate::http::ConnTable::default());
    let metrics = Arc::new(Metrics::new(conns.clone()).with_leader(leader).with_agents(hub));
    let http = tokio::spawn(crate::http::serve(
        listener,
        app(svc, metrics),
        limits,
        conns,
        stop_rx.clone(),
        Duration::from_secs(10),
    ));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = http.await;
    let _ = reconciler_task.await;
    let _ = purge_task.await;
    Ok(())
}

/// Forgets expired client tokens and used nonces. Every minute: the per-key nonce cap counts nonces not yet purged.
async fn purge_idempotency(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
        let svc = svc.clone();
        match tokio::task::spawn_blocking(move || {
            // Buckets idle for an hour are full again: forgetting them changes nothing.
            let idle = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 3_600_000;
            if let Err(e) = svc.store().purge_rate_buckets(idle) {
                tracing::warn!(error = %e, "purging rate-limit buckets failed");
            }
            (svc.purge_idempotency(), svc.purge_nonces())
        })
        .await
        {
            Ok((tokens, nonces)) => {
                match tokens {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "expired client tokens removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging client tokens failed"),
                }
                match nonces {
                    Ok(n) if n > 0 => tracing::debug!(purged = n, "expired nonces removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging nonces failed"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "purge task failed"),
        }
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
