//! The HTTP listener. Idle, slow or abandoned clients must not starve real ones, so every connection is bounded:
//!
//! * complete request headers within `header_read_timeout` of connecting (or of hyper starting to read them);
//! * a keep-alive connection with no request in flight is closed after `idle_timeout`;
//! * at most `max_connections` open: at the cap the connection idle the longest is closed to admit the new one,
//!   and a new connection is refused only when every open one has a request in flight.
//!
//! Request bodies are bounded in time by the API layer (`body_read_timeout`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use openvgw_core::config::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// The configured limits, with the connection cap kept below the process's file limit (raised to its hard
    /// limit first) so that the store and the data plane always have descriptors left.
    pub fn from_config(c: &ServerConfig) -> Limits {
        let files = raise_file_limit();
        let reserve = 256;
        let max_connections = match files {
            Some(n) if n > reserve + 8 => c.max_connections.min(n - reserve),
            Some(_) => 8,
            None => c.max_connections,
        };
        if max_connections < c.max_connections {
            tracing::warn!(
                configured = c.max_connections,
                used = max_connections,
                "server.max_connections lowered to stay below the open-file limit"
            );
        }
        Limits {
            max_connections,
            header_read_timeout: Duration::from_secs(c.header_read_timeout_s),
            idle_timeout: Duration::from_secs(c.idle_timeout_s),
        }
    }
}

fn raise_file_limit() -> Option<usize> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum) {
        if cur < max {
            lim.current = Some(max);
            if setrlimit(Resource::Nofile, lim).is_err() {
                lim.current = Some(cur);
            }
        }
    }
    lim.current.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

struct ConnState {
    in_flight: usize,
    /// When the connection last became idle (accepted, or its last response finished).
    idle_since: Instant,
    served: u64,
    close: Arc<Notify>,
}

/// Every open connection and whether it is busy; the source of truth for the cap and the idle deadlines.
#[derive(Default)]
pub struct ConnTable {
    conns: Mutex<HashMap<u64, ConnState>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl ConnTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ConnState>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts/removes).
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Registers a new connection, evicting the longest-idle one at the cap; `None` when all are busy.
    fn admit(&self, max: usize) -> Option<(u64, Arc<Notify>)> {
        let mut conns = self.lock();
        if conns.len() >= max {
            let victim =
                conns.iter().filter(|(_, c)| c.in_flight == 0).min_by_key(|(_, c)| c.idle_since).map(|(id, _)| *id);
            let victim = victim?;
            if let Some(c) = conns.remove(&victim) {
                c.close.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        conns.insert(id, ConnState { in_flight: 0, idle_since: Instant::now(), served: 0, close: close.clone() });
        Some((id, close))
    }

    fn begin(&self, id: u64) {
        if let Some(c) = self.lock().get_mut(&id) {
            c.in_flight += 1;
        }
    }

    fn end(&self, id: u64) {
        if let Some(c) = self.lock().get_mut(&id) {
            c.in_flight = c.in_flight.saturating_sub(1);
            c.served += 1;
            c.idle_since = Instant::now();
        }
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// When the connection must be closed if it is still idle then; `None` while a request is in flight.
    fn deadline(&self, id: u64, limits: &Limits) -> Option<Instant> {
        let conns = self.lock();
        let c = conns.get(&id)?;
        if c.in_flight > 0 {
            return None;
        }
        let allowed = if c.served == 0 { limits.header_read_timeout } else { limits.idle_timeout };
        Some(c.idle_since + allowed)
    }
}

/// Marks its connection busy while a request is being answered (dropped when the response has been produced).
struct Busy {
    table: Arc<ConnTable>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.table.end(self.id);
    }
}

/// Serves `app` on `listener` until `stop` turns true; then stops accepting and gives open requests up to
/// `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    table: Arc<ConnTable>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a transient network error: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, close)) = table.admit(limits.max_connections) else {
            tracing::warn!(open = table.open(), "connection refused: every open connection is busy");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let table = table.clone();
        let app = app.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let svc_table = table.clone();
            let svc = tower::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
                svc_table.begin(id);
                let busy = Busy { table: svc_table.clone(), id };
                let mut app = app.clone();
                async move {
                    let resp = tower::Service::call(&mut app, req.map(axum::body::Body::new)).await;
                    drop(busy);
                    resp
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            tokio::pin!(conn);
            loop {
                let deadline = table.deadline(id, &limits).unwrap_or_else(|| Instant::now() + limits.idle_timeout);
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = close.notified() => break,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(drain, conn.as_mut()).await;
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        if table.deadline(id, &limits).is_some_and(|d| d <= Instant::now()) {
                            break;
                        }
                    }
                }
            }
            table.remove(id);
        });
        // Reap finished connection tasks so the set does not grow with every connection ever served.
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
}
