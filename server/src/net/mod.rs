//! Connection handling for both ports: accepting (with back-off when the process runs out of
//! file descriptors or memory, instead of spinning), a per-port connection limit, and closing
//! connections that never speak, go idle, or stay silent at shutdown.
//!
//! Every accepted socket is wrapped in a [`Conn`] whose reads end (EOF) once its *closer*
//! fires: no request within the handshake timeout, no open request for the idle timeout, or
//! shutdown once it has no open request left. gRPC counts open requests (a following
//! WatchLogs stream is open however quietly it waits) with [`StreamCountLayer`]; the HTTP port,
//! whose requests are short, counts bytes read as activity.

mod conn;
mod grpc_io;

pub use conn::{Conn, ConnInfo, StreamCount, StreamCountLayer};
pub use grpc_io::GrpcIo;

use conn::Activity;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

/// Default for `--max-connections` (per port).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default for `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A connection that has not started a request (gRPC) or sent a byte (HTTP) by then is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 PING interval on the gRPC port; a peer that does not answer within
/// [`KEEPALIVE_TIMEOUT`] is dropped (half-open connections).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// See [`KEEPALIVE_INTERVAL`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// At shutdown, how long a connection without an open request may stay before it is closed
/// (hyper's own GOAWAY usually closes it sooner; this catches silent ones).
pub const SHUTDOWN_LINGER: Duration = Duration::from_millis(200);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Connection limits for one port.
#[derive(Debug, Clone, Copy)]
pub struct NetLimits {
    /// Most open connections; beyond it new ones are accepted and closed at once.
    pub max_connections: usize,
    /// A connection with no open request for this long is closed.
    pub idle_timeout: Duration,
    /// A connection that has not started (gRPC: a request; HTTP: a byte) by then is closed.
    pub handshake_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// True for accept errors that say the process or host is out of a resource (descriptors,
/// buffers, memory): retrying at once would only spin.
fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts connections on one port within its limits.
struct Acceptor {
    listener: TcpListener,
    name: &'static str,
    limits: NetLimits,
    slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    activity: Activity,
    /// Connections refused at the limit since the last one accepted (logged once per burst).
    refused: u64,
}

impl Acceptor {
    fn new(
        listener: TcpListener,
        name: &'static str,
        limits: NetLimits,
        shutdown: watch::Receiver<bool>,
        activity: Activity,
    ) -> Self {
        Self {
            listener,
            name,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            shutdown,
            activity,
            refused: 0,
        }
    }

    /// The next connection within the limit. Failed accepts back off (10 ms doubling to 1 s,
    /// logged once per burst); connections past the limit are closed at once.
    async fn next(&mut self) -> (Conn, SocketAddr) {
        let mut backoff = BACKOFF_MIN;
        let mut failures: u64 = 0;
        loop {
            let (tcp, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) if is_resource_error(&e) => {
                    if failures == 0 {
                        eprintln!(
                            "stressd: {} port cannot accept connections: {e}; retrying with back-off",
                            self.name
                        );
                    }
                    failures += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
                // One connection's failure (reset before accept, ...): the next may be fine.
                Err(_) => continue,
            };
            if failures > 0 {
                eprintln!(
                    "stressd: {} port accepting again after {failures} failed accepts",
                    self.name
                );
                failures = 0;
                backoff = BACKOFF_MIN;
            }
            let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
                if self.refused == 0 {
                    eprintln!(
                        "stressd: {} port has {} connections open (--max-connections); closing new ones until some close",
                        self.name, self.limits.max_connections
                    );
                }
                self.refused += 1;
                drop(tcp);
                continue;
            };
            if self.refused > 0 {
                eprintln!(
                    "stressd: {} port accepting again; closed {} connections over the limit",
                    self.name, self.refused
                );
                self.refused = 0;
            }
            // Nagle off: without it a client's first small request on a new connection can
            // wait ~40 ms for a delayed ACK.
            let _ = tcp.set_nodelay(true);
            let conn = Conn::new(
                tcp,
                permit,
                self.activity,
                self.limits,
                self.shutdown.clone(),
            );
            return (conn, addr);
        }
    }
}

/// The gRPC port's connections, as tonic's `serve_with_incoming_shutdown` takes them. The
/// listener closes when tonic drops the stream (it stops accepting at shutdown). With `tls`,
/// each connection's handshake runs in its own task (a slow client holds up no one) within the
/// handshake timeout; a failed handshake just closes the connection.
pub fn grpc_incoming(
    listener: TcpListener,
    limits: NetLimits,
    shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
) -> ReceiverStream<Result<GrpcIo, io::Error>> {
    let mut acceptor = Acceptor::new(listener, "gRPC", limits, shutdown, Activity::Requests);
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                (conn, _) = acceptor.next() => conn,
                () = tx.closed() => return,
            };
            let Some(tls) = &tls else {
                if tx.send(Ok(GrpcIo::Plain(conn))).await.is_err() {
                    return;
                }
                continue;
            };
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                let handshake = tls.accept(conn).into_fallible();
                match tokio::time::timeout(limits.handshake_timeout, handshake).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(GrpcIo::Tls(Box::new(stream)))).await;
                    }
                    Ok(Err((_, conn))) => linger_close(conn).await,
                    Err(_) => {}
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Closes a connection whose TLS handshake failed so that the client reads the alert (e.g.
/// "certificate required"). In TLS 1.3 the client sends its first request before the server
/// has checked its certificate; closing with that request unread would send a RST, and the
/// client would see "connection reset" instead of the reason. So: FIN after the alert (which
/// tokio-rustls has already written), then read and drop what the client still sends, for at
/// most a second.
async fn linger_close(mut conn: Conn) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = conn.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The HTTP port's listener for `axum::serve`.
pub struct HttpListener(Acceptor);

impl HttpListener {
    /// Wraps `listener` with `limits`; connections close at shutdown.
    pub fn new(listener: TcpListener, limits: NetLimits, shutdown: watch::Receiver<bool>) -> Self {
        Self(Acceptor::new(
            listener,
            "HTTP",
            limits,
            shutdown,
            Activity::Bytes,
        ))
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.0.next().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.listener.local_addr()
    }
}

/// Parses a duration flag: whole seconds (`300`) or `<n>ms`, `<n>s`, `<n>m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_garbage() {
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "s", "2h", "-1s", "1.5s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_resource_errors_back_off() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_error(&io::Error::from_raw_os_error(code)));
        }
        assert!(!is_resource_error(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
