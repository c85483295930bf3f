//! The wrappers that let the registry see a connection's phase: the socket (bytes of
//! a next request), the request body (its deadline, and when it has all arrived) and
//! the response body (when it has been written).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Conn, Registry, ACTIVE, BODY, HEADER, IDLE};

/// Whether a body-read error is the body deadline passing.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<BodyTimeout>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// Marks the connection idle when the response it belongs to has been written (hyper
/// drops the body then) or abandoned.
pub(super) struct ActiveGuard {
    pub(super) conn: Arc<Conn>,
    pub(super) registry: Arc<Registry>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.conn.enter(IDLE, self.registry.now_ms());
    }
}

/// A response body that holds its connection's [`ActiveGuard`].
pub(super) struct Guarded {
    pub(super) body: Body,
    pub(super) _guard: ActiveGuard,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The body did not arrive within `body_timeout_s`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within body_timeout_s")]
pub struct BodyTimeout;

/// A request body that fails once its deadline has passed, and moves its connection
/// from [`BODY`] to [`ACTIVE`] once it has all arrived.
pub(super) struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    connection: Receiving,
}

/// The connection of a body being received: [`BODY`] becomes [`ACTIVE`] when the
/// body has all arrived or is dropped.
pub(super) struct Receiving {
    pub(super) conn: Arc<Conn>,
    pub(super) registry: Arc<Registry>,
}

impl Receiving {
    fn done(&self) {
        if self.conn.phase.load(Ordering::Acquire) == BODY {
            self.conn.enter(ACTIVE, self.registry.now_ms());
        }
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.done();
    }
}

impl DeadlineBody {
    pub(super) fn new(
        inner: Incoming,
        deadline: tokio::time::Instant,
        connection: Receiving,
    ) -> Self {
        DeadlineBody {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            connection,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if frame.is_none() || self.inner.is_end_stream() {
                self.connection.done();
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting when an idle connection starts receiving its next request.
pub(super) struct Watched {
    pub(super) inner: TcpStream,
    pub(super) conn: Arc<Conn>,
    pub(super) registry: Arc<Registry>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.conn.phase.load(Ordering::Acquire) == IDLE {
            let now = self.registry.now_ms();
            self.conn.enter(HEADER, now);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
