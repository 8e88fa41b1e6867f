//! The HTTP side: the embedded page, the health check and the room API.

use bothy_tests::{TestServer, http};
use std::time::Duration;

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let server = TestServer::start().await;
    let home = http::get(server.addr, "/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        home.body
            .contains(r#"<script type="module" src="/assets/app.js">"#)
    );
    assert!(!home.body.contains("<script>"), "no inline script");
    let room = server.create_room("Page").await;
    let board = http::get(server.addr, &format!("/r/{room}")).await;
    assert_eq!((board.status, &board.body), (200, &home.body));
    // A room that does not exist gets the "no board here" page (tests/tests/events.rs).
    assert_eq!(http::get(server.addr, "/r/abcd").await.status, 404);
    let js = http::get(server.addr, "/assets/app.js").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().contains("javascript"));
    assert!(
        !js.body.contains("innerHTML"),
        "user text is never parsed as HTML"
    );
    let css = http::get(server.addr, "/assets/style.css").await;
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(http::get(server.addr, "/assets/nope.js").await.status, 404);
    assert_eq!(
        http::get(server.addr, "/assets/../Cargo.toml").await.status,
        404
    );
}

#[tokio::test]
async fn health_reports_a_writable_data_directory() {
    let server = TestServer::start().await;
    let res = http::get(server.addr, "/healthz").await;
    assert_eq!(res.status, 200);
    let v: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["storage_writable"], true);
}

#[tokio::test]
async fn creating_a_room_saves_it_before_answering() {
    let server = TestServer::start().await;
    let body = r#"{"prompt":"  What could be better?  "}"#;
    let res = http::request(server.addr, "POST", "/api/rooms", Some(body), &[]).await;
    assert_eq!(res.status, 201);
    let v: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    let room = v["room"].as_str().unwrap();
    assert_eq!(v["path"], format!("/r/{room}"));
    assert_eq!(room.len(), 10);
    assert!(
        server
            .data_dir
            .join("rooms")
            .join(room)
            .join("snapshot.json")
            .is_file()
    );
    let (_c, w) = server.joined(room).await;
    assert_eq!(w.board.unwrap().prompt, "What could be better?");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = TestServer::start().await;
    let room = server.create_room("Headers").await;
    let paths = [
        ("GET", "/", None),
        ("GET", &*format!("/r/{room}"), None),
        ("GET", "/assets/app.js", None),
        ("GET", "/assets/missing.js", None),
        ("GET", "/healthz", None),
        ("GET", "/nope", None),
        ("POST", "/api/rooms", Some("not json")),
        ("POST", "/api/events/restore", Some("{}")),
        ("GET", "/ws/BAD", None),
    ];
    for (method, path, body) in paths {
        let res = http::request(server.addr, method, path, body, &[]).await;
        // The whole policy, so that no directive can be loosened unnoticed.
        assert_eq!(
            res.header("content-security-policy"),
            Some(
                "default-src 'self'; script-src 'self'; style-src 'self'; \
                 img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                 frame-ancestors 'none'; form-action 'self'"
            ),
            "{method} {path}"
        );
        assert_eq!(
            res.header("referrer-policy"),
            Some("no-referrer"),
            "{method} {path}"
        );
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn unchanged_files_are_revalidated_with_a_304() {
    let server = TestServer::start().await;
    let first = http::get(server.addr, "/assets/view.js").await;
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let etag = first.header("etag").expect("etag").to_owned();
    let again = http::request(
        server.addr,
        "GET",
        "/assets/view.js",
        None,
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let stale = http::request(
        server.addr,
        "GET",
        "/assets/view.js",
        None,
        &[("If-None-Match", "\"old\"")],
    )
    .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn text_is_sent_compressed_when_the_browser_asks() {
    let server = TestServer::start().await;
    let res = http::request(
        server.addr,
        "GET",
        "/assets/view.js",
        None,
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_answered_408_and_a_body_too_large_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(|c| c.body_timeout = Duration::from_millis(300)).await;
    // Headers promising 100 bytes, then 10, then nothing: the server answers and hangs up.
    let answer = http::raw_request(
        server.addr,
        b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"prompt\":\"",
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer
            .contains(r#"{"error":"The request body took too long to arrive. Please try again."}"#),
        "{answer}"
    );
    assert!(answer.contains("content-security-policy"), "{answer}");

    // Larger than the limit, by its length or as it streams: 413, and nothing created.
    let declared = format!(
        "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        17 * 1024
    );
    let res = http::raw_request(server.addr, declared.as_bytes()).await;
    assert!(
        res.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&res)
    );
    let chunk = "a".repeat(8 * 1024);
    let chunked = format!(
        "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         2000\r\n{chunk}\r\n2000\r\n{chunk}\r\n2000\r\n{chunk}\r\n0\r\n\r\n"
    );
    let res = http::raw_request(server.addr, chunked.as_bytes()).await;
    let res = String::from_utf8_lossy(&res);
    assert!(res.starts_with("HTTP/1.1 413"), "{res}");
    assert!(
        res.contains(r#"{"error":"The request body is too large."}"#),
        "{res}"
    );

    // A body that arrives in time, in pieces, is read as usual.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let body = r#"{"prompt":"Slow but fine"}"#;
    tcp.write_all(
        format!(
            "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    for piece in body.as_bytes().chunks(8) {
        tcp.write_all(piece).await.unwrap();
        tcp.flush().await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(bothy_tests::DEADLINE, tcp.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}
