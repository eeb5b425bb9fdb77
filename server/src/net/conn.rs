//! One accepted connection: the socket, its slot under the port's limit, and the closer that
//! ends it when it never starts, goes idle, or is left without a request at shutdown.

use super::{NetLimits, SHUTDOWN_LINGER};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};
use tonic::codegen::{Service, http};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// What keeps a connection from being idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activity {
    /// An open request (gRPC: counted by [`StreamCountLayer`]).
    Requests,
    /// Bytes read (HTTP: short requests, no layer).
    Bytes,
}

/// Per-connection activity, shared by the socket wrapper and the request counter.
#[derive(Debug, Default)]
struct Tracker {
    /// Requests whose response is not finished (streams count until their end).
    open: AtomicUsize,
    /// Whether the connection ever did something (a request, or a byte for HTTP).
    started: AtomicBool,
    /// Woken on every change, so the closer re-arms its timers.
    changed: Notify,
}

impl Tracker {
    fn touch(&self) {
        self.started.store(true, Ordering::Release);
        self.changed.notify_one();
    }
}

/// Resolves when the connection should be closed: nothing started within the handshake
/// timeout, no open request for the idle timeout, or shutdown with no open request left (after
/// a short linger that lets the last response go out).
async fn closer(tracker: Arc<Tracker>, limits: NetLimits, mut shutdown: watch::Receiver<bool>) {
    loop {
        // notify_one keeps a permit when nobody waits, so no change is lost between the
        // check and the wait.
        if tracker.open.load(Ordering::Acquire) > 0 {
            tracker.changed.notified().await;
            continue;
        }
        let wait = if tracker.started.load(Ordering::Acquire) {
            limits.idle_timeout
        } else {
            limits.handshake_timeout
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => return,
            () = tracker.changed.notified() => {}
            () = async { drop(shutdown.wait_for(|s| *s).await) } => {
                tokio::time::sleep(SHUTDOWN_LINGER).await;
                if tracker.open.load(Ordering::Acquire) == 0 {
                    return;
                }
            }
        }
    }
}

/// An accepted connection. Reads end (EOF) once its closer fires, which makes hyper flush
/// and close it; writes are left alone so nothing already answered is cut.
pub struct Conn {
    io: TcpStream,
    tracker: Arc<Tracker>,
    activity: Activity,
    closer: Pin<Box<dyn Future<Output = ()> + Send>>,
    closed: bool,
    /// The connection's slot under `--max-connections`, released when it is dropped.
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("io", &self.io)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(super) fn new(
        io: TcpStream,
        slot: OwnedSemaphorePermit,
        activity: Activity,
        limits: NetLimits,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let tracker = Arc::new(Tracker::default());
        let closer = Box::pin(closer(Arc::clone(&tracker), limits, shutdown));
        Self {
            io,
            tracker,
            activity,
            closer,
            closed: false,
            _slot: slot,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closed && this.closer.as_mut().poll(cx).is_ready() {
            this.closed = true;
        }
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.activity == Activity::Bytes
            && matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
        {
            this.tracker.touch();
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// What a gRPC request's extensions carry about its connection (tonic puts it there); the
/// plain [`TcpConnectInfo`] is added too, so `Request::remote_addr` keeps working.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Addresses of the connection.
    pub tcp: TcpConnectInfo,
    tracker: Arc<Tracker>,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        ConnInfo {
            tcp: self.io.connect_info(),
            tracker: Arc::clone(&self.tracker),
        }
    }
}

/// Counts one open request on its connection until its response body is dropped.
#[derive(Debug)]
struct OpenRequest(Arc<Tracker>);

impl OpenRequest {
    fn enter(tracker: &Arc<Tracker>) -> Self {
        tracker.open.fetch_add(1, Ordering::AcqRel);
        tracker.touch();
        Self(Arc::clone(tracker))
    }
}

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// Tower layer for the gRPC server: counts each request as open on its connection until its
/// response (for a stream: the whole stream) is done, so a connection is idle only when no
/// stream is open.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamCountLayer;

impl<S> tower_layer::Layer<S> for StreamCountLayer {
    type Service = StreamCount<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamCount { inner }
    }
}

/// The service [`StreamCountLayer`] makes.
#[derive(Debug, Clone)]
pub struct StreamCount<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for StreamCount<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<Counted<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let info = req.extensions().get::<ConnInfo>().cloned();
        let open = info.map(|info| {
            req.extensions_mut().insert(info.tcp);
            OpenRequest::enter(&info.tracker)
        });
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Counted { body, _open: open }))
        })
    }
}

/// A response body that keeps its request counted as open until it is dropped.
#[derive(Debug)]
pub struct Counted<B> {
    body: B,
    _open: Option<OpenRequest>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
