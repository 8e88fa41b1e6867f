//! The command line. Every flag can also be set with an environment variable.

use crate::ServerConfig;
use bothy_shared::Limits;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Bothy: live sticky-note boards for breakout rooms.
#[derive(Debug, Parser)]
#[command(name = "bothy", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Delete an event and every file of it now (while no server runs on the data directory).
    Purge(PurgeArgs),
    /// Write a "what we heard" report from a downloaded event snapshot: CSV, Markdown or HTML.
    /// Works offline, on the file alone.
    Report(ReportArgs),
}

/// `bothy purge EVENT_ID`.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// The event's id: the letters and digits after /e/ in its facilitator link.
    pub event: String,

    /// The data directory the event is in.
    #[arg(long, env = "BOTHY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// `bothy report SNAPSHOT.json --format csv|md|html [--quote-all] [--output FILE]`. No
/// environment variables here: quoting every note must be asked for on the command line.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The event snapshot (JSON) downloaded from Bothy.
    pub snapshot: PathBuf,

    /// csv: one row per note, for spreadsheets; md: Markdown; html: a page to read and print.
    #[arg(long, value_enum, default_value = "html")]
    pub format: crate::report::Format,

    /// Quote every note word for word, also those whose authors did not say they could be
    /// quoted (notes hidden or removed by a facilitator are never quoted).
    #[arg(long)]
    pub quote_all: bool,

    /// Write the report to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "BOTHY_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Folder where boards are saved. Created if missing.
    #[arg(long, env = "BOTHY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Largest WebSocket message or frame accepted, in bytes.
    #[arg(long, env = "BOTHY_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Largest board, in bytes of JSON, sent inside a welcome; a bigger one is fetched by the
    /// page from a one-time link, gzipped.
    #[arg(long, env = "BOTHY_INLINE_BOARD_MAX_BYTES", default_value_t = 32 * 1024)]
    pub inline_board_max_bytes: usize,

    /// Messages queued for one connection before it counts as too slow and is closed.
    #[arg(long, env = "BOTHY_QUEUE_LEN", default_value_t = 256)]
    pub queue_len: usize,

    /// Seconds a new connection has to send its join message.
    #[arg(long, env = "BOTHY_JOIN_TIMEOUT_SECS", default_value_t = 10)]
    pub join_timeout_secs: u64,

    /// Seconds one write to a connection may stall before it is dropped.
    #[arg(long, env = "BOTHY_WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub write_timeout_secs: u64,

    /// Journal records per room before they are compacted into the snapshot.
    #[arg(long, env = "BOTHY_COMPACT_EVERY", default_value_t = 1000)]
    pub compact_every: usize,

    /// Seconds to wait for rooms to save and connections to close on shutdown.
    #[arg(long, env = "BOTHY_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// Messages one connection may send per second (operations beyond it are refused).
    #[arg(long, env = "BOTHY_OPS_PER_SECOND", default_value_t = 20)]
    pub ops_per_second: u32,

    /// Messages one connection may send in a burst above the per-second rate.
    #[arg(long, env = "BOTHY_OPS_BURST", default_value_t = 40)]
    pub ops_burst: u32,

    /// Open WebSocket connections allowed from one IP address (a hall's Wi-Fi is often one
    /// address for everybody, so keep this well above the size of an event).
    #[arg(long, env = "BOTHY_MAX_CONNECTIONS_PER_IP", default_value_t = 200)]
    pub max_connections_per_ip: usize,

    /// New WebSocket connections one IP address may open per second, after a burst (below):
    /// each new connection is sent the whole board.
    #[arg(
        long,
        env = "BOTHY_NEW_CONNECTIONS_PER_IP_PER_SECOND",
        default_value_t = 10
    )]
    pub new_connections_per_ip_per_second: u32,

    /// New WebSocket connections one IP address may open at once (a hall's Wi-Fi reconnecting
    /// together needs one for each person).
    #[arg(
        long,
        env = "BOTHY_NEW_CONNECTIONS_PER_IP_BURST",
        default_value_t = 100
    )]
    pub new_connections_per_ip_burst: u32,

    /// New TCP connections (page loads, sockets, downloads) one IP address may have handled per
    /// second after a burst (below); the rest wait their turn, so a crowd of connections from
    /// one address cannot crowd out the rooms' changes.
    #[arg(
        long,
        env = "BOTHY_ACCEPTS_PER_IP_PER_SECOND",
        default_value_t = 200.0,
        value_parser = parse_rate
    )]
    pub accepts_per_ip_per_second: f64,

    /// New TCP connections one IP address may have handled at once (a hall's sockets
    /// reconnecting together fit).
    #[arg(long, env = "BOTHY_ACCEPTS_PER_IP_BURST", default_value_t = 100)]
    pub accepts_per_ip_burst: u32,

    /// New TCP connections from one IP address that may wait their turn; more are answered
    /// HTTP 429 at once.
    #[arg(long, env = "BOTHY_ACCEPTS_WAITING_PER_IP", default_value_t = 1000)]
    pub accepts_waiting_per_ip: usize,

    /// Wrong join codes or facilitator links one IP address may try per minute; past that it
    /// must wait, so codes cannot be found by trying them all.
    #[arg(
        long,
        env = "BOTHY_WRONG_GUESSES_PER_IP_PER_MINUTE",
        default_value_t = 20
    )]
    pub wrong_guesses_per_ip_per_minute: u32,

    /// Reverse proxies whose X-Forwarded-For header is trusted (comma-separated IPs). Without
    /// one, the connecting address is the client's.
    #[arg(long, env = "BOTHY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Other origins whose pages may open a board's socket (comma-separated, like
    /// https://board.example.org). The server's own origin is always allowed.
    #[arg(long, env = "BOTHY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds between WebSocket pings; a peer silent for two intervals is closed.
    #[arg(long, env = "BOTHY_PING_INTERVAL_SECS", default_value_t = 30)]
    pub ping_interval_secs: u64,

    /// Seconds a client has to send an HTTP request's headers (slow senders are cut off).
    #[arg(long, env = "BOTHY_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a client has to send a whole request body (slow senders are answered 408).
    #[arg(long, env = "BOTHY_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,

    /// The address people reach this server at, like https://board.example.org (behind a
    /// reverse proxy or HTTPS). Used for the links in QR codes; without it they are http:// and
    /// the request's Host header.
    #[arg(long, env = "BOTHY_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Most characters in a note.
    #[arg(long, env = "BOTHY_NOTE_CHARS", default_value_t = Limits::default().note_text_chars)]
    pub note_chars: usize,

    /// Most notes on one board.
    #[arg(long, env = "BOTHY_NOTES_PER_ROOM", default_value_t = Limits::default().notes_per_room)]
    pub notes_per_room: usize,

    /// Most themes on one board.
    #[arg(long, env = "BOTHY_THEMES_PER_ROOM", default_value_t = Limits::default().themes_per_room)]
    pub themes_per_room: usize,

    /// Seconds between event snapshots written to the data directory while an event is live.
    #[arg(long, env = "BOTHY_SNAPSHOT_EVERY_SECS", default_value_t = 300)]
    pub snapshot_every_secs: u64,

    /// Seconds between checks for events whose retention period has ended (they are purged;
    /// also checked at start-up).
    #[arg(long, env = "BOTHY_RETENTION_SWEEP_SECS", default_value_t = 3600)]
    pub retention_sweep_secs: u64,
}

impl ServeArgs {
    pub fn to_config(&self) -> ServerConfig {
        let limits = Limits {
            note_text_chars: self.note_chars,
            notes_per_room: self.notes_per_room,
            themes_per_room: self.themes_per_room,
            ..Limits::default()
        };
        ServerConfig {
            data_dir: self.data_dir.clone(),
            max_message_bytes: self.max_message_bytes,
            inline_board_max: self.inline_board_max_bytes,
            share_board_for: crate::room::SHARE_FOR,
            queue_len: self.queue_len.max(4),
            join_timeout: Duration::from_secs(self.join_timeout_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            compact_every: self.compact_every.max(1),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            limits,
            faults: Default::default(),
            welcome_hold: crate::connection::WELCOME_HOLD,
            ops_per_second: self.ops_per_second.max(1),
            ops_burst: self.ops_burst.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            new_connections_per_ip_per_second: self.new_connections_per_ip_per_second.max(1),
            new_connections_per_ip_burst: self.new_connections_per_ip_burst.max(1),
            accepts_per_ip_per_second: self.accepts_per_ip_per_second,
            accepts_per_ip_burst: self.accepts_per_ip_burst.max(1),
            accepts_waiting_per_ip: self.accepts_waiting_per_ip,
            wrong_guesses_per_ip_per_minute: self.wrong_guesses_per_ip_per_minute.max(1),
            trusted_proxies: self.trusted_proxies.clone(),
            allowed_origins: self.allowed_origins.clone(),
            ping_interval: Duration::from_secs(self.ping_interval_secs.max(1)),
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            public_url: self.public_url.clone(),
            snapshot_every: Duration::from_secs(self.snapshot_every_secs.max(1)),
            retention_sweep: Duration::from_secs(self.retention_sweep_secs.max(1)),
        }
    }
}

/// A number of connections a second: more than zero, and finite.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a number of connections a second, more than 0, like 200 or 0.5".into()),
    }
}

/// Checks `--public-url`: `http://` or `https://`, a host (as [`crate::http::valid_host`]
/// accepts), and an optional path of plain characters; no query, fragment or user. The trailing
/// slash is dropped.
fn parse_public_url(s: &str) -> Result<String, String> {
    let problem = || {
        "must look like https://board.example.org or http://10.0.0.5:8080/bothy (letters, \
         digits, '.', '-', ':' and '/' only)"
            .to_owned()
    };
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(problem)?;
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'));
    if !crate::http::valid_host(host) || !path_ok || path.contains("//") {
        return Err(problem());
    }
    Ok(s.to_owned())
}

impl Default for ServeArgs {
    fn default() -> Self {
        // The defaults clap would give with no flags and no environment.
        ServeArgs::parse_from_defaults()
    }
}

impl ServeArgs {
    fn parse_from_defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::parse_from(["bothy"]).args
    }
}

#[cfg(test)]
mod tests {
    use super::parse_public_url;

    #[test]
    fn public_urls_are_plain_and_lose_their_trailing_slash() {
        assert_eq!(
            parse_public_url("https://board.example.org/").as_deref(),
            Ok("https://board.example.org")
        );
        assert_eq!(
            parse_public_url("http://10.0.0.5:8080/bothy").as_deref(),
            Ok("http://10.0.0.5:8080/bothy")
        );
        assert!(parse_public_url("http://[::1]:8080").is_ok());
        for bad in [
            "",
            "board.example.org",
            "ftp://x.org",
            "https://",
            "https://x.org/?a=b",
            "https://x.org/#f",
            "https://user@x.org",
            "https://x.org/a b",
            "https://x.org/\"",
            "https://x.org//evil",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad:?}");
        }
    }
}
