//! What every service shares around its router: binding, announcing the bound address on
//! stdout (so a parent can use port 0), the admin guard, and graceful shutdown on SIGTERM.

use crate::api_error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::io::Write;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The line a service prints on stdout once it accepts connections.
pub const LISTENING_PREFIX: &str = "listening on http://";

/// Who may call `/admin/...` routes: loopback peers always; others only with the token.
#[derive(Clone, Debug, Default)]
pub struct AdminGuard {
    pub token: Option<String>,
}

/// Middleware for admin routes: loopback peers pass; others need `Authorization: Bearer`.
pub async fn require_admin(
    State(guard): State<AdminGuard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if peer.ip().is_loopback() {
        return Ok(next.run(request).await);
    }
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&guard.token, presented) {
        (Some(expected), Some(given)) if expected == given => Ok(next.run(request).await),
        _ => Err(ApiError::forbidden(
            "admin routes answer loopback peers or a valid bearer token",
        )),
    }
}

/// Binds `listen`, prints `listening on http://ADDR` and serves until SIGTERM or Ctrl-C.
pub async fn serve(listen: &str, router: Router) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    announce(addr)?;
    run(listener, router, shutdown_signal()).await
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains open requests.
///
/// HTTP/1 with half-close allowed: a caller that shut its write side (or hung up after
/// sending) still has its request carried out, as a real institution would. A server that
/// dropped such a request unread would make a timed-out call "never applied" for sure, and
/// the faults this project injects would be milder than the ones they stand for.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pass, as axum::serve does.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            // What `into_make_service_with_connect_info` would add: the admin guard needs it.
            request.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut router.clone(), request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{LISTENING_PREFIX}{addr}")?;
    stdout.flush()?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}

/// Sets up `tracing` logs on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Milliseconds since the Unix epoch, for timestamps stored beside entries.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
