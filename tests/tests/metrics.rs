//! `GET /metrics` reports what actually happened: connections, rooms, applied and rejected
//! operations, fan-out, and one fsync per saved batch.

use bothy_shared::protocol::ServerMessage;
use bothy_tests::{TestServer, http, ops};

/// The value of an unlabelled series (or of one exact `name{labels}`) in a Prometheus text body.
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} is missing from:\n{body}"))
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn metrics_count_connections_rooms_and_operations() {
    let server = TestServer::start().await;
    let room = server.create_room("What went well?").await;
    let (mut alice, _) = server.joined(&room).await;
    let (mut bob, _) = server.joined(&room).await;

    let created = alice.apply(ops::create_note("Shade")).await;
    let note = created.created.expect("a note id");
    bob.apply(ops::move_note(note, 10.0, 20.0)).await;
    alice.apply(ops::move_note(note, 30.0, 40.0)).await;
    // Bob may move Alice's note but not delete it.
    let refused = bob.op(ops::delete_note(note)).await;
    assert!(matches!(
        bob.outcome(&refused).await,
        ServerMessage::Rejected(_)
    ));
    // Everything Bob was sent has reached him, so every broadcast above has been counted.
    bob.sync().await;
    alice.sync().await;

    let res = http::get(server.addr, "/metrics").await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = &res.body;
    assert_eq!(value(body, "bothy_connections"), 2.0);
    assert_eq!(value(body, "bothy_rooms_open"), 1.0);
    assert_eq!(value(body, "bothy_rooms_read_only"), 0.0);
    assert_eq!(value(body, "bothy_ops_applied_total"), 3.0);
    assert_eq!(value(body, "bothy_ops_rejected_total"), 1.0);
    assert_eq!(value(body, "bothy_slow_members_closed_total"), 0.0);
    // Three applied messages, each to both members (presence messages are not counted).
    assert_eq!(value(body, "bothy_fanout_messages_total"), 6.0);
    // Each op went through apply → fsync → broadcast; at least one fsync, at most one per op.
    assert_eq!(value(body, "bothy_apply_to_broadcast_seconds_count"), 3.0);
    assert_eq!(
        value(body, "bothy_apply_to_broadcast_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    let fsyncs = value(body, "bothy_journal_fsync_seconds_count");
    assert!((1.0..=3.0).contains(&fsyncs), "{fsyncs} fsyncs");
    assert_eq!(value(body, "bothy_journal_batch_ops_sum"), 3.0);
    assert!(value(body, "bothy_journal_fsync_seconds_sum") > 0.0);
    for name in [
        "bothy_connections",
        "bothy_ops_applied_total",
        "bothy_journal_fsync_seconds",
        "bothy_apply_to_broadcast_seconds",
    ] {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "{name} has a TYPE line"
        );
    }
}
