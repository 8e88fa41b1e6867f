//! Retention and purge over real sockets and real files: a facilitator's purge leaves no file
//! of the event in the data directory and disconnects everyone in its rooms; an expired event
//! is purged at start-up and by the periodic sweep; `bothy purge` on a stopped server's data
//! directory, and its refusal on a running one's; a purge cut short is finished at start-up.

use bothy_tests::{BinaryServer, Client, Closed, DEADLINE, TestServer, bothy_binary, http, ops};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FACILITATOR: &str = "X-Bothy-Facilitator";
const DAY_MS: u64 = 86_400_000;

fn json_of(res: &http::Response) -> Value {
    serde_json::from_str(&res.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", res.status, res.body))
}

/// An event as created, with what the test wrote into it.
struct Made {
    id: String,
    secret: String,
    title: String,
    rooms: Vec<String>,
    codes: Vec<String>,
    /// Note texts and display names written on its boards: none may survive a purge.
    words: Vec<String>,
}

/// A word no other test and no id can contain by chance.
fn marker(what: &str) -> String {
    format!("{what}{}", bothy_tests::new_token())
}

async fn create_event(addr: SocketAddr, rooms: usize, retention_days: Option<u32>) -> Made {
    let title = marker("Title");
    let mut body = json!({
        "title": title,
        "anonymous": false,
        "rooms": (0..rooms)
            .map(|i| json!({"name": format!("Room {i}"), "prompt": "What would help?"}))
            .collect::<Vec<_>>(),
    });
    if let Some(days) = retention_days {
        body["retention_days"] = json!(days);
    }
    let res = http::request(addr, "POST", "/api/events", Some(&body.to_string()), &[]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let v = json_of(&res);
    let rooms = v["rooms"].as_array().unwrap();
    Made {
        id: v["event"].as_str().unwrap().to_owned(),
        secret: v["facilitator_secret"].as_str().unwrap().to_owned(),
        title,
        rooms: rooms
            .iter()
            .map(|r| r["room"].as_str().unwrap().to_owned())
            .collect(),
        codes: rooms
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_owned())
            .collect(),
        words: Vec::new(),
    }
}

/// Joins each room with a display name and posts a note; returns the connected clients.
async fn write_notes(addr: SocketAddr, made: &mut Made) -> Vec<Client> {
    let mut clients = Vec::new();
    for room in made.rooms.clone() {
        let mut c = Client::connect(addr, &room).await;
        let name = marker("Name");
        c.name = Some(name.clone());
        c.join(None).await;
        let text = marker("Note");
        c.apply(ops::create_note(&text)).await;
        made.words.push(name);
        made.words.push(text);
        clients.push(c);
    }
    clients
}

async fn get_event(addr: SocketAddr, event: &str, secret: &str) -> http::Response {
    http::request(
        addr,
        "GET",
        &format!("/api/events/{event}"),
        None,
        &[(FACILITATOR, secret)],
    )
    .await
}

async fn delete_event(addr: SocketAddr, event: &str, secret: Option<&str>) -> http::Response {
    let headers: Vec<(&str, &str)> = secret.map(|s| (FACILITATOR, s)).into_iter().collect();
    http::request(
        addr,
        "DELETE",
        &format!("/api/events/{event}"),
        None,
        &headers,
    )
    .await
}

/// Every path under `dir` (folders and files), with each file's contents.
fn walk(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push((path.clone(), None));
            out.extend(walk(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, Some(bytes)));
        }
    }
    out
}

/// Nothing in the data directory names the event or its rooms or holds its words or title.
fn assert_no_trace(data_dir: &Path, made: &Made) {
    let mut needles = vec![made.id.clone(), made.title.clone()];
    needles.extend(made.rooms.iter().cloned());
    needles.extend(made.words.iter().cloned());
    for (path, contents) in walk(data_dir) {
        let rel = path.strip_prefix(data_dir).unwrap().to_string_lossy();
        for id in std::iter::once(&made.id).chain(&made.rooms) {
            assert!(!rel.contains(id.as_str()), "{rel} is left of the event");
        }
        if let Some(bytes) = contents {
            let text = String::from_utf8_lossy(&bytes);
            for needle in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "{rel} still holds {needle:?}"
                );
            }
        }
    }
}

/// Every room of the event is on disk and holds its words.
fn assert_intact(data_dir: &Path, made: &Made) {
    assert!(
        data_dir
            .join("events")
            .join(&made.id)
            .join("event.json")
            .is_file()
    );
    let mut all = String::new();
    for room in &made.rooms {
        let dir = data_dir.join("rooms").join(room);
        assert!(dir.join("snapshot.json").is_file(), "{room} kept");
        for (_, contents) in walk(&dir) {
            all.push_str(&String::from_utf8_lossy(&contents.unwrap_or_default()));
        }
    }
    for word in &made.words {
        assert!(all.contains(word.as_str()), "{word} kept");
    }
}

/// The event's codes, links, QR codes, sockets and facilitator page are all gone.
async fn assert_unreachable(addr: SocketAddr, made: &Made) {
    for code in &made.codes {
        assert_eq!(
            http::get(addr, &format!("/api/codes/{code}")).await.status,
            404
        );
        assert_eq!(http::get(addr, &format!("/j/{code}")).await.status, 404);
    }
    for room in &made.rooms {
        assert_eq!(http::get(addr, &format!("/r/{room}")).await.status, 404);
        let qr = http::get(addr, &format!("/api/rooms/{room}/qr.svg")).await;
        assert_eq!(qr.status, 404);
        let mut c = Client::connect(addr, room).await;
        assert_eq!(close_code(c.expect_close().await), 4004);
    }
    assert_eq!(get_event(addr, &made.id, &made.secret).await.status, 403);
}

fn close_code(closed: Closed) -> u16 {
    match closed {
        Closed::Frame { code, .. } => code,
        Closed::NoFrame => panic!("closed without a close frame"),
    }
}

/// Waits until the server answers: it loads the data directory (finishing purges and
/// purging expired events) before it accepts the first connection.
async fn ready(addr: SocketAddr) {
    assert_eq!(http::get(addr, "/healthz").await.status, 200);
}

/// Waits (with a deadline) until `path` exists.
async fn wait_for_file(path: &Path) {
    let started = std::time::Instant::now();
    while !path.is_file() {
        assert!(
            started.elapsed() < DEADLINE,
            "{} did not appear",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Moves the event's creation time back by `ms` in its `event.json` (the server is stopped).
fn age_event(data_dir: &Path, event: &str, ms: u64) {
    let file = data_dir.join("events").join(event).join("event.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let created = v["created_at"].as_u64().unwrap();
    v["created_at"] = json!(created - ms);
    std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Runs `bothy purge` and returns (exit code, stdout, stderr).
fn run_purge(data_dir: &Path, event: &str) -> (i32, String, String) {
    let out = std::process::Command::new(bothy_binary())
        .args(["purge", event, "--data-dir"])
        .arg(data_dir)
        .env("BOTHY_LOG", "warn")
        .output()
        .expect("bothy purge runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn retention_is_chosen_at_creation_checked_and_shown() {
    let server = TestServer::start().await;
    let room = json!([{"name": "A", "prompt": "Why?"}]);
    for bad in [json!(0), json!(3651), json!(-1), json!(1.5), json!("90")] {
        let body = json!({"title": "T", "retention_days": bad, "rooms": room}).to_string();
        let res = http::request(server.addr, "POST", "/api/events", Some(&body), &[]).await;
        assert_eq!(res.status, 422, "{bad}: {}", res.body);
        assert!(
            json_of(&res)["error"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    for (days, expected) in [(None, 90), (Some(1), 1), (Some(3650), 3650)] {
        let made = create_event(server.addr, 1, days).await;
        let res = get_event(server.addr, &made.id, &made.secret).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let v = json_of(&res);
        assert_eq!(v["retention_days"], expected);
        let created = v["created_at"].as_u64().unwrap();
        assert_eq!(
            v["expires_at"].as_u64().unwrap(),
            created + expected * DAY_MS
        );
        let file = server
            .data_dir
            .join("events")
            .join(&made.id)
            .join("event.json");
        let on_disk: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(on_disk["retention_days"], expected);
    }
}

#[tokio::test]
async fn a_facilitator_purge_leaves_no_file_of_the_event_and_closes_its_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |c| {
        // Event snapshots are written to the event's folder while it is live; the purge must
        // take them too.
        c.snapshot_every = Duration::from_millis(100);
    })
    .await;
    let mut gone = create_event(server.addr, 3, None).await;
    let mut kept = create_event(server.addr, 2, None).await;
    let mut gone_clients = write_notes(server.addr, &mut gone).await;
    let _kept_clients = write_notes(server.addr, &mut kept).await;
    // A facilitator is in the first room too.
    let mut facilitator = Client::connect(server.addr, &gone.rooms[0]).await;
    facilitator.facilitator = Some(gone.secret.clone());
    facilitator.join(None).await;
    wait_for_file(
        &server
            .data_dir
            .join("events")
            .join(&gone.id)
            .join("snapshot.json"),
    )
    .await;

    // Only the event's own secret purges it.
    let wrong = "0".repeat(48);
    for secret in [
        None,
        Some(""),
        Some(wrong.as_str()),
        Some(kept.secret.as_str()),
    ] {
        let res = delete_event(server.addr, &gone.id, secret).await;
        assert_eq!(res.status, 403, "{secret:?}");
    }
    assert_intact(&server.data_dir, &gone);

    let res = delete_event(server.addr, &gone.id, Some(&gone.secret)).await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(res.body.is_empty());

    // Everyone in its rooms is told the board no longer exists.
    for c in gone_clients.iter_mut().chain([&mut facilitator]) {
        assert_eq!(close_code(c.expect_close().await), 4004);
    }
    assert_no_trace(&server.data_dir, &gone);
    assert_unreachable(server.addr, &gone).await;
    // A second purge finds nothing to purge.
    assert_eq!(
        delete_event(server.addr, &gone.id, Some(&gone.secret))
            .await
            .status,
        403
    );

    // The other event is untouched and still live.
    assert_intact(&server.data_dir, &kept);
    assert_eq!(
        get_event(server.addr, &kept.id, &kept.secret).await.status,
        200
    );
    let (_c, w) = server.joined(&kept.rooms[0]).await;
    assert!(format!("{:?}", w.board).contains(kept.words[1].as_str()));

    // And the purge holds across a restart.
    drop(_kept_clients);
    server.stop().await;
    assert_no_trace(dir.path(), &gone);
    let again = TestServer::start_in(dir.path(), |_| {}).await;
    assert_unreachable(again.addr, &gone).await;
    assert_eq!(
        get_event(again.addr, &kept.id, &kept.secret).await.status,
        200
    );
}

#[tokio::test]
async fn an_expired_event_is_purged_when_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[]);
    let mut expired = create_event(server.addr, 2, Some(1)).await;
    let mut kept = create_event(server.addr, 1, Some(1)).await;
    let mut old = create_event(server.addr, 1, None).await;
    for made in [&mut expired, &mut kept, &mut old] {
        for mut c in write_notes(server.addr, made).await {
            c.sync().await;
        }
    }
    assert!(server.terminate().success());

    // Two days later for one event; 23 hours for the other one-day event. The third is from
    // before retention existed: no `retention_days` in its file, so it is kept 90 days.
    age_event(dir.path(), &expired.id, 2 * DAY_MS);
    age_event(dir.path(), &kept.id, 23 * 60 * 60 * 1000);
    let file = dir.path().join("events").join(&old.id).join("event.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("retention_days");
    v["created_at"] = json!(v["created_at"].as_u64().unwrap() - 89 * DAY_MS);
    std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();

    let server = BinaryServer::start(dir.path(), &[]);
    ready(server.addr).await;
    assert_no_trace(dir.path(), &expired);
    assert_unreachable(server.addr, &expired).await;
    assert_intact(dir.path(), &kept);
    assert_intact(dir.path(), &old);
    let v = json_of(&get_event(server.addr, &old.id, &old.secret).await);
    assert_eq!(v["retention_days"], 90);
    assert_eq!(
        json_of(&get_event(server.addr, &kept.id, &kept.secret).await)["retention_days"],
        1
    );
}

#[tokio::test]
async fn the_sweep_purges_an_event_whose_time_runs_out_while_people_are_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let mut made = create_event(server.addr, 1, Some(1)).await;
    for mut c in write_notes(server.addr, &mut made).await {
        c.sync().await;
    }
    server.stop().await;
    // It expires three seconds from now: after the start-up sweep, before the deadline.
    age_event(dir.path(), &made.id, DAY_MS - 3_000);
    let server = TestServer::start_in(dir.path(), |c| {
        c.retention_sweep = Duration::from_millis(200);
    })
    .await;
    let mut c = Client::connect(server.addr, &made.rooms[0]).await;
    let w = c.join(None).await;
    assert!(format!("{:?}", w.board).contains(made.words[1].as_str()));
    assert_eq!(close_code(c.expect_close().await), 4004);
    // People are disconnected first; the files go right after.
    let events = dir.path().join("events");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&events).unwrap().count() > 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the event's folder is deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_no_trace(dir.path(), &made);
    assert_unreachable(server.addr, &made).await;
}

#[tokio::test]
async fn bothy_purge_deletes_an_event_of_a_stopped_server_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[]);
    let mut gone = create_event(server.addr, 2, None).await;
    let mut kept = create_event(server.addr, 2, None).await;
    for made in [&mut gone, &mut kept] {
        for mut c in write_notes(server.addr, made).await {
            c.sync().await;
        }
    }

    // While the server runs, the command refuses and changes nothing.
    let (code, _, stderr) = run_purge(dir.path(), &gone.id);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "Bothy is running on this data directory: purge from the facilitator overview or \
             stop the server first"
        ),
        "{stderr}"
    );
    assert_intact(dir.path(), &gone);
    assert!(server.terminate().success());

    let (code, stdout, stderr) = run_purge(dir.path(), &gone.id);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("Purged event {}: deleted 3 folders and", gone.id)),
        "{stdout}"
    );
    for room in &gone.rooms {
        assert!(stdout.contains(&format!("rooms/{room}")), "{stdout}");
    }
    assert!(stdout.contains(&format!("events/{}", gone.id)), "{stdout}");
    assert_no_trace(dir.path(), &gone);
    assert_intact(dir.path(), &kept);

    // An unknown event, and something that is not an event id: a message and exit code 1.
    for (event, says) in [
        (gone.id.as_str(), "there is no event"),
        ("nosuchevent", "there is no event"),
        ("../rooms", "is not an event id"),
    ] {
        let (code, stdout, stderr) = run_purge(dir.path(), event);
        assert_eq!(code, 1, "{event}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{event}: {stderr}");
    }
    assert_intact(dir.path(), &kept);

    // The server starts on what is left, without the purged event.
    let server = BinaryServer::start(dir.path(), &[]);
    assert_unreachable(server.addr, &gone).await;
    assert_eq!(
        get_event(server.addr, &kept.id, &kept.secret).await.status,
        200
    );
    let mut c = Client::connect(server.addr, &kept.rooms[1]).await;
    let w = c.join(None).await;
    assert!(format!("{:?}", w.board).contains(kept.words[3].as_str()));
}

#[tokio::test]
async fn a_purge_cut_short_is_finished_when_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let mut gone = create_event(server.addr, 3, None).await;
    let mut kept = create_event(server.addr, 1, None).await;
    for made in [&mut gone, &mut kept] {
        for mut c in write_notes(server.addr, made).await {
            c.sync().await;
        }
    }
    server.stop().await;
    // What a crash after the first steps leaves: the event folder renamed, one room deleted.
    let events = dir.path().join("events");
    std::fs::rename(
        events.join(&gone.id),
        events.join(format!("{}.purging", gone.id)),
    )
    .unwrap();
    std::fs::remove_dir_all(dir.path().join("rooms").join(&gone.rooms[0])).unwrap();

    let server = BinaryServer::start(dir.path(), &[]);
    ready(server.addr).await;
    assert_no_trace(dir.path(), &gone);
    assert_unreachable(server.addr, &gone).await;
    assert_intact(dir.path(), &kept);
    assert_eq!(
        get_event(server.addr, &kept.id, &kept.secret).await.status,
        200
    );
}
