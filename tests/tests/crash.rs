//! Crash test: the real `bothy` binary is SIGKILLed several times while many clients write.
//! Every op the server confirmed must be on the board exactly once after recovery; clients
//! resend unconfirmed ops with the same op ids, and none is applied twice.

use bothy_shared::OpId;
use bothy_shared::protocol::{ClientMessage, OpMessage, ServerMessage};
use bothy_tests::ops::create_note;
use bothy_tests::{BinaryServer, Client, DEADLINE, new_token};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const WRITERS: usize = 20;
const KILLS: usize = 8;
/// Confirmed ops between kills.
const OPS_PER_CYCLE: usize = 250;
/// Compact often, so kills also land during compactions; allow more notes than the default cap.
const ARGS: [&str; 4] = ["--compact-every", "300", "--notes-per-room", "10000"];

#[derive(Default)]
struct Tally {
    /// Texts of notes the server confirmed (applied or already applied).
    confirmed: HashSet<String>,
    /// Resends answered `already_applied`: ops saved before a kill but confirmed only after.
    confirmed_on_resend: usize,
}

/// One writer: posts notes one at a time; on any connection loss, reconnects (the server may
/// be down) and resends the unconfirmed op with the same op id.
async fn writer(
    index: usize,
    addr: SocketAddr,
    room: String,
    tally: Arc<Mutex<Tally>>,
    progress: watch::Sender<usize>,
    stop: CancellationToken,
) {
    let token = new_token();
    let mut k = 0;
    let mut pending: Option<String> = None;
    let started = Instant::now();
    'connection: loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "writer {index} gave up"
        );
        let mut c = match Client::try_connect(addr, &room).await {
            Ok(c) => c,
            Err(_) => {
                // The server is restarting: retry shortly (a reconnect backoff, as browsers do).
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        c.token = token.clone();
        if c.try_join(None).await.is_err() {
            continue;
        }
        loop {
            if pending.is_none() {
                if stop.is_cancelled() {
                    return;
                }
                k += 1;
                pending = Some(format!("w{index}-{k}"));
            }
            let text = pending.clone().expect("set above");
            let op_id = OpId::parse(&text).expect("valid op id");
            let msg = ClientMessage::Op(OpMessage {
                op_id: op_id.clone(),
                op: create_note(&text),
            });
            if c.try_send(&msg).await.is_err() {
                continue 'connection;
            }
            loop {
                match c.try_recv(DEADLINE).await {
                    Ok(ServerMessage::Applied(a)) if a.op_id == op_id => break,
                    Ok(ServerMessage::AlreadyApplied(a)) if a.op_id == op_id => {
                        tally.lock().unwrap().confirmed_on_resend += 1;
                        break;
                    }
                    Ok(ServerMessage::Rejected(r)) if r.op_id == op_id => panic!("rejected: {r:?}"),
                    Ok(_) => continue,
                    Err(_) => continue 'connection,
                }
            }
            let n = {
                let mut t = tally.lock().unwrap();
                t.confirmed.insert(text);
                t.confirmed.len()
            };
            pending = None;
            progress.send_replace(n);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_confirmed_op_and_duplicates_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let d = dir.clone();
    let mut server = tokio::task::spawn_blocking(move || BinaryServer::start(&d, &ARGS))
        .await
        .unwrap();
    let addr = server.addr;
    let room = bothy_tests::create_room(addr, "Crash test").await;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let (progress, mut progress_rx) = watch::channel(0);
    let stop = CancellationToken::new();
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        writers.push(tokio::spawn(writer(
            i,
            addr,
            room.clone(),
            tally.clone(),
            progress.clone(),
            stop.clone(),
        )));
    }

    let mut restart_ms = Vec::new();
    for cycle in 1..=KILLS {
        let target = cycle * OPS_PER_CYCLE;
        tokio::time::timeout(DEADLINE * 4, progress_rx.wait_for(|&n| n >= target))
            .await
            .expect("writers make progress")
            .unwrap();
        let d = dir.clone();
        let bind = addr.to_string();
        let (s, took) = tokio::task::spawn_blocking(move || {
            server.kill9();
            let started = Instant::now();
            let s = BinaryServer::start_on(&bind, &d, &ARGS);
            (s, started.elapsed())
        })
        .await
        .unwrap();
        server = s;
        restart_ms.push(took.as_secs_f64() * 1000.0);
    }
    // Let writers confirm some more after the last restart, then finish their pending ops.
    let target = (KILLS + 1) * OPS_PER_CYCLE;
    tokio::time::timeout(DEADLINE * 4, progress_rx.wait_for(|&n| n >= target))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "writers recover after the last restart: {} of {target}",
                tally.lock().unwrap().confirmed.len()
            )
        })
        .unwrap();
    stop.cancel();
    for w in writers {
        w.await.expect("writer ends cleanly");
    }

    let mut c = Client::connect(addr, &room).await;
    let board = c.join(None).await.board.unwrap();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for n in &board.notes {
        *copies.entry(n.text.as_str()).or_default() += 1;
    }
    let tally = tally.lock().unwrap();
    let lost = tally
        .confirmed
        .iter()
        .filter(|t| !copies.contains_key(t.as_str()))
        .count();
    let duplicated = copies.values().filter(|&&n| n > 1).count();
    let unconfirmed_present = copies
        .keys()
        .filter(|t| !tally.confirmed.contains(**t))
        .count();
    restart_ms.sort_by(f64::total_cmp);
    println!(
        "crash test: kill cycles {KILLS}, writers {WRITERS}, confirmed ops {}, lost {lost}, duplicated {duplicated}, \
         confirmed only on resend {}, unconfirmed but present {unconfirmed_present}, \
         restart to serving ms p50 {:.0} max {:.0}",
        tally.confirmed.len(),
        tally.confirmed_on_resend,
        restart_ms[restart_ms.len() / 2],
        restart_ms[restart_ms.len() - 1],
    );
    assert!(tally.confirmed.len() >= target);
    assert_eq!(lost, 0, "confirmed ops lost");
    assert_eq!(duplicated, 0, "notes applied twice");
    assert_eq!(
        unconfirmed_present, 0,
        "every op was resent until confirmed"
    );
    drop(server);
}
