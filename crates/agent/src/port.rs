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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
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

/// Connections open on the port (in all and per address: the caps are checked against these) and those closed as
/// they arrived, over a cap; also for `/metrics`.
#[derive(Debug, Default)]
pub struct PortStats {
    open: Mutex<Open>,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl PortStats {
    fn open_now(&self) -> MutexGuard<'_, Open> {
        // Every change under the lock is a whole increment or decrement.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn open(&self) -> u64 {
        self.open_now().total as u64
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a place for a connection from `addr`, or says which cap is reached.
    fn take(self: &Arc<Self>, addr: IpAddr, limits: &PortLimits) -> Result<Place, &'static str> {
        let mut open = self.open_now();
        if open.total >= limits.max_connections.max(1) {
            return Err("connections");
        }
        let n = open.by_address.entry(addr).or_default();
        if *n >= limits.per_address.max(1) {
            return Err("connections from one address");
        }
        *n += 1;
        open.total += 1;
        Ok(Place { addr, stats: self.clone() })
    }
}

/// An accepted connection and its place under the caps, given back when it closes.
pub struct Admitted {
    stream: TcpStream,
    _place: Place,
}

struct Place {
    addr: IpAddr,
    stats: Arc<PortStats>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.stats.open_now();
        open.total -= 1;
        if let Some(n) = open.by_address.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.addr);
            }
        }
    }
}

/// Accepts on `listener` until the receiver is dropped, handing over the connections within `limits`.
pub fn admit(listener: TcpListener, limits: PortLimits, stats: Arc<PortStats>) -> mpsc::Receiver<io::Result<Admitted>> {
    let (tx, rx) = mpsc::channel(16);
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
            let place = match stats.take(peer.ip(), &limits) {
                Ok(place) => place,
                Err(cap) => {
                    // Closing the stream (dropped here) is the answer; a flood logs at debug only.
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %peer.ip(), "agents' port: too many {cap}, connection closed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if tx.send(Ok(Admitted { stream, _place: place })).await.is_err() {
                return;
            }
        }
    });
    rx
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
