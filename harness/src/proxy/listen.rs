//! Binding a proxy's listen address as Toxiproxy does (Go's `net.Listen("tcp", addr)`), and
//! failing in its words: scripts match on `listen tcp 127.0.0.1:3310: bind: address already
//! in use`, not on Rust's `Address already in use (os error 98)`.
//!
//! As Go does, a host name listens on one of its addresses, the first IPv4 one when it has
//! one (`localhost` is 127.0.0.1), and the error names the address tried. One difference,
//! the API's: an empty host is loopback, not every interface.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;

/// Binds `listen` (`host:port`); the error's text is Go's.
pub async fn bind(listen: &str) -> io::Result<TcpListener> {
    let address = resolve(listen).await?;
    TcpListener::bind(address)
        .await
        .map_err(|e| io::Error::new(e.kind(), bind_failure(address, &e)))
}

/// The one address Go would listen on for `listen`.
async fn resolve(listen: &str) -> io::Result<SocketAddr> {
    let refused = |text: String| io::Error::new(io::ErrorKind::InvalidInput, text);
    let Some((host, port)) = listen.rsplit_once(':') else {
        return Err(refused(format!(
            "listen tcp: address {listen}: missing port in address"
        )));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| refused(format!("listen tcp: address {port}: invalid port")))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::from((ip, port)));
    }
    let no_such_host = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("listen tcp: lookup {host}: no such host"),
        )
    };
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| no_such_host())?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(no_such_host)
}

/// Go's text for a failed bind of `address`: the system's message in lower case, as Go's
/// `syscall.Errno` prints it, after `bind:`.
fn bind_failure(address: SocketAddr, error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text);
            let mut chars = text.chars();
            let lower = chars
                .next()
                .map(|first| first.to_lowercase().chain(chars).collect::<String>())
                .unwrap_or_default();
            format!("listen tcp {address}: bind: {lower}")
        }
        None => format!("listen tcp {address}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_fails_in_toxiproxys_words() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = taken.local_addr().expect("addr").port();
        for listen in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            let error = bind(&listen).await.expect_err("the port is taken");
            assert_eq!(
                error.to_string(),
                format!("listen tcp 127.0.0.1:{port}: bind: address already in use")
            );
        }
        let error = bind("127.0.0.1").await.expect_err("no port");
        assert_eq!(
            error.to_string(),
            "listen tcp: address 127.0.0.1: missing port in address"
        );
        let error = bind("127.0.0.1:99999").await.expect_err("no such port");
        assert_eq!(error.to_string(), "listen tcp: address 99999: invalid port");
        let error = bind("no-such-host.invalid:80")
            .await
            .expect_err("no such host");
        assert_eq!(
            error.to_string(),
            "listen tcp: lookup no-such-host.invalid: no such host"
        );
        let any = bind(":0").await.expect("an empty host is loopback");
        assert!(any.local_addr().expect("addr").ip().is_loopback());
    }
}
