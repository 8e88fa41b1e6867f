//! A minimal WebSocket client for the load generator: the HTTP/1.1 upgrade, masked text frames
//! out, unmasked frames in, parsed in place from one growing buffer.
//!
//! Why not tokio-tungstenite (which the tests use)? The generator runs on one core and must read
//! up to a quarter of a million frames a second without becoming the thing being measured; this
//! reader allocates nothing per frame and never copies a payload. It supports exactly what the
//! two servers under test send: whole (unfragmented) text, binary, ping, pong and close frames.

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Opens a TCP connection (from `source` when given, so many sockets can share the server's
/// port), upgrades it to a WebSocket on `path`, and returns the two halves.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    source: Option<IpAddr>,
    read_buffer: usize,
) -> io::Result<(FrameReader, FrameWriter)> {
    connect_with(addr, path, source, read_buffer, SocketOptions::default()).await
}

/// Socket options for [`connect_with`].
#[derive(Clone, Copy, Default)]
pub struct SocketOptions {
    /// `SO_RCVBUF` in bytes (Linux doubles it): a small one makes a client that stops reading
    /// back up quickly.
    pub recv_buffer: Option<u32>,
    /// `TCP_MAXSEG`: the segment size this end announces, so the server sends in segments of
    /// this size. On loopback the segment size is 64 KiB, and Linux sizes a socket's send
    /// buffer from it (about 20 segments: over a megabyte), far more than a real network path
    /// (1,448-byte segments) would let a server's kernel hold for one slow reader.
    pub mss: Option<u32>,
}

/// The server answered the upgrade with something other than `101 Switching Protocols` (the
/// error inside the `io::Error` that [`connect`] returns; see [`refused_status`]).
#[derive(Debug)]
pub struct UpgradeRefused {
    /// The HTTP status, like 429.
    pub status: u16,
    /// The status line as sent.
    pub line: String,
}

impl std::fmt::Display for UpgradeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upgrade refused: {}", self.line)
    }
}

impl std::error::Error for UpgradeRefused {}

/// The HTTP status of a refused upgrade, if that is why `e` happened.
pub fn refused_status(e: &io::Error) -> Option<u16> {
    e.get_ref()?
        .downcast_ref::<UpgradeRefused>()
        .map(|r| r.status)
}

/// [`connect`], with socket options.
pub async fn connect_with(
    addr: SocketAddr,
    path: &str,
    source: Option<IpAddr>,
    read_buffer: usize,
    options: SocketOptions,
) -> io::Result<(FrameReader, FrameWriter)> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(bytes) = options.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(mss) = options.mss {
        set_mss(&socket, mss)?;
    }
    let mut stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; read_buffer.max(1024)];
    let mut len = 0;
    let header_end = loop {
        if len == buf.len() {
            return Err(io::Error::other("upgrade response too long"));
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(io::Error::other("connection closed during the upgrade"));
        }
        len += n;
        if let Some(i) = find(&buf[..len], b"\r\n\r\n") {
            break i + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        let head = String::from_utf8_lossy(&buf[..header_end]);
        let line = head.lines().next().unwrap_or("").to_owned();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        return Err(io::Error::other(UpgradeRefused { status, line }));
    }
    let (read, write) = stream.into_split();
    let reader = FrameReader {
        sock: read,
        buf,
        pos: header_end,
        len,
    };
    let writer = FrameWriter {
        sock: write,
        frame: Vec::with_capacity(256),
        batch: Vec::new(),
        mask: rand::random(),
    };
    Ok((reader, writer))
}

/// Sets `TCP_MAXSEG` on a socket that is not connected yet.
fn set_mss(socket: &TcpSocket, mss: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = mss as libc::c_int;
    // SAFETY: a valid socket descriptor and a pointer to a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The position of `needle` in `hay`, if any.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads frames in place: `next` returns a view into the buffer, valid until the next call.
pub struct FrameReader {
    sock: OwnedReadHalf,
    buf: Vec<u8>,
    /// Start of the unread bytes.
    pos: usize,
    /// End of the bytes read so far.
    len: usize,
}

/// One frame: its opcode and payload.
pub struct Frame<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// The status code of a close frame (1005, "no status", when it has none).
    pub fn close_code(&self) -> u16 {
        match self.payload {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 1005,
        }
    }
}

/// Where a complete frame sits in the buffer: (opcode, payload start, payload end, frame end),
/// relative to the unread bytes; `Err(needed)` when more bytes are needed (at least `needed`).
fn parse(b: &[u8]) -> io::Result<Result<(u8, usize, usize, usize), usize>> {
    if b.len() < 2 {
        return Ok(Err(2));
    }
    let fin = b[0] & 0x80 != 0;
    let opcode = b[0] & 0x0f;
    if !fin || opcode == 0 {
        return Err(io::Error::other("fragmented frames are not supported"));
    }
    if b[1] & 0x80 != 0 {
        return Err(io::Error::other("a server frame must not be masked"));
    }
    let (len, header) = match b[1] & 0x7f {
        126 if b.len() < 4 => return Ok(Err(4)),
        126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() < 10 => return Ok(Err(10)),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(n) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let end = header + len;
    if b.len() < end {
        return Ok(Err(end));
    }
    Ok(Ok((opcode, header, end, end)))
}

impl FrameReader {
    /// The next frame, or `None` at the end of the stream. Cancel-safe: bytes already read stay
    /// in the buffer.
    pub async fn next(&mut self) -> io::Result<Option<Frame<'_>>> {
        let (opcode, start, end) = loop {
            match parse(&self.buf[self.pos..self.len])? {
                Ok((opcode, start, end, total)) => {
                    let at = self.pos;
                    self.pos += total;
                    break (opcode, at + start, at + end);
                }
                Err(needed) => {
                    // Move the partial frame to the front, grow if it cannot fit, read more.
                    if self.pos > 0 {
                        self.buf.copy_within(self.pos..self.len, 0);
                        self.len -= self.pos;
                        self.pos = 0;
                    }
                    if needed > self.buf.len() {
                        self.buf.resize(needed.next_power_of_two(), 0);
                    }
                    let n = self.sock.read(&mut self.buf[self.len..]).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    self.len += n;
                }
            }
        };
        Ok(Some(Frame {
            opcode,
            payload: &self.buf[start..end],
        }))
    }

    /// Reads until a text frame starting with `prefix`, skipping other frames, and returns
    /// `read(payload)`. Errors on a close frame or the end of the stream.
    pub async fn until_text<T>(
        &mut self,
        prefix: &[u8],
        read: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<T> {
        loop {
            match self.next().await? {
                Some(f) if f.opcode == OP_TEXT && f.payload.starts_with(prefix) => {
                    return Ok(read(f.payload));
                }
                Some(f) if f.opcode == OP_CLOSE => {
                    return Err(io::Error::other(format!(
                        "closed by the server with {}",
                        f.close_code()
                    )));
                }
                Some(_) => {}
                None => return Err(io::Error::other("connection closed")),
            }
        }
    }
}

/// Writes masked text frames.
pub struct FrameWriter {
    sock: OwnedWriteHalf,
    /// Reused for every frame.
    frame: Vec<u8>,
    /// Frames queued by [`FrameWriter::push_text`], written by [`FrameWriter::flush_batch`].
    batch: Vec<u8>,
    mask: [u8; 4],
}

impl FrameWriter {
    pub async fn send_text(&mut self, text: &[u8]) -> io::Result<()> {
        self.send(OP_TEXT, text).await
    }

    /// The answer to a ping frame: a pong with the same payload.
    pub async fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(OP_PONG, payload).await
    }

    /// Queues a text frame; [`FrameWriter::flush_batch`] writes every queued frame with one
    /// system call (how a flooding client sends as fast as it can).
    pub fn push_text(&mut self, text: &[u8]) {
        encode_frame(&mut self.batch, OP_TEXT, text, self.mask);
    }

    /// Writes the frames queued by [`FrameWriter::push_text`].
    pub async fn flush_batch(&mut self) -> io::Result<()> {
        let result = self.sock.write_all(&self.batch).await;
        self.batch.clear();
        result
    }

    async fn send(&mut self, opcode: u8, text: &[u8]) -> io::Result<()> {
        self.frame.clear();
        encode_frame(&mut self.frame, opcode, text, self.mask);
        self.sock.write_all(&self.frame).await
    }
}

/// Appends one masked, unfragmented frame to `f`.
fn encode_frame(f: &mut Vec<u8>, opcode: u8, text: &[u8], mask: [u8; 4]) {
    f.push(0x80 | opcode);
    match text.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}
