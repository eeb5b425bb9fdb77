//! One connection to one stressd: connecting, calls within --timeout, failure diagnosis,
//! and opening log streams.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use memstress_proto::v1::{LogEntry, WatchLogsRequest, stress_service_client::StressServiceClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::cli::OutputFormat;
use crate::error::{self, CliError, HttpAnswer};
use crate::human;
use crate::tls::TlsArgs;

/// What every connection needs from the global options.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `--timeout`: connecting, and each unary call.
    pub(crate) timeout: Duration,
    /// `--output`.
    pub(crate) output: OutputFormat,
    /// `--ca-file` and friends, for https:// addresses.
    pub(crate) tls: TlsArgs,
    /// `Bearer <token>`, sent with every call when a token was given.
    pub(crate) authorization: Option<MetadataValue<Ascii>>,
}

/// A connected channel to one stressd plus the global options every command needs.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The normalised address (`http://HOST:PORT`).
    pub(crate) addr: String,
    pub(crate) timeout: Duration,
    pub(crate) output: OutputFormat,
    channel: Channel,
    /// `Bearer <token>`, sent with every call when a token was given.
    authorization: Option<MetadataValue<Ascii>>,
    /// The options it was made with, to make more connections like it.
    settings: Settings,
}

/// Whether a status reports that the call's deadline passed: DEADLINE_EXCEEDED, or the
/// CANCELLED "Timeout expired" a tonic server sends when it enforces `grpc-timeout`.
fn is_deadline(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::DeadlineExceeded => true,
        tonic::Code::Cancelled => status.message() == "Timeout expired",
        _ => false,
    }
}

/// Longest the HTTP/1 probe may take, on top of a call that already failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `addr` (an `http://HOST:PORT` address) answers a plain `GET / HTTP/1.1` with an
/// HTTP/1.x status line. Asked only after the HTTP/2 connection failed on its first answer:
/// an HTTP/1-only server closes it or answers with something that is not HTTP/2. A gRPC server
/// never answers this with an HTTP/1 status line, so a yes means the address is not gRPC.
async fn answers_http1(addr: &str, timeout: Duration) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let Ok(uri) = addr.parse::<tonic::transport::Uri>() else {
        return false;
    };
    let Some(authority) = uri.authority().map(|a| a.as_str().to_owned()) else {
        return false;
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .ok()?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: stressctl\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut reply = [0u8; 8];
        let mut len = 0;
        while len < reply.len() {
            match stream.read(&mut reply[len..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        Some(error::looks_like_http1(&reply[..len]))
    };
    tokio::time::timeout(timeout.min(PROBE_TIMEOUT), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A future that completes on Ctrl-C. The handler is installed now, not on first poll, so a
/// Ctrl-C right after the "Following" note cannot kill the process before it is caught. If no
/// handler can be installed the future never completes (Ctrl-C then terminates as usual).
pub(crate) fn interrupt_listener() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::interrupt()) {
            Ok(mut sig) => Box::pin(async move {
                if sig.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }),
            Err(_) => Box::pin(std::future::pending()),
        }
    }
    #[cfg(not(unix))]
    {
        Box::pin(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Why a followed stream stopped delivering.
pub(crate) enum StreamStop {
    /// The server ended the stream.
    Ended,
    /// The stream failed.
    Failed(CliError),
    /// Ctrl-C.
    Interrupted,
}

impl Ctx {
    /// Connects eagerly so an unreachable server is reported once, before any call.
    pub(crate) async fn connect(addr: &str, settings: &Settings) -> Result<Self, CliError> {
        let timeout = settings.timeout;
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .map_err(|e| CliError::connect(addr, timeout, &e))?
            .connect_timeout(timeout);
        let endpoint = crate::tls::configure(endpoint, addr, &settings.tls)?;
        let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
            Err(_) => {
                return Err(CliError::Unreachable {
                    addr: addr.to_owned(),
                    reason: format!("timed out after {}", human::duration(timeout)),
                });
            }
            Ok(Err(e)) => return Err(CliError::connect(addr, timeout, &e)),
            Ok(Ok(channel)) => channel,
        };
        Ok(Ctx {
            addr: addr.to_owned(),
            timeout,
            output: settings.output,
            channel,
            authorization: settings.authorization.clone(),
            settings: settings.clone(),
        })
    }

    /// The options this connection was made with.
    pub(crate) fn settings(&self) -> Settings {
        self.settings.clone()
    }

    /// The channel, for clients of other services (health).
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub(crate) fn client(&self) -> StressServiceClient<Channel> {
        StressServiceClient::new(self.channel.clone())
    }

    /// A unary request carrying the deadline, so the server can give up too, and the token.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = self.authorized(msg);
        req.set_timeout(self.timeout);
        req
    }

    /// A request carrying the token, if one was given.
    pub(crate) fn authorized<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(value) = &self.authorization {
            req.metadata_mut().insert("authorization", value.clone());
        }
        req
    }

    /// Awaits a call (or the opening of a stream) within `--timeout`.
    pub(crate) async fn call<T>(
        &self,
        rpc: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CliError> {
        let timed_out = || CliError::Timeout {
            addr: self.addr.clone(),
            rpc,
            timeout: self.timeout,
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(timed_out()),
            // The server enforcing our grpc-timeout can beat the local timer; same failure.
            Ok(Err(status)) if is_deadline(&status) => Err(timed_out()),
            Ok(Err(status)) => Err(self
                .diagnose(CliError::status(&self.addr, self.timeout, status))
                .await),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }

    /// A connection that broke on its answer may have met an HTTP/1 server (which does not
    /// speak HTTP/2 at all, so tonic sees a closed connection or a frame error): probe for one
    /// and report it as such. Every other failure is returned unchanged.
    pub(crate) async fn diagnose(&self, err: CliError) -> CliError {
        if matches!(err, CliError::Transport { .. })
            && answers_http1(&self.addr, self.timeout).await
        {
            return CliError::NotGrpc {
                addr: self.addr.clone(),
                answer: HttpAnswer::Http1,
            };
        }
        err
    }

    /// Opens WatchLogs. No grpc-timeout header: a followed stream must outlive `--timeout`.
    pub(crate) async fn watch(
        &self,
        from_sequence: u64,
        follow: bool,
    ) -> Result<tonic::Streaming<LogEntry>, CliError> {
        let mut client = self.client();
        let req = self.authorized(WatchLogsRequest {
            from_sequence,
            follow,
        });
        self.call("WatchLogs", client.watch_logs(req)).await
    }

    /// Next entry, or why there is none. `interrupt` is the one Ctrl-C future of the whole
    /// stream, not one per entry, so a Ctrl-C between entries is not lost.
    pub(crate) async fn next_entry<I>(
        &self,
        stream: &mut tonic::Streaming<LogEntry>,
        interrupt: &mut I,
    ) -> Result<LogEntry, StreamStop>
    where
        I: Future<Output = ()> + Unpin,
    {
        tokio::select! {
            r = stream.message() => match r {
                Ok(Some(e)) => Ok(e),
                Ok(None) => Err(StreamStop::Ended),
                Err(status) => Err(StreamStop::Failed(CliError::status(
                    &self.addr,
                    self.timeout,
                    status,
                ))),
            },
            () = interrupt => Err(StreamStop::Interrupted),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// The probe says yes to an HTTP/1 server only: not to a gRPC server (no false "not gRPC"
    /// after a real server's connection broke), nor to a closed port or a silent one.
    #[tokio::test]
    async fn http1_probe() {
        let t = Duration::from_secs(5);

        let http1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http1_addr = format!("http://{}", http1.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = http1.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\n\r\n").await;
        });
        assert!(answers_http1(&http1_addr, t).await);

        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = format!("http://{}", grpc.local_addr().unwrap());
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc)),
        );
        assert!(!answers_http1(&grpc_addr, t).await);

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        assert!(!answers_http1(&closed, t).await);

        // Accepts but never answers: the probe gives up after its own timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = format!("http://{}", silent.local_addr().unwrap());
        let started = std::time::Instant::now();
        assert!(!answers_http1(&silent_addr, Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(silent);

        assert!(!answers_http1("not a uri", t).await);
    }
}
