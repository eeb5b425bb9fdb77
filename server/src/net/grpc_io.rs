//! The gRPC port's connection as tonic sees it: plaintext, or TLS over the same [`Conn`] (so
//! the limits, timeouts and request counting apply to both alike).

use super::{Conn, ConnInfo};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// One accepted gRPC connection, after its TLS handshake if the port speaks TLS.
#[derive(Debug)]
pub enum GrpcIo {
    /// Plaintext HTTP/2.
    Plain(Conn),
    /// HTTP/2 over TLS (boxed: the TLS state is large).
    Tls(Box<TlsStream<Conn>>),
}

impl GrpcIo {
    fn conn(&self) -> &Conn {
        match self {
            GrpcIo::Plain(conn) => conn,
            GrpcIo::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl Connected for GrpcIo {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.conn().connect_info()
    }
}

impl AsyncRead for GrpcIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcIo::Plain(conn) => Pin::new(conn).poll_read(cx, buf),
            GrpcIo::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for GrpcIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            GrpcIo::Plain(conn) => Pin::new(conn).poll_write(cx, buf),
            GrpcIo::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcIo::Plain(conn) => Pin::new(conn).poll_flush(cx),
            GrpcIo::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcIo::Plain(conn) => Pin::new(conn).poll_shutdown(cx),
            GrpcIo::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            GrpcIo::Plain(conn) => Pin::new(conn).poll_write_vectored(cx, bufs),
            GrpcIo::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            GrpcIo::Plain(conn) => conn.is_write_vectored(),
            GrpcIo::Tls(tls) => tls.is_write_vectored(),
        }
    }
}
