//! A WebSocket client that works at the level of bytes, for input no well-behaved library would
//! send: a handshake with any headers (or none), text frames holding invalid UTF-8, unmasked
//! frames, reserved bits and opcodes, runaway continuation frames, odd close codes, a frame
//! header that promises a megabyte. It reads the server's frames exactly as they arrive.
//!
//! Every wait has a deadline, and every failure is a value (never a panic), so a corpus runner
//! can report which case went wrong and carry on.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `Sec-WebSocket-Key` every handshake sends (the example key from RFC 6455).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The `Sec-WebSocket-Accept` a server must answer [`KEY`] with.
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Frame opcodes (RFC 6455 section 5.2).
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// An upgrade request. The standard headers are sent unless replaced (same name, any case) by
/// one in `headers` or named in `omit`; `headers` may repeat a name.
#[derive(Debug, Clone, Default)]
pub struct Upgrade {
    /// `GET` when `None`.
    pub method: Option<String>,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub omit: Vec<String>,
}

/// The head of an HTTP response.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One frame to send, with every bit under the caller's control.
#[derive(Debug, Clone)]
pub struct Frame {
    pub fin: bool,
    /// The three reserved bits, RSV1 as 4, RSV2 as 2, RSV3 as 1.
    pub rsv: u8,
    pub opcode: u8,
    /// Clients must mask; `false` sends the payload in the clear.
    pub masked: bool,
    pub payload: Vec<u8>,
    /// A length to put in the header instead of the payload's (the payload is still sent as
    /// is), to promise more than arrives.
    pub declared_len: Option<u64>,
    /// Encode the length in the 8-byte form even when it is short.
    pub long_len: bool,
}

impl Frame {
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            masked: true,
            payload: payload.into(),
            declared_len: None,
            long_len: false,
        }
    }

    pub fn text(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::TEXT, payload)
    }

    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let len = self.declared_len.unwrap_or(self.payload.len() as u64);
        let mut out = Vec::with_capacity(self.payload.len() + 14);
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0xF));
        let mask_bit = if self.masked { 0x80 } else { 0 };
        if len < 126 && !self.long_len {
            out.push(mask_bit | len as u8);
        } else if len <= u64::from(u16::MAX) && !self.long_len {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        if self.masked {
            let key: [u8; 4] = rand::random();
            out.extend_from_slice(&key);
            out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Received {
    /// For a close frame: its code and reason (`None` for a close frame without a code).
    pub fn close(&self) -> Option<(u16, String)> {
        (self.payload.len() >= 2).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                String::from_utf8_lossy(&self.payload[2..]).into_owned(),
            )
        })
    }
}

/// Why no frame could be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadEnd {
    /// The server closed the TCP connection.
    Eof,
    /// Nothing arrived in time.
    Timeout,
    /// The connection failed (for example reset).
    Io(String),
    /// The bytes were not a well-formed server frame.
    Garbled(String),
}

/// One raw WebSocket connection.
pub struct RawSocket {
    stream: TcpStream,
    /// Bytes read but not yet used.
    buf: Vec<u8>,
}

fn request_head(addr: SocketAddr, up: &Upgrade) -> String {
    let defaults = [
        ("Host", addr.to_string()),
        ("Upgrade", "websocket".to_owned()),
        ("Connection", "Upgrade".to_owned()),
        ("Sec-WebSocket-Key", KEY.to_owned()),
        ("Sec-WebSocket-Version", "13".to_owned()),
    ];
    let method = up.method.as_deref().unwrap_or("GET");
    let mut head = format!("{method} {} HTTP/1.1\r\n", up.path);
    for (name, value) in &defaults {
        let replaced = up.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let omitted = up.omit.iter().any(|k| k.eq_ignore_ascii_case(name));
        if !replaced && !omitted {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    for (name, value) in &up.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn parse_head(raw: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Head { status, headers })
}

impl RawSocket {
    /// Sends the upgrade request and reads the response head. On `101` the socket is returned,
    /// ready for frames; on any other status, only the head.
    pub async fn upgrade(
        addr: SocketAddr,
        up: &Upgrade,
        wait: Duration,
    ) -> Result<(Head, Option<RawSocket>), String> {
        let work = async {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            stream
                .write_all(request_head(addr, up).as_bytes())
                .await
                .map_err(|e| format!("write handshake: {e}"))?;
            let mut buf = Vec::new();
            let end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p;
                }
                let mut chunk = [0u8; 4096];
                let n = stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| format!("read handshake: {e}"))?;
                if n == 0 {
                    return Err(format!(
                        "connection closed during the handshake after {:?}",
                        String::from_utf8_lossy(&buf)
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = parse_head(&buf[..end])?;
            let rest = buf.split_off(end + 4);
            if head.status == 101 {
                Ok((head, Some(RawSocket { stream, buf: rest })))
            } else {
                Ok((head, None))
            }
        };
        tokio::time::timeout(wait, work)
            .await
            .map_err(|_| "the handshake timed out".to_owned())?
    }

    /// Upgrades on `/ws/{room}` with the standard headers; fails unless the answer is `101`.
    pub async fn connect(addr: SocketAddr, room: &str, wait: Duration) -> Result<Self, String> {
        let up = Upgrade {
            path: format!("/ws/{room}"),
            ..Upgrade::default()
        };
        match Self::upgrade(addr, &up, wait).await? {
            (_, Some(s)) => Ok(s),
            (head, None) => Err(format!("upgrade answered {}", head.status)),
        }
    }

    /// Writes bytes. The server may already have closed the connection (that is often the
    /// point), so an error here is returned, not fatal.
    pub async fn send_bytes(&mut self, bytes: &[u8], wait: Duration) -> Result<(), String> {
        match tokio::time::timeout(wait, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("write timed out".into()),
        }
    }

    pub async fn send(&mut self, frame: &Frame, wait: Duration) -> Result<(), String> {
        self.send_bytes(&frame.encode(), wait).await
    }

    /// A masked text frame with a whole message.
    pub async fn send_text(&mut self, text: &str, wait: Duration) -> Result<(), String> {
        self.send(&Frame::text(text.as_bytes()), wait).await
    }

    /// The next frame from the server.
    pub async fn recv(&mut self, wait: Duration) -> Result<Received, ReadEnd> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(ReadEnd::Timeout),
                Ok(Err(e)) => return Err(ReadEnd::Io(e.to_string())),
                Ok(Ok(0)) => return Err(ReadEnd::Eof),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Parses one server frame from the front of `buf`: `None` if more bytes are needed.
fn parse_frame(buf: &[u8]) -> Result<Option<(Received, usize)>, ReadEnd> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    if buf[1] & 0x80 != 0 {
        return Err(ReadEnd::Garbled("the server masked a frame".into()));
    }
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).map_err(|_| ReadEnd::Garbled("frame too long".into()))?;
    if buf.len() < at + len {
        return Ok(None);
    }
    let payload = buf[at..at + len].to_vec();
    at += len;
    Ok(Some((
        Received {
            fin,
            opcode,
            payload,
        },
        at,
    )))
}

/// Sends an HTTP/1.1 request with a body and returns the status, headers and body. The server
/// may answer before the body is fully sent (a `413`), so write errors are tolerated as long as
/// a response arrives.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    wait: Duration,
) -> Result<(Head, Vec<u8>), String> {
    let work = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let (mut rd, mut wr) = stream.split();
        let write = async {
            let _ = wr.write_all(head.as_bytes()).await;
            let _ = wr.write_all(body).await;
        };
        let read = async {
            let mut raw = Vec::new();
            let _ = rd.read_to_end(&mut raw).await;
            raw
        };
        let ((), raw) = tokio::join!(write, read);
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("no response head in {:?}", String::from_utf8_lossy(&raw)))?;
        let head = parse_head(&raw[..end])?;
        let mut body = raw[end + 4..].to_vec();
        if head
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Ok((head, body))
    };
    tokio::time::timeout(wait, work)
        .await
        .map_err(|_| "the HTTP request timed out".to_owned())?
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..end]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || s.len() < end + 2 + n {
            break;
        }
        let rest = &s[end + 2..];
        out.extend_from_slice(&rest[..n]);
        s = rest.get(n + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_encode_lengths_and_masks() {
        let f = Frame {
            masked: false,
            ..Frame::text("hi")
        };
        assert_eq!(f.encode(), vec![0x81, 2, b'h', b'i']);
        let long = Frame {
            masked: false,
            long_len: true,
            ..Frame::text("hi")
        };
        assert_eq!(long.encode()[..10], [0x81, 127, 0, 0, 0, 0, 0, 0, 0, 2]);
        let big = Frame::text(vec![b'x'; 300]).encode();
        assert_eq!(big[..4], [0x81, 0x80 | 126, 1, 44]);
        assert_eq!(big.len(), 4 + 4 + 300);
        let promise = Frame {
            declared_len: Some(1 << 20),
            ..Frame::text("")
        };
        assert_eq!(promise.encode()[1], 0x80 | 127);
    }

    #[test]
    fn server_frames_parse_whole_or_wait() {
        let close = [0x88, 4, 0x03, 0xE8, b'o', b'k'];
        let (f, used) = parse_frame(&close).unwrap().unwrap();
        assert_eq!(used, 6);
        assert_eq!(f.close(), Some((1000, "ok".into())));
        assert_eq!(parse_frame(&close[..3]).unwrap(), None);
    }
}
