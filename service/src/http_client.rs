//! A client for one server over HTTP/1.1 or HTTP/2, chosen by a setting: the coordinator's
//! calls to each institution (`institution_h2_connections`) and the load generator's calls
//! to the coordinator (a profile's `client.http2_connections`) both go through it.
//!
//! - With 0 HTTP/2 connections: HTTP/1.1 ([`KeepAliveClient`]), a connection per call in
//!   flight. A network fault on a connection hits one call.
//! - With 1..=[`MAX_CONNECTIONS`]: that many HTTP/2 (h2c) connections ([`MultiplexClient`]),
//!   calls spread over them in turn. Many calls share a TCP segment and a system call, and a
//!   network fault on a connection hits every call on it.

use crate::keep_alive::{Failure, KeepAliveClient, Reply};
use crate::multiplex::MultiplexClient;
pub use crate::multiplex::MAX_CONNECTIONS;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

#[derive(Clone)]
pub enum HttpClient {
    Http1(KeepAliveClient),
    Http2(MultiplexClient),
}

impl HttpClient {
    /// `h2_connections` HTTP/2 connections to `base_url`, or with 0, HTTP/1.1 keeping up to
    /// `max_idle` idle connections.
    pub fn new(base_url: &str, h2_connections: usize, max_idle: usize) -> anyhow::Result<Self> {
        Ok(match h2_connections {
            0 => HttpClient::Http1(KeepAliveClient::new(base_url, max_idle)?),
            n => HttpClient::Http2(MultiplexClient::new(base_url, n)?),
        })
    }

    /// `path` under the base URL's path.
    pub fn path(&self, path: &str) -> String {
        match self {
            HttpClient::Http1(client) => client.path(path),
            HttpClient::Http2(client) => client.path(path),
        }
    }

    /// `POST path` with `body` as JSON and `headers` besides; one call is one request on the
    /// wire. Dropping the future gives the call up (and its connection: see each client).
    pub async fn post(
        &self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        self.send(&http::Method::POST, path, headers, body).await
    }

    /// `method path`, as [`HttpClient::post`] does it.
    pub async fn send(
        &self,
        method: &http::Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        match self {
            HttpClient::Http1(client) => client.send(method, path, headers, body).await,
            HttpClient::Http2(client) => client.send(method, path, headers, body).await,
        }
    }
}
