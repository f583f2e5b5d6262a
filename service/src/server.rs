//! What every service shares around its router: binding, announcing the bound address on
//! stdout (so a parent can use port 0), the admin guard, and graceful shutdown on SIGTERM.

use crate::api_error::ApiError;
use crate::hang_up::{GraceListener, Peer};
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
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
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
        _ => Err(ApiError::new(
            crate::contract::ErrorCode::Forbidden,
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

/// Serves `router` on `listener` until `shutdown` resolves, then drains open requests. A
/// caller's hang-up reaches the server `hang_up::HANG_UP_GRACE` late, so a request that
/// arrived whole is carried out.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        GraceListener::new(listener),
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
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
