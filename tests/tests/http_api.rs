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
    let board = http::get(server.addr, "/r/abcd").await;
    assert_eq!((board.status, &board.body), (200, &home.body));
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
