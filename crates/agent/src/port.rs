//! The agents' port faces networks the control plane does not trust: agents dial in from wherever their hosts are,
//! so anyone who can reach the port can open connections to it. tonic bounds streams per connection, not
//! connections, and finishes TLS handshakes in tasks of its own with no limit on their number. Here every accepted
//! connection holds a place under two caps — in all, and per source address (generous: agents behind one NAT share
//! an address) — for as long as it is open; a connection over either cap is closed as it arrives. A TLS handshake
//! must finish within its limit (tonic's own timeout, set by the hub).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Bounds on the agents' port.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Connections open at once (an agent holds one per replica it attaches to).
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub per_address: usize,
    /// A TLS handshake not finished within this long is dropped.
    pub handshake: Duration,
}

impl Default for PortLimits {
    fn default() -> Self {
        PortLimits { max_connections: 1024, per_address: 64, handshake: Duration::from_secs(10) }
    }
}

/// Connections open on the port and those closed as they arrived (over a cap), for `/metrics`.
#[derive(Debug, Default)]
pub struct PortStats {
    open: AtomicU64,
    refused: AtomicU64,
}

impl PortStats {
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// An accepted connection and its places under the caps, given back when it closes.
pub struct Admitted {
    stream: TcpStream,
    _place: Place,
}

struct Place {
    _all: OwnedSemaphorePermit,
    addr: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    stats: Arc<PortStats>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut m = self.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts on `listener` until the receiver is dropped, handing over the connections within `limits`.
pub fn admit(listener: TcpListener, limits: PortLimits, stats: Arc<PortStats>) -> mpsc::Receiver<io::Result<Admitted>> {
    let (tx, rx) = mpsc::channel(16);
    let all = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    // Out of descriptors or a connection reset before it was accepted: the listener itself is fine.
                    Err(e) => {
                        tracing::debug!(error = %e, "agents' port: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let addr = peer.ip();
            let Ok(permit) = all.clone().try_acquire_owned() else {
                refuse(&stats, addr, "connections");
                continue;
            };
            {
                let mut m = per_address.lock().unwrap_or_else(PoisonError::into_inner);
                let n = m.entry(addr).or_default();
                if *n >= limits.per_address.max(1) {
                    drop(m);
                    refuse(&stats, addr, "connections from one address");
                    continue;
                }
                *n += 1;
            }
            stats.open.fetch_add(1, Ordering::Relaxed);
            let place = Place { _all: permit, addr, per_address: per_address.clone(), stats: stats.clone() };
            let _ = stream.set_nodelay(true);
            if tx.send(Ok(Admitted { stream, _place: place })).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn refuse(stats: &PortStats, addr: IpAddr, cap: &str) {
    // Closing the stream (dropped by the caller) is the answer; a flood is one line per connection at debug only.
    stats.refused.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(peer = %addr, "agents' port: too many {cap}, connection closed");
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
