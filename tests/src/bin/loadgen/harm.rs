//! `loadgen harm`: load without harm (the benchmark's S6). One Bothy room of active clients
//! sends on S1's schedule (`run`'s clients, ops and clock; the board grows to `--board-notes`,
//! the server's limit, and then keeps its size) while three attacks are made on it, and one
//! control:
//!
//! - **flood**: one more connection sends operations as fast as the server takes them;
//! - **slow reader**: one more connection, with a small `SO_RCVBUF`, joins and then never reads
//!   again; its window lasts until the server has dropped it (or a time limit);
//! - **sockets**: 500 sockets are opened at once from `127.0.0.N` (round N), which nothing else
//!   uses in the run (the active clients connect from `127.NET.0.1`, the two attackers from
//!   `127.NET.2.x`), so the server's per-address limits meet exactly these; the admitted ones
//!   join the room and stay for the window. They run in a process of their own (`loadgen
//!   sockets`), on the server's core at idle priority (`taskset -c 0 chrt --idle 0`). A real
//!   attacker reads on their own machine; here reading a hundred whole-board welcomes (tens of
//!   megabytes) has to happen somewhere. Inside this process it delayed the measured clients'
//!   own reads by up to 50 ms, and in a process of its own on the generator's core still by
//!   up to 19 ms (the kernel's loopback work lands there): the generator's harm, not the
//!   server's. On the server's core at idle priority it runs only when the server has nothing
//!   to do, and the kernel's work for its reads is charged to the server's core: if anything,
//!   harder on the server than an attacker elsewhere. The process starts before the round's
//!   quiet window and waits for the word to open its sockets, so that starting a program
//!   (`taskset` and `chrt` at normal priority on the server's core) is in neither window.
//! - **hall** (the control for the sockets, not an attack): 100 sockets at once from
//!   `127.0.1.N`, as many as the server lets one address open at once, so all join: a hall's
//!   Wi-Fi arriving, or the admitted part of the sockets attack without the refused rest. The
//!   sockets' attacked windows against the hall's (`ratio_to_hall`) show what the attack costs
//!   the others beyond what the same room growing by a hall's worth of people costs.
//!
//! Each attack is made in several rounds, and each round is a pair of windows: a quiet one
//! (the active clients alone), then an attacked one. The rounds go in turn: round 0 of every
//! attack, then round 1, and so on. A virtual machine's host takes the CPU away in spells of
//! seconds (steal time), which made one long unloaded phase followed by long attack phases
//! compare whatever the host happened to do; alternating short windows lets a spell touch both
//! sides alike. A last quiet window (`after`) shows whether anything lingers.
//!
//! Every delivery to an active client is kept with its op's intended send time and assigned to
//! the window that time falls in. For each attack the deliveries of its quiet windows and of its
//! attacked windows are pooled, giving the others' fan-out latency in each and the ratios
//! (`ratio_to_quiet`: the issue's bar is within 20 %), with each round's ratios beside them and
//! a 90 % interval from rounds drawn again (`ratio_to_quiet_interval`). Each window carries its
//! latencies in 1 % buckets (`fanout_histogram`), so that `bench` can pool several runs' rounds.
//! Each attacked window also reports what the attacker got (`attacker_rounds`; `attacker`
//! holds the highest of each figure over the rounds): the flooder's sent, answered (read by the
//! server), applied and refused (`rate_limited`) operations; the seconds from the slow reader's
//! last read until the room closed it (4008: its queue was full) and until the server dropped
//! the connection (from `GET /metrics`, polled every 100 ms: the reader itself cannot see a
//! close frame it does not read); the sockets admitted and refused. Each window also gives the
//! others' fan-out latency per one-second slice (`by_second`) and the machine's use.

use super::ws::{self, FrameReader, OP_CLOSE, OP_TEXT};
use super::{
    Counters, Mode, Plan, Samples, Shared, Target, connect_clients, connect_joined, head,
    join_message, prepare_rooms, scrape_metrics, secs_ns, send, sleep_until_ns,
};
use bothy_tests::bench::{
    LogHistogram, MachineCpu, ProcSample, latency_summary, machine_cpu, mono_ns, proc_sample,
    quantile, ratio_interval,
};
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Frames the flooder writes with one system call.
const FLOOD_BATCH: u64 = 32;
/// How long the flooder keeps reading answers after it stops sending.
const FLOOD_LINGER: Duration = Duration::from_secs(1);
/// The attacks, in the order they take their turn in each round.
const ATTACKS: [&str; 4] = ["flood", "slow_reader", "sockets", "hall"];
/// Host steal (cores) at or below which a window counts as steady (`steady_host`).
const STEADY_STEAL: f64 = 0.05;
/// A journal fsync this slow (the server's `bothy_journal_fsync_seconds` bucket) is a stall of
/// the disk: a window with one does not count as steady.
const DISK_STALL_MS: f64 = 5.0;
/// The share of the rounds' redrawn ratios an interval holds, and how many redraws.
const INTERVAL_CONFIDENCE: f64 = 0.9;
const INTERVAL_RESAMPLES: usize = 2000;
/// A pause between phases, so that one phase's aftermath (answers still arriving, sockets
/// closing and their presence messages) falls in no window.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Args)]
pub struct HarmArgs {
    #[command(flatten)]
    target: Target,
    /// Active clients in the room (the ones whose latency is measured).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Operations per second sent by each active client.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Seconds in each measured window, quiet or attacked (the slow reader's attack window
    /// lasts until it is dropped).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Quiet-then-attacked pairs of windows for each attack (at most 200: the sockets of round
    /// N come from 127.0.0.N).
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Rounds of the sockets attack, if not `--rounds`. A 3 s window's p99 is set by a second
    /// or two in which the host or the disk stalls, quiet or attacked alike; this attack's
    /// rounds are short, so more of them cost little and steady its pooled p99.
    #[arg(long)]
    sockets_rounds: Option<usize>,
    /// Rounds of the flood, if not `--rounds`: short rounds too, whose p99 the disk's own
    /// stalls (a journal fsync of tens of milliseconds, in any window) can set.
    #[arg(long)]
    flood_rounds: Option<usize>,
    /// The attacks to make, comma-separated (default: all of flood, slow_reader, sockets, hall;
    /// `hall` is not an attack but the control for `sockets`).
    #[arg(long, value_delimiter = ',')]
    attacks: Vec<String>,
    /// Longest wait for the server to drop the slow reader.
    #[arg(long, default_value_t = 30.0)]
    slow_limit_secs: f64,
    /// The slow reader's socket receive buffer (`SO_RCVBUF`; Linux doubles it).
    #[arg(long, default_value_t = 4096)]
    slow_rcvbuf: u32,
    /// The segment size the slow reader announces (`TCP_MAXSEG`), as on an Ethernet or Wi-Fi
    /// path; 0 keeps loopback's 64 KiB, with which the server's kernel alone holds over a
    /// megabyte for it (minutes of this room's traffic) before Bothy sees anything.
    #[arg(long, default_value_t = 1448)]
    slow_mss: u32,
    /// Sockets opened at once from 127.0.0.1 in the sockets phase.
    #[arg(long, default_value_t = 500)]
    sockets: usize,
    /// Sockets opened at once from 127.0.1.N in the hall phase: as many as the server admits
    /// from one address at once, so none is refused.
    #[arg(long, default_value_t = 100)]
    hall: usize,
    /// The server's per-connection limit (for the flooder's allowance; Bothy's defaults).
    #[arg(long, default_value_t = 20)]
    ops_per_second: u64,
    #[arg(long, default_value_t = 40)]
    ops_burst: u64,
    /// Notes created before the clients join (the targets of moves).
    #[arg(long, default_value_t = 20)]
    seed_notes: u64,
    /// Seconds after the last send to wait for outstanding deliveries.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
    /// The most notes the board grows to: the active clients create a note with every other op
    /// until it holds this many, then only move notes. The default is the server's own limit
    /// per room, so the attacks meet the biggest board an event can have, not one the server
    /// would refuse to grow (a board that grew all run long held three times as many).
    #[arg(long, default_value_t = bothy_shared::Limits::default().notes_per_room as u64)]
    board_notes: u64,
    /// Also write every window and every delivery to the active clients to this file (JSON),
    /// to see where within a window the others waited.
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
}

/// CPU and memory at one moment: the server's, the generator's and the machine's.
struct Snapshot {
    at: u64,
    server: Option<ProcSample>,
    generator: ProcSample,
    machine: MachineCpu,
}

impl Snapshot {
    fn take(pid: Option<u32>) -> Self {
        Self {
            at: mono_ns(),
            server: pid.and_then(|p| proc_sample(p).ok()),
            generator: proc_sample(0).unwrap_or_default(),
            machine: machine_cpu(),
        }
    }
}

/// What the machine did between two snapshots (as in `run`: server, generator, other programs,
/// host steal, softirq), in cores busy.
fn usage(a: &Snapshot, b: &Snapshot) -> Value {
    let secs = (b.at.saturating_sub(a.at) as f64 / 1e9).max(1e-3);
    let server = a.server.zip(b.server).map(|(a, b)| b.cpu_secs - a.cpu_secs);
    let generator = b.generator.cpu_secs - a.generator.cpu_secs;
    let tasks = b.machine.tasks - a.machine.tasks;
    json!({
        "server_cpu_util": server.map(|s| s / secs),
        "generator_cpu_util": generator / secs,
        "other_cpu_util": ((tasks - server.unwrap_or(0.0) - generator) / secs).max(0.0),
        "steal_util": (b.machine.steal - a.machine.steal) / secs,
        "softirq_util": (b.machine.softirq - a.machine.softirq) / secs,
        "server_rss_start_kib": a.server.map(|s| s.rss_kib),
        "server_rss_end_kib": b.server.map(|s| s.rss_kib),
    })
}

/// One measured phase: its window (deliveries of ops intended in `[start, end)` count), the
/// machine's use in it, and what its attacker saw.
struct Phase {
    /// The attack this window belongs to (`after` for the last quiet window).
    attack: &'static str,
    round: usize,
    /// Attacked, or the quiet window before the attack.
    loaded: bool,
    start: u64,
    end: u64,
    usage: Value,
    attacker: Value,
}

/// Runs the phase's attack from `start`; `attack` returns its report and when the window ends.
async fn phase<F>(
    attack: &'static str,
    round: usize,
    loaded: bool,
    (addr, pid): (SocketAddr, Option<u32>),
    run: F,
) -> Phase
where
    F: std::future::Future<Output = (Value, u64)>,
{
    let metrics_before = scrape_metrics(addr).await;
    let before = Snapshot::take(pid);
    let what = if loaded { "attacked" } else { "quiet" };
    eprintln!("loadgen: {attack} round {round}: {what}");
    let (attacker, end) = run.await;
    let after = Snapshot::take(pid);
    let metrics_after = scrape_metrics(addr).await;
    let mut usage = usage(&before, &after);
    usage["server_slow"] = server_slow(&metrics_before, &metrics_after);
    Phase {
        attack,
        round,
        loaded,
        start: before.at,
        end,
        usage,
        attacker,
    }
}

/// Where the server itself was slow in a window, from its `/metrics` histograms: how many
/// journal fsyncs, and how many operations from being applied to being in every member's queue
/// (fsync included), took over 5 ms. (Stalls the clients see that are not counted here
/// happened outside the room: in the sockets, the kernel or the machine.)
fn server_slow(before: &Value, after: &Value) -> Value {
    let over_5ms = |name: &str| {
        let count = |m: &Value| {
            let all = metric(m, &format!("{name}_count"))?;
            let fast = metric(m, &format!("{name}_bucket{{le=\"0.005\"}}"))?;
            Some(all - fast)
        };
        Some(count(after)? - count(before)?)
    };
    json!({
        "fsyncs_over_5ms": over_5ms("bothy_journal_fsync_seconds"),
        "ops_applied_to_broadcast_over_5ms": over_5ms("bothy_apply_to_broadcast_seconds"),
    })
}

/// A number from the `GET /metrics` map.
fn metric(m: &Value, name: &str) -> Option<f64> {
    m.get(name).and_then(Value::as_f64)
}

pub async fn harm(a: HarmArgs) -> Result<(), String> {
    let t = &a.target;
    if t.mode != Mode::Bothy {
        return Err("the harm scenario needs Bothy (the relay has no limits)".into());
    }
    let net = match t.source_net {
        Some(n) if n != 0 => n,
        _ => {
            return Err(
                "give --source-net (1..=255): the active clients must not use 127.0.0.1, \
                 where the sockets phase opens its sockets"
                    .into(),
            );
        }
    };
    let attacks: Vec<&'static str> = if a.attacks.is_empty() {
        ATTACKS.to_vec()
    } else {
        let mut chosen = Vec::new();
        for name in &a.attacks {
            match ATTACKS.iter().find(|known| *known == name) {
                Some(known) => chosen.push(*known),
                None => return Err(format!("unknown attack {name:?}; known: {ATTACKS:?}")),
            }
        }
        chosen
    };
    if a.clients < 2 || a.rate <= 0.0 {
        return Err("need at least two clients and a positive rate".into());
    }
    let sockets_rounds = a.sockets_rounds.unwrap_or(a.rounds);
    let flood_rounds = a.flood_rounds.unwrap_or(a.rounds);
    if ![a.rounds, sockets_rounds, flood_rounds]
        .iter()
        .all(|r| (1..=200).contains(r))
    {
        return Err("--rounds, --sockets-rounds and --flood-rounds must be 1 to 200".into());
    }
    let rounds_of = |attack: &str| match attack {
        "sockets" | "hall" => sockets_rounds,
        "flood" => flood_rounds,
        _ => a.rounds,
    };
    let pid = t.server_pid;
    let (rooms, first_note) = prepare_rooms(t, 1, a.seed_notes).await?;
    let room = rooms[0].clone();
    let shared = Arc::new(Shared {
        addr: t.addr,
        mode: t.mode,
        plan: OnceLock::new(),
        counters: Counters::default(),
        stop: CancellationToken::new(),
        stop_sending: CancellationToken::new(),
    });
    // All active clients from one address, as a hall's Wi-Fi (at most 100 per address).
    let sources = super::Sources {
        net: Some(net),
        per: t.per_source,
    };
    let (clients, receivers) = connect_clients(&shared, &rooms, a.clients, sources, 64).await?;
    eprintln!("loadgen: {} clients joined room {room}", clients.len());

    // The schedule is open-ended: senders stop when the last phase is over.
    let rounds = a.rounds.max(sockets_rounds).max(flood_rounds) as f64;
    let longest = a.warmup_secs
        + rounds * (6.0 * a.secs + a.slow_limit_secs + 4.0 * SETTLE.as_secs_f64())
        + a.secs
        + 30.0;
    let t0 = mono_ns() + 300_000_000;
    let w0 = t0 + secs_ns(a.warmup_secs);
    let _ = shared.plan.set(Plan {
        clients: clients.len() as u64,
        per_room: clients.len() as u64,
        period_ns: (1e9 / a.rate) as u64,
        ops_per_client: (longest * a.rate).ceil() as u64,
        t0,
        w0,
        w1: u64::MAX,
        notes: (first_note, a.seed_notes.max(1)),
        timeline: true,
        // The board grows to `board_notes` and then keeps its size.
        creates_per_client: a.board_notes.saturating_sub(a.seed_notes) / clients.len() as u64,
    });
    let senders: Vec<_> = clients
        .iter()
        .map(|c| tokio::spawn(send(c.clone(), shared.clone())))
        .collect();
    let started = mono_ns();
    sleep_until_ns(w0).await;

    let window = Duration::from_secs_f64(a.secs);
    let flooder = IpAddr::V4(Ipv4Addr::new(127, net, 2, 1));
    let slow = IpAddr::V4(Ipv4Addr::new(127, net, 2, 2));
    let limit = Duration::from_secs_f64(a.slow_limit_secs);
    let notes = (first_note, a.seed_notes.max(1));
    let quiet = || async {
        tokio::time::sleep(window).await;
        (Value::Null, mono_ns())
    };
    let mut phases = Vec::new();
    // Round by round, each attack in turn: whatever the host does over minutes touches every
    // attack alike (the sockets and the hall above all, which are compared).
    let most_rounds = attacks.iter().map(|a| rounds_of(a)).max().unwrap_or(0);
    for round in 0..most_rounds {
        for &attack in attacks.iter().filter(|a| round < rounds_of(a)) {
            // The sockets' process starts before the quiet window and waits, so that starting
            // a program (on the server's core, at normal priority until `chrt` has run) falls in
            // neither window: an attacker starts theirs on their own machine.
            let mut sockets_process = match attack {
                "sockets" | "hall" => {
                    // A fresh address each round (127.0.0.1, .2, ... for the sockets,
                    // 127.0.1.1, ... for the hall), so each round meets the per-address limits
                    // with nothing spent.
                    let (count, net) = match attack {
                        "hall" => (a.hall, 1),
                        _ => (a.sockets, 0),
                    };
                    let from = IpAddr::V4(Ipv4Addr::new(127, 0, net, 1 + round as u8));
                    Some(SocketsProcess::start(t.addr, &room, count, from).await)
                }
                _ => None,
            };
            phases.push(phase(attack, round, false, (t.addr, pid), quiet()).await);
            let loaded = match attack {
                "flood" => {
                    phase(attack, round, true, (t.addr, pid), async {
                        let stop = CancellationToken::new();
                        let counters = Arc::new(FloodCounters::default());
                        let task = tokio::spawn(flood(
                            t.addr,
                            room.clone(),
                            flooder,
                            notes,
                            stop.clone(),
                            counters.clone(),
                        ));
                        tokio::time::sleep(window).await;
                        stop.cancel();
                        let end = mono_ns();
                        let seen = task.await.unwrap_or_default();
                        (seen.report(&counters, a.ops_per_second, a.ops_burst), end)
                    })
                    .await
                }
                "slow_reader" => {
                    let options = ws::SocketOptions {
                        recv_buffer: Some(a.slow_rcvbuf),
                        mss: (a.slow_mss > 0).then_some(a.slow_mss),
                    };
                    let attack_future = slow_reader(t.addr, &room, slow, options, limit);
                    phase(attack, round, true, (t.addr, pid), attack_future).await
                }
                _ => {
                    let started = sockets_process
                        .take()
                        .expect("started before the quiet window");
                    phase(attack, round, true, (t.addr, pid), async {
                        let start = mono_ns();
                        let rss = || pid.and_then(|p| proc_sample(p).ok()).map(|s| s.rss_kib);
                        let rss_before = rss();
                        let mut attacker = match started {
                            Ok(mut p) => match p.go().await {
                                Ok(()) => p,
                                Err(e) => return (json!({ "error": e }), mono_ns()),
                            },
                            Err(e) => return (json!({ "error": e }), mono_ns()),
                        };
                        let mut report = attacker.report().await;
                        // The window is a fixed time from the first connect, however long
                        // opening took.
                        sleep_until_ns(start + window.as_nanos() as u64).await;
                        let end = mono_ns();
                        let metrics = scrape_metrics(t.addr).await;
                        let rss_held = rss();
                        attacker.stop().await;
                        report["server_connections_while_held"] =
                            json!(metric(&metrics, "bothy_connections"));
                        report["server_rss_before_kib"] = json!(rss_before);
                        report["server_rss_held_kib"] = json!(rss_held);
                        report["server_rss_growth_mib"] = json!(
                            rss_before
                                .zip(rss_held)
                                .map(|(b, h)| (h as f64 - b as f64) / 1024.0)
                        );
                        (report, end)
                    })
                    .await
                }
            };
            phases.push(loaded);
            tokio::time::sleep(SETTLE).await;
        }
    }
    // One last quiet window: does anything linger after the last attack?
    phases.push(phase("after", 0, false, (t.addr, pid), quiet()).await);

    // Stop sending, then wait for what is still on its way.
    shared.stop_sending.cancel();
    let counters = &shared.counters;
    let c = |x: &AtomicU64| x.load(Ordering::Relaxed);
    let others = clients.len() as u64 - 1;
    let expected = || {
        let (sent, rejected) = (c(&counters.sent), c(&counters.rejected));
        (sent - rejected.min(sent)) * others
    };
    let deadline = mono_ns() + secs_ns(a.drain_secs);
    while c(&counters.delivered) < expected() && mono_ns() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shared.stop.cancel();
    let mut timeline = Vec::new();
    let mut close_codes = BTreeMap::<String, u64>::new();
    for r in receivers {
        let s: Samples = r.await.map_err(|e| e.to_string())?;
        timeline.extend(s.timeline);
        if let Some(code) = s.close_code {
            *close_codes.entry(code.to_string()).or_default() += 1;
        }
    }
    let mut lags = Vec::new();
    for s in senders {
        lags.extend(s.await.map_err(|e| e.to_string())?);
    }

    // The others' deliveries (and send lags) whose op was intended inside any of `windows`.
    let inside = |windows: &[&Phase], t: u64| windows.iter().any(|p| (p.start..p.end).contains(&t));
    let pooled = |windows: &[&Phase]| {
        let mut fanout = Vec::new();
        let mut intended = Vec::new();
        for d in timeline.iter().filter(|d| inside(windows, d.0)) {
            fanout.push(d.1);
            intended.push(d.2);
        }
        let mut lag: Vec<u64> = lags
            .iter()
            .filter(|l| inside(windows, l.0))
            .map(|l| l.1)
            .collect();
        json!({
            "secs": windows.iter().map(|p| p.end.saturating_sub(p.start) as f64 / 1e9).sum::<f64>(),
            "fanout": latency_summary(&mut fanout),
            "fanout_from_intended": latency_summary(&mut intended),
            "send_lag": latency_summary(&mut lag),
        })
    };
    let ratios = |loaded: &Value, quiet: &Value| {
        let ratio = |path: [&str; 2]| {
            let get = |v: &Value| v[path[0]][path[1]].as_f64();
            get(loaded)
                .zip(get(quiet))
                .filter(|(_, b)| *b > 0.0)
                .map(|(x, b)| x / b)
        };
        json!({
            "p50": ratio(["fanout", "p50_us"]),
            "p99": ratio(["fanout", "p99_us"]),
            "p99_from_intended": ratio(["fanout_from_intended", "p99_us"]),
        })
    };
    // Each window's fan-out latencies, to pool afterwards (across rounds drawn again, or runs),
    // counted once: the window's report and its attack's interval both use them.
    let histograms: BTreeMap<(&str, usize, bool), LogHistogram> = phases
        .iter()
        .map(|p| {
            let in_window = timeline.iter().filter(|d| (p.start..p.end).contains(&d.0));
            let h = LogHistogram::from_ns(in_window.map(|d| d.1));
            ((p.attack, p.round, p.loaded), h)
        })
        .collect();
    let histogram = |p: &Phase| &histograms[&(p.attack, p.round, p.loaded)];
    let window_report = |p: &Phase| {
        json!({
            "round": p.round,
            "loaded": p.loaded,
            "start_secs": p.start.saturating_sub(started) as f64 / 1e9,
            "secs": p.end.saturating_sub(p.start) as f64 / 1e9,
            "by_second": by_second(&timeline, p.start, p.end),
            "fanout_histogram": histogram(p).to_json(),
            "usage": p.usage,
        })
    };
    if let Some(path) = &a.timeline {
        write_timeline(path, &phases, &timeline)?;
    }
    let mut by_attack = serde_json::Map::new();
    for &attack in &attacks {
        let of = |loaded: bool| -> Vec<&Phase> {
            phases
                .iter()
                .filter(|p| p.attack == attack && p.loaded == loaded)
                .collect()
        };
        let (quiet_windows, loaded_windows) = (of(false), of(true));
        let quiet = pooled(&quiet_windows);
        let loaded = pooled(&loaded_windows);
        // Each round's attack window against the quiet window just before it.
        let per_round: Vec<Value> = quiet_windows
            .iter()
            .zip(&loaded_windows)
            .map(|(q, l)| ratios(&pooled(&[l]), &pooled(&[q])))
            .collect();
        // The same, over only the rounds in which the host took (almost) nothing away and the
        // disk did not stall, in either window: on a VM, steal turns whatever CPU an attack
        // costs into waiting, and a journal fsync of tens of milliseconds (this VM's disk has
        // them at any time, attacked or not) sets a short window's p99 by itself.
        let disk_stalls = |p: &Phase| {
            p.usage["server_slow"]["fsyncs_over_5ms"]
                .as_f64()
                .unwrap_or(0.0)
        };
        let steady = |p: &&Phase| {
            p.usage["steal_util"].as_f64().unwrap_or(1.0) <= STEADY_STEAL && disk_stalls(p) == 0.0
        };
        let (steady_quiet, steady_loaded): (Vec<&Phase>, Vec<&Phase>) = quiet_windows
            .iter()
            .zip(&loaded_windows)
            .filter(|(q, l)| steady(q) && steady(l))
            .map(|(q, l)| (*q, *l))
            .unzip();
        let steady_host = json!({
            "rounds": steady_loaded.len(),
            "ratio_to_quiet": (!steady_loaded.is_empty())
                .then(|| ratios(&pooled(&steady_loaded), &pooled(&steady_quiet))),
        });
        // Whether the attack makes the disk stall: as many stalls in its quiet windows as in
        // its attacked ones says not.
        let stalls = |windows: &[&Phase]| windows.iter().map(|p| disk_stalls(p)).sum::<f64>();
        let journal_stalls = json!({
            "over_ms": DISK_STALL_MS,
            "quiet": stalls(&quiet_windows),
            "attacked": stalls(&loaded_windows),
        });
        // How far the ratios could be from what this attack costs, given how much the rounds
        // differ from one another.
        let pairs: Vec<(&LogHistogram, &LogHistogram)> = quiet_windows
            .iter()
            .zip(&loaded_windows)
            .map(|(q, l)| (histogram(q), histogram(l)))
            .collect();
        let interval = json!({
            "confidence": INTERVAL_CONFIDENCE,
            "resamples": INTERVAL_RESAMPLES,
            "p50": ratio_interval(&pairs, 0.50, INTERVAL_CONFIDENCE, INTERVAL_RESAMPLES),
            "p99": ratio_interval(&pairs, 0.99, INTERVAL_CONFIDENCE, INTERVAL_RESAMPLES),
        });
        let attacker_rounds: Vec<Value> =
            loaded_windows.iter().map(|p| p.attacker.clone()).collect();
        let windows: Vec<Value> = phases
            .iter()
            .filter(|p| p.attack == attack)
            .map(window_report)
            .collect();
        by_attack.insert(
            attack.to_owned(),
            json!({
                "rounds": loaded_windows.len(),
                "ratio_to_quiet": ratios(&loaded, &quiet),
                "ratio_to_quiet_interval": interval,
                "quiet": quiet,
                "loaded": loaded,
                "ratio_to_quiet_by_round": per_round,
                "steady_host": steady_host,
                "journal_stalls": journal_stalls,
                "attacker": worst_of(&attacker_rounds),
                "attacker_rounds": attacker_rounds,
                "windows": windows,
            }),
        );
    }
    // What the sockets cost beyond a hall of honest joiners: their attacked windows against the
    // hall's, which alternate with them.
    if let (Some(sockets), Some(hall)) = (by_attack.get("sockets"), by_attack.get("hall")) {
        let beyond = ratios(&sockets["loaded"], &hall["loaded"]);
        if let Some(Value::Object(m)) = by_attack.get_mut("sockets") {
            m.insert("ratio_to_hall".to_owned(), beyond);
        }
    }
    // The last quiet window against all the quiet windows before it.
    let after: Vec<&Phase> = phases.iter().filter(|p| p.attack == "after").collect();
    let all_quiet: Vec<&Phase> = phases
        .iter()
        .filter(|p| !p.loaded && p.attack != "after")
        .collect();
    let after_pooled = pooled(&after);
    by_attack.insert(
        "after".to_owned(),
        json!({
            "ratio_to_quiet": ratios(&after_pooled, &pooled(&all_quiet)),
            "quiet": after_pooled,
        }),
    );
    let busiest = |key: &str| {
        phases
            .iter()
            .filter_map(|p| p.usage[key].as_f64())
            .fold(0.0, f64::max)
    };
    let (sent, rejected, delivered) = (
        c(&counters.sent),
        c(&counters.rejected),
        c(&counters.delivered),
    );
    let expected = (sent - rejected.min(sent)) * others;
    let report = json!({
        "mode": "bothy",
        "room": room,
        "clients": clients.len(),
        "rate": a.rate,
        "secs": a.secs,
        "rounds": a.rounds,
        "sockets_rounds": sockets_rounds,
        "flood_rounds": flood_rounds,
        "active_source": format!("127.{net}.0.1"),
        "flooder_source": flooder.to_string(),
        "slow_reader_source": slow.to_string(),
        "sockets_sources": format!("127.0.0.1 to 127.0.0.{sockets_rounds}"),
        "hall_sources": format!("127.0.1.1 to 127.0.1.{sockets_rounds}"),
        "ops_sent": sent,
        "ops_rejected": rejected,
        "deliveries_expected": expected,
        "deliveries": delivered,
        "lost": expected.saturating_sub(delivered),
        "kicked": c(&counters.kicked),
        "resync_full": c(&counters.resync_full),
        "close_codes": close_codes,
        "attacks": by_attack,
        "other_cpu_util_max": busiest("other_cpu_util"),
        "steal_util_max": busiest("steal_util"),
        "duration_secs": mono_ns().saturating_sub(started) as f64 / 1e9,
    });
    println!("{report}");
    Ok(())
}

/// The attacker's figures over its rounds: for each number, the highest (a key with no value in
/// some round has none); anything else as in the first round.
fn worst_of(rounds: &[Value]) -> Value {
    let mut out = rounds.first().cloned().unwrap_or(Value::Null);
    if let Value::Object(m) = &mut out {
        for (k, v) in m.iter_mut() {
            let values: Vec<&Value> = rounds.iter().map(|r| &r[k]).collect();
            if !values.iter().all(|v| v.is_number() || v.is_null()) || !v.is_number() {
                continue;
            }
            *v = if values.iter().any(|v| v.is_null()) {
                Value::Null
            } else if let Some(ints) = values
                .iter()
                .map(|v| v.as_u64())
                .collect::<Option<Vec<_>>>()
            {
                json!(ints.into_iter().max())
            } else {
                json!(
                    values
                        .iter()
                        .filter_map(|v| v.as_f64())
                        .fold(f64::MIN, f64::max)
                )
            };
        }
    }
    out
}

/// Writes every window and every delivery to the active clients (`--timeline`), for finding
/// where within a window the others waited: `{"windows": [[attack, attacked, start_ns, end_ns],
/// ...], "deliveries": [[intended_ns, fanout_ns], ...]}`, times on `CLOCK_MONOTONIC` (as
/// `perf record -k CLOCK_MONOTONIC` gives them).
fn write_timeline(
    path: &std::path::Path,
    phases: &[Phase],
    timeline: &[(u64, u64, u64)],
) -> Result<(), String> {
    let windows: Vec<Value> = phases
        .iter()
        .map(|p| json!([p.attack, p.loaded, p.start, p.end]))
        .collect();
    let deliveries: Vec<[u64; 2]> = timeline.iter().map(|d| [d.0, d.1]).collect();
    let body = json!({ "windows": windows, "deliveries": deliveries });
    std::fs::write(path, body.to_string())
        .map_err(|e| format!("could not write {}: {e}", path.display()))
}

/// The others' fan-out latency in each one-second slice of `[start, end)`, by intended send
/// time (the last slice takes the remainder: from half a second to one and a half): whether a
/// phase's p99 comes from a burst at its start or from its steady state.
fn by_second(timeline: &[(u64, u64, u64)], start: u64, end: u64) -> Vec<Value> {
    const SECOND: u64 = 1_000_000_000;
    let count = ((end.saturating_sub(start) + SECOND / 2) / SECOND).max(1);
    let mut slices = vec![Vec::new(); count as usize];
    for d in timeline.iter().filter(|d| (start..end).contains(&d.0)) {
        slices[((d.0 - start) / SECOND).min(count - 1) as usize].push(d.1);
    }
    let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
    slices
        .into_iter()
        .map(|mut s| {
            s.sort_unstable();
            json!({
                "count": s.len(),
                "p50_us": us(quantile(&s, 0.50)),
                "p99_us": us(quantile(&s, 0.99)),
                "max_us": us(s.last().copied().unwrap_or(0)),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The flooder

#[derive(Default)]
struct FloodCounters {
    sent: AtomicU64,
    applied: AtomicU64,
    rate_limited: AtomicU64,
    other_rejected: AtomicU64,
    already_applied: AtomicU64,
    errors: AtomicU64,
    connections: AtomicU64,
    first_other_rejection: Mutex<Option<String>>,
}

/// What the flooding task saw, besides its counters.
#[derive(Default)]
struct FloodSeen {
    /// When the first connection started: its bucket is full from then on.
    first_connect: Option<u64>,
    /// When the last connection stopped counting answers (closed, or [`FLOOD_LINGER`] after
    /// `stop`). Applied operations are counted from `first_connect` until then, so the
    /// allowance is reckoned over the same span.
    counted_until: u64,
    first_send: Option<u64>,
    /// When the last whole batch was written. Once the kernel's buffers are full (megabytes on
    /// loopback, filled in milliseconds) a write waits until the server has read a good part
    /// of them, which at its paused pace can take longer than the phase.
    last_send: u64,
    /// When it stopped trying to send (`stop`, or its last connection closed).
    sending_until: u64,
    /// Close codes of connections the server ended (1006: no close frame).
    closed_by_server: BTreeMap<String, u64>,
    connect_error: Option<String>,
}

impl FloodSeen {
    fn report(&self, c: &FloodCounters, per_second: u64, burst: u64) -> Value {
        let g = |x: &AtomicU64| x.load(Ordering::Relaxed);
        let span = |from: Option<u64>, to: u64| {
            from.map(|f| to.saturating_sub(f) as f64 / 1e9)
                .unwrap_or(0.0)
        };
        // Sending: from the first batch until it stopped trying, blocked writes included.
        let secs = span(self.first_send, self.sending_until);
        // Counting answers: the time over which the server could have applied what was counted.
        let counted_secs = span(self.first_connect, self.counted_until);
        let (sent, applied) = (g(&c.sent), g(&c.applied));
        let answered = applied + g(&c.rate_limited) + g(&c.other_rejected) + g(&c.already_applied);
        // Each connection starts with a full bucket; it refills at the rate.
        let refill = (per_second as f64 * counted_secs).ceil() as u64;
        let allowed = g(&c.connections) * burst + refill;
        let one = burst + refill;
        json!({
            "secs": secs,
            "sent": sent,
            "sent_per_s": sent as f64 / secs.max(1e-3),
            "last_write_after_secs": span(self.first_send, self.last_send),
            "counted_secs": counted_secs,
            // Every message the server reads gets an answer: how fast it read the flood.
            "answered": answered,
            "answered_per_s": answered as f64 / counted_secs.max(1e-3),
            "applied": applied,
            "applied_per_s": applied as f64 / counted_secs.max(1e-3),
            "rate_limited": g(&c.rate_limited),
            "other_rejected": g(&c.other_rejected),
            "first_other_rejection": c.first_other_rejection.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            "already_applied": g(&c.already_applied),
            "errors": g(&c.errors),
            "unanswered": sent.saturating_sub(answered),
            "connections": g(&c.connections),
            "closed_by_server": self.closed_by_server,
            "connect_error": self.connect_error,
            // What its connections were allowed (each starts with a full bucket), and what one
            // connection kept open for the whole phase would have been.
            "allowed": allowed,
            "applied_over_allowed": applied.saturating_sub(allowed),
            "allowed_one_connection": one,
            "applied_over_one_connection": applied.saturating_sub(one),
        })
    }
}

/// One connection sending moves as fast as the server takes them (batches of frames, one
/// system call each) until `stop`, reading the answers in a second task; if the server closes
/// it, it connects again and carries on, as an attacker would.
///
/// The server stops reading a sender that keeps going past its refusals until its bucket
/// refills, so once the kernel's buffers are full (megabytes on loopback, filled within
/// milliseconds) a batch waits, however long, until the server has read enough of them: the
/// flooder keeps the server's side full for the whole phase, and writes only as fast as the
/// server reads. A batch cut short by `stop` or a close is not counted as sent (fewer than
/// [`FLOOD_BATCH`] frames of it may have been written).
async fn flood(
    addr: SocketAddr,
    room: String,
    source: IpAddr,
    notes: (u64, u64),
    stop: CancellationToken,
    c: Arc<FloodCounters>,
) -> FloodSeen {
    let mut seen = FloodSeen::default();
    let mut text = String::with_capacity(160);
    let mut n: u64 = 0;
    while !stop.is_cancelled() {
        let connecting = mono_ns();
        let (reader, mut writer, _) =
            match connect_joined(addr, Mode::Bothy, &room, Some(source), 64 * 1024, None).await {
                Ok(x) => x,
                Err(e) => {
                    seen.connect_error.get_or_insert(e.to_string());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
        c.connections.fetch_add(1, Ordering::Relaxed);
        seen.first_connect.get_or_insert(connecting);
        let over = CancellationToken::new();
        let answers = tokio::spawn(flood_answers(reader, c.clone(), over.clone(), stop.clone()));
        loop {
            for _ in 0..FLOOD_BATCH {
                text.clear();
                let note = notes.0 + n % notes.1;
                let _ = write!(
                    text,
                    r#"{{"type":"op","op_id":"fl-{n:x}","op":{{"kind":"move_note","note":{note},"x":{}.5,"y":{}.25}}}}"#,
                    (n * 41) % 2900,
                    (n * 29) % 1900
                );
                writer.push_text(text.as_bytes());
                n += 1;
            }
            seen.first_send.get_or_insert_with(mono_ns);
            let flushed = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = over.cancelled() => break,
                r = writer.flush_batch() => r,
            };
            if flushed.is_err() {
                // The connection is gone; the answers task sees how it ended.
                break;
            }
            c.sent.fetch_add(FLOOD_BATCH, Ordering::Relaxed);
            seen.last_send = mono_ns();
            // Let the generator's other tasks (the measured clients) run between batches.
            tokio::task::yield_now().await;
        }
        seen.sending_until = mono_ns();
        if let Ok(Some(code)) = answers.await {
            *seen.closed_by_server.entry(code.to_string()).or_default() += 1;
        }
        seen.counted_until = mono_ns();
    }
    seen
}

/// Counts the flooder's answers until the server closes the connection (its close code, 1006
/// without one) or until [`FLOOD_LINGER`] after `stop` (`None`).
async fn flood_answers(
    mut reader: FrameReader,
    c: Arc<FloodCounters>,
    over: CancellationToken,
    stop: CancellationToken,
) -> Option<u16> {
    let linger = async {
        stop.cancelled().await;
        tokio::time::sleep(FLOOD_LINGER).await;
    };
    tokio::pin!(linger);
    let code = loop {
        let frame = tokio::select! {
            biased;
            _ = &mut linger => break None,
            f = reader.next() => f,
        };
        let f = match frame {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => break Some(1006),
        };
        if f.opcode == OP_CLOSE {
            break Some(f.close_code());
        }
        if f.opcode != OP_TEXT {
            continue;
        }
        let h = head(f.payload);
        let mine = ws::find(h, br#""op_id":"fl-"#).is_some();
        let count = |x: &AtomicU64| {
            x.fetch_add(1, Ordering::Relaxed);
        };
        if h.starts_with(br#"{"type":"applied""#) {
            if mine {
                count(&c.applied);
            }
        } else if h.starts_with(br#"{"type":"rejected""#) {
            if ws::find(h, br#""reason":"rate_limited""#).is_some() {
                count(&c.rate_limited);
            } else {
                count(&c.other_rejected);
                c.first_other_rejection
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| String::from_utf8_lossy(f.payload).into_owned());
            }
        } else if h.starts_with(br#"{"type":"already_applied""#) {
            count(&c.already_applied);
        } else if h.starts_with(br#"{"type":"error""#) {
            count(&c.errors);
        }
    };
    over.cancel();
    code
}

// ---------------------------------------------------------------------------------------------
// The slow reader

/// Joins with a small receive buffer, then stops reading; polls the server's `/metrics` until
/// the room has closed it (`bothy_slow_members_closed_total` goes up) and the connection is
/// gone (`bothy_connections` back to what it was before it connected), or `limit`. Then reads
/// what had piled up for it, to see how it ends. The window ends when the connection is gone.
async fn slow_reader(
    addr: SocketAddr,
    room: &str,
    source: IpAddr,
    options: ws::SocketOptions,
    limit: Duration,
) -> (Value, u64) {
    let before = scrape_metrics(addr).await;
    let conns0 = metric(&before, "bothy_connections").unwrap_or(0.0);
    let kicked0 = metric(&before, "bothy_slow_members_closed_total").unwrap_or(0.0);
    let joined = async {
        let (mut reader, mut writer) =
            ws::connect_with(addr, &format!("/ws/{room}"), Some(source), 4096, options).await?;
        writer.send_text(join_message().as_bytes()).await?;
        let url = reader
            .until_text(br#"{"type":"welcome""#, super::board_url)
            .await?;
        if let Some(url) = url {
            // As its page did, before it stopped reading.
            super::fetch_board(addr, &url, Some(source)).await?;
        }
        Ok::<_, std::io::Error>((reader, writer))
    };
    let (mut reader, writer) = match tokio::time::timeout(super::CONNECT_TIMEOUT, joined).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return (json!({ "error": e.to_string() }), mono_ns()),
        Err(_) => return (json!({ "error": "no welcome in time" }), mono_ns()),
    };
    // From here on it reads nothing.
    let stopped = mono_ns();
    let deadline = stopped + limit.as_nanos() as u64;
    let (mut kicked_at, mut gone_at) = (None, None);
    let mut polls = 0u64;
    while mono_ns() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = scrape_metrics(addr).await;
        polls += 1;
        let now = mono_ns();
        if kicked_at.is_none()
            && metric(&m, "bothy_slow_members_closed_total").unwrap_or(0.0) > kicked0
        {
            kicked_at = Some(now);
        }
        if metric(&m, "bothy_connections").unwrap_or(f64::MAX) <= conns0 {
            gone_at = Some(now);
            break;
        }
    }
    let end = gone_at.unwrap_or_else(mono_ns);
    // Now read what had piled up, briefly, to see how it ends.
    let (mut frames, mut bytes, mut ending) = (0u64, 0u64, "still open after 2 s".to_owned());
    let drain = async {
        loop {
            match reader.next().await {
                Ok(Some(f)) if f.opcode == OP_CLOSE => {
                    return format!("close frame {}", f.close_code());
                }
                Ok(Some(f)) => {
                    frames += 1;
                    bytes += f.payload.len() as u64;
                }
                Ok(None) => return "end of stream, no close frame".to_owned(),
                Err(e) => return format!("read error: {e}"),
            }
        }
    };
    if let Ok(how) = tokio::time::timeout(Duration::from_secs(2), drain).await {
        ending = how;
    }
    drop(writer);
    let secs = |at: Option<u64>| at.map(|t| t.saturating_sub(stopped) as f64 / 1e9);
    (
        json!({
            "rcvbuf": options.recv_buffer,
            "mss": options.mss,
            "limit_secs": limit.as_secs_f64(),
            "closed_by_room_after_secs": secs(kicked_at),
            "connection_gone_after_secs": secs(gone_at),
            "metrics_polls": polls,
            "frames_waiting": frames,
            "bytes_waiting": bytes,
            "how_it_ended": ending,
        }),
        end,
    )
}

// ---------------------------------------------------------------------------------------------
// Many sockets from one address

/// What `loadgen sockets` prints once started, and what it waits for before opening its sockets.
const READY: &str = "ready";
const GO: &str = "go\n";

/// `loadgen sockets`, started on the server's core at idle priority.
struct SocketsProcess {
    child: tokio::process::Child,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl SocketsProcess {
    /// Starts it and waits until it is ready to open its sockets (see [`Self::go`]).
    async fn start(
        addr: SocketAddr,
        room: &str,
        count: usize,
        source: IpAddr,
    ) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // See the module's comment for why the server's core, at idle priority.
        let mut child = tokio::process::Command::new("taskset")
            .args(["-c", "0", "chrt", "--idle", "0"])
            .arg(exe)
            .args(["sockets", "--addr", &addr.to_string(), "--room", room])
            .args([
                "--count",
                &count.to_string(),
                "--source",
                &source.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("could not start loadgen sockets: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut started = Self {
            child,
            stdout: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)),
        };
        match started.stdout.next_line().await {
            Ok(Some(line)) if line == READY => Ok(started),
            other => Err(format!("loadgen sockets did not start: {other:?}")),
        }
    }

    /// Tells it to open its sockets now.
    async fn go(&mut self) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        stdin
            .write_all(GO.as_bytes())
            .await
            .map_err(|e| format!("could not start the sockets: {e}"))
    }

    /// Its report, printed once every socket has been answered.
    async fn report(&mut self) -> Value {
        match self.stdout.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line)
                .unwrap_or_else(|e| json!({ "error": format!("unreadable report: {e}") })),
            Ok(None) => json!({ "error": "loadgen sockets ended without a report" }),
            Err(e) => json!({ "error": e.to_string() }),
        }
    }

    /// Closes its stdin, so it closes its sockets and ends; waits for that.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

#[derive(Args)]
pub struct SocketsArgs {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    room: String,
    /// Sockets opened at once.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// The address they all come from.
    #[arg(long)]
    source: IpAddr,
}

/// `loadgen sockets`: prints `ready`, waits for `go` on stdin, opens the sockets, prints the
/// report, holds the admitted ones until stdin closes, then closes them. By hand:
/// `(echo go; sleep 10) | loadgen sockets --addr ... --room ... --source 127.0.0.9`.
pub async fn sockets(a: SocketsArgs) -> Result<(), String> {
    use tokio::io::AsyncBufReadExt;
    println!("{READY}");
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if line != GO {
        return Err(format!("expected {GO:?} on stdin, got {line:?}"));
    }
    let hold = CancellationToken::new();
    let (report, holders) = open_sockets(a.addr, &a.room, a.count, a.source, &hold).await;
    println!("{report}");
    let mut sink = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdin, &mut sink).await;
    hold.cancel();
    for h in holders {
        let _ = h.await;
    }
    Ok(())
}

enum Opened {
    /// Joined; the welcome's size.
    Joined(FrameReader, super::ws::FrameWriter, usize),
    /// Upgraded, but no welcome.
    NotJoined(String),
    Refused(u16),
    Failed(String),
}

/// Opens `count` sockets at once from `source`; the admitted ones join the room and read (and
/// discard) until `hold` is cancelled. Returns the report and the holding tasks.
async fn open_sockets(
    addr: SocketAddr,
    room: &str,
    count: usize,
    source: IpAddr,
    hold: &CancellationToken,
) -> (Value, Vec<JoinHandle<()>>) {
    let start = mono_ns();
    let path = format!("/ws/{room}");
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let work = async {
                    match ws::connect(addr, &path, Some(source), 4096).await {
                        Err(e) => match ws::refused_status(&e) {
                            Some(status) => Opened::Refused(status),
                            None => Opened::Failed(e.to_string()),
                        },
                        Ok((mut reader, mut writer)) => {
                            // Each gets its board as a page would: from the welcome, or by
                            // fetching the link the welcome carries.
                            let joined = async {
                                writer.send_text(join_message().as_bytes()).await?;
                                let (size, url) = reader
                                    .until_text(br#"{"type":"welcome""#, |p| {
                                        (p.len(), super::board_url(p))
                                    })
                                    .await?;
                                let board = match url {
                                    Some(url) => {
                                        super::fetch_board(addr, &url, Some(source)).await?
                                    }
                                    None => 0,
                                };
                                Ok::<_, std::io::Error>(size + board)
                            };
                            match joined.await {
                                Ok(size) => Opened::Joined(reader, writer, size),
                                Err(e) => Opened::NotJoined(e.to_string()),
                            }
                        }
                    }
                };
                let opened = tokio::time::timeout(super::CONNECT_TIMEOUT, work)
                    .await
                    .unwrap_or_else(|_| Opened::Failed("timed out".into()));
                (opened, mono_ns())
            })
        })
        .collect();
    let (mut joined, mut not_joined, mut failed) = (0u64, 0u64, 0u64);
    let mut refused = BTreeMap::<String, u64>::new();
    let mut first_error = None;
    let mut last = start;
    let mut welcome_bytes = 0;
    let mut holders = Vec::new();
    for t in tasks {
        let Ok((opened, at)) = t.await else {
            failed += 1;
            continue;
        };
        last = last.max(at);
        match opened {
            Opened::Joined(mut reader, writer, size) => {
                joined += 1;
                welcome_bytes = welcome_bytes.max(size);
                let hold = hold.clone();
                holders.push(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            biased;
                            _ = hold.cancelled() => break,
                            f = reader.next() => if !matches!(f, Ok(Some(_))) { break },
                        }
                    }
                    drop(writer);
                }));
            }
            Opened::NotJoined(e) => {
                not_joined += 1;
                first_error.get_or_insert(e);
            }
            Opened::Refused(status) => *refused.entry(status.to_string()).or_default() += 1,
            Opened::Failed(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let refused_429 = refused.get("429").copied().unwrap_or(0);
    (
        json!({
            "source": source.to_string(),
            "other_sockets_from_this_address": 0,
            "opened": count,
            "admitted": joined + not_joined,
            "joined": joined,
            "admitted_not_joined": not_joined,
            "refused": refused,
            "refused_429": refused_429,
            "failed": failed,
            "first_error": first_error,
            "all_answered_secs": last.saturating_sub(start) as f64 / 1e9,
            "welcome_bytes_max": welcome_bytes,
        }),
        holders,
    )
}
