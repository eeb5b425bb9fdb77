//! Runs a parsed command against stressd: connect, call, print, and map failures to exit codes.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::time::Duration;

use memstress_proto::v1::{
    ClearRequest, GetRunRequest, LogEntry, StartRequest, StatusRequest, StopRequest,
    WatchLogsRequest, stress_service_client::StressServiceClient,
};
use serde_json::Value;
use std::path::Path;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::cli::{
    Cli, Command, GlobalArgs, HealthArgs, HistoryArgs, LogsArgs, OutputFormat, StartArgs,
};
use crate::error::{self, CliError, HttpAnswer};
use crate::follow::{self, FollowAction, RunEnd};
use crate::paging::Pager;
use crate::{human, json, text};

/// Runs one command to completion.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let token = std::env::var("STRESSCTL_TOKEN").ok();
    let authorization = authorization(cli.global.token_file.as_deref(), token.as_deref())?;
    let mut ctx = Ctx::connect(&cli.global, cli.global.timeout, cli.global.output).await?;
    ctx.authorization = authorization;
    match cli.command {
        Command::Start(args) => ctx.start(&args).await,
        Command::Stop => ctx.stop().await,
        Command::Status => ctx.status().await,
        Command::Clear => ctx.clear().await,
        Command::Logs(args) => ctx.logs(&args).await,
        Command::Health(args) => ctx.health(&args).await,
        Command::History(args) => ctx.history(&args).await,
    }
}

/// A connected channel plus the global options every command needs.
struct Ctx {
    addr: String,
    timeout: Duration,
    output: OutputFormat,
    channel: Channel,
    /// `Bearer <token>`, sent with every call when a token was given.
    authorization: Option<MetadataValue<Ascii>>,
}

/// The `authorization` value from `--token-file` (which wins) or STRESSCTL_TOKEN: the token
/// trimmed of surrounding whitespace, as stressd trims its token files. `None` without either.
pub fn authorization(
    token_file: Option<&Path>,
    env_token: Option<&str>,
) -> Result<Option<MetadataValue<Ascii>>, CliError> {
    let (token, source) = match (token_file, env_token) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::Token(format!("cannot read --token-file {}: {e}", path.display()))
            })?;
            (text, format!("--token-file {}", path.display()))
        }
        (None, Some(token)) => (token.to_owned(), "STRESSCTL_TOKEN".to_owned()),
        (None, None) => return Ok(None),
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(CliError::Token(format!(
            "{source} is empty; it must hold the token"
        )));
    }
    MetadataValue::try_from(format!("Bearer {token}"))
        .map(Some)
        .map_err(|_| {
            CliError::Token(format!(
                "{source}: the token holds characters a gRPC header cannot carry (allowed: \
                 printable ASCII)"
            ))
        })
}

/// Writes `s` to stdout and flushes, so followed entries appear as they arrive.
fn print_text(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// Writes one JSON document on one line.
fn print_json(v: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()
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
fn interrupt_listener() -> Pin<Box<dyn Future<Output = ()> + Send>> {
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
enum StreamStop {
    /// The server ended the stream.
    Ended,
    /// The stream failed.
    Failed(CliError),
    /// Ctrl-C.
    Interrupted,
}

impl Ctx {
    /// Connects eagerly so an unreachable server is reported once, before any call.
    async fn connect(
        global: &GlobalArgs,
        timeout: Duration,
        output: OutputFormat,
    ) -> Result<Self, CliError> {
        let addr = global.addr.as_str();
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .map_err(|e| CliError::connect(addr, timeout, &e))?
            .connect_timeout(timeout);
        let endpoint = crate::tls::configure(endpoint, addr, &global.tls)?;
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
            output,
            channel,
            authorization: None,
        })
    }

    fn client(&self) -> StressServiceClient<Channel> {
        StressServiceClient::new(self.channel.clone())
    }

    /// A unary request carrying the deadline, so the server can give up too, and the token.
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = self.authorized(msg);
        req.set_timeout(self.timeout);
        req
    }

    /// A request carrying the token, if one was given.
    fn authorized<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(value) = &self.authorization {
            req.metadata_mut().insert("authorization", value.clone());
        }
        req
    }

    /// Awaits a call (or the opening of a stream) within `--timeout`.
    async fn call<T>(
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
    async fn diagnose(&self, err: CliError) -> CliError {
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

    /// Prints a result in the chosen format.
    fn emit(&self, text: impl FnOnce() -> String, json: impl FnOnce() -> Value) -> io::Result<()> {
        match self.output {
            OutputFormat::Text => print_text(&text()),
            OutputFormat::Json => print_json(&json()),
        }
    }

    fn emit_entry(&self, e: &LogEntry) -> io::Result<()> {
        self.emit(|| text::log_entry(e), || json::log_entry(e))
    }

    async fn start(&self, args: &StartArgs) -> Result<(), CliError> {
        let req: StartRequest = args.to_request();
        let mut client = self.client();
        let resp = self.call("Start", client.start(self.request(req))).await?;
        self.emit(|| text::start(&resp), || json::start(&resp))?;
        if !args.follow {
            return Ok(());
        }
        self.follow_run(&resp.run_id).await
    }

    /// Opens WatchLogs. No grpc-timeout header: a followed stream must outlive `--timeout`.
    async fn watch(
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
    async fn next_entry<I>(
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

    /// `start --follow`: the run's entries (and missed-entry notices) until it ends.
    async fn follow_run(&self, run_id: &str) -> Result<(), CliError> {
        let mut stream = self.watch(0, true).await?;
        let mut interrupt = interrupt_listener();
        eprintln!("Following run {run_id} (Ctrl-C stops following, not the run).");
        loop {
            let entry = match self.next_entry(&mut stream, &mut interrupt).await {
                Ok(entry) => entry,
                Err(StreamStop::Interrupted) => {
                    eprintln!(
                        "\nStopped following; run {run_id} keeps running. Stop it with: stressctl --addr {} stop",
                        self.addr
                    );
                    return Err(CliError::Interrupted);
                }
                Err(StreamStop::Ended) => {
                    return Err(CliError::StreamEnded(format!(
                        "log stream from stressd at {} ended before run {run_id} finished (server shutting down?)",
                        self.addr
                    )));
                }
                // Not a stream that ended early: there was never a gRPC stream.
                Err(StreamStop::Failed(e @ CliError::NotGrpc { .. })) => return Err(e),
                Err(StreamStop::Failed(e)) => {
                    return Err(CliError::StreamEnded(format!(
                        "log stream broke before run {run_id} finished: {e}"
                    )));
                }
            };
            match follow::decide(run_id, &entry) {
                FollowAction::Skip => {}
                FollowAction::Print => self.emit_entry(&entry)?,
                FollowAction::PrintAndStop(end) => {
                    self.emit_entry(&entry)?;
                    return match end {
                        RunEnd::Completed | RunEnd::Stopped => Ok(()),
                        RunEnd::Failed => Err(CliError::RunFailed {
                            run_id: run_id.to_owned(),
                            message: entry.message,
                        }),
                    };
                }
            }
        }
    }

    async fn stop(&self) -> Result<(), CliError> {
        let mut client = self.client();
        let resp = self
            .call("Stop", client.stop(self.request(StopRequest {})))
            .await?;
        Ok(self.emit(|| text::stop(&resp), || json::stop(&resp))?)
    }

    async fn status(&self) -> Result<(), CliError> {
        let mut client = self.client();
        let resp = self
            .call("Status", client.status(self.request(StatusRequest {})))
            .await?;
        Ok(self.emit(|| text::status(&resp), || json::status(&resp))?)
    }

    async fn clear(&self) -> Result<(), CliError> {
        let mut client = self.client();
        let resp = self
            .call("Clear", client.clear(self.request(ClearRequest {})))
            .await?;
        Ok(self.emit(|| text::clear(&resp), || json::clear(&resp))?)
    }

    async fn logs(&self, args: &LogsArgs) -> Result<(), CliError> {
        let mut stream = self.watch(args.from, args.follow).await?;
        // Only a followed stream catches Ctrl-C; a one-shot dump keeps the default (terminate).
        let mut interrupt: Pin<Box<dyn Future<Output = ()> + Send>> = if args.follow {
            interrupt_listener()
        } else {
            Box::pin(std::future::pending())
        };
        loop {
            match self.next_entry(&mut stream, &mut interrupt).await {
                Ok(entry) => self.emit_entry(&entry)?,
                Err(StreamStop::Ended) if !args.follow => return Ok(()),
                Err(StreamStop::Ended) => {
                    return Err(CliError::StreamEnded(format!(
                        "log stream from stressd at {} ended (server shutting down?)",
                        self.addr
                    )));
                }
                Err(StreamStop::Failed(e)) if !args.follow => return Err(e),
                // Not a stream that ended early: there was never a gRPC stream.
                Err(StreamStop::Failed(e @ CliError::NotGrpc { .. })) => return Err(e),
                Err(StreamStop::Failed(e)) => {
                    return Err(CliError::StreamEnded(format!("log stream broke: {e}")));
                }
                Err(StreamStop::Interrupted) => return Err(CliError::Interrupted),
            }
        }
    }

    /// `history`: one run in full (GetRun), or a listing paged through ListRuns.
    async fn history(&self, args: &HistoryArgs) -> Result<(), CliError> {
        let mut client = self.client();
        if let Some(run_id) = &args.run_id {
            let req = GetRunRequest {
                run_id: run_id.clone(),
            };
            // NOT_FOUND (unknown or pruned run) is stressd's refusal: exit 1 with its message.
            let run = self
                .call("GetRun", client.get_run(self.request(req)))
                .await?;
            return Ok(self.emit(|| text::run_record(&run), || json::run_record(Some(&run)))?);
        }
        let mut pager = Pager::new(args.want(), args.cursor.clone().unwrap_or_default());
        while let Some(req) = pager.next_request() {
            let page = self
                .call("ListRuns", client.list_runs(self.request(req)))
                .await?;
            pager.absorb(page);
        }
        let listing = pager.finish();
        Ok(self.emit(
            || text::run_list(&listing.runs, &listing.next_cursor),
            || json::run_list(&listing.runs, &listing.next_cursor),
        )?)
    }

    async fn health(&self, args: &HealthArgs) -> Result<(), CliError> {
        let mut client = HealthClient::new(self.channel.clone());
        let mut checks = Vec::new();
        for service in args.services() {
            let req = self.request(HealthCheckRequest {
                service: service.clone(),
            });
            let status = match self.call("Health/Check", client.check(req)).await {
                Ok(resp) => resp.status,
                // The health service answers NOT_FOUND for a name it does not know.
                Err(CliError::Rpc(s)) if s.code() == tonic::Code::NotFound => {
                    ServingStatus::ServiceUnknown as i32
                }
                Err(e) => return Err(e),
            };
            checks.push((service, status));
        }
        self.emit(|| text::health(&checks), || json::health(&checks))?;
        let not_serving: Vec<&str> = checks
            .iter()
            .filter(|(_, s)| *s != ServingStatus::Serving as i32)
            .map(|(name, _)| {
                if name.is_empty() {
                    "(server)"
                } else {
                    name.as_str()
                }
            })
            .collect();
        if not_serving.is_empty() {
            Ok(())
        } else {
            Err(CliError::NotServing(not_serving.join(", ")))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_file_first_then_the_environment() {
        assert!(authorization(None, None).unwrap().is_none());
        let from_env = authorization(None, Some(" s3cret\n")).unwrap().unwrap();
        assert_eq!(from_env.to_str().unwrap(), "Bearer s3cret");
        let dir = std::env::temp_dir().join(format!("stressctl-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "fr0m-file\n").unwrap();
        let v = authorization(Some(&file), Some("env")).unwrap().unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer fr0m-file");
        std::fs::write(&file, "\n").unwrap();
        let err = authorization(Some(&file), None).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        assert_eq!(err.exit_code(), crate::error::EXIT_UNREACHABLE);
        let err = authorization(Some(&dir.join("missing")), None).unwrap_err();
        assert!(
            err.to_string().contains("cannot read --token-file"),
            "{err}"
        );
        let err = authorization(None, Some("bad\u{7f}token")).unwrap_err();
        assert!(err.to_string().contains("STRESSCTL_TOKEN"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
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
