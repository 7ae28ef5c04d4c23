//! A small TCP fault proxy on 127.0.0.1, put between one fleet instance and Redis to make the
//! network misbehave on command: pass, delay every chunk, drop every connection, or blackhole.
//!
//! - **Pass**: bytes are copied both ways as they come.
//! - **Delay(d)**: each chunk read is held `d` before it is written on (both ways).
//! - **Drop**: every open connection is closed at once, and new ones are closed as soon as they
//!   are accepted (the client sees resets: Redis "unreachable").
//! - **Blackhole**: nothing is forwarded any more, and nothing is closed: bytes sent are read and
//!   thrown away, no answer ever comes (a dead path without a reset, a partitioned peer). A
//!   connection that was blackholed stays so after [`FaultProxy::set`] heals the proxy: its lost
//!   bytes cannot be resynchronised, as on a real dead path; only new connections pass. So a
//!   client recovers from a blackhole only by reconnecting.
//!
//! Used by tests/fleet_serve.rs; it is library code so the harness and benchmarks can use it too.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to traffic now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Delay(Duration),
    Drop,
    Blackhole,
}

/// A running proxy from a free 127.0.0.1 port to `target`. Stops (and closes every
/// connection) when dropped.
pub struct FaultProxy {
    port: u16,
    mode: watch::Sender<Fault>,
    connections: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts it inside the current tokio runtime.
    pub async fn start(target: std::net::SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, watching) = watch::channel(Fault::Pass);
        let connections = Arc::new(Mutex::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                *counted.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                let watching = watching.clone();
                tokio::spawn(async move {
                    if *watching.borrow() == Fault::Drop {
                        return;
                    }
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, watching).await;
                    }
                });
            }
        });
        Ok(FaultProxy {
            port,
            mode,
            connections,
            task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// Connections accepted so far (a client that reconnected shows up here).
    pub fn connections(&self) -> u64 {
        *self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        // The relays end when they see the sender gone.
    }
}

/// Copies both ways under the current fault until either side closes, the proxy drops the
/// connection, or the proxy is gone.
async fn relay(client: TcpStream, server: TcpStream, watching: watch::Receiver<Fault>) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let blackholed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = tokio::spawn(pipe(cr, sw, watching.clone(), blackholed.clone()));
    let down = tokio::spawn(pipe(sr, cw, watching, blackholed));
    let _ = tokio::join!(up, down);
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut watching: watch::Receiver<Fault>,
    blackholed: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = watching.changed() => {
                if changed.is_err() || *watching.borrow() == Fault::Drop {
                    return;
                }
                continue;
            }
        };
        let fault = *watching.borrow();
        match fault {
            Fault::Drop => return,
            Fault::Blackhole => {
                blackholed.store(true, Ordering::Relaxed);
                continue;
            }
            _ if blackholed.load(Ordering::Relaxed) => continue,
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Pass => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
