//! Shedding: past its limit on transfers in flight the coordinator refuses with 503
//! `overloaded` before writing anything, and what it admitted still finishes.

use crate::support::{args, assert_books_agree, Options, System};
use service::contract::ClientStatus;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

#[tokio::test]
async fn past_the_limit_a_transfer_is_shed_with_nothing_written() {
    // Four places, and debits that take five seconds: every place stays taken while the
    // burst arrives, however slow the machine is at sending it.
    let system = System::start(Options {
        users: 12,
        coordinator_args: args(&["--max-in-flight", "4", "--deadline-ms", "8000"]),
        external_args: args(&["--service-time-ms", "5000"]),
        ..Options::default()
    })
    .await;
    // The first 503 back means every place is taken, for the five seconds of the debits,
    // which leaves the checks on the door room on a busy machine.
    let full = Notify::new();
    let burst = (0..12).map(|user| {
        let (system, full) = (&system, &full);
        async move {
            let answer = system.transfer(&format!("k-{user}"), user, 1_000).await;
            if answer.0 == 503 {
                full.notify_one();
            }
            answer
        }
    });
    let door = async {
        full.notified().await;
        a_shed_answer_keeps_its_connection_and_reads_no_body(&system).await;
    };
    let (answers, ()) = tokio::join!(futures_util::future::join_all(burst), door);

    let admitted: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 503)
        .collect();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 503)
        .collect();
    assert_eq!(admitted.len(), 4, "{answers:?}");
    assert_eq!(shed.len(), 8, "{answers:?}");
    for (_, body) in &shed {
        assert_eq!(body.error_code(), Some("overloaded"), "{body}");
    }
    for (status, body) in &admitted {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body.view().status, ClientStatus::Completed);
    }
    // Nothing of the shed requests reached the saga log or the books.
    let sagas = system.wait_all_final(Duration::from_secs(20)).await;
    assert_eq!(
        sagas.len(),
        4,
        "one saga per admitted transfer, none for a shed one"
    );
    assert_books_agree(&sagas, &system.books().await, system.initial_total());

    // A shed request is safe to retry: the places are free again.
    let (status, body) = system.transfer("k-retry", 11, 1_000).await;
    assert_eq!(status, 200, "{body}");
}

/// While every place is taken, on one HTTP/1.1 connection:
/// - a request whose body is not JSON is answered 503 `overloaded` with `Retry-After`, not
///   400: it was shed before its body was parsed;
/// - the same connection then carries another request: a shed answer does not close it;
/// - on a second connection, headers announcing a body that is never sent are answered 503
///   at once: the coordinator did not wait to read the body.
async fn a_shed_answer_keeps_its_connection_and_reads_no_body(system: &System) {
    let addr = system
        .coordinator
        .url
        .trim_start_matches("http://")
        .to_owned();
    let garbage = "this is not JSON";
    let mut connection = TcpStream::connect(&addr).await.expect("connect");
    let request = format!(
        "POST /transfers HTTP/1.1\r\nHost: bank\r\nIdempotency-Key: k-raw\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{garbage}",
        garbage.len()
    );
    connection
        .write_all(request.as_bytes())
        .await
        .expect("send");
    let shed = read_answer(&mut connection).await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(shed.contains("\"overloaded\""), "{shed}");
    assert!(
        shed.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{shed}"
    );
    assert!(
        !shed.to_ascii_lowercase().contains("connection: close"),
        "{shed}"
    );
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bank\r\n\r\n")
        .await
        .expect("a second request on the same connection");
    let health = read_answer(&mut connection).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let mut waiting = TcpStream::connect(&addr).await.expect("connect");
    waiting
        .write_all(
            b"POST /transfers HTTP/1.1\r\nHost: bank\r\nIdempotency-Key: k-wait\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .expect("send the headers");
    let shed = read_answer(&mut waiting).await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
}

/// One HTTP/1.1 answer with a `Content-Length` body, read off `connection` (within 2 s:
/// the places are held for 5).
async fn read_answer(connection: &mut TcpStream) -> String {
    let read = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = connection.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the answer was whole: {answer:?}");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .expect("answered within 2 s")
}
