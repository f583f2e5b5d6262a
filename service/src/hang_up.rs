//! A listener whose connections let a request that arrived whole start before the server
//! sees its caller hang up.
//!
//! A coordinator that timed out closes its connection, and a proxy that was delaying its
//! request then delivers the request followed at once by the close. hyper's HTTP/1 server
//! drops a request in flight when it reads the end of the stream (half-close is off: with it
//! on, hyper stops watching the socket mid-request and answers stall), often before the
//! handler has run at all, so the request would never be carried out. A real institution
//! does not drop a debit because the line went dead: a timed-out call may still be applied,
//! which is the case this project exists to test. So each connection shows its end of stream
//! to the server only after `HANG_UP_GRACE`, long enough for the request to be read and its
//! detached task (`institution::carried_out_even_if_caller_hangs_up`) started; errors such
//! as a reset pass at once.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// How long a connection hides its caller's hang-up from the server.
pub const HANG_UP_GRACE: Duration = Duration::from_secs(1);

/// Accepts TCP connections as `GraceIo`.
pub struct GraceListener {
    inner: TcpListener,
}

impl GraceListener {
    pub fn new(inner: TcpListener) -> Self {
        GraceListener { inner }
    }
}

impl Listener for GraceListener {
    type Io = GraceIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GraceIo, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    return (
                        GraceIo {
                            stream,
                            end_shown_at: None,
                        },
                        peer,
                    )
                }
                // Out of file descriptors and the like: wait and go on, as axum::serve does.
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The caller's address, for `ConnectInfo` (the admin guard lets loopback peers in).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, GraceListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, GraceListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A TCP connection whose end of stream reaches the reader `HANG_UP_GRACE` late.
pub struct GraceIo {
    stream: TcpStream,
    /// Set when the caller's end of stream was read: it is shown once this timer fires.
    end_shown_at: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for GraceIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(timer) = this.end_shown_at.as_mut() {
            ready!(timer.as_mut().poll(cx));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        let end_of_stream = buf.filled().len() == before && buf.remaining() > 0;
        if !end_of_stream {
            return Poll::Ready(Ok(()));
        }
        let mut timer = Box::pin(tokio::time::sleep(HANG_UP_GRACE));
        // Polled once so that it wakes this reader when it fires.
        let fired = timer.as_mut().poll(cx).is_ready();
        this.end_shown_at = Some(timer);
        match fired {
            true => Poll::Ready(Ok(())),
            false => Poll::Pending,
        }
    }
}

impl AsyncWrite for GraceIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
