//! The intercepting forward proxy of a run: on a free loopback port, it answers `CONNECT host:443`
//! for one of [`GOOGLE_HOSTS`] with TLS under a leaf certificate for that host (signed by the
//! run's [`ThrowawayCa`]) and relays the bytes inside the tunnel to the mock, so the mock's journal
//! sees those requests exactly as it sees direct ones. Every other request (a `CONNECT` to another
//! host or port, plain-HTTP proxying of any host, a request head it cannot read) gets `403` and a
//! closed connection, and is counted: `unmocked_requests`, a call that would have left the machine.
//!
//! Plain HTTP to Google's hosts is refused too: Google serves them over HTTPS only, so such a call
//! would not have reached Google either.

use super::ca::ThrowawayCa;
use super::GOOGLE_HOSTS;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The longest request head (request line and headers) read before refusing.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A running intercepting proxy. Stopped (every tunnel closed) by [`InterceptProxy::stop`] or on
/// drop.
pub struct InterceptProxy {
    pub addr: SocketAddr,
    unmocked: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InterceptProxy {
    /// Binds a free port on 127.0.0.1 and serves until stopped, relaying Google's hosts to the
    /// mock at `mock` (loopback).
    pub async fn start(ca: &ThrowawayCa, mock: SocketAddr) -> Result<InterceptProxy, String> {
        let mut acceptors = HashMap::new();
        for host in GOOGLE_HOSTS {
            let leaf = ca.leaf(host)?;
            let mut config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("cannot configure TLS for {host}: {e}"))?
                    .with_no_client_auth()
                    .with_single_cert(leaf.chain, leaf.key)
                    .map_err(|e| format!("cannot configure TLS for {host}: {e}"))?;
            // The mock speaks HTTP/1.1 only.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            acceptors.insert(*host, TlsAcceptor::from(Arc::new(config)));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot bind the intercepting proxy on 127.0.0.1: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the intercepting proxy has no address: {e}"))?;
        let unmocked = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(listener, Arc::new(acceptors), mock, unmocked.clone()));
        Ok(InterceptProxy {
            addr,
            unmocked,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (what `{proxy_url}` holds: for `HTTPS_PROXY`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests refused so far (they would have left the machine).
    pub fn unmocked_requests(&self) -> u64 {
        self.unmocked.load(Ordering::Relaxed)
    }

    /// Stops accepting and closes every tunnel; returns the count of refused requests.
    pub async fn stop(mut self) -> u64 {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.unmocked_requests()
    }
}

impl Drop for InterceptProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts until aborted; the connections live in a `JoinSet`, so aborting this task closes them.
async fn accept_loop(
    listener: TcpListener,
    acceptors: Arc<HashMap<&'static str, TlsAcceptor>>,
    mock: SocketAddr,
    unmocked: Arc<AtomicU64>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let acceptors = acceptors.clone();
                let unmocked = unmocked.clone();
                connections.spawn(async move {
                    if let Decision::Refused = serve_connection(tcp, &acceptors, mock).await {
                        unmocked.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What became of one proxy connection.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Tunnelled to the mock (or the client went away before asking anything).
    Served,
    /// Refused with 403: it would have left the machine.
    Refused,
}

/// The host a `CONNECT` request line asks for, when it is one served from the mock.
fn intercepted_host(request_line: &str) -> Option<&'static str> {
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(authority)) = (parts.next(), parts.next()) else {
        return None;
    };
    if !method.eq_ignore_ascii_case("CONNECT") {
        return None;
    }
    let (host, port) = authority.rsplit_once(':')?;
    if port != "443" {
        return None;
    }
    GOOGLE_HOSTS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(host.trim_end_matches('.')))
        .copied()
}

async fn serve_connection(
    tcp: TcpStream,
    acceptors: &HashMap<&'static str, TlsAcceptor>,
    mock: SocketAddr,
) -> Decision {
    let mut client = BufReader::new(tcp);
    let request_line = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Some(line))) => line,
        // Closed before a whole request line: nothing was asked.
        Ok(Ok(None)) => return Decision::Served,
        _ => return refuse(client, "cannot read the request head").await,
    };
    let Some(host) = intercepted_host(&request_line) else {
        let asked = request_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        return refuse(
            client,
            &format!(
                "credpool intercepts only CONNECT to {} on port 443; refused: {asked}",
                GOOGLE_HOSTS.join(", ")
            ),
        )
        .await;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return Decision::Served;
    }
    // Bytes the client sent after its head (a ClientHello sent early) are still in the BufReader,
    // which the TLS acceptor reads through.
    let Ok(mut tls) = acceptors[host].accept(client).await else {
        return Decision::Served;
    };
    let Ok(mut upstream) = TcpStream::connect(mock).await else {
        return Decision::Served;
    };
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
    Decision::Served
}

/// Reads the request head up to its blank line; returns the request line (`None` if the client
/// closed before sending one). Fails on a head past [`MAX_HEAD`].
async fn read_head(client: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let mut request_line = None;
    let mut total = 0usize;
    loop {
        let mut line = String::new();
        let n = (&mut *client)
            .take((MAX_HEAD - total) as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return if request_line.is_some() {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            } else {
                Ok(None)
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        match request_line {
            None => request_line = Some(trimmed.to_string()),
            Some(_) if trimmed.is_empty() => return Ok(request_line),
            Some(_) => {}
        }
    }
}

async fn refuse(mut client: BufReader<TcpStream>, why: &str) -> Decision {
    let body = format!("{why}\n");
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
    Decision::Refused
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `head` to the proxy and returns its whole answer (it closes after a refusal).
    async fn ask(proxy: SocketAddr, head: &str) -> String {
        let mut tcp = TcpStream::connect(proxy).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn google_hosts_are_tunnelled_under_the_ca_and_everything_else_refused_and_counted() {
        // A stand-in for the mock: answers one HTTP request with what it received.
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = backend.accept().await.unwrap();
            let mut got = vec![0u8; 4096];
            let n = tcp.read(&mut got).await.unwrap();
            let first = String::from_utf8_lossy(&got[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
                first.len()
            );
            tcp.write_all(answer.as_bytes()).await.unwrap();
        });
        let ca = ThrowawayCa::generate().unwrap();
        let proxy = InterceptProxy::start(&ca, backend_addr).await.unwrap();
        assert!(proxy.url().starts_with("http://127.0.0.1:"));

        for head in [
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "CONNECT oauth2.googleapis.com:8443 HTTP/1.1\r\n\r\n",
            "GET http://oauth2.googleapis.com/token HTTP/1.1\r\nHost: oauth2.googleapis.com\r\n\r\n",
        ] {
            let answer = ask(proxy.addr, head).await;
            assert!(answer.starts_with("HTTP/1.1 403"), "{head:?}: {answer}");
        }
        assert_eq!(proxy.unmocked_requests(), 3);

        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        tcp.write_all(b"CONNECT oauth2.googleapis.com:443 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut established = [0u8; 39];
        tcp.read_exact(&mut established).await.unwrap();
        assert_eq!(&established[..], b"HTTP/1.1 200 Connection Established\r\n\r\n");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.certificate_der()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(
                rustls::pki_types::ServerName::try_from("oauth2.googleapis.com").unwrap(),
                tcp,
            )
            .await
            .expect("the leaf for oauth2.googleapis.com, trusted through the CA");
        tls.write_all(b"POST /token HTTP/1.1\r\nHost: oauth2.googleapis.com\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await.unwrap();
        assert!(answer.ends_with("POST /token HTTP/1.1"), "{answer}");
        assert_eq!(proxy.stop().await, 3, "a tunnelled request is not unmocked");
    }

    #[test]
    fn only_connect_to_a_google_host_on_443_is_intercepted() {
        assert_eq!(
            intercepted_host("CONNECT oauth2.googleapis.com:443 HTTP/1.1"),
            Some("oauth2.googleapis.com")
        );
        assert_eq!(
            intercepted_host("connect GenerativeLanguage.googleapis.com:443 HTTP/1.0"),
            Some("generativelanguage.googleapis.com")
        );
        for refused in [
            "CONNECT example.com:443 HTTP/1.1",
            "CONNECT oauth2.googleapis.com:80 HTTP/1.1",
            "CONNECT oauth2.googleapis.com.evil.example:443 HTTP/1.1",
            "GET http://oauth2.googleapis.com/token HTTP/1.1",
            "CONNECT",
            "",
        ] {
            assert_eq!(intercepted_host(refused), None, "{refused}");
        }
    }
}
