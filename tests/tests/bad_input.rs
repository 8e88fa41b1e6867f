//! Bad input over real sockets: each case gets a typed error, a rejection or a close code with a
//! reason; none panics the server, changes a board or reaches another client.

use bothy_shared::protocol::{ErrorCode, ServerMessage};
use bothy_shared::{RejectReason, protocol::close};
use bothy_tests::ops::*;
use bothy_tests::{Client, Closed, TestServer, http};
use tokio_tungstenite::tungstenite::Message;

/// After a bad case: the bystander got nothing, the board is as it was, the server still works.
async fn assert_unharmed(server: &TestServer, room: &str, bystander: &mut Client, seq: u64) {
    let seen = bystander.sync().await;
    assert!(
        seen.iter().all(|m| matches!(m, ServerMessage::Presence(_))),
        "bystander saw {seen:?}"
    );
    let (_c, w) = server.joined(room).await;
    assert_eq!(w.seq, seq, "board unchanged");
}

fn code_of(closed: Closed) -> u16 {
    match closed {
        Closed::Frame { code, reason } => {
            assert!(!reason.is_empty(), "close {code} has a reason");
            code
        }
        Closed::NoFrame => panic!("closed without a close frame"),
    }
}

#[tokio::test]
async fn malformed_messages_after_join_get_typed_errors_and_the_connection_stays() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut bystander, _) = server.joined(&room).await;
    let (mut c, _) = server.joined(&room).await;
    bystander.sync().await;
    let cases: &[(&str, ErrorCode)] = &[
        ("{", ErrorCode::MalformedJson),
        ("not json", ErrorCode::MalformedJson),
        (r#"{"type":"ping"} trailing"#, ErrorCode::MalformedJson),
        // serde_json refuses numbers beyond f64 while parsing, so this is not JSON it can read.
        (
            r#"{"type":"op","op_id":"a","op":{"kind":"move_note","note":1,"x":1e999,"y":1}}"#,
            ErrorCode::MalformedJson,
        ),
        // A lone surrogate escape is not a Unicode scalar value: refused while parsing.
        (
            r#"{"type":"op","op_id":"a","op":{"kind":"create_note","text":"\ud800","colour":"yellow","x":1,"y":1}}"#,
            ErrorCode::MalformedJson,
        ),
        ("[]", ErrorCode::UnknownType),
        ("{}", ErrorCode::UnknownType),
        (r#"{"type":"launch_rockets"}"#, ErrorCode::UnknownType),
        (r#"{"type":7}"#, ErrorCode::UnknownType),
        (r#"{"type":"op"}"#, ErrorCode::InvalidMessage),
        (
            r#"{"type":"op","op_id":"has space","op":{"kind":"delete_note","note":1}}"#,
            ErrorCode::InvalidMessage,
        ),
        (r#"{"type":"ping","extra":1}"#, ErrorCode::InvalidMessage),
        (
            r#"{"type":"join","version":1,"token":"0123456789abcdef0123"}"#,
            ErrorCode::AlreadyJoined,
        ),
    ];
    for (text, code) in cases {
        c.send_raw(text).await;
        match c.recv().await {
            ServerMessage::Error(e) => {
                assert_eq!(e.code, *code, "for {text}");
                assert!(!e.message.is_empty());
            }
            other => panic!("for {text}: {other:?}"),
        }
    }
    assert_unharmed(&server, &room, &mut bystander, 0).await;
}

#[tokio::test]
async fn unreadable_ops_are_rejected_by_op_id() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut bystander, _) = server.joined(&room).await;
    let (mut c, _) = server.joined(&room).await;
    bystander.sync().await;
    let cases = [
        r#"{"kind":"create_note","text":"hi","colour":"red;background:url(//x)","x":1,"y":1}"#,
        r#"{"kind":"create_note","text":"hi","colour":"\" onmouseover=\"alert(1)","x":1,"y":1}"#,
        r#"{"kind":"create_note","text":"hi","colour":"yellow","x":"1","y":1}"#,
        r#"{"kind":"create_note","text":"hi","colour":"yellow","x":1,"y":1,"token":"secret"}"#,
        r#"{"kind":"delete_note","note":-1}"#,
        r#"{"kind":"delete_note","note":18446744073709551616}"#,
        r#"{"kind":"delete_note"}"#,
        r#"{"kind":"no_such_op"}"#,
        r#"{"kind":"set_note_theme","note":1,"theme":1,"position":-3}"#,
    ];
    for (i, op) in cases.iter().enumerate() {
        let text = format!(r#"{{"type":"op","op_id":"bad-{i}","op":{op}}}"#);
        c.send_raw(&text).await;
        match c.recv().await {
            ServerMessage::Rejected(r) => {
                assert_eq!(r.op_id.as_str(), format!("bad-{i}"));
                assert_eq!(r.reason, RejectReason::Invalid, "for {op}");
            }
            other => panic!("for {op}: {other:?}"),
        }
    }
    assert_unharmed(&server, &room, &mut bystander, 0).await;
}

#[tokio::test]
async fn the_first_message_must_be_a_valid_join() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut bystander, _) = server.joined(&room).await;
    let op = r#"{"type":"op","op_id":"a1","op":{"kind":"create_note","text":"hi","colour":"yellow","x":1,"y":1}}"#;
    let long_name = format!(
        r#"{{"type":"join","version":1,"token":"0123456789abcdef","name":"{}"}}"#,
        "n".repeat(41)
    );
    let cases = [
        op.to_owned(),
        "garbage".to_owned(),
        r#"{"type":"ping"}"#.to_owned(),
        r#"{"type":"join","version":2,"token":"0123456789abcdef"}"#.to_owned(),
        r#"{"type":"join","version":1,"token":"short"}"#.to_owned(),
        r#"{"type":"join","version":1,"token":"0123456789abcdef/../.."}"#.to_owned(),
        r#"{"type":"join","version":1}"#.to_owned(),
        r#"{"type":"join","version":1,"token":"0123456789abcdef","room":"other"}"#.to_owned(),
        r#"{"type":"join","version":1,"token":"0123456789abcdef","name":"a\u0000b"}"#.to_owned(),
        long_name,
    ];
    for text in cases {
        let mut c = server.client(&room).await;
        c.send_raw(&text).await;
        assert_eq!(
            code_of(c.expect_close().await),
            close::BAD_JOIN,
            "for {text}"
        );
    }
    assert_unharmed(&server, &room, &mut bystander, 0).await;
}

#[tokio::test]
async fn frames_that_are_binary_or_too_big_are_closed_with_the_right_code() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut bystander, _) = server.joined(&room).await;

    let (mut c, _) = server.joined(&room).await;
    c.send_message(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(code_of(c.expect_close().await), close::UNSUPPORTED_DATA);

    // One byte over the 64 KiB limit, and a megabyte.
    for size in [64 * 1024 + 1, 1024 * 1024] {
        let (mut c, _) = server.joined(&room).await;
        let text = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(size));
        c.send_raw(&text).await;
        assert_eq!(
            code_of(c.expect_close().await),
            close::TOO_BIG,
            "for {size} bytes"
        );
    }
    // Also before joining.
    let mut c = server.client(&room).await;
    c.send_raw(&"y".repeat(70_000)).await;
    assert_eq!(code_of(c.expect_close().await), close::TOO_BIG);
    assert_unharmed(&server, &room, &mut bystander, 0).await;
}

#[tokio::test]
async fn unknown_and_invalid_rooms_create_nothing() {
    let server = TestServer::start().await;
    let mut c = server.client("nosuchroom").await;
    assert_eq!(code_of(c.expect_close().await), close::NO_SUCH_ROOM);
    assert!(!server.data_dir.join("rooms/nosuchroom").exists());
    let rooms = std::fs::read_dir(server.data_dir.join("rooms"))
        .unwrap()
        .count();
    assert_eq!(rooms, 0);

    for bad in ["AB", "..", "a%2F..%2Fb", "UPPERCASE", "has.dot"] {
        let res = http::get(server.addr, &format!("/ws/{bad}")).await;
        assert!(
            res.status == 400 || res.status == 404,
            "{bad}: {}",
            res.status
        );
    }
    // An invalid room id in a real upgrade is refused before any socket exists.
    let url = format!("ws://{}/ws/BAD", server.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn a_socket_that_never_joins_is_closed() {
    let server =
        TestServer::start_with(|c| c.join_timeout = std::time::Duration::from_millis(300)).await;
    let room = server.create_room("Ideas").await;
    let mut c = server.client(&room).await;
    assert_eq!(code_of(c.expect_close().await), close::JOIN_TIMEOUT);
}

#[tokio::test]
async fn the_room_api_refuses_bad_bodies_with_json_errors() {
    let server = TestServer::start().await;
    let cases = [
        ("not json", 400),
        (r#"{"prompt":""}"#, 422),
        (r#"{"prompt":"   "}"#, 422),
        (r#"{"prompt":"x","extra":1}"#, 422),
        (r#"{"title":"no prompt"}"#, 422),
    ];
    for (body, status) in cases {
        let res = http::request(server.addr, "POST", "/api/rooms", Some(body), &[]).await;
        assert_eq!(res.status, status, "for {body}: {}", res.body);
        let v: serde_json::Value = serde_json::from_str(&res.body).expect("json error body");
        assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let long = serde_json::json!({ "prompt": "p".repeat(301) }).to_string();
    let res = http::request(server.addr, "POST", "/api/rooms", Some(&long), &[]).await;
    assert_eq!(res.status, 422);
    let huge = serde_json::json!({ "prompt": "p".repeat(100_000) }).to_string();
    let res = http::request(server.addr, "POST", "/api/rooms", Some(&huge), &[]).await;
    assert_eq!(res.status, 413);
    assert_eq!(
        std::fs::read_dir(server.data_dir.join("rooms"))
            .unwrap()
            .count(),
        0
    );
    // And a good one still works.
    let room = server.create_room("Fine").await;
    let (mut c, _) = server.joined(&room).await;
    c.apply(create_note("ok")).await;
}
