//! `make bench`: Bothy against the bare relay, in the same run, on this machine.
//!
//! For each scenario and each repeat it starts a fresh server (Bothy with an empty data
//! directory, or the relay) pinned to core 0 with `taskset -c 0`, drives it with `loadgen`
//! pinned to core 1, stops it, and keeps the JSON each `loadgen` printed. Bothy and the relay
//! alternate within each repeat, so a disturbance on the machine touches both. At the end it
//! prints a Markdown table of medians (Bothy, relay, ratio, target, pass/miss) and writes every
//! figure to `bench-results/latest.json` (and a time-stamped copy). `docs/performance.md`
//! explains the method and the figures.
//!
//! ```sh
//! cargo build --release && target/release/bench                # what `make bench` runs
//! target/release/bench --only S1,S5 --repeats 1 --secs 4       # a quick look
//! target/release/bench --only S6 --repeats 1                    # load without harm alone
//! target/release/bench --only S6 --repeats 1 --harm-attacks sockets   # one attack alone
//! ```

use bothy_tests::bench::{
    LogHistogram, median, mono_ns, pooled_ratio, proc_sample, ratio_interval,
};
use clap::Parser;
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Bothy against the bare relay: fan-out, capacity, joins"
)]
struct Args {
    /// Scenarios to run, comma-separated (default: all of S1,S1b,S2,S3,S4,S5,S6).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Runs of each scenario on each server; the table shows medians.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Seconds in each fan-out scenario's measured window (after the warm-up).
    #[arg(long, default_value_t = 8.0)]
    secs: f64,
    /// Seconds in each of S6's windows (quiet or attacked; the slow reader's attacked window
    /// lasts until it is dropped).
    #[arg(long, default_value_t = 3.0)]
    harm_window_secs: f64,
    /// S6's rounds of the slow reader: quiet-then-attacked pairs of windows (the other attacks
    /// have their own counts below).
    #[arg(long, default_value_t = 4)]
    harm_rounds: usize,
    /// S6's rounds of the sockets attack and of its control, the hall (short ones; more of them
    /// steady its p99).
    #[arg(long, default_value_t = 12)]
    harm_sockets_rounds: usize,
    /// S6's rounds of the flood (short ones too, whose p99 a stall of the disk can set).
    #[arg(long, default_value_t = 12)]
    harm_flood_rounds: usize,
    /// S6's attacks, comma-separated (default: all of flood, slow_reader, sockets, hall).
    #[arg(long, value_delimiter = ',')]
    harm_attacks: Vec<String>,
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Idle connections for S4 (the server's file limit minus its own files).
    #[arg(long, default_value_t = 19_700)]
    idle_clients: usize,
    /// Rooms the S4 connections are spread over (each holds an open journal on Bothy).
    #[arg(long, default_value_t = 197)]
    idle_rooms: usize,
    /// Generator processes for S4 (each has its own file limit and source address).
    #[arg(long, default_value_t = 3)]
    idle_procs: usize,
    /// Where results go (git-ignored).
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Another `bothy` binary to measure (to compare a change); default: the one beside this.
    #[arg(long)]
    bothy: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Bothy,
    Relay,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Bothy => "bothy",
            Server::Relay => "relay",
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// Clients over rooms sending ops at a fixed rate (`loadgen run`).
    Fanout {
        rooms: usize,
        per_room: usize,
        rate: f64,
    },
    /// Idle joined connections (`loadgen idle`, several processes).
    Idle,
    /// A full board and many joining at once (`loadgen join`, Bothy only).
    Join { clients: usize, notes: u64 },
    /// One room's latency unloaded, under three kinds of abuse and beside a hall joining at once
    /// (`loadgen harm`, Bothy only: the relay has no limits to test).
    Harm { clients: usize, rate: f64 },
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    kind: Kind,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario {
        name: "S1",
        what: "10 rooms x 50 clients, 1 op/s each (24,500 deliveries/s)",
        kind: Kind::Fanout {
            rooms: 10,
            per_room: 50,
            rate: 1.0,
        },
    },
    Scenario {
        name: "S1b",
        what: "10 rooms x 50 clients, 5 ops/s each (122,500 deliveries/s)",
        kind: Kind::Fanout {
            rooms: 10,
            per_room: 50,
            rate: 5.0,
        },
    },
    Scenario {
        name: "S2",
        what: "1 room x 500 clients, 1 op/s each (249,500 deliveries/s)",
        kind: Kind::Fanout {
            rooms: 1,
            per_room: 500,
            rate: 1.0,
        },
    },
    Scenario {
        name: "S3",
        what: "50 rooms x 60 clients, 0.25 op/s each (44,250 deliveries/s)",
        kind: Kind::Fanout {
            rooms: 50,
            per_room: 60,
            rate: 0.25,
        },
    },
    Scenario {
        name: "S4",
        what: "idle joined connections in one server process",
        kind: Kind::Idle,
    },
    Scenario {
        name: "S5",
        what: "a room with 2,000 notes, 200 clients joining at once",
        kind: Kind::Join {
            clients: 200,
            notes: 2000,
        },
    },
    Scenario {
        name: "S6",
        what: "1 room x 50 clients, 1 op/s each: quiet windows alternating with a flooder, a \
               slow reader, 500 sockets opened at once from one address, and (the control) a \
               hall of 100 joining at once from one address",
        kind: Kind::Harm {
            clients: 50,
            rate: 1.0,
        },
    },
];

struct Bins {
    bothy: PathBuf,
    relay: PathBuf,
    loadgen: PathBuf,
    /// `taskset`, when the machine has it (otherwise nothing is pinned, and the report says so).
    taskset: Option<PathBuf>,
}

impl Bins {
    fn find() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = exe.parent().ok_or("no directory for this binary")?;
        let bin = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "{} is missing: run `cargo build --release` first (make bench does)",
                    p.display()
                ))
            }
        };
        let taskset = ["/usr/bin/taskset", "/bin/taskset"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        Ok(Self {
            bothy: bin("bothy")?,
            relay: bin("relay")?,
            loadgen: bin("loadgen")?,
            taskset,
        })
    }

    /// A command for `program`, pinned to `core` when `taskset` is available.
    fn pinned(&self, core: u32, program: &Path) -> Command {
        match &self.taskset {
            Some(t) => {
                let mut c = Command::new(t);
                c.arg("-c").arg(core.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// A server under test, as a child process.
struct Running {
    child: Child,
    addr: SocketAddr,
    /// Bothy's data directory, removed when this is dropped.
    data: Option<tempfile::TempDir>,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait (Bothy closes sockets and saves its rooms). True if it exited cleanly.
    fn stop(&mut self) -> bool {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return false;
                }
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_server(bins: &Bins, server: Server, log: &Path) -> Result<Running, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let (mut cmd, data) = match server {
        Server::Bothy => {
            let data = tempfile::Builder::new()
                .prefix("bothy-bench-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            let mut cmd = bins.pinned(0, &bins.bothy);
            cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
                .arg(data.path())
                // Long runs create thousands of notes per room; the default cap is 2,000.
                .args(["--notes-per-room", "1000000"])
                .env("BOTHY_LOG", "warn");
            (cmd, Some(data))
        }
        Server::Relay => {
            let mut cmd = bins.pinned(0, &bins.relay);
            cmd.args(["--bind", "127.0.0.1:0"]);
            (cmd, None)
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.name()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .ok_or_else(|| format!("{} exited before printing its address", server.name()))?
            .map_err(|e| e.to_string())?;
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split('/').next().unwrap_or("");
            break addr.parse::<SocketAddr>().map_err(|e| e.to_string())?;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Running { child, addr, data })
}

/// Runs one `loadgen` (pinned to core 1) and returns the JSON it printed.
fn loadgen(bins: &Bins, args: &[String], log: &Path, limit: Duration) -> Result<Value, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let mut child = bins
        .pinned(1, &bins.loadgen)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start loadgen: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("loadgen did not finish within {limit:?}"));
            }
        }
    };
    let out = reader
        .join()
        .map_err(|_| "reader panicked")?
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("loadgen failed ({status}); see the log"));
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("loadgen printed no JSON: {e}"))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// `GET /metrics`, parsed into name → value (histogram buckets keep their `le` label).
fn scrape_metrics(addr: SocketAddr) -> Map<String, Value> {
    let res = block_on(bothy_tests::http::get(addr, "/metrics"));
    res.body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_owned(), json!(v.parse::<f64>().ok()?))))
        .collect()
}

/// An upper bound for a quantile of a Prometheus histogram: the first bucket bound at or above
/// it, in the histogram's unit.
fn histogram_quantile(metrics: &Map<String, Value>, name: &str, q: f64) -> Option<f64> {
    let count = metrics.get(&format!("{name}_count"))?.as_f64()?;
    if count == 0.0 {
        return None;
    }
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v.as_f64()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
        .into_iter()
        .find(|(_, c)| *c >= q * count)
        .map(|(le, _)| le)
}

struct Ctx {
    bins: Bins,
    args: Args,
    log: PathBuf,
    /// Counts runs, to give each its own loopback addresses (`127.NET.x.y`): no run waits on
    /// ports still in TIME_WAIT from the one before.
    runs: std::cell::Cell<u8>,
}

impl Ctx {
    /// A fresh `--source-net` for the next run of `loadgen` (100..=249).
    fn next_net(&self) -> String {
        let n = self.runs.get();
        self.runs.set(n.wrapping_add(1));
        (100 + n % 150).to_string()
    }
}

fn run_fanout(
    ctx: &Ctx,
    server: Server,
    rooms: usize,
    per_room: usize,
    rate: f64,
) -> Result<Value, String> {
    let mut s = start_server(&ctx.bins, server, &ctx.log)?;
    let args: Vec<String> = [
        "run",
        "--addr",
        &s.addr.to_string(),
        "--mode",
        server.name(),
        "--server-pid",
        &s.pid().to_string(),
        "--rooms",
        &rooms.to_string(),
        "--clients-per-room",
        &per_room.to_string(),
        "--rate",
        &rate.to_string(),
        "--warmup-secs",
        &ctx.args.warmup_secs.to_string(),
        "--secs",
        &ctx.args.secs.to_string(),
        "--source-net",
        &ctx.next_net(),
    ]
    .map(String::from)
    .to_vec();
    let limit = Duration::from_secs_f64(ctx.args.warmup_secs + ctx.args.secs + 90.0);
    let mut result = loadgen(&ctx.bins, &args, &ctx.log, limit)?;
    if let Some(m) = result["metrics"].as_object().cloned() {
        let q = |name: &str, p: f64| histogram_quantile(&m, name, p).map(|v| v * 1e6);
        result["metrics_summary"] = json!({
            "journal_fsync_p50_us_le": q("bothy_journal_fsync_seconds", 0.5),
            "journal_fsync_p99_us_le": q("bothy_journal_fsync_seconds", 0.99),
            "apply_to_broadcast_p50_us_le": q("bothy_apply_to_broadcast_seconds", 0.5),
            "apply_to_broadcast_p99_us_le": q("bothy_apply_to_broadcast_seconds", 0.99),
            "journal_batch_ops_mean": m.get("bothy_journal_batch_ops_sum").and_then(Value::as_f64)
                .zip(m.get("bothy_journal_batch_ops_count").and_then(Value::as_f64))
                .map(|(s, c)| s / c.max(1.0)),
            "journal_fsync_mean_us": m.get("bothy_journal_fsync_seconds_sum").and_then(Value::as_f64)
                .zip(m.get("bothy_journal_fsync_seconds_count").and_then(Value::as_f64))
                .map(|(s, c)| s * 1e6 / c.max(1.0)),
            "slow_members_closed": m.get("bothy_slow_members_closed_total"),
            "ops_rejected": m.get("bothy_ops_rejected_total"),
        });
    }
    result["clean_exit"] = json!(s.stop());
    Ok(result)
}

fn run_idle(ctx: &Ctx, server: Server, repeat: usize) -> Result<Value, String> {
    let a = &ctx.args;
    let mut s = start_server(&ctx.bins, server, &ctx.log)?;
    let rooms: Vec<String> = match server {
        Server::Bothy => block_on(async {
            let mut v = Vec::new();
            for i in 0..a.idle_rooms {
                v.push(bothy_tests::create_room(s.addr, &format!("Idle room {i}")).await);
            }
            v
        }),
        Server::Relay => (0..a.idle_rooms).map(|i| format!("idle-{i}")).collect(),
    };
    let before = proc_sample(s.pid()).map_err(|e| e.to_string())?;
    // Each process connects from its own addresses, 100 connections to one (Bothy admits 200
    // per address by default), new for every run.
    let run_index = repeat * 2 + usize::from(server == Server::Relay);
    let procs = a.idle_procs.max(1);
    let mut children = Vec::new();
    for p in 0..procs {
        let share = a.idle_clients / procs + usize::from(p < a.idle_clients % procs);
        let source_net = (10 + run_index * procs + p).to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&ctx.log)
            .map_err(|e| e.to_string())?;
        let mut child = ctx
            .bins
            .pinned(1, &ctx.bins.loadgen)
            .args([
                "idle",
                "--addr",
                &s.addr.to_string(),
                "--mode",
                server.name(),
            ])
            .args(["--clients", &share.to_string(), "--source-net", &source_net])
            .arg("--room-ids")
            .arg(rooms.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start loadgen: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        children.push((child, BufReader::new(stdout)));
    }
    let mut reports = Vec::new();
    for (_, out) in &mut children {
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("an idle loadgen printed no JSON ({e}); see the log"))?;
        reports.push(v);
    }
    let after = proc_sample(s.pid()).map_err(|e| e.to_string())?;
    let open_files = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .map(|d| d.count())
        .ok();
    let server_count = match server {
        Server::Bothy => scrape_metrics(s.addr)
            .get("bothy_connections")
            .and_then(Value::as_f64),
        Server::Relay => None,
    };
    for (child, _) in &mut children {
        drop(child.stdin.take()); // the processes exit and close their sockets
    }
    for (mut child, _) in children {
        let _ = child.wait();
    }
    let clean = s.stop();
    let sum = |k: &str| reports.iter().filter_map(|r| r[k].as_u64()).sum::<u64>();
    let joined = sum("joined");
    let start = reports
        .iter()
        .filter_map(|r| r["start_mono_ns"].as_u64())
        .min();
    let last = reports
        .iter()
        .filter_map(|r| r["last_welcome_mono_ns"].as_u64())
        .max();
    Ok(json!({
        "clients": a.idle_clients,
        "rooms": a.idle_rooms,
        "generator_processes": procs,
        "joined": joined,
        "failed": sum("failed"),
        "first_error": reports.iter().find_map(|r| r["first_error"].as_str()),
        "server_reported_connections": server_count,
        "server_open_files": open_files,
        "rss_before_kib": before.rss_kib,
        "rss_after_kib": after.rss_kib,
        "rss_peak_kib": after.hwm_kib,
        "rss_per_connection_kib": (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / joined.max(1) as f64,
        "welcome_all_secs": start.zip(last).map(|(s, l)| l.saturating_sub(s) as f64 / 1e9),
        "clean_exit": clean,
    }))
}

fn run_join(ctx: &Ctx, clients: usize, notes: u64) -> Result<Value, String> {
    let mut s = start_server(&ctx.bins, Server::Bothy, &ctx.log)?;
    let args: Vec<String> = [
        "join",
        "--addr",
        &s.addr.to_string(),
        "--server-pid",
        &s.pid().to_string(),
        "--clients",
        &clients.to_string(),
        "--notes",
        &notes.to_string(),
        "--source-net",
        &ctx.next_net(),
        // Each joiner opens two connections (its socket and its board's download), and Bothy
        // handles 100 new connections from one address at once: 50 joiners to an address.
        "--per-source",
        "50",
    ]
    .map(String::from)
    .to_vec();
    let mut result = loadgen(&ctx.bins, &args, &ctx.log, Duration::from_secs(120))?;
    result["clean_exit"] = json!(s.stop());
    // The snapshot written at shutdown: the board as JSON on disk.
    let room = result["room"].as_str().unwrap_or_default().to_owned();
    if let Some(dir) = &s.data {
        let path = dir.path().join("rooms").join(&room).join("snapshot.json");
        result["snapshot_bytes"] = json!(std::fs::metadata(path).ok().map(|m| m.len()));
    }
    Ok(result)
}

/// S6: starts Bothy with its default limits (20 messages a second per connection, bursts of
/// 40; 200 sockets per address; a queue of 256 messages; a 10 s write timeout) and runs
/// `loadgen harm` against it: each attack in rounds of a quiet window then an attacked one. The
/// active clients connect from `127.NET.0.1`, so the 500 sockets of the last attack, from
/// `127.0.0.N` in round N, meet the per-address limits alone.
fn run_harm(ctx: &Ctx, clients: usize, rate: f64) -> Result<Value, String> {
    let mut s = start_server(&ctx.bins, Server::Bothy, &ctx.log)?;
    let mut args: Vec<String> = [
        "harm",
        "--addr",
        &s.addr.to_string(),
        "--server-pid",
        &s.pid().to_string(),
        "--clients",
        &clients.to_string(),
        "--rate",
        &rate.to_string(),
        "--warmup-secs",
        &ctx.args.warmup_secs.to_string(),
        "--secs",
        &ctx.args.harm_window_secs.to_string(),
        "--rounds",
        &ctx.args.harm_rounds.to_string(),
        "--sockets-rounds",
        &ctx.args.harm_sockets_rounds.to_string(),
        "--flood-rounds",
        &ctx.args.harm_flood_rounds.to_string(),
        "--slow-limit-secs",
        &HARM_SLOW_LIMIT_SECS.to_string(),
        "--source-net",
        &ctx.next_net(),
    ]
    .map(String::from)
    .to_vec();
    if !ctx.args.harm_attacks.is_empty() {
        args.extend(["--attacks".to_owned(), ctx.args.harm_attacks.join(",")]);
    }
    let window = ctx.args.harm_window_secs;
    let limit = Duration::from_secs_f64(
        ctx.args.warmup_secs
            + ctx.args.harm_rounds as f64 * (6.0 * window + HARM_SLOW_LIMIT_SECS + 4.0)
            + 2.0 * ctx.args.harm_sockets_rounds as f64 * (2.0 * window + 2.0)
            + ctx.args.harm_flood_rounds as f64 * (2.0 * window + 2.0)
            + window
            + 90.0,
    );
    let mut result = loadgen(&ctx.bins, &args, &ctx.log, limit)?;
    result["clean_exit"] = json!(s.stop());
    Ok(result)
}

/// How long S6 waits for Bothy to drop the slow reader.
const HARM_SLOW_LIMIT_SECS: f64 = 20.0;

/// A number at a JSON path like `fanout.p99_us`.
fn at(v: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// The median over repeats of a number at `path`.
fn med(runs: &[Value], path: &str) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(|r| at(r, path)).collect();
    median(&values)
}

/// How a figure is judged.
#[derive(Clone, Copy)]
enum Target {
    /// Informational only.
    None,
    /// Bothy ÷ relay at most this.
    RatioAtMost(f64),
    /// Bothy ÷ relay at least this.
    RatioAtLeast(f64),
    /// Bothy's own figure at most this.
    AtMost(f64),
    /// Bothy's own figure at least this.
    AtLeast(f64),
}

struct Row {
    scenario: String,
    figure: String,
    bothy: Option<f64>,
    relay: Option<f64>,
    unit: &'static str,
    target: Target,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        match (self.bothy, self.relay) {
            (Some(b), Some(r)) if r > 0.0 => Some(b / r),
            (Some(b), Some(r)) if r == 0.0 && b == 0.0 => Some(1.0),
            _ => None,
        }
    }

    fn verdict(&self) -> &'static str {
        let ok = match self.target {
            Target::None => return "",
            Target::RatioAtMost(t) => self.ratio().map(|r| r <= t),
            Target::RatioAtLeast(t) => self.ratio().map(|r| r >= t),
            Target::AtMost(t) => self.bothy.map(|b| b <= t),
            Target::AtLeast(t) => self.bothy.map(|b| b >= t),
        };
        match ok {
            Some(true) => "pass",
            Some(false) => "**miss**",
            None => "n/a",
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => String::new(),
            Target::RatioAtMost(t) => format!("≤ {t}×"),
            Target::RatioAtLeast(t) => format!("≥ {t}×"),
            Target::AtMost(t) => format!("≤ {}", fmt(t, self.unit)),
            Target::AtLeast(t) => format!("≥ {}", fmt(t, self.unit)),
        }
    }

    fn to_json(&self) -> Value {
        let shown = |v: Option<f64>| v.map(|v| in_unit(v, self.unit));
        json!({
            "scenario": self.scenario, "figure": self.figure, "unit": self.unit,
            "bothy": shown(self.bothy), "relay": shown(self.relay), "ratio": self.ratio(),
            "target": self.target_text(), "result": self.verdict().trim_matches('*'),
        })
    }
}

/// A row's value in the unit it is shown in: figures in "ms" are kept in µs, as measured.
fn in_unit(v: f64, unit: &str) -> f64 {
    match unit {
        "ms" => v / 1000.0,
        _ => v,
    }
}

fn fmt(v: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{:.2} ms", in_unit(v, unit)),
        "µs" => format!("{v:.1} µs"),
        "KiB" => format!("{v:.1} KiB"),
        "MiB" => format!("{v:.1} MiB"),
        "/s" => format!("{}/s", thousands(v)),
        "s" => format!("{v:.2} s"),
        "B" => format!("{} B", thousands(v)),
        "×" => format!("{v:.2}×"),
        "cores" => format!("{v:.2}"),
        "ops" => format!("{v:.1}"),
        _ => thousands(v),
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The rows of the table for one scenario.
fn rows_for(name: &str, kind: Kind, bothy: &[Value], relay: &[Value]) -> Vec<Row> {
    let row = |figure: &str, path: &str, unit: &'static str, target: Target| Row {
        scenario: name.to_owned(),
        figure: figure.to_owned(),
        bothy: med(bothy, path),
        relay: med(relay, path),
        unit,
        target,
    };
    // Losses are summed over every repeat: "zero lost" must hold in all of them.
    let total = |runs: &[Value], path: &str| -> Option<f64> {
        (!runs.is_empty()).then(|| runs.iter().filter_map(|r| at(r, path)).sum())
    };
    let lost = |target| Row {
        scenario: name.to_owned(),
        figure: "lost deliveries (all repeats)".into(),
        bothy: total(bothy, "lost"),
        relay: total(relay, "lost"),
        unit: "",
        target,
    };
    match (name, kind) {
        (_, Kind::Fanout { .. }) => {
            let mut rows = Vec::new();
            let (p50, p99, cpu, lost_t, dps) = match name {
                "S1" => (
                    Target::RatioAtMost(1.25),
                    Target::RatioAtMost(1.5),
                    Target::RatioAtMost(1.5),
                    Target::AtMost(0.0),
                    Target::None,
                ),
                "S1b" => (
                    Target::None,
                    Target::RatioAtMost(2.0),
                    Target::None,
                    Target::AtMost(0.0),
                    Target::None,
                ),
                "S2" => (
                    Target::None,
                    Target::None,
                    Target::None,
                    Target::None,
                    Target::RatioAtLeast(0.8),
                ),
                "S3" => (
                    Target::None,
                    Target::RatioAtMost(1.5),
                    Target::None,
                    Target::AtMost(0.0),
                    Target::None,
                ),
                _ => (
                    Target::None,
                    Target::None,
                    Target::None,
                    Target::None,
                    Target::None,
                ),
            };
            rows.push(lost(lost_t));
            rows.push(row("deliveries per second", "deliveries_per_s", "/s", dps));
            rows.push(row("fan-out p50", "fanout.p50_us", "ms", p50));
            rows.push(row("fan-out p99", "fanout.p99_us", "ms", p99));
            rows.push(row("fan-out p99.9", "fanout.p999_us", "ms", Target::None));
            rows.push(row("fan-out max", "fanout.max_us", "ms", Target::None));
            rows.push(row(
                "p99 from intended send (CO-corrected)",
                "fanout_from_intended.p99_us",
                "ms",
                Target::None,
            ));
            rows.push(row(
                "author confirmation p99",
                "confirm.p99_us",
                "ms",
                Target::None,
            ));
            rows.push(row(
                "server CPU per delivery",
                "server.cpu_us_per_delivery",
                "µs",
                cpu,
            ));
            rows.push(row(
                "server CPU (share of its core)",
                "server.cpu_util",
                "×",
                Target::None,
            ));
            rows.push(row(
                "Bothy: journal fsync p99 (≤ bucket bound)",
                "metrics_summary.journal_fsync_p99_us_le",
                "ms",
                Target::None,
            ));
            rows.push(row(
                "Bothy: apply → broadcast p99 (≤ bucket bound)",
                "metrics_summary.apply_to_broadcast_p99_us_le",
                "ms",
                Target::None,
            ));
            rows.push(row(
                "Bothy: ops per fsync (mean)",
                "metrics_summary.journal_batch_ops_mean",
                "ops",
                Target::None,
            ));
            rows.push(row(
                "other programs on the VM (cores busy)",
                "other_cpu_util",
                "cores",
                Target::None,
            ));
            rows.push(row(
                "host steal time (cores)",
                "steal_util",
                "cores",
                Target::None,
            ));
            if name == "S2" {
                let peak_ratio = |runs: &[Value]| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| {
                            Some(at(r, "server.rss_peak_kib")? / at(r, "server.rss_connected_kib")?)
                        })
                        .collect();
                    median(&v)
                };
                rows.push(Row {
                    scenario: name.to_owned(),
                    figure: "peak RSS ÷ connected RSS".into(),
                    bothy: peak_ratio(bothy),
                    relay: peak_ratio(relay),
                    unit: "×",
                    target: Target::AtMost(2.0),
                });
                let crashes = bothy
                    .iter()
                    .filter(|r| r["clean_exit"] != json!(true))
                    .count();
                rows.push(Row {
                    scenario: name.to_owned(),
                    figure: "Bothy runs that did not exit cleanly".into(),
                    bothy: Some(crashes as f64),
                    relay: None,
                    unit: "",
                    target: Target::AtMost(0.0),
                });
            }
            rows.push(row(
                "Bothy: closed as too slow (4008), reconnected",
                "kicked",
                "",
                Target::None,
            ));
            rows.push(row(
                "Bothy: reconnects given the whole board",
                "resync_full",
                "",
                Target::None,
            ));
            rows
        }
        (_, Kind::Idle) => vec![
            row(
                "idle joined connections",
                "joined",
                "",
                Target::AtLeast(19_000.0),
            ),
            row(
                "server RSS per connection",
                "rss_per_connection_kib",
                "KiB",
                Target::AtMost(16.0),
            ),
            row("time to welcome all", "welcome_all_secs", "s", Target::None),
        ],
        (_, Kind::Join { .. }) => vec![
            row(
                "board in hand p99 (join sent → welcome read, and its board fetched if linked)",
                "welcome.p99_us",
                "ms",
                Target::AtMost(50_000.0),
            ),
            row("board in hand p50", "welcome.p50_us", "ms", Target::None),
            row(
                "welcome message p99 (join sent → welcome read)",
                "welcome_message.p99_us",
                "ms",
                Target::None,
            ),
            {
                let ratio: Vec<f64> = bothy
                    .iter()
                    .filter_map(|r| Some(at(r, "welcome_bytes_max")? / at(r, "snapshot_bytes")?))
                    .collect();
                Row {
                    scenario: name.to_owned(),
                    figure: "bytes to a joiner (welcome + board fetched) ÷ snapshot.json bytes"
                        .into(),
                    bothy: median(&ratio),
                    relay: None,
                    unit: "×",
                    target: Target::AtMost(1.0),
                }
            },
            row(
                "bytes per joiner (welcome + board fetched, with HTTP headers)",
                "welcome_bytes_mean",
                "B",
                Target::None,
            ),
        ],
        (_, Kind::Harm { .. }) => harm_rows(name, bothy, &row),
    }
}

/// An attack's rounds in every run, each a pair of fan-out histograms: (quiet, attacked).
fn harm_round_histograms(runs: &[Value], attack: &str) -> Vec<(LogHistogram, LogHistogram)> {
    let mut rounds = Vec::new();
    for run in runs {
        let Some(windows) = run["attacks"][attack]["windows"].as_array() else {
            continue;
        };
        let of = |loaded: bool| {
            windows
                .iter()
                .filter(move |w| w["loaded"].as_bool() == Some(loaded))
                .filter_map(|w| LogHistogram::from_json(&w["fanout_histogram"]))
        };
        rounds.extend(of(false).zip(of(true)));
    }
    rounds
}

/// The share of redrawn ratios S6's intervals hold, and how many redraws.
const HARM_CONFIDENCE: f64 = 0.9;
const HARM_RESAMPLES: usize = 2000;

/// S6's rows: for each attack, the others' latency in its attacked windows and in the quiet
/// windows alternating with them, the ratio (the issue's bar: within 20 %), and what the
/// attacker got (the highest figure over the rounds).
fn harm_rows(
    name: &str,
    bothy: &[Value],
    row: &dyn Fn(&str, &str, &'static str, Target) -> Row,
) -> Vec<Row> {
    let within = Target::AtMost(1.2);
    let mut rows = vec![Row {
        scenario: name.to_owned(),
        figure: "lost deliveries to the 50 (all repeats)".into(),
        bothy: (!bothy.is_empty()).then(|| bothy.iter().filter_map(|r| at(r, "lost")).sum()),
        relay: None,
        unit: "",
        target: Target::AtMost(0.0),
    }];
    let latency = |rows: &mut Vec<Row>, label: &str, attack: &str, bar: Target| {
        let p = |k: &str| format!("attacks.{attack}.{k}");
        for (figure, path) in [
            ("quiet windows: others' fan-out p50", "quiet.fanout.p50_us"),
            ("quiet windows: others' fan-out p99", "quiet.fanout.p99_us"),
            ("attacked: others' fan-out p50", "loaded.fanout.p50_us"),
            ("attacked: others' fan-out p99", "loaded.fanout.p99_us"),
        ] {
            rows.push(row(
                &format!("{label}, {figure}"),
                &p(path),
                "ms",
                Target::None,
            ));
        }
        // The judged figures: every run's rounds pooled (a p99 over three times the rounds),
        // with how far off they could be. Each run's own ratio follows, for comparison.
        let rounds = harm_round_histograms(bothy, attack);
        let pairs: Vec<(&LogHistogram, &LogHistogram)> =
            rounds.iter().map(|(q, a)| (q, a)).collect();
        let fixed = |figure: String, value: Option<f64>, target: Target| Row {
            scenario: name.to_owned(),
            figure,
            bothy: value,
            relay: None,
            unit: "×",
            target,
        };
        for (q, tag) in [(0.5, "p50"), (0.99, "p99")] {
            let rounds_note = format!("{} rounds of all runs pooled", rounds.len());
            rows.push(fixed(
                format!("{label}: others' {tag}, attacked ÷ quiet ({rounds_note})"),
                pooled_ratio(&pairs, q),
                bar,
            ));
            let interval = ratio_interval(&pairs, q, HARM_CONFIDENCE, HARM_RESAMPLES);
            let pct = (HARM_CONFIDENCE * 100.0).round();
            rows.push(fixed(
                format!("{label}: that {tag} ratio, {pct} % interval over redrawn rounds, low"),
                interval.map(|i| i[0]),
                Target::None,
            ));
            rows.push(fixed(
                format!("{label}: that {tag} ratio, {pct} % interval, high"),
                interval.map(|i| i[1]),
                Target::None,
            ));
        }
        rows.push(row(
            &format!("{label}: others' p50, attacked ÷ quiet (median of runs)"),
            &p("ratio_to_quiet.p50"),
            "×",
            Target::None,
        ));
        rows.push(row(
            &format!("{label}: others' p99, attacked ÷ quiet (median of runs)"),
            &p("ratio_to_quiet.p99"),
            "×",
            Target::None,
        ));
        for (figure, path, unit) in [
            (
                "journal fsyncs over 5 ms in its quiet windows",
                "journal_stalls.quiet",
                "",
            ),
            (
                "journal fsyncs over 5 ms in its attacked windows",
                "journal_stalls.attacked",
                "",
            ),
            (
                "rounds with host steal ≤ 0.05 and no such fsync in both windows",
                "steady_host.rounds",
                "",
            ),
            (
                "those rounds: others' p50, attacked ÷ quiet",
                "steady_host.ratio_to_quiet.p50",
                "×",
            ),
            (
                "those rounds: others' p99, attacked ÷ quiet",
                "steady_host.ratio_to_quiet.p99",
                "×",
            ),
        ] {
            rows.push(row(
                &format!("{label}, {figure}"),
                &p(path),
                unit,
                Target::None,
            ));
        }
    };
    let flood = "(a) flooder";
    latency(&mut rows, flood, "flood", within);
    let f = |k: &str| format!("attacks.flood.attacker.{k}");
    for (figure, key, unit) in [
        ("messages sent per second", "sent_per_s", "/s"),
        (
            "messages the server read per second (answered)",
            "answered_per_s",
            "/s",
        ),
        ("refused as rate_limited", "rate_limited", ""),
        ("ops applied per second", "applied_per_s", "/s"),
        (
            "connections (closed with 4008, it reconnects)",
            "connections",
            "",
        ),
    ] {
        rows.push(row(
            &format!("{flood}: {figure}"),
            &f(key),
            unit,
            Target::None,
        ));
    }
    rows.push(row(
        &format!("{flood}: applied beyond 40 + 20/s per connection"),
        &f("applied_over_allowed"),
        "",
        Target::AtMost(0.0),
    ));
    rows.push(row(
        &format!("{flood}: applied beyond 40 + 20/s for the client"),
        &f("applied_over_one_connection"),
        "",
        Target::AtMost(0.0),
    ));
    let slow = "(b) slow reader";
    let sr = |k: &str| format!("attacks.slow_reader.attacker.{k}");
    rows.push(row(
        &format!("{slow}: closed by the room (4008) after"),
        &sr("closed_by_room_after_secs"),
        "s",
        Target::None,
    ));
    // Not dropped within the limit counts as the limit (a miss, not a blank).
    let gone: Vec<f64> = bothy
        .iter()
        .filter_map(|r| {
            at(r, &sr("connection_gone_after_secs")).or_else(|| at(r, &sr("limit_secs")))
        })
        .collect();
    rows.push(Row {
        scenario: name.to_owned(),
        figure: format!(
            "{slow}: connection dropped after (from its last read; limit {HARM_SLOW_LIMIT_SECS} s)"
        ),
        bothy: median(&gone),
        relay: None,
        unit: "s",
        target: Target::AtMost(10.0),
    });
    rows.push(row(
        &format!("{slow}: bytes waiting for it in socket buffers"),
        &sr("bytes_waiting"),
        "B",
        Target::None,
    ));
    latency(&mut rows, slow, "slow_reader", within);
    let socks = "(c) 500 sockets from one address";
    let sk = |k: &str| format!("attacks.sockets.attacker.{k}");
    rows.push(row(
        &format!("{socks}: admitted (cap 200; 10/s with a burst of 100)"),
        &sk("admitted"),
        "",
        Target::AtMost(200.0),
    ));
    rows.push(row(
        &format!("{socks}: refused with HTTP 429"),
        &sk("refused_429"),
        "",
        Target::AtLeast(300.0),
    ));
    rows.push(row(
        &format!("{socks}: server RSS growth while they are open"),
        &sk("server_rss_growth_mib"),
        "MiB",
        Target::None,
    ));
    rows.push(row(
        &format!("{socks}: bytes each got (welcome + board fetched)"),
        &sk("welcome_bytes_max"),
        "B",
        Target::None,
    ));
    latency(&mut rows, socks, "sockets", within);
    // The control: the same room growing by a hall's worth of people at once. The bar is the
    // issue's for attacks; a hall is not one, so it is shown without a target.
    let hall = "(d) control: a hall of 100 joining at once from one address";
    rows.push(row(
        &format!("{hall}: admitted"),
        "attacks.hall.attacker.admitted",
        "",
        Target::None,
    ));
    latency(&mut rows, hall, "hall", Target::None);
    for (figure, path) in [
        (
            "others' p50, (c) ÷ (d)",
            "attacks.sockets.ratio_to_hall.p50",
        ),
        (
            "others' p99, (c) ÷ (d)",
            "attacks.sockets.ratio_to_hall.p99",
        ),
    ] {
        rows.push(row(
            &format!("{socks} against the hall: {figure}"),
            path,
            "×",
            Target::None,
        ));
    }
    rows.push(row(
        "after the attacks: others' p99 ÷ all quiet windows",
        "attacks.after.ratio_to_quiet.p99",
        "×",
        Target::None,
    ));
    rows.push(row(
        "others closed as too slow (4008), reconnected",
        "kicked",
        "",
        Target::None,
    ));
    rows.push(row(
        "other programs on the VM (cores busy, busiest window)",
        "other_cpu_util_max",
        "cores",
        Target::None,
    ));
    rows.push(row(
        "host steal time (cores, busiest window)",
        "steal_util_max",
        "cores",
        Target::None,
    ));
    rows
}

fn print_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Scenario | Figure | Bothy | Relay | Bothy ÷ relay | Target | Result |\n\
         |---|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let cell = |v: Option<f64>| v.map(|v| fmt(v, r.unit)).unwrap_or_else(|| "—".into());
        let ratio = r
            .ratio()
            .map(|x| format!("{x:.2}×"))
            .unwrap_or_else(|| "—".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.figure,
            cell(r.bothy),
            cell(r.relay),
            ratio,
            r.target_text(),
            r.verdict()
        ));
    }
    out
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .next()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned());
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "mem_total_kib": mem,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "open_files_limit": rlimit_nofile(),
    })
}

fn rlimit_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to write into.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    r.rlim_cur
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let mut bins = Bins::find()?;
    if let Some(b) = &args.bothy {
        bins.bothy = b.clone();
    }
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let log = args.out.join(format!("bench-{stamp}.log"));
    if bins.taskset.is_none() {
        eprintln!("bench: taskset not found; nothing is pinned, figures will be noisier");
    }
    let wanted: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| {
            args.only.is_empty() || args.only.iter().any(|o| o.eq_ignore_ascii_case(s.name))
        })
        .collect();
    if wanted.is_empty() {
        return Err("no such scenario; choose from S1,S1b,S2,S3,S4,S5,S6".into());
    }
    let ctx = Ctx {
        bins,
        args,
        log,
        runs: std::cell::Cell::new(0),
    };
    let started = mono_ns();
    let mut rows = Vec::new();
    let mut scenarios = Map::new();
    for sc in wanted {
        let servers: &[Server] = match sc.kind {
            Kind::Join { .. } | Kind::Harm { .. } => &[Server::Bothy],
            _ => &[Server::Bothy, Server::Relay],
        };
        let mut runs: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
        let mut errors = Vec::new();
        for repeat in 0..ctx.args.repeats {
            for &server in servers {
                let t = Instant::now();
                eprint!(
                    "bench: {} {} run {}/{} … ",
                    sc.name,
                    server.name(),
                    repeat + 1,
                    ctx.args.repeats
                );
                let _ = std::io::stderr().flush();
                let result = match sc.kind {
                    Kind::Fanout {
                        rooms,
                        per_room,
                        rate,
                    } => run_fanout(&ctx, server, rooms, per_room, rate),
                    Kind::Idle => run_idle(&ctx, server, repeat),
                    Kind::Join { clients, notes } => run_join(&ctx, clients, notes),
                    Kind::Harm { clients, rate } => run_harm(&ctx, clients, rate),
                };
                match result {
                    Ok(v) => {
                        eprintln!("{:.1} s", t.elapsed().as_secs_f64());
                        runs[usize::from(server == Server::Relay)].push(v);
                    }
                    Err(e) => {
                        eprintln!("failed: {e}");
                        errors.push(format!("{} run {}: {e}", server.name(), repeat + 1));
                    }
                }
            }
        }
        let [bothy, relay] = runs;
        let sc_rows = rows_for(sc.name, sc.kind, &bothy, &relay);
        scenarios.insert(
            sc.name.to_owned(),
            json!({
                "what": sc.what,
                "runs": { "bothy": bothy, "relay": relay },
                "errors": errors,
                "rows": sc_rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            }),
        );
        rows.extend(sc_rows);
    }
    let elapsed = (mono_ns() - started) as f64 / 1e9;
    let table = print_table(&rows);
    let report = json!({
        "started_unix": stamp,
        "duration_secs": elapsed,
        "repeats": ctx.args.repeats,
        "warmup_secs": ctx.args.warmup_secs,
        "secs": ctx.args.secs,
        "pinned": ctx.bins.taskset.is_some(),
        "machine": machine(),
        "scenarios": scenarios,
        "table_markdown": table,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    let path = ctx.args.out.join(format!("bench-{stamp}.json"));
    std::fs::write(&path, &text).map_err(|e| e.to_string())?;
    std::fs::write(ctx.args.out.join("latest.json"), &text).map_err(|e| e.to_string())?;
    println!("{table}");
    let mut disturbed: Vec<&str> = rows
        .iter()
        .filter(|r| r.unit == "cores" && r.bothy.unwrap_or(0.0).max(r.relay.unwrap_or(0.0)) > 0.25)
        .map(|r| r.scenario.as_str())
        .collect();
    disturbed.dedup();
    if !disturbed.is_empty() {
        println!(
            "Warning: other programs (or the VM's host: steal time) kept more than a quarter \
             of a core busy during {}; those figures are disturbed. Run again on a quiet machine.",
            disturbed.join(", ")
        );
    }
    println!(
        "Medians of {} runs each; ratios are Bothy ÷ relay. {:.0} s in all. Results: {} (log: {})",
        ctx.args.repeats,
        elapsed,
        path.display(),
        ctx.log.display()
    );
    Ok(())
}
