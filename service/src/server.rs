//! What every service shares around its router: binding, announcing the bound address on
//! stdout (so a parent can use port 0), the admin guard, and graceful shutdown on SIGTERM.

use crate::api_error::ApiError;
use crate::hang_up::{GraceListener, Peer};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpListener;

/// The line a service prints on stdout once it accepts connections.
pub const LISTENING_PREFIX: &str = "listening on http://";

/// Who may call `/admin/...` routes: loopback peers always; others only with the token.
#[derive(Clone, Debug, Default)]
pub struct AdminGuard {
    pub token: Option<String>,
}

/// Why an admin request is refused, when it is. The same rule holds on every admin surface
/// (the services' `/admin/*` routes, the harness's Toxiproxy-compatible API):
///
/// - a browser never: its `User-Agent` starts with `Mozilla/` (as Toxiproxy refuses), or it
///   says which page sent it (`Origin`): a web page must not reach an admin route through a
///   user's browser;
/// - a loopback peer always otherwise;
/// - any other peer only with `Authorization: Bearer TOKEN`, compared in constant time.
pub fn admin_refusal(
    peer: IpAddr,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Option<&'static str> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header(header::USER_AGENT).is_some_and(|ua| ua.starts_with("Mozilla/")) {
        return Some(BROWSER_REFUSED);
    }
    if headers.contains_key(header::ORIGIN) {
        return Some(ORIGIN_REFUSED);
    }
    if peer.is_loopback() {
        return None;
    }
    let presented = header(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
    match (token, presented) {
        (Some(expected), Some(given)) if same_secret(expected, given) => None,
        _ => Some(TOKEN_REQUIRED),
    }
}

/// Why a browser's admin request is refused (Toxiproxy's words).
pub const BROWSER_REFUSED: &str = "User agent not allowed";
/// Why a page's admin request is refused.
pub const ORIGIN_REFUSED: &str = "admin routes refuse requests sent by a web page (Origin)";
/// Why a remote peer's admin request without the token is refused.
pub const TOKEN_REQUIRED: &str = "admin routes answer loopback peers or a valid bearer token";

/// Whether two secrets are equal, in a time that depends on their lengths only.
pub fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let differ = a
        .iter()
        .zip(b.iter())
        .fold(a.len() ^ b.len(), |acc, (x, y)| acc | usize::from(x ^ y));
    differ == 0
}

/// Middleware for admin routes: `admin_refusal`'s rule, refused as `forbidden`.
pub async fn require_admin(
    State(guard): State<AdminGuard>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match admin_refusal(peer.ip(), request.headers(), guard.token.as_deref()) {
        None => Ok(next.run(request).await),
        Some(why) => Err(ApiError::new(crate::contract::ErrorCode::Forbidden, why)),
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
    let router = router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed);
    axum::serve(
        GraceListener::new(listener),
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

/// A path no route serves: the contract's error body, as every other refusal.
async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        crate::contract::ErrorCode::UnknownRoute,
        format!("no route {}", uri.path()),
    )
}

/// A served path with a method it does not take.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        crate::contract::ErrorCode::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                name.clone(),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        map
    }

    #[test]
    fn a_remote_peer_needs_the_token_a_browser_is_never_served() {
        let local: IpAddr = [127, 0, 0, 1].into();
        let remote: IpAddr = [192, 0, 2, 7].into();
        let none = headers(&[]);
        let bearer = |t: &str| headers(&[(header::AUTHORIZATION, &format!("Bearer {t}"))]);
        assert_eq!(admin_refusal(local, &none, None), None);
        assert_eq!(admin_refusal(remote, &none, None), Some(TOKEN_REQUIRED));
        assert_eq!(
            admin_refusal(remote, &none, Some("s3cret")),
            Some(TOKEN_REQUIRED)
        );
        assert_eq!(
            admin_refusal(remote, &bearer("s3cre"), Some("s3cret")),
            Some(TOKEN_REQUIRED)
        );
        assert_eq!(
            admin_refusal(remote, &bearer("s3cret"), None),
            Some(TOKEN_REQUIRED)
        );
        assert_eq!(
            admin_refusal(remote, &bearer("s3cret"), Some("s3cret")),
            None
        );
        let firefox = headers(&[(header::USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64)")]);
        assert_eq!(admin_refusal(local, &firefox, None), Some(BROWSER_REFUSED));
        let page = headers(&[(header::ORIGIN, "https://example.org")]);
        assert_eq!(admin_refusal(local, &page, None), Some(ORIGIN_REFUSED));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        for other in ["abd", "ab", "abcd", "", "ABC"] {
            assert!(!same_secret("abc", other), "{other}");
        }
    }

    /// `GET /admin/x` behind `require_admin` with `token`, from `peer` with `headers`.
    async fn admin_status(
        peer: [u8; 4],
        headers: &[(&str, &str)],
        token: Option<&str>,
    ) -> axum::http::StatusCode {
        use tower::ServiceExt;
        let guard = AdminGuard {
            token: token.map(str::to_owned),
        };
        let router = Router::new()
            .route("/admin/x", axum::routing::get(|| async { "served" }))
            .route_layer(axum::middleware::from_fn_with_state(guard, require_admin));
        let mut request = axum::http::Request::get("/admin/x");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(axum::body::Body::empty()).expect("a request");
        request
            .extensions_mut()
            .insert(ConnectInfo(Peer(SocketAddr::from((peer, 40_000)))));
        router.oneshot(request).await.expect("an answer").status()
    }

    #[tokio::test]
    async fn an_admin_route_off_the_machine_is_refused_without_the_token_and_served_with_it() {
        use axum::http::StatusCode;
        let remote = [192, 0, 2, 7];
        assert_eq!(
            admin_status(remote, &[], Some("t0ken")).await,
            StatusCode::FORBIDDEN
        );
        let bearer = [("authorization", "Bearer t0ken")];
        assert_eq!(
            admin_status(remote, &bearer, Some("t0ken")).await,
            StatusCode::OK
        );
        assert_eq!(
            admin_status([127, 0, 0, 1], &[], None).await,
            StatusCode::OK
        );
        let page = [("origin", "https://example.org")];
        assert_eq!(
            admin_status([127, 0, 0, 1], &page, None).await,
            StatusCode::FORBIDDEN
        );
    }
}
