//! A minimal HTTP/1.1 keep-alive client for stressd's HTTP port, and a `/metrics` scraper that
//! runs on its own thread, runtime and connection (like one Prometheus server would).

use crate::Res;
use rand::RngExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

/// Upper bound on one request (connect + request + whole response).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The last line of an OpenMetrics exposition.
const OPENMETRICS_EOF: &str = "# EOF\n";

/// One HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// `Content-Type` header (empty when absent).
    pub(crate) content_type: String,
    /// The body (de-chunked).
    pub(crate) body: Vec<u8>,
}

/// HTTP/1.1 client over one kept-alive TCP connection (`TCP_NODELAY`); reconnects when the
/// server closed it.
pub(crate) struct HttpClient {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
    /// Connections opened after the first one.
    pub(crate) reconnects: u64,
}

impl HttpClient {
    /// Connects to `addr` (`host:port`).
    pub(crate) async fn connect(addr: &str) -> Res<Self> {
        let mut c = Self {
            addr: addr.to_string(),
            conn: None,
            reconnects: 0,
        };
        c.conn = Some(c.open().await?);
        Ok(c)
    }

    async fn open(&self) -> Res<BufReader<TcpStream>> {
        let s = TcpStream::connect(&self.addr).await?;
        s.set_nodelay(true)?;
        Ok(BufReader::new(s))
    }

    /// GET `path`; retried once on a fresh connection if the kept-alive one was closed.
    pub(crate) async fn get(&mut self, path: &str) -> Res<Response> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\
             Accept: application/openmetrics-text; version=1.0.0, text/plain; q=0.5\r\n\r\n",
            self.addr
        );
        let fut = async {
            for attempt in 0..2 {
                let mut conn = match self.conn.take() {
                    Some(c) => c,
                    None => {
                        self.reconnects += 1;
                        self.open().await?
                    }
                };
                conn.get_mut().write_all(req.as_bytes()).await?;
                match read_response(&mut conn).await? {
                    Some((resp, keep)) => {
                        if keep {
                            self.conn = Some(conn);
                        }
                        return Ok(resp);
                    }
                    // Closed before a status line: the server dropped the idle connection.
                    None if attempt == 0 => {}
                    None => break,
                }
            }
            Err(format!("GET {path}: connection closed without a response").into())
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(format!("GET {path} did not complete within {REQUEST_TIMEOUT:?}").into())
            }
        }
    }
}

/// Reads one response; None if the connection was closed before its status line. The flag
/// says whether the connection may be reused.
async fn read_response(conn: &mut BufReader<TcpStream>) -> Res<Option<(Response, bool)>> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("malformed status line {line:?}"))?
        .parse()?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    let mut content_type = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err("connection closed inside the response headers".into());
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = Some(value.parse::<usize>()?),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            "content-type" => content_type = value.to_string(),
            _ => {}
        }
    }
    let body = if chunked {
        read_chunked(conn).await?
    } else if let Some(n) = length {
        let mut b = vec![0; n];
        conn.read_exact(&mut b).await?;
        b
    } else {
        // No length: the body runs to the end of the connection.
        let mut b = Vec::new();
        conn.read_to_end(&mut b).await?;
        keep = false;
        b
    };
    let resp = Response {
        status,
        content_type,
        body,
    };
    Ok(Some((resp, keep)))
}

async fn read_chunked(conn: &mut BufReader<TcpStream>) -> Res<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let size_hex = line.trim_end().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex.trim(), 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                line.clear();
                if conn.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        conn.read_exact(&mut crlf).await?;
    }
}

/// GET /metrics and check it is a complete OpenMetrics exposition; returns the body size.
pub(crate) async fn scrape(c: &mut HttpClient) -> Res<usize> {
    let r = c.get("/metrics").await?;
    if r.status != 200 {
        let text = String::from_utf8_lossy(&r.body);
        return Err(format!("GET /metrics answered {}: {}", r.status, text.trim()).into());
    }
    if !r.content_type.starts_with("application/openmetrics-text") {
        return Err(format!("GET /metrics has Content-Type {:?}", r.content_type).into());
    }
    if !r.body.ends_with(OPENMETRICS_EOF.as_bytes()) {
        return Err(format!(
            "GET /metrics body ({} bytes) does not end with {OPENMETRICS_EOF:?}",
            r.body.len()
        )
        .into());
    }
    Ok(r.body.len())
}

/// One timed scrape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScrapeSample {
    /// When the request was about to be written.
    pub(crate) sent: Instant,
    /// Request written → whole body read, ms.
    pub(crate) ms: f64,
    /// Body size, bytes.
    pub(crate) bytes: usize,
}

impl ScrapeSample {
    /// Whether the scrape was sent and answered inside `[from, to]`.
    pub(crate) fn within(&self, from: Instant, to: Instant) -> bool {
        self.sent >= from && self.sent + Duration::from_secs_f64(self.ms / 1e3) <= to
    }
}

/// What a scraper saw.
#[derive(Debug, Default)]
pub(crate) struct ScrapeLog {
    /// Every timed scrape (the warm-up scrape excluded).
    pub(crate) samples: Vec<ScrapeSample>,
    /// Connections reopened because the server closed the kept-alive one.
    pub(crate) reconnects: u64,
}

/// Scrapes `/metrics` every `period` on its own thread, runtime and connection.
pub(crate) struct Scraper {
    stop: watch::Sender<bool>,
    handle: std::thread::JoinHandle<Result<ScrapeLog, String>>,
}

impl Scraper {
    /// Connects to `http_addr`, scrapes once to warm the connection, then scrapes every
    /// `period`, the first at a random point of the next `first_within` (at most `period`; a
    /// scraper is not in step with the runs, but a caller can make sure a short fill gets
    /// one). Returns once the warm-up scrape is done.
    pub(crate) async fn start(
        http_addr: &str,
        period: Duration,
        first_within: Duration,
    ) -> Res<Self> {
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = oneshot::channel();
        let addr = http_addr.to_string();
        let handle = std::thread::Builder::new()
            .name("metrics-scraper".into())
            .spawn(move || {
                scrape_loop(addr, period, first_within, stop_rx, ready_tx)
                    .map_err(|e| e.to_string())
            })?;
        let scraper = Self { stop, handle };
        match ready_rx.await {
            Ok(()) => Ok(scraper),
            // The thread ended before it was ready: its result says why.
            Err(_) => {
                Err(scraper.finish().await.err().unwrap_or_else(|| {
                    "the metrics scraper stopped before its first scrape".into()
                }))
            }
        }
    }

    /// Stops scraping and returns the samples.
    pub(crate) async fn finish(self) -> Res<ScrapeLog> {
        let _ = self.stop.send(true);
        let h = self.handle;
        Ok(tokio::task::spawn_blocking(move || h.join())
            .await?
            .map_err(|_| "the metrics scraper panicked")??)
    }
}

fn scrape_loop(
    addr: String,
    period: Duration,
    first_within: Duration,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) -> Res<ScrapeLog> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut c = HttpClient::connect(&addr).await?;
        scrape(&mut c).await?;
        let phase = Duration::from_secs_f64(
            rand::rng().random_range(0.0..1.0) * first_within.min(period).as_secs_f64(),
        );
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let _ = ready.send(());
        let mut samples = Vec::new();
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tick.tick() => {}
            }
            let sent = Instant::now();
            let bytes = scrape(&mut c).await?;
            samples.push(ScrapeSample {
                sent,
                ms: sent.elapsed().as_secs_f64() * 1e3,
                bytes,
            });
        }
        Ok(ScrapeLog {
            samples,
            reconnects: c.reconnects,
        })
    })
}
