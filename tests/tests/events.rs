//! Events over real sockets: creating an event with its rooms, join codes, the facilitator
//! secret (needed, never shown again, never stored in the clear, replaceable), QR codes, the
//! 404 page for rooms that do not exist, bad bodies, and a restart.

use bothy_tests::{TestServer, http};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

const FACILITATOR: &str = "X-Bothy-Facilitator";

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> http::Response {
    http::request(addr, "POST", path, Some(&body.to_string()), &[]).await
}

fn json_of(res: &http::Response) -> Value {
    serde_json::from_str(&res.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", res.status, res.body))
}

/// Creates the three-room event most tests use and returns the answer.
async fn three_rooms(addr: SocketAddr) -> Value {
    let body = json!({
        "title": "Planning day",
        "rooms": [
            {"name": "Housing", "prompt": "What would help most?"},
            {"name": "Transport", "prompt": "What gets in the way?"},
            {"name": "Table 3", "prompt": "Anything else?\nSay it here."},
        ],
    });
    let res = post_json(addr, "/api/events", &body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    json_of(&res)
}

async fn get_event(addr: SocketAddr, event: &str, secret: Option<&str>) -> http::Response {
    let headers: Vec<(&str, &str)> = secret.map(|s| (FACILITATOR, s)).into_iter().collect();
    http::request(addr, "GET", &format!("/api/events/{event}"), None, &headers).await
}

/// Every file under `dir`, recursively, with its contents.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn an_event_gives_each_room_a_board_a_code_a_link_and_a_qr_code() {
    let server = TestServer::start().await;
    let v = three_rooms(server.addr).await;
    let event = v["event"].as_str().unwrap();
    let secret = v["facilitator_secret"].as_str().unwrap();
    assert_eq!(event.len(), 10);
    assert_eq!(secret.len(), 48, "192 bits in hex");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(v["facilitator_link"], format!("/e/{event}#f={secret}"));
    assert_eq!(v["title"], "Planning day");
    assert_eq!(v["anonymous"], true, "anonymous unless asked otherwise");
    let rooms = v["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 3);
    assert_eq!(rooms[2]["name"], "Table 3");
    assert_eq!(rooms[2]["prompt"], "Anything else?\nSay it here.");
    let codes: HashSet<&str> = rooms.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 3, "codes are unique");
    for r in rooms {
        let room = r["room"].as_str().unwrap();
        let code = r["code"].as_str().unwrap();
        assert_eq!(r["link"], format!("/r/{room}"));
        assert_eq!(r["qr"], format!("/api/rooms/{room}/qr.svg"));
        assert_eq!(code.len(), 6);
        assert!(code.chars().all(|c| "ACDEFHJKMNPRTWXY3479".contains(c)));
        assert!(
            server
                .data_dir
                .join("rooms")
                .join(room)
                .join("snapshot.json")
                .is_file()
        );

        // The code, as typed in any of the forgiving ways, finds the room.
        let typed = format!("{}-{}", &code[..3], &code[3..]).to_lowercase();
        for form in [code.to_owned(), typed] {
            let res = http::get(server.addr, &format!("/api/codes/{form}")).await;
            assert_eq!(res.status, 200, "{form}: {}", res.body);
            let found = json_of(&res);
            assert_eq!(found["room"], room);
            assert_eq!(found["link"], format!("/r/{room}"));
            assert_eq!(found["name"], r["name"]);
        }
        let res = http::get(server.addr, &format!("/j/{code}")).await;
        assert_eq!(res.status, 303);
        assert_eq!(res.header("location"), Some(&*format!("/r/{room}")));

        let page = http::get(server.addr, &format!("/r/{room}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("/assets/app.js"));

        let qr = http::get(server.addr, &format!("/api/rooms/{room}/qr.svg")).await;
        assert_eq!(qr.status, 200);
        assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
        assert!(qr.body.contains("<svg"), "{}", qr.body);

        // A participant joins the room's live board.
        let (c, w) = server.joined(room).await;
        assert_eq!(w.room, room);
        c.close().await;
    }
}

#[tokio::test]
async fn the_facilitator_pages_are_the_app_page() {
    let server = TestServer::start().await;
    let v = three_rooms(server.addr).await;
    let event = v["event"].as_str().unwrap();
    let home = http::get(server.addr, "/").await;
    for path in [format!("/e/{event}"), format!("/e/{event}/cards")] {
        let res = http::get(server.addr, &path).await;
        assert_eq!((res.status, &res.body), (200, &home.body), "{path}");
    }
}

#[tokio::test]
async fn unknown_rooms_and_codes_get_a_404_and_create_nothing() {
    let server = TestServer::start().await;
    let rooms_dir = server.data_dir.join("rooms");
    let events_dir = server.data_dir.join("events");
    let before = (count_entries(&rooms_dir), count_entries(&events_dir));

    let page = http::get(server.addr, "/r/nosuchroom").await;
    assert_eq!(page.status, 404);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("There is no board here"));
    assert!(page.body.contains(r#"<html lang="en">"#));
    assert!(page.body.contains(r#"href="/""#));
    assert!(!page.body.contains("<script"), "no script at all");
    assert!(!page.body.contains("style="), "no inline style");
    assert_eq!(http::get(server.addr, "/r/BAD!").await.status, 404);

    for code in ["K7RM4X", "k7r-m4x", "000000", "toolongcode", "a"] {
        let res = http::get(server.addr, &format!("/api/codes/{code}")).await;
        assert_eq!(res.status, 404, "{code}");
        assert_eq!(json_of(&res)["error"], "There is no room with that code.");
        let res = http::get(server.addr, &format!("/j/{code}")).await;
        assert_eq!(res.status, 404, "{code}");
        assert!(res.body.contains("There is no board here"));
    }
    let qr = http::get(server.addr, "/api/rooms/nosuchroom/qr.svg").await;
    assert_eq!(qr.status, 404);
    assert!(json_of(&qr)["error"].is_string());

    assert!(!rooms_dir.join("nosuchroom").exists());
    assert_eq!(
        (count_entries(&rooms_dir), count_entries(&events_dir)),
        before,
        "nothing was created"
    );
}

#[tokio::test]
async fn reading_an_event_needs_its_secret_and_never_shows_it() {
    let server = TestServer::start().await;
    let v = three_rooms(server.addr).await;
    let event = v["event"].as_str().unwrap();
    let secret = v["facilitator_secret"].as_str().unwrap();
    let other = three_rooms(server.addr).await;
    let other_secret = other["facilitator_secret"].as_str().unwrap();

    let wrong = "0".repeat(48);
    let truncated = &secret[..47];
    for presented in [
        None,
        Some(""),
        Some(&*wrong),
        Some(truncated),
        Some(other_secret),
    ] {
        let res = get_event(server.addr, event, presented).await;
        assert_eq!(res.status, 403, "{presented:?}");
        assert!(
            json_of(&res)["error"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // An unknown event answers exactly as a wrong secret does.
    let unknown = get_event(server.addr, "nosuchevent", Some(secret)).await;
    let bad_id = get_event(server.addr, "NO!", Some(secret)).await;
    let wrong_secret = get_event(server.addr, event, Some(&wrong)).await;
    assert_eq!(unknown.status, 403);
    assert_eq!(bad_id.status, 403);
    assert_eq!(unknown.body, wrong_secret.body);

    let res = get_event(server.addr, event, Some(secret)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(!res.body.contains(secret), "the secret is not shown again");
    let got = json_of(&res);
    assert!(got.get("facilitator_secret").is_none());
    assert!(got.get("facilitator_hash").is_none());
    assert!(got.get("facilitator_link").is_none());
    assert_eq!(got["event"], event);
    assert_eq!(got["title"], "Planning day");
    assert_eq!(got["anonymous"], true);
    assert!(got["created_at"].as_u64().is_some());
    let rooms = got["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 3);
    for (r, created) in rooms.iter().zip(v["rooms"].as_array().unwrap()) {
        for field in ["room", "name", "code", "link", "qr"] {
            assert_eq!(r[field], created[field], "{field}");
        }
    }

    // On disk: the hash, never the secret.
    let file = server
        .data_dir
        .join("events")
        .join(event)
        .join("event.json");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(on_disk["facilitator_hash"].as_str().unwrap().len(), 64);
    for (path, bytes) in files_under(&server.data_dir) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_replaced_secret_stops_working_at_once() {
    let server = TestServer::start().await;
    let v = three_rooms(server.addr).await;
    let event = v["event"].as_str().unwrap();
    let old = v["facilitator_secret"].as_str().unwrap();
    let path = format!("/api/events/{event}/secret");

    let refused = http::request(server.addr, "POST", &path, None, &[]).await;
    assert_eq!(refused.status, 403);
    let refused = http::request(server.addr, "POST", &path, None, &[(FACILITATOR, "nope")]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(get_event(server.addr, event, Some(old)).await.status, 200);

    let res = http::request(server.addr, "POST", &path, None, &[(FACILITATOR, old)]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let rotated = json_of(&res);
    let new = rotated["facilitator_secret"].as_str().unwrap();
    assert_eq!(new.len(), 48);
    assert_ne!(new, old);
    assert_eq!(rotated["facilitator_link"], format!("/e/{event}#f={new}"));

    assert_eq!(get_event(server.addr, event, Some(old)).await.status, 403);
    assert_eq!(get_event(server.addr, event, Some(new)).await.status, 200);
    let again = http::request(server.addr, "POST", &path, None, &[(FACILITATOR, old)]).await;
    assert_eq!(again.status, 403, "the old secret cannot rotate either");
    for (file, bytes) in files_under(&server.data_dir) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(new), "{} holds the secret", file.display());
    }
}

#[tokio::test]
async fn a_quick_board_is_a_one_room_event() {
    let server = TestServer::start().await;
    let res = post_json(server.addr, "/api/rooms", &json!({"prompt": "Ideas?"})).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let v = json_of(&res);
    let room = v["room"].as_str().unwrap();
    let event = v["event"].as_str().unwrap();
    let code = v["code"].as_str().unwrap();
    assert_eq!(v["path"], format!("/r/{room}"));
    let link = v["facilitator_link"].as_str().unwrap();
    let secret = link
        .strip_prefix(&format!("/e/{event}#f="))
        .expect("a facilitator link");
    let got = json_of(&get_event(server.addr, event, Some(secret)).await);
    assert_eq!(got["title"], "Quick board");
    assert_eq!(got["anonymous"], false, "names stay optional, as before");
    assert_eq!(got["rooms"][0]["room"], room);
    assert_eq!(got["rooms"][0]["name"], "Board");
    assert_eq!(got["rooms"][0]["code"], code);
    let found = json_of(&http::get(server.addr, &format!("/api/codes/{code}")).await);
    assert_eq!(found["room"], room);
}

#[tokio::test]
async fn bad_event_bodies_are_refused_with_a_message_and_create_nothing() {
    let server = TestServer::start().await;
    let room = |name: &str, prompt: &str| json!({"name": name, "prompt": prompt});
    let ok_room = room("A", "Why?");
    let many: Vec<Value> = (0..21).map(|i| room(&format!("R{i}"), "Why?")).collect();
    let cases: Vec<(String, u16)> = [
        (json!({"title": "T"}), 422),
        (json!({"rooms": [ok_room]}), 422),
        (json!({"title": "T", "rooms": []}), 422),
        (json!({"title": "T", "rooms": many}), 422),
        (json!({"title": "t".repeat(121), "rooms": [ok_room]}), 422),
        (json!({"title": "  ", "rooms": [ok_room]}), 422),
        (json!({"title": "a\nb", "rooms": [ok_room]}), 422),
        (
            json!({"title": "T", "rooms": [room(&"n".repeat(61), "Why?")]}),
            422,
        ),
        (json!({"title": "T", "rooms": [room("", "Why?")]}), 422),
        (
            json!({"title": "T", "rooms": [room("A", &"p".repeat(301))]}),
            422,
        ),
        (json!({"title": "T", "rooms": [room("A", "   ")]}), 422),
        (json!({"title": "T", "rooms": [room("A", "x\u{0}y")]}), 422),
        (json!({"title": "T\u{1b}[31m", "rooms": [ok_room]}), 422),
        (
            json!({"title": "T", "rooms": [room("A\u{7f}", "Why?")]}),
            422,
        ),
        (json!({"title": "T", "rooms": [ok_room], "extra": 1}), 422),
        (
            json!({"title": "T", "rooms": [{"name": "A", "prompt": "B", "x": 1}]}),
            422,
        ),
        (json!({"title": "T", "rooms": [{"name": "A"}]}), 422),
        (json!({"title": 5, "rooms": [ok_room]}), 422),
        (json!({"title": "T", "rooms": "A"}), 422),
        (json!({"title": "T", "rooms": [["A", "B"]]}), 422),
        (
            json!({"title": "T", "anonymous": "yes", "rooms": [ok_room]}),
            422,
        ),
        (
            json!({"title": "T", "retention_days": -1, "rooms": [ok_room]}),
            422,
        ),
        (json!([{"title": "T"}]), 422),
    ]
    .into_iter()
    .map(|(v, s)| (v.to_string(), s))
    .chain([
        ("not json".to_owned(), 400),
        (r#"{"title": "T", "rooms": ["#.to_owned(), 400),
        (
            r#"{"title": "T", "title": "U", "rooms": [{"name": "A", "prompt": "B"}]}"#.to_owned(),
            422,
        ),
    ])
    .collect();
    for (body, status) in &cases {
        let res = http::request(server.addr, "POST", "/api/events", Some(body), &[]).await;
        assert_eq!(res.status, *status, "for {body}: {}", res.body);
        let message = json_of(&res)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !message.is_empty() && message.len() < 200,
            "for {body}: {message:?}"
        );
    }
    // Without a JSON content type, and over the size limit.
    let res = http::raw_request(
        server.addr,
        b"POST /api/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert!(String::from_utf8_lossy(&res).starts_with("HTTP/1.1 415"));
    let huge = json!({"title": "T", "rooms": [room("A", &"p".repeat(100_000))]}).to_string();
    let res = http::request(server.addr, "POST", "/api/events", Some(&huge), &[]).await;
    assert_eq!(res.status, 413);

    assert_eq!(count_entries(&server.data_dir.join("rooms")), 0);
    assert_eq!(count_entries(&server.data_dir.join("events")), 0);

    // The limits themselves are accepted, and `anonymous: false` and `retention_days` too.
    let twenty: Vec<Value> = (0..20).map(|i| room(&format!("R{i}"), "Why?")).collect();
    let body = json!({
        "title": "t".repeat(120),
        "anonymous": false,
        "retention_days": 30,
        "rooms": twenty,
    });
    let res = post_json(server.addr, "/api/events", &body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(json_of(&res)["anonymous"], false);
    let body = json!({"title": "T", "rooms": [room(&"n".repeat(60), &"p".repeat(300))]});
    assert_eq!(
        post_json(server.addr, "/api/events", &body).await.status,
        201
    );
}

#[tokio::test]
async fn a_hostile_host_header_never_reaches_the_qr_code() {
    let server = TestServer::start().await;
    let v = three_rooms(server.addr).await;
    let room = v["rooms"][0]["room"].as_str().unwrap();
    for host in ["evil\"><script>", "a b", "x@y", "host/path"] {
        let req = format!(
            "GET /api/rooms/{room}/qr.svg HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        let res = http::raw_request(server.addr, req.as_bytes()).await;
        let text = String::from_utf8_lossy(&res);
        assert!(
            text.starts_with("HTTP/1.1 400"),
            "{host}: {}",
            text.lines().next().unwrap_or_default()
        );
        assert!(!text.contains("<svg"));
    }
}

#[tokio::test]
async fn the_public_url_is_what_the_qr_code_encodes() {
    // The link is drawn, not written, in the SVG: the check is that a configured public URL
    // makes the answer independent of the Host header.
    let server = TestServer::start_with(|c| {
        c.public_url = Some("https://board.example.org".to_owned());
    })
    .await;
    let v = three_rooms(server.addr).await;
    let room = v["rooms"][0]["room"].as_str().unwrap();
    let path = format!("/api/rooms/{room}/qr.svg");
    let a = http::request(server.addr, "GET", &path, None, &[]).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: other.example:81\r\nConnection: close\r\n\r\n");
    let b = http::raw_request(server.addr, req.as_bytes()).await;
    assert_eq!(a.status, 200);
    assert!(String::from_utf8_lossy(&b).ends_with(&a.body));
}

#[tokio::test]
async fn events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let v = three_rooms(server.addr).await;
    let event = v["event"].as_str().unwrap().to_owned();
    let secret = v["facilitator_secret"].as_str().unwrap().to_owned();
    let before = json_of(&get_event(server.addr, &event, Some(&secret)).await);
    server.stop().await;

    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let res = get_event(server.addr, &event, Some(&secret)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(json_of(&res), before);
    for r in v["rooms"].as_array().unwrap() {
        let room = r["room"].as_str().unwrap();
        let code = r["code"].as_str().unwrap();
        let res = http::get(server.addr, &format!("/j/{code}")).await;
        assert_eq!(res.header("location"), Some(&*format!("/r/{room}")));
        assert_eq!(
            http::get(server.addr, &format!("/r/{room}")).await.status,
            200
        );
        let (c, w) = server.joined(room).await;
        assert_eq!(w.room, room);
        c.close().await;
    }
    // New codes after the restart do not collide with the old ones.
    let more = three_rooms(server.addr).await;
    let mut codes: HashSet<String> = HashSet::new();
    for r in v["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .chain(more["rooms"].as_array().unwrap())
    {
        assert!(codes.insert(r["code"].as_str().unwrap().to_owned()));
    }
    server.stop().await;
}
