//! The embedded Toxiproxy-compatible proxy: every endpoint and status code of the reference,
//! and each toxic's measured effect on real loopback connections.

use harness::proxy::{api, Registry};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy API on a free port, and a client for it.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(api::serve(
            listener,
            Registry::new(7),
            api::Access::default(),
            std::future::pending(),
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Api { base, http }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("api call");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.call(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a proxy to `upstream` and returns its listen address.
    async fn proxy(&self, name: &str, upstream: &str) -> String {
        let (status, body) = self
            .json(
                "POST",
                "/proxies",
                Some(json!({"name": name, "upstream": upstream, "listen": "127.0.0.1:0"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["listen"].as_str().expect("listen").to_owned()
    }

    async fn toxic(&self, proxy: &str, toxic: Value) {
        let (status, body) = self
            .json("POST", &format!("/proxies/{proxy}/toxics"), Some(toxic))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// An echo server: writes back what it reads, closes its side at EOF.
async fn echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if socket.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// A server that sends `bytes` bytes at once and closes.
async fn blurt(bytes: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
            tokio::spawn(async move {
                let _ = socket.write_all(&data).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// Sends `message` and reads the echo back; returns the round-trip time.
async fn round_trip(addr: &str, message: &[u8]) -> Duration {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    stream.write_all(message).await.expect("write");
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).await.expect("echo");
    assert_eq!(back, message);
    started.elapsed()
}

#[tokio::test]
async fn the_api_answers_like_toxiproxy() {
    let api = Api::start().await;
    let upstream = echo().await;

    let (status, body) = api.json("GET", "/version", None).await;
    assert_eq!(
        (status, body["version"].as_str()),
        (200, Some(api::VERSION))
    );
    assert_eq!(api.json("GET", "/proxies", None).await, (200, json!({})));

    // Create: 201; duplicate: 409; missing fields: 400; bad body: 400.
    let listen = api.proxy("db", &upstream).await;
    let (status, text) = api
        .call(
            "POST",
            "/proxies",
            Some(json!({"name": "db", "upstream": upstream})),
        )
        .await;
    assert_eq!(
        (status, text.as_str()),
        (409, "{\"error\":\"proxy already exists\",\"status\":409}\n")
    );
    let (status, body) = api
        .json("POST", "/proxies", Some(json!({"upstream": upstream})))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("missing required field: name"))
    );
    let (status, body) = api
        .json("POST", "/proxies", Some(json!({"name": "x"})))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("missing required field: upstream"))
    );
    let (status, text) = api.call("POST", "/proxies", None).await;
    assert!(
        status == 400 && text.contains("bad request body"),
        "{status} {text}"
    );

    // Read: 200 with toxics, a map by name; 404 for an unknown proxy.
    let (status, body) = api.json("GET", "/proxies/db", None).await;
    assert_eq!((status, &body["toxics"]), (200, &json!([])));
    assert_eq!(body["enabled"], true);
    let (_, all) = api.json("GET", "/proxies", None).await;
    assert_eq!(all["db"]["listen"], listen.as_str());
    let (status, body) = api.json("GET", "/proxies/nope", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("proxy not found"))
    );

    // Toxics: 200 on create with defaults; 409 duplicate; 400 bad type, stream, attributes.
    let (status, toxic) = api
        .json(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "latency", "attributes": {"latency": 5}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        toxic,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0, "attributes": {"latency": 5, "jitter": 0}})
    );
    let (status, body) = api
        .json(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "latency"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("toxic already exists"))
    );
    let (status, body) = api
        .json("POST", "/proxies/db/toxics", Some(json!({"type": "melt"})))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid toxic type"))
    );
    let (status, body) = api
        .json(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "timeout", "stream": "both"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("stream was invalid, can be either upstream or downstream")
        )
    );
    let (status, body) = api
        .json(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"type": "timeout", "attributes": {"timeout": "soon"}})),
        )
        .await;
    assert!(
        status == 400
            && body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("bad request body"))
    );
    let (status, _) = api
        .json(
            "POST",
            "/proxies/nope/toxics",
            Some(json!({"type": "noop"})),
        )
        .await;
    assert_eq!(status, 404);
    // The body of Go's `proxy.AddToxic("", "latency", "upstream", 1, nil)`: an empty name
    // and null attributes take Toxiproxy's defaults.
    let (status, toxic) = api
        .json(
            "POST",
            "/proxies/db/toxics",
            Some(json!({"name": "", "type": "latency", "stream": "upstream", "toxicity": 1, "attributes": null})),
        )
        .await;
    assert_eq!(
        (status, toxic),
        (
            200,
            json!({"name": "latency_upstream", "type": "latency", "stream": "upstream", "toxicity": 1.0, "attributes": {"latency": 0, "jitter": 0}})
        )
    );
    let (status, _) = api
        .call("DELETE", "/proxies/db/toxics/latency_upstream", None)
        .await;
    assert_eq!(status, 204);

    // Toxic read, update (merge, toxicity kept when omitted), delete.
    let (status, listed) = api.json("GET", "/proxies/db/toxics", None).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));
    let (status, updated) = api
        .json(
            "PATCH",
            "/proxies/db/toxics/latency_downstream",
            Some(json!({"attributes": {"jitter": 2}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["attributes"], json!({"latency": 5, "jitter": 2}));
    assert_eq!(updated["toxicity"], 1.0);
    let (status, body) = api.json("GET", "/proxies/db/toxics/none", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("toxic not found"))
    );
    assert_eq!(
        api.call("DELETE", "/proxies/db/toxics/latency_downstream", None)
            .await,
        (204, String::new())
    );
    assert_eq!(
        api.call("DELETE", "/proxies/db/toxics/latency_downstream", None)
            .await
            .0,
        404
    );

    // Disable (the "down" fault): connections are refused; reset re-enables and clears toxics.
    let (status, body) = api
        .json("PATCH", "/proxies/db", Some(json!({"enabled": false})))
        .await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)));
    assert_eq!(
        body["listen"],
        json!(listen),
        "a disabled proxy keeps the port it was given for 127.0.0.1:0"
    );
    assert!(
        TcpStream::connect(&listen).await.is_err(),
        "a disabled proxy refuses connections"
    );
    api.toxic("db", json!({"type": "timeout"})).await;
    assert_eq!(api.call("POST", "/reset", None).await, (204, String::new()));
    let (_, body) = api.json("GET", "/proxies/db", None).await;
    assert_eq!(
        (&body["enabled"], &body["toxics"], &body["listen"]),
        (&json!(true), &json!([]), &json!(listen)),
        "enabled again on the same port"
    );
    round_trip(&listen, b"alive").await;

    // A listen address in use: 500 with the OS error.
    let (status, body) = api
        .json(
            "POST",
            "/proxies",
            Some(json!({"name": "clash", "upstream": upstream, "listen": body["listen"].as_str().map(|l| l.replace("127.0.0.1", "localhost"))})),
        )
        .await;
    assert_eq!(status, 500);
    let taken = listen.rsplit_once(':').expect("host:port").1;
    assert_eq!(
        body,
        json!({"error": format!("listen tcp 127.0.0.1:{taken}: bind: address already in use"), "status": 500}),
        "Toxiproxy's words, the host name resolved as Go resolves it"
    );

    // Populate: 201 with the proxies; an unchanged proxy is kept; 400 names the entry.
    let (status, body) = api
        .json("POST", "/populate", Some(json!([{"name": "db", "upstream": upstream, "listen": listen}, {"name": "cache", "upstream": upstream}])))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["proxies"].as_array().map(Vec::len), Some(2));
    let (status, body) = api
        .json(
            "POST",
            "/populate",
            Some(json!([{"name": "a", "upstream": upstream}, {"upstream": upstream}])),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str(), &body["proxies"]),
        (
            400,
            Some("missing required field: name at proxy 2"),
            &Value::Null
        )
    );
    let (status, _) = api
        .json("POST", "/populate", Some(json!({"name": "x"})))
        .await;
    assert_eq!(status, 400);

    // Delete: 204, then 404. Unknown path: 404; wrong method: 405; browsers: 403.
    assert_eq!(
        api.call("DELETE", "/proxies/cache", None).await,
        (204, String::new())
    );
    assert_eq!(api.call("DELETE", "/proxies/cache", None).await.0, 404);
    assert_eq!(
        api.call("GET", "/nowhere", None).await,
        (404, "404 page not found\n".to_owned())
    );
    assert_eq!(api.call("PUT", "/proxies", None).await.0, 405);
    let browser = api
        .http
        .get(format!("{}/proxies", api.base))
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .expect("call");
    assert_eq!(browser.status(), 403);
    assert!(browser.headers().contains_key("x-toxiproxy-request-id"));
}

#[tokio::test]
async fn latency_delays_each_direction_by_its_amount() {
    let api = Api::start().await;
    let listen = api.proxy("slow", &echo().await).await;
    let base = round_trip(&listen, b"ping").await;
    api.toxic(
        "slow",
        json!({"type": "latency", "attributes": {"latency": 100}}),
    )
    .await;
    api.toxic(
        "slow",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 200}}),
    )
    .await;
    let slowed = round_trip(&listen, b"ping").await;
    let added = slowed.saturating_sub(base);
    assert!(
        (Duration::from_millis(290)..Duration::from_millis(400)).contains(&added),
        "100 ms down + 200 ms up added {added:?}"
    );
}

#[tokio::test]
async fn a_toxic_changes_an_open_connection_without_dropping_it() {
    let api = Api::start().await;
    let listen = api.proxy("live", &echo().await).await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let mut buf = [0u8; 4];
    stream.write_all(b"one!").await.expect("write");
    stream.read_exact(&mut buf).await.expect("read");
    api.toxic(
        "live",
        json!({"type": "latency", "attributes": {"latency": 150}}),
    )
    .await;
    let started = Instant::now();
    stream.write_all(b"two!").await.expect("write");
    stream
        .read_exact(&mut buf)
        .await
        .expect("read on the same connection");
    assert_eq!(&buf, b"two!");
    assert!(started.elapsed() >= Duration::from_millis(140));
}

/// A connection waiting on both sockets still sees a toxic arrive: `timeout` closes an idle
/// connection after its time, as Toxiproxy's does, with no byte sent after it was added.
#[tokio::test]
async fn a_toxic_added_to_an_idle_connection_acts_without_waiting_for_data() {
    let api = Api::start().await;
    let listen = api.proxy("idle", &echo().await).await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let mut buf = [0u8; 4];
    stream.write_all(b"one!").await.expect("write");
    stream.read_exact(&mut buf).await.expect("read");
    api.toxic(
        "idle",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 300}}),
    )
    .await;
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the idle connection is closed by the toxic added to it")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without data");
}

#[tokio::test]
async fn timeout_zero_is_a_black_hole_and_timeout_n_closes_after_n_ms() {
    let api = Api::start().await;
    let listen = api.proxy("hole", &echo().await).await;
    api.toxic(
        "hole",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}),
    )
    .await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    stream.write_all(b"anyone?").await.expect("write");
    let mut buf = [0u8; 7];
    let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
    assert!(read.is_err(), "nothing comes back from a black hole");

    api.call("DELETE", "/proxies/hole/toxics/timeout_upstream", None)
        .await;
    api.toxic(
        "hole",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 300}}),
    )
    .await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let started = Instant::now();
    stream.write_all(b"anyone?").await.expect("write");
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without data");
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(280)..Duration::from_millis(800)).contains(&waited),
        "{waited:?}"
    );
}

#[tokio::test]
async fn reset_peer_is_seen_by_the_client_as_a_reset() {
    let api = Api::start().await;
    let listen = api.proxy("rst", &echo().await).await;
    api.toxic(
        "rst",
        json!({"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}}),
    )
    .await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    stream.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("answered");
    let err = read.expect_err("a reset, not an orderly close");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn limit_data_cuts_at_the_byte_count() {
    let api = Api::start().await;
    let listen = api.proxy("cap", &blurt(10_000).await).await;
    api.toxic(
        "cap",
        json!({"type": "limit_data", "attributes": {"bytes": 1234}}),
    )
    .await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got).await;
    assert_eq!(got.len(), 1234);
}

#[tokio::test]
async fn bytes_are_never_lost_or_reordered_and_a_close_keeps_the_answer_whole() {
    let api = Api::start().await;
    let listen = api.proxy("whole", &blurt(300_000).await).await;
    // Slicing and latency reshape the stream; they must not change it.
    api.toxic("whole", json!({"type": "slicer", "attributes": {"average_size": 1000, "size_variation": 300, "delay": 10}})).await;
    api.toxic(
        "whole",
        json!({"type": "latency", "attributes": {"latency": 20, "jitter": 10}}),
    )
    .await;
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.expect("read");
    let expected: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
    assert!(
        got == expected,
        "{} bytes arrived, intact: {}",
        got.len(),
        got.len() == expected.len()
    );
}

#[tokio::test]
async fn bandwidth_limits_the_rate() {
    let api = Api::start().await;
    let listen = api.proxy("thin", &blurt(100_000).await).await;
    api.toxic(
        "thin",
        json!({"type": "bandwidth", "attributes": {"rate": 200}}),
    )
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.expect("read");
    let took = started.elapsed();
    assert_eq!(got.len(), 100_000);
    // 100,000 bytes at 200 KB/s: 0.5 s.
    assert!(
        (Duration::from_millis(430)..Duration::from_millis(900)).contains(&took),
        "{took:?}"
    );
}

#[tokio::test]
async fn slow_close_delays_the_close() {
    let api = Api::start().await;
    let listen = api.proxy("linger", &blurt(10).await).await;
    api.toxic(
        "linger",
        json!({"type": "slow_close", "attributes": {"delay": 300}}),
    )
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(&listen).await.expect("connect");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.expect("read");
    assert_eq!(got.len(), 10);
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[tokio::test]
async fn toxicity_one_half_hits_about_half_the_connections() {
    let api = Api::start().await;
    let listen = api.proxy("coin", &echo().await).await;
    api.toxic(
        "coin",
        json!({"type": "latency", "toxicity": 0.5, "attributes": {"latency": 60}}),
    )
    .await;
    let mut slow = 0;
    let total = 200;
    for _ in 0..total {
        if round_trip(&listen, b"x").await >= Duration::from_millis(50) {
            slow += 1;
        }
    }
    assert!(
        (70..=130).contains(&slow),
        "{slow} of {total} connections hit"
    );
}

/// The client the harness uses for Shopify's Toxiproxy drives the embedded proxy unchanged,
/// and every change it makes reads back (the client itself ignores HTTP errors).
#[test]
fn the_toxiproxy_rust_client_drives_the_embedded_proxy() {
    use toxiproxy_rust::client::Client;
    use toxiproxy_rust::proxy::ProxyPack;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind api");
    let api_addr = listener.local_addr().expect("addr");
    runtime.spawn(api::serve(
        listener,
        Registry::new(3),
        api::Access::default(),
        std::future::pending(),
    ));
    let upstream = runtime.block_on(echo());
    // A concrete free port for the proxy to listen on.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();

    let client = Client::new(api_addr);
    assert!(client.is_running());
    assert_eq!(
        client.version().expect("version"),
        format!("{{\"version\":\"{}\"}}", api::VERSION)
    );
    let proxies = client
        .populate(vec![ProxyPack::new("svc".into(), listen.clone(), upstream)])
        .expect("populate");
    assert_eq!(proxies.len(), 1);
    assert_eq!(proxies[0].proxy_pack.listen, listen);

    let proxy = client.find_proxy("svc").expect("find");
    proxy.with_latency("downstream".into(), 120, 0, 1.0);
    proxy.with_limit_data("upstream".into(), 4096, 1.0);
    let toxics = proxy.toxics().expect("read back");
    let names: Vec<_> = toxics
        .iter()
        .map(|t| (t.name.as_str(), t.stream.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("latency_downstream", "downstream"),
            ("limit_data_upstream", "upstream")
        ]
    );
    assert_eq!(toxics[0].attributes.get("latency"), Some(&120));

    let took = runtime.block_on(round_trip(&listen, b"through"));
    assert!(
        took >= Duration::from_millis(110),
        "the latency applies: {took:?}"
    );

    proxy.disable().expect("disable");
    assert!(std::net::TcpStream::connect(&listen).is_err(), "down");
    proxy.enable().expect("enable");
    client.reset().expect("reset");
    assert!(client
        .find_proxy("svc")
        .expect("find")
        .toxics()
        .expect("toxics")
        .is_empty());
    runtime.block_on(round_trip(&listen, b"back"));
}

#[test]
fn the_standalone_api_on_an_address_other_machines_reach_needs_a_token() {
    let output = std::process::Command::new(crate::support::HARNESS)
        .args(["toxiproxy", "--host", "0.0.0.0", "--port", "0"])
        .env_remove("HARNESS_TOXIPROXY_TOKEN")
        .output()
        .expect("run harness toxiproxy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("give --token"), "{stderr}");
    assert!(output.stdout.is_empty(), "it did not start listening");
}

/// At its limit of open connections a proxy closes one more at once and counts it; once a
/// connection ends, a new one is carried again.
#[tokio::test]
async fn a_proxy_holding_its_limit_of_connections_turns_the_next_away() {
    let upstream = echo().await;
    let registry = Registry::with_link_limit(7, 3);
    let proxy = registry
        .create(harness::proxy::ProxyConfig {
            name: "p".to_owned(),
            listen: "127.0.0.1:0".to_owned(),
            upstream,
            enabled: true,
        })
        .await
        .unwrap_or_else(|_| panic!("a proxy"));
    let listen = proxy.config().listen;
    let mut open = Vec::new();
    for i in 0..3u8 {
        let mut stream = TcpStream::connect(&listen).await.expect("connect");
        stream.write_all(&[i]).await.expect("write");
        let mut back = [0u8; 1];
        stream.read_exact(&mut back).await.expect("carried");
        assert_eq!(back, [i]);
        open.push(stream);
    }
    // The fourth: accepted by the kernel, closed by the proxy without a byte carried.
    let mut extra = TcpStream::connect(&listen).await.expect("connect");
    let _ = extra.write_all(b"x").await;
    let mut back = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut back))
        .await
        .expect("closed, not left hanging");
    assert!(matches!(read, Ok(0) | Err(_)), "carried past the limit");
    assert_eq!(proxy.connections_turned_away(), 1);
    assert_eq!(proxy.connections_accepted(), 3);
    // One ends: the next is carried (the proxy sees the end once the echo closes too).
    drop(open.pop());
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = TcpStream::connect(&listen).await.expect("connect");
        let _ = stream.write_all(b"y").await;
        let mut back = [0u8; 1];
        if let Ok(Ok(1)) =
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut back)).await
        {
            assert_eq!(back, *b"y");
            break;
        }
        assert!(
            Instant::now() < until,
            "no place freed after a connection ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    registry.stop_all();
}
