//! A request an institution has received is carried out even if its caller hangs up: the
//! case of a coordinator that timed out and closed its connection while a proxy was still
//! delivering its debit. Without it a timed-out call would never be applied, and a reversal
//! could never really overtake its debit. Over HTTP/2 the same holds for a caller that cancels
//! its stream.

use crate::support::{Options, System};
use service::contract::{routes, DebitRequest, TransferStatus};
use service::knobs::FaultKnobs;
use service::money::AmountCents;
use service::multiplex::MultiplexClient;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How the caller goes away once its request is sent.
#[derive(Clone, Copy, Debug)]
enum HangUp {
    /// At once, with a FIN: the server reads the request and then the end of the stream.
    Close,
    /// While the debit is being worked on, with a RST: the server's read fails.
    ResetMidWork,
}

fn debit_request(transfer_id: &str) -> DebitRequest {
    DebitRequest {
        transfer_id: transfer_id.to_owned(),
        external_account_id: "a-0".into(),
        amount_cents: AmountCents::new(700).into(),
    }
}

async fn debit_then_hang_up(system: &System, transfer_id: &str, hang_up: HangUp) {
    let addr = system.external.url.trim_start_matches("http://");
    let body = serde_json::to_string(&debit_request(transfer_id)).expect("a debit body");
    // Written by hand on a raw socket: the test controls how the connection ends.
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        routes::DEBITS,
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the debit");
    match hang_up {
        HangUp::Close => {
            let _ = stream.shutdown().await;
        }
        HangUp::ResetMidWork => {
            // The institution takes 300 ms per operation: hang up in the middle of it.
            tokio::time::sleep(Duration::from_millis(100)).await;
            stream.set_zero_linger().expect("SO_LINGER 0");
        }
    }
    drop(stream);
}

async fn wait_debited(system: &System, transfer_id: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let route = routes::with_transfer_id(routes::DEBIT, transfer_id);
        let record: serde_json::Value = system.get_json(system.url(&system.external, &route)).await;
        if record["status"] == TransferStatus::Debited.as_str() {
            assert_eq!(record["amount_cents"], 700, "{record}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the debit of a caller that hung up was never applied: {record}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_debit_is_applied_even_if_its_caller_hangs_up() {
    let system = System::start(Options::default()).await;
    let slow = FaultKnobs {
        service_time_ms: 300,
        ..FaultKnobs::default()
    };
    system.set_knobs(&system.external, slow).await;
    for (n, hang_up) in [HangUp::Close, HangUp::ResetMidWork]
        .into_iter()
        .enumerate()
    {
        let transfer_id = format!("t-hung-up-{n}");
        debit_then_hang_up(&system, &transfer_id, hang_up).await;
        wait_debited(&system, &transfer_id).await;
    }
    // Over HTTP/2, as the coordinator calls: giving up cancels the stream (RST_STREAM) and
    // retires the connection. The caller gives up after 1 s, which leaves a busy machine time
    // to deliver the request, on a debit that takes 3 s.
    let slower = FaultKnobs {
        service_time_ms: 3_000,
        ..FaultKnobs::default()
    };
    system.set_knobs(&system.external, slower).await;
    let client = MultiplexClient::new(&system.external.url, 1).expect("the external's URL");
    let body = serde_json::to_vec(&debit_request("t-hung-up-2")).expect("a debit body");
    let path = client.path(routes::DEBITS);
    let call = client.post(&path, &[], body.into());
    assert!(
        tokio::time::timeout(Duration::from_secs(1), call)
            .await
            .is_err(),
        "the debit takes 3 s: the caller gives up first"
    );
    wait_debited(&system, "t-hung-up-2").await;
    let books = system.books().await;
    for n in 0..3 {
        assert_eq!(books.external_net_debit(&format!("t-hung-up-{n}")), 700);
    }
}
