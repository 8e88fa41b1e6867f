//! Abuse limits over real sockets: operations per second, connections per address, the
//! origin of an upgrade, and dead peers.

use bothy_shared::RejectReason;
use bothy_shared::protocol::{ErrorCode, ServerMessage, close};
use bothy_tests::ops::create_note;
use bothy_tests::{Client, Closed, TestServer, http};
use std::time::Duration;

#[tokio::test]
async fn a_flooding_connection_is_limited_and_the_room_is_unharmed() {
    let server = TestServer::start_with(|c| {
        c.ops_per_second = 1;
        c.ops_burst = 5;
    })
    .await;
    let room = server.create_room("Flood").await;
    let (mut bystander, _) = server.joined(&room).await;
    let (mut flooder, _) = server.joined(&room).await;
    let total = 30;
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..total {
        ids.push(flooder.op(create_note(&format!("flood {i}"))).await);
    }
    let (mut applied, mut limited) = (0, 0);
    let mut waiting: std::collections::HashSet<_> = ids.iter().cloned().collect();
    while !waiting.is_empty() {
        match flooder.recv().await {
            ServerMessage::Applied(a) if waiting.remove(&a.op_id) => applied += 1,
            ServerMessage::Rejected(r) if waiting.remove(&r.op_id) => {
                assert_eq!(r.reason, RejectReason::RateLimited);
                assert!(r.message.contains("too fast"));
                limited += 1;
            }
            _ => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "flood: {total} ops sent at once, {applied} applied, {limited} refused as too fast, \
         answered in {secs:.1} s"
    );
    assert_eq!(applied + limited, total);
    // The burst of 5, then 1 a second: past a burst of refusals the server stops reading the
    // flooder until a token is back, so the flood also takes seconds to be answered.
    let allowed = 5 + secs.ceil() as usize;
    assert!(
        (5..=allowed).contains(&applied),
        "applied {applied}, allowed {allowed}"
    );
    assert!(
        applied > 5,
        "a token that refilled was used: applied {applied}"
    );
    // Other messages over the limit get an error, and the connection stays open.
    flooder.send_raw(r#"{"type":"ping"}"#).await;
    match flooder.recv().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::RateLimited),
        ServerMessage::Pong(_) => {} // a token had refilled
        other => panic!("{other:?}"),
    }
    // The bystander saw exactly the applied notes.
    let seen = bystander.sync().await;
    let notes = seen
        .iter()
        .filter(|m| matches!(m, ServerMessage::Applied(_)))
        .count();
    assert_eq!(notes, applied);
}

#[tokio::test]
async fn upgrades_from_foreign_origins_are_refused() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://board.example.org".into()])
            .await;
    let room = server.create_room("Origins").await;
    let own = format!("http://{}", server.addr);
    let cases: &[(Option<&str>, bool)] = &[
        (Some("https://evil.example"), false),
        (Some("null"), false),
        (Some("http://127.0.0.1.evil.tld"), false),
        (Some(&format!("{own}.evil.tld")), false),
        (Some("https://board.example.org.evil.tld"), false),
        (Some(own.as_str()), true),
        (Some("https://board.example.org"), true),
        // Not a browser: no session to ride, so tools without an Origin are let in.
        (None, true),
    ];
    for (origin, allowed) in cases {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
        let result = Client::try_connect_with(server.addr, &room, &headers).await;
        match (result, allowed) {
            (Ok(mut c), true) => {
                c.join(None).await;
            }
            (Err(e), false) => assert_eq!(e, "http 403", "origin {origin:?}"),
            (r, _) => panic!(
                "origin {origin:?}: expected allowed={allowed}, got {:?}",
                r.map(|_| ())
            ),
        }
    }
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_sockets() {
    let server = TestServer::start_with(|c| c.max_connections_per_ip = 3).await;
    let room = server.create_room("Many tabs").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let (c, _) = server.joined(&room).await;
        open.push(c);
    }
    let refused = Client::try_connect_with(server.addr, &room, &[]).await;
    assert_eq!(refused.err().as_deref(), Some("http 429"));
    // Closing one frees its slot (once the server has finished with it).
    open.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + bothy_tests::DEADLINE;
    loop {
        match Client::try_connect_with(server.addr, &room, &[]).await {
            Ok(mut c) => {
                c.join(None).await;
                break;
            }
            Err(e) => {
                assert_eq!(e, "http 429");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot was never released"
                );
                tokio::task::yield_now().await;
            }
        }
    }
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_closed() {
    let server = TestServer::start_with(|c| c.ping_interval = Duration::from_millis(200)).await;
    let room = server.create_room("Pings").await;
    let (mut silent, _) = server.joined(&room).await;
    // From here the client reads the raw socket, so its WebSocket library answers no ping: to
    // the server it is a dead peer. The server's pings and then its close frame arrive.
    let bytes = silent.read_raw_to_end().await;
    let close_frame = [0x88, 0x0f, 0xa2]; // FIN + close, unmasked, then code 4002
    let at = bytes
        .windows(4)
        .position(|w| w[0] == close_frame[0] && w[2..] == close_frame[1..])
        .expect("a close frame with code 4002");
    assert_eq!(close::NO_PONG, 0x0fa2);
    assert!(
        bytes[..at].windows(2).any(|w| w == [0x89, 0x00]),
        "pings came first"
    );
}

#[tokio::test]
async fn a_client_that_dribbles_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(|c| c.header_timeout = Duration::from_millis(300)).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A request line and one header, then nothing: the rest never comes.
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(bothy_tests::DEADLINE, tcp.read_to_end(&mut rest))
        .await
        .expect("the server hangs up on a slow sender")
        .unwrap();
    // And request heads larger than the limit are refused.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let res = bothy_tests::http::raw_request(server.addr, big.as_bytes()).await;
    assert!(
        res.starts_with(b"HTTP/1.1 431") || res.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&res[..res.len().min(60)])
    );
}

/// A server behind a "proxy" (the test itself, on 127.0.0.1), so that each request can say
/// which client address it comes from.
async fn behind_proxy(change: impl FnOnce(&mut bothy_server::ServerConfig)) -> TestServer {
    TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        change(c);
    })
    .await
}

fn from(ip: &str) -> [(&str, &str); 1] {
    [("X-Forwarded-For", ip)]
}

#[tokio::test]
async fn an_address_may_open_only_so_many_sockets_at_once() {
    let server = behind_proxy(|c| {
        c.new_connections_per_ip_per_second = 1;
        c.new_connections_per_ip_burst = 3;
    })
    .await;
    let room = server.create_room("A hall reconnecting").await;
    let hall = from("203.0.113.7");
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            Client::try_connect_with(server.addr, &room, &hall)
                .await
                .expect("within the burst"),
        );
    }
    // The fourth at once is refused; the three stay open.
    let refused = Client::try_connect_with(server.addr, &room, &hall).await;
    assert_eq!(refused.err().as_deref(), Some("http 429"));
    for c in &mut open {
        c.join(None).await;
    }
    // Another address is not held back by this one.
    let mut other = Client::try_connect_with(server.addr, &room, &from("198.51.100.2"))
        .await
        .expect("another address");
    other.join(None).await;
}

#[tokio::test]
async fn wrong_join_codes_and_facilitator_links_are_limited_per_address() {
    let server = behind_proxy(|c| c.wrong_guesses_per_ip_per_minute = 3).await;
    let body = r#"{"title":"Guessing","anonymous":true,"rooms":[{"name":"Room 1","prompt":"?"}]}"#;
    let res = http::request(server.addr, "POST", "/api/events", Some(body), &[]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let v: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    let code = v["rooms"][0]["code"].as_str().unwrap().to_owned();
    let room = v["rooms"][0]["room"].as_str().unwrap().to_owned();
    let event = v["event"].as_str().unwrap().to_owned();
    let secret = v["facilitator_secret"].as_str().unwrap().to_owned();
    let wrong_code = another_code(&code);

    // Three wrong codes from one address are answered; then even the right code waits.
    let guesser = from("203.0.113.9");
    for _ in 0..3 {
        let res = look_up_code(&server, wrong_code, &guesser).await;
        assert_eq!(res.status, 404, "{}", res.body);
    }
    let res = look_up_code(&server, &code, &guesser).await;
    assert_eq!(res.status, 429, "{}", res.body);
    assert!(res.body.contains("Wait a minute"), "{}", res.body);
    assert!(res.header("retry-after").is_some());
    let res = http::request(server.addr, "GET", &format!("/j/{code}"), None, &guesser).await;
    assert_eq!(res.status, 429);
    // Facilitator links are held back too, and so is a socket presenting one.
    let res = http::request(
        server.addr,
        "GET",
        &format!("/api/events/{event}"),
        None,
        &[guesser[0], ("X-Bothy-Facilitator", &secret)],
    )
    .await;
    assert_eq!(res.status, 429);
    let mut c = Client::try_connect_with(server.addr, &room, &guesser)
        .await
        .expect("joining as a participant is not a guess");
    c.facilitator = Some(secret.clone());
    match c.try_join(None).await {
        Err(Closed::Frame { code, reason }) => {
            assert_eq!(code, close::BAD_JOIN);
            assert!(reason.contains("too many wrong"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // Another address is unaffected: the right code works.
    let other = from("198.51.100.4");
    let res = look_up_code(&server, &code, &other).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // Wrong facilitator secrets count the same way, over HTTP and in a join.
    let wrong_secret = "0".repeat(secret.len());
    for _ in 0..2 {
        let res = http::request(
            server.addr,
            "GET",
            &format!("/api/events/{event}"),
            None,
            &[other[0], ("X-Bothy-Facilitator", &wrong_secret)],
        )
        .await;
        assert_eq!(res.status, 403);
    }
    let mut c = Client::try_connect_with(server.addr, &room, &other)
        .await
        .unwrap();
    c.facilitator = Some(wrong_secret.clone());
    assert!(matches!(
        c.try_join(None).await,
        Err(Closed::Frame {
            code: close::BAD_JOIN,
            ..
        })
    ));
    let res = http::request(
        server.addr,
        "GET",
        &format!("/api/events/{event}"),
        None,
        &[other[0], ("X-Bothy-Facilitator", &secret)],
    )
    .await;
    assert_eq!(res.status, 429, "the third wrong guess used the allowance");
    // Right answers do not count: a third address looks its code up many times.
    let third = from("192.0.2.1");
    for _ in 0..10 {
        let res = look_up_code(&server, &code, &third).await;
        assert_eq!(res.status, 200);
    }
}

#[tokio::test]
async fn a_peer_that_is_not_a_trusted_proxy_cannot_dodge_the_limits_with_x_forwarded_for() {
    // A proxy is configured, but the test's address (127.0.0.1) is not it: whatever this peer
    // puts in `X-Forwarded-For`, it is counted as itself.
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["192.0.2.254".parse().unwrap()];
        c.wrong_guesses_per_ip_per_minute = 3;
        c.max_connections_per_ip = 3;
    })
    .await;
    let body = r#"{"title":"Forging","anonymous":true,"rooms":[{"name":"Room 1","prompt":"?"}]}"#;
    let res = http::request(server.addr, "POST", "/api/events", Some(body), &[]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let v: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    let code = v["rooms"][0]["code"].as_str().unwrap().to_owned();
    let wrong_code = another_code(&code);

    // Three wrong codes, each claiming a new address, use up the one real address's allowance:
    // the right code, claiming yet another address, has to wait.
    for i in 1..=3 {
        let forged = format!("203.0.113.{i}");
        let res = look_up_code(&server, wrong_code, &from(&forged)).await;
        assert_eq!(res.status, 404, "{}", res.body);
    }
    let res = look_up_code(&server, &code, &from("203.0.113.99")).await;
    assert_eq!(res.status, 429, "{}", res.body);
    assert!(res.body.contains("Wait a minute"), "{}", res.body);

    // Three sockets, each claiming a new address, fill the real address's slots: a fourth,
    // claiming yet another, is refused, and the three still work.
    let room = server.create_room("Forged tabs").await;
    let mut open = Vec::new();
    for i in 1..=3 {
        let forged = format!("198.51.100.{i}");
        open.push(
            Client::try_connect_with(server.addr, &room, &from(&forged))
                .await
                .expect("within the cap"),
        );
    }
    let refused = Client::try_connect_with(server.addr, &room, &from("198.51.100.99")).await;
    assert_eq!(refused.err().as_deref(), Some("http 429"));
    for c in &mut open {
        c.join(None).await;
    }
}

/// A valid-looking join code that is not `code`.
fn another_code(code: &str) -> &'static str {
    if code.starts_with('A') {
        "BBB-BBB"
    } else {
        "AAA-AAA"
    }
}

/// `GET /api/codes/{code}` with these headers.
async fn look_up_code(server: &TestServer, code: &str, headers: &[(&str, &str)]) -> http::Response {
    http::request(
        server.addr,
        "GET",
        &format!("/api/codes/{code}"),
        None,
        headers,
    )
    .await
}

/// A connection from `source` that has sent `GET path` and closes after the answer.
async fn request_from(server: &TestServer, source: &str, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    let mut tcp = socket.connect(server.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp
}

/// Everything the server answers on `tcp` before it closes it.
async fn answer(mut tcp: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    tokio::time::timeout(bothy_tests::DEADLINE, tcp.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn connections_past_an_addresss_burst_wait_their_turn_and_past_that_are_refused() {
    let server = TestServer::start_with(|c| {
        // One an hour after the burst: a connection that waits does not get its turn here.
        c.accepts_per_ip_per_second = 1.0 / 3600.0;
        c.accepts_per_ip_burst = 3;
        c.accepts_waiting_per_ip = 2;
    })
    .await;
    let hall = "127.0.0.5";
    for _ in 0..3 {
        let reply = answer(request_from(&server, hall, "/healthz").await).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    // Past the burst, two connections wait their turn, unanswered...
    let waiting = [
        request_from(&server, hall, "/healthz").await,
        request_from(&server, hall, "/healthz").await,
    ];
    // ...and the next is answered 429 at once, with a plain message and the usual headers.
    let reply = answer(request_from(&server, hall, "/healthz").await).await;
    assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
    let lower = reply.to_ascii_lowercase();
    assert!(lower.contains("content-security-policy: default-src 'self'"));
    assert!(lower.contains("x-content-type-options: nosniff"));
    assert!(lower.contains("connection: close"));
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
    assert_eq!(
        json["error"],
        "Too many new connections from your network just now. Try again in a few seconds."
    );
    // The two accepted before it are still open and unanswered: waiting, not refused.
    for tcp in &waiting {
        let mut byte = [0u8; 1];
        let read = tcp.try_read(&mut byte);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a waiting connection has no answer and is not closed: {read:?}"
        );
    }
    // Another address is not held back, and the server counts what it did.
    let reply = answer(request_from(&server, "127.0.0.6", "/metrics").await).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("\nbothy_connections_paced_total 2\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\nbothy_connections_refused_at_accept_total 1\n"),
        "{reply}"
    );
}

#[tokio::test]
async fn connections_from_a_trusted_proxy_are_not_paced() {
    let server = behind_proxy(|c| {
        c.accepts_per_ip_per_second = 1.0 / 3600.0;
        c.accepts_per_ip_burst = 1;
        c.accepts_waiting_per_ip = 0;
    })
    .await;
    // The proxy is 127.0.0.1: five connections at once, each answered.
    for _ in 0..5 {
        let reply = answer(request_from(&server, "127.0.0.1", "/healthz").await).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    // Any other address gets its burst of one, then (with no room to wait) 429.
    let first = answer(request_from(&server, "127.0.0.7", "/healthz").await).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let second = answer(request_from(&server, "127.0.0.7", "/healthz").await).await;
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
}
