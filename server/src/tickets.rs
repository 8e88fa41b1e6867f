//! Boards too big to put in a `welcome`. The welcome then carries a one-time link instead,
//! and the board is fetched over HTTP: gzipped once per board version and shared by every
//! joiner who gets that version, so a crowd (or an attacker's hundred sockets) joining a full
//! board costs a fraction of the bytes, and the bytes go out as an ordinary download.
//!
//! A link names exactly the board the welcome was made from (its `seq`), so the `applied`
//! messages that follow the welcome apply to it as they would to an inline board. It is good
//! once, for [`TICKET_TTL`]; there are never more of them than joins, which are limited.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use dashmap::DashMap;
use rand::Rng;
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use crate::background::Background;

/// How long a board link stays good: a joiner fetches it at once, so this is only for a slow
/// phone on a poor link.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// One version of a room's board as one kind of viewer sees it, serialised once.
#[derive(Debug)]
pub struct BoardVersion {
    json: Box<RawValue>,
    gzip: OnceCell<Bytes>,
    /// The room's sequence number the board is at.
    pub seq: u64,
    /// When it was serialised.
    pub made: Instant,
}

impl BoardVersion {
    pub fn new(json: Box<RawValue>, seq: u64) -> Arc<Self> {
        Arc::new(Self {
            json,
            gzip: OnceCell::new(),
            seq,
            made: Instant::now(),
        })
    }

    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// The JSON, gzipped on the background thread by the first who asks; those asking
    /// meanwhile wait for that one. `None` only if the compression panicked.
    pub async fn gzip(self: &Arc<Self>, background: &Background) -> Option<Bytes> {
        let version = self.clone();
        self.gzip
            .get_or_try_init(|| async move {
                background
                    .run(move || gzip(version.json.get().as_bytes()))
                    .await
                    .ok_or(())
            })
            .await
            .ok()
            .cloned()
    }
}

fn gzip(json: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(json).expect("writing to memory cannot fail");
    Bytes::from(enc.finish().expect("writing to memory cannot fail"))
}

/// The board links given out and not yet used.
#[derive(Debug, Default)]
pub struct BoardTickets {
    issued: DashMap<String, (Arc<BoardVersion>, Instant)>,
}

impl BoardTickets {
    /// A new one-time link to `board`: 16 random bytes as 32 hex digits.
    pub fn issue(&self, board: Arc<BoardVersion>) -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes);
        let ticket = hex::encode(bytes);
        let now = Instant::now();
        // Links nobody came for are dropped as new ones are made, so they never pile up.
        if self.issued.len() >= 64 && self.issued.len().is_power_of_two() {
            self.issued.retain(|_, (_, expires)| *expires > now);
        }
        self.issued
            .insert(ticket.clone(), (board, now + TICKET_TTL));
        ticket
    }

    /// The board behind a link, once: `None` if the link is unknown, used or expired.
    pub fn redeem(&self, ticket: &str) -> Option<Arc<BoardVersion>> {
        let (_, (board, expires)) = self.issued.remove(ticket)?;
        (expires > Instant::now()).then_some(board)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn version(text: &str) -> Arc<BoardVersion> {
        BoardVersion::new(RawValue::from_string(text.to_owned()).unwrap(), 1)
    }

    #[test]
    fn a_link_is_good_once() {
        let tickets = BoardTickets::default();
        let t = tickets.issue(version(r#"{"notes":[]}"#));
        assert_eq!(t.len(), 32);
        assert_eq!(tickets.redeem(&t).unwrap().json().get(), r#"{"notes":[]}"#);
        assert!(tickets.redeem(&t).is_none());
        assert!(tickets.redeem("0123").is_none());
    }

    #[tokio::test]
    async fn the_gzip_is_the_json_made_once_for_all_who_ask() {
        let background = Background::start().unwrap();
        let text = format!(r#"{{"notes":["{}"]}}"#, "more shade ".repeat(1000));
        let v = version(&text);
        // Asked for by many at once: each gets the same bytes, compressed once.
        let all = futures_util::future::join_all((0..20).map(|_| v.gzip(&background))).await;
        let gz = all[0].clone().unwrap();
        assert!(
            all.iter()
                .all(|g| g.as_ref().unwrap().as_ptr() == gz.as_ptr())
        );
        assert!(gz.len() < text.len() / 10, "{} bytes", gz.len());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        // Made once, then shared.
        assert_eq!(v.gzip(&background).await.unwrap().as_ptr(), gz.as_ptr());
    }
}
