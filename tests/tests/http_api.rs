//! The HTTP side: the embedded page, the health check and the room API.

use bothy_tests::{TestServer, http};

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
        ("GET", "/ws/BAD", None),
    ];
    for (method, path, body) in paths {
        let res = http::request(server.addr, method, path, body, &[]).await;
        let csp = res.header("content-security-policy").unwrap_or_default();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ] {
            assert!(
                csp.contains(part),
                "{method} {path}: CSP {csp:?} lacks {part}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{method} {path}");
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
