//! The Toxiproxy 2.x REST API, as the project's reference (`toxiproxy-api.md`) describes it:
//! the same paths, status codes (201 create proxy, 200 create toxic, 204 deletes and reset),
//! JSON shapes (toxics carry `stream`) and error bodies `{"error":"...","status":N}`.
//!
//! One deliberate difference: a proxy created without `listen` binds 127.0.0.1 on a free
//! port, not every interface, so that the harness never opens a port beyond loopback.

use super::toxic::{json_type, Toxic, ToxicError};
use super::{Proxy, ProxyConfig, ProxyError, Registry};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The version this API follows.
pub const VERSION: &str = "2.8.0";

fn error(status: StatusCode, message: &str) -> Response {
    let body = format!("{}\n", json!({"error": message, "status": status.as_u16()}));
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// An error answer not yet rendered (keeps `Result`s small).
struct Fail(StatusCode, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

fn ok_json(status: StatusCode, value: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn proxy_json(proxy: &Proxy) -> Value {
    let c = proxy.config();
    let toxics: Vec<Value> = proxy.toxics().iter().map(Toxic::to_json).collect();
    json!({
        "name": c.name,
        "listen": c.listen,
        "upstream": c.upstream,
        "enabled": c.enabled,
        "toxics": toxics,
    })
}

fn parse(body: &Bytes) -> Result<Value, Fail> {
    serde_json::from_slice(body)
        .map_err(|e| Fail(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

fn proxy_error(err: ProxyError) -> Response {
    match err {
        ProxyError::NotFound => error(StatusCode::NOT_FOUND, "proxy not found"),
        ProxyError::Exists => error(StatusCode::CONFLICT, "proxy already exists"),
        ProxyError::Io(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn toxic_error(err: ToxicError) -> Response {
    match err {
        ToxicError::BadBody(m) => error(StatusCode::BAD_REQUEST, &format!("bad request body: {m}")),
        ToxicError::InvalidType => error(StatusCode::BAD_REQUEST, "invalid toxic type"),
        ToxicError::InvalidStream => error(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        ),
        ToxicError::Exists => error(StatusCode::CONFLICT, "toxic already exists"),
    }
}

fn string_field(
    object: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<String>, Fail> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(other, field, "string")),
    }
}

/// Go's words, with the API's status, for a proxy body that is not a JSON object.
fn not_a_proxy(body: &Value) -> Fail {
    Fail(
        StatusCode::BAD_REQUEST,
        format!(
            "bad request body: json: cannot unmarshal {} into Go value of type toxiproxy.Proxy",
            json_type(body)
        ),
    )
}

/// Go's words, with the API's status, for a field of the wrong JSON type in a proxy body.
fn wrong_type(value: &Value, field: &str, go_type: &str) -> Fail {
    Fail(
        StatusCode::BAD_REQUEST,
        format!(
            "bad request body: json: cannot unmarshal {} into Go struct field Proxy.{field} of type {go_type}",
            json_type(value)
        ),
    )
}

/// `enabled` in a proxy body: `None` when absent or null (Go keeps its default).
fn enabled_field(object: &serde_json::Map<String, Value>) -> Result<Option<bool>, Fail> {
    match object.get("enabled") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(other, "enabled", "bool")),
    }
}

/// A proxy from a create or populate body; `Err(field)` names a missing required field.
fn proxy_config(body: &Value) -> Result<Result<ProxyConfig, &'static str>, Fail> {
    let Some(object) = body.as_object() else {
        return Err(not_a_proxy(body));
    };
    let name = string_field(object, "name")?.unwrap_or_default();
    let upstream = string_field(object, "upstream")?.unwrap_or_default();
    let listen = string_field(object, "listen")?
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let enabled = enabled_field(object)?.unwrap_or(true);
    if name.is_empty() {
        return Ok(Err("name"));
    }
    if upstream.is_empty() {
        return Ok(Err("upstream"));
    }
    Ok(Ok(ProxyConfig {
        name,
        listen,
        upstream,
        enabled,
    }))
}

async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        json!({ "version": VERSION }).to_string(),
    )
        .into_response()
}

async fn list_proxies(State(registry): State<Arc<Registry>>) -> Response {
    let map: serde_json::Map<String, Value> = registry
        .all()
        .iter()
        .map(|p| (p.config().name, proxy_json(p)))
        .collect();
    ok_json(StatusCode::OK, Value::Object(map))
}

async fn create_proxy(State(registry): State<Arc<Registry>>, body: Bytes) -> Response {
    let value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let config = match proxy_config(&value) {
        Ok(Ok(c)) => c,
        Ok(Err(field)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("missing required field: {field}"),
            )
        }
        Err(r) => return r.into_response(),
    };
    match registry.create(config).await {
        Ok(proxy) => ok_json(StatusCode::CREATED, proxy_json(&proxy)),
        Err(e) => proxy_error(e),
    }
}

async fn populate(State(registry): State<Arc<Registry>>, body: Bytes) -> Response {
    let value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let Some(entries) = value.as_array() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad request body: json: cannot unmarshal object into Go value of type []toxiproxy.Proxy",
        );
    };
    let mut configs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match proxy_config(entry) {
            Ok(Ok(c)) => configs.push(c),
            Ok(Err(field)) => {
                let message = format!("missing required field: {field} at proxy {}", i + 1);
                let body = format!(
                    "{}\n",
                    json!({"error": message, "status": 400, "proxies": null})
                );
                return (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    body,
                )
                    .into_response();
            }
            Err(r) => return r.into_response(),
        }
    }
    let mut out = Vec::new();
    for config in configs {
        if let Some(existing) = registry.get(&config.name) {
            let current = existing.config();
            let same_listen = current.listen == config.listen
                || (config.listen.ends_with(":0")
                    && current.listen.split(':').next() == config.listen.split(':').next());
            if same_listen && current.upstream == config.upstream {
                out.push(proxy_json(&existing));
                continue;
            }
            let _ = registry.delete(&config.name).await;
        }
        match registry.create(config).await {
            Ok(proxy) => out.push(proxy_json(&proxy)),
            Err(e) => return proxy_error(e),
        }
    }
    ok_json(StatusCode::CREATED, json!({ "proxies": out }))
}

async fn get_proxy(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    match registry.get(&name) {
        Some(proxy) => ok_json(StatusCode::OK, proxy_json(&proxy)),
        None => proxy_error(ProxyError::NotFound),
    }
}

async fn update_proxy(
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if registry.get(&name).is_none() {
        return proxy_error(ProxyError::NotFound);
    }
    let value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let Some(object) = value.as_object() else {
        return not_a_proxy(&value).into_response();
    };
    let listen = match string_field(object, "listen") {
        Ok(v) => v.filter(|s| !s.is_empty()),
        Err(r) => return r.into_response(),
    };
    let upstream = match string_field(object, "upstream") {
        Ok(v) => v.filter(|s| !s.is_empty()),
        Err(r) => return r.into_response(),
    };
    let enabled = match enabled_field(object) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    match registry.update(&name, listen, upstream, enabled).await {
        Ok(proxy) => ok_json(StatusCode::OK, proxy_json(&proxy)),
        Err(e) => proxy_error(e),
    }
}

async fn delete_proxy(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    match registry.delete(&name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => proxy_error(e),
    }
}

async fn list_toxics(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    match registry.get(&name) {
        Some(proxy) => ok_json(
            StatusCode::OK,
            Value::Array(proxy.toxics().iter().map(Toxic::to_json).collect()),
        ),
        None => proxy_error(ProxyError::NotFound),
    }
}

async fn create_toxic(
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Some(proxy) = registry.get(&name) else {
        return proxy_error(ProxyError::NotFound);
    };
    let value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let mut toxics = (*proxy.toxics()).clone();
    let toxic = match Toxic::from_create(&value, |name| toxics.iter().any(|t| t.name == name)) {
        Ok(t) => t,
        Err(e) => return toxic_error(e),
    };
    let shown = toxic.to_json();
    toxics.push(toxic);
    proxy.set_toxics(toxics);
    ok_json(StatusCode::OK, shown)
}

async fn get_toxic(
    State(registry): State<Arc<Registry>>,
    Path((name, toxic)): Path<(String, String)>,
) -> Response {
    let Some(proxy) = registry.get(&name) else {
        return proxy_error(ProxyError::NotFound);
    };
    match proxy.toxics().iter().find(|t| t.name == toxic) {
        Some(t) => ok_json(StatusCode::OK, t.to_json()),
        None => error(StatusCode::NOT_FOUND, "toxic not found"),
    }
}

async fn update_toxic(
    State(registry): State<Arc<Registry>>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(proxy) = registry.get(&name) else {
        return proxy_error(ProxyError::NotFound);
    };
    let mut toxics = (*proxy.toxics()).clone();
    let Some(target) = toxics.iter_mut().find(|t| t.name == toxic) else {
        return error(StatusCode::NOT_FOUND, "toxic not found");
    };
    let value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if let Err(e) = target.update(&value) {
        return toxic_error(e);
    }
    let shown = target.to_json();
    proxy.set_toxics(toxics);
    ok_json(StatusCode::OK, shown)
}

async fn delete_toxic(
    State(registry): State<Arc<Registry>>,
    Path((name, toxic)): Path<(String, String)>,
) -> Response {
    let Some(proxy) = registry.get(&name) else {
        return proxy_error(ProxyError::NotFound);
    };
    let mut toxics = (*proxy.toxics()).clone();
    let before = toxics.len();
    toxics.retain(|t| t.name != toxic);
    if toxics.len() == before {
        return error(StatusCode::NOT_FOUND, "toxic not found");
    }
    proxy.set_toxics(toxics);
    StatusCode::NO_CONTENT.into_response()
}

async fn reset(State(registry): State<Arc<Registry>>) -> Response {
    match registry.reset().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => proxy_error(e),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// Who may use the API: every admin surface's rule (`service::server::admin_refusal`):
/// never a browser (Toxiproxy's anti-CSRF rule, and any request a page sent), loopback
/// peers, and others with the bearer token, when the server has one.
#[derive(Clone, Default)]
pub struct Access {
    pub token: Option<String>,
}

/// Applies `Access` and tags every answer with a request id.
async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    // Without the peer's address (a server not serving with connect info), no peer is local.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    let refusal = service::server::admin_refusal(peer, request.headers(), access.token.as_deref());
    let mut response = match refusal {
        Some(why) => error(StatusCode::FORBIDDEN, why),
        None => next.run(request).await,
    };
    let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    if let Ok(value) = HeaderValue::from_str(&format!("bt-{id}")) {
        response
            .headers_mut()
            .insert("x-toxiproxy-request-id", value);
    }
    response
}

pub fn app(registry: Arc<Registry>, access: Access) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/proxies", get(list_proxies).post(create_proxy))
        .route("/populate", post(populate))
        .route("/reset", post(reset))
        .route(
            "/proxies/{proxy}",
            get(get_proxy)
                .post(update_proxy)
                .patch(update_proxy)
                .delete(delete_proxy),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(list_toxics).post(create_toxic),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(get_toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(delete_toxic),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(access, guard))
        .with_state(registry)
}

/// Serves the API on `listener` to those `access` lets in, until `shutdown` resolves; then
/// closes every proxy.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    access: Access,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(registry.clone(), access).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    registry.stop_all();
    result
}

#[cfg(test)]
mod access_tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    /// `GET /version` from `peer` with `headers`, to an API whose token is `token`.
    async fn status(peer: [u8; 4], headers: &[(&str, &str)], token: Option<&str>) -> StatusCode {
        let access = Access {
            token: token.map(str::to_owned),
        };
        let mut request = axum::http::Request::get("/version");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::empty()).expect("a request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((peer, 40_000))));
        let response = app(Registry::new(1), access)
            .oneshot(request)
            .await
            .expect("an answer");
        response.status()
    }

    #[tokio::test]
    async fn a_peer_off_the_machine_needs_the_token_and_a_browser_is_refused() {
        let (local, remote) = ([127, 0, 0, 1], [192, 0, 2, 7]);
        assert_eq!(status(local, &[], None).await, StatusCode::OK);
        assert_eq!(status(remote, &[], None).await, StatusCode::FORBIDDEN);
        assert_eq!(
            status(remote, &[], Some("t0ken")).await,
            StatusCode::FORBIDDEN
        );
        let bearer = [("authorization", "Bearer t0ken")];
        assert_eq!(status(remote, &bearer, Some("t0ken")).await, StatusCode::OK);
        let wrong = [("authorization", "Bearer t0kem")];
        assert_eq!(
            status(remote, &wrong, Some("t0ken")).await,
            StatusCode::FORBIDDEN
        );
        let browser = [("user-agent", "Mozilla/5.0")];
        assert_eq!(status(local, &browser, None).await, StatusCode::FORBIDDEN);
        let page = [("origin", "https://example.org")];
        assert_eq!(status(local, &page, None).await, StatusCode::FORBIDDEN);
    }
}
