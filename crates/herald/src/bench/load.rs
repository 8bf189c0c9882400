//! The connections of a run: publishers and subscribers over raw TCP, or
//! TLS over it (`--tls`).
//!
//! Each is one task with one read buffer and one output buffer; commands
//! are built in place (no per-event allocation) and written with one call
//! per batch. Neither side can deadlock on a blocking write: a publisher is
//! owed at most `window` replies and a subscriber at most `prefetch`
//! deliveries plus their ack replies, far below what the broker buffers
//! before it stops reading.

use super::{Progress, PubResult, SubResult, histogram};
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use herald_proto::{
    Command, Frame, LineDecoder, ParsedDelivery, Reply, ReplyParseError, ServerLine,
    write_ack_line, write_pub_line,
};
use herald_server::rustls::pki_types::ServerName;
use herald_server::tokio_rustls::TlsConnector;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection's bytes: TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How the bench speaks TLS to the broker.
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

/// Longest line the bench reads (a delivery of the largest `--size`).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Digits of the send stamp at the start of every `msg`.
pub const STAMP_DIGITS: usize = 20;

/// One raw connection, greeting read.
pub struct Conn {
    stream: Box<dyn Io>,
    inbuf: BytesMut,
    decoder: LineDecoder,
}

impl Conn {
    pub async fn open(addr: SocketAddr, tls: Option<&Tls>) -> Result<Conn> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(tls) => Box::new(
                tls.connector
                    .connect(tls.name.clone(), tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {addr}"))?,
            ),
        };
        let mut conn = Conn {
            stream,
            inbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
            decoder: LineDecoder::new(MAX_LINE_BYTES),
        };
        let greeting = conn.line().await?;
        match Reply::parse(&greeting) {
            Ok(Reply::Error { .. }) => bail!("{addr} refused the connection: {greeting}"),
            // Any `+OK` line is a greeting, whatever its words.
            Ok(_) | Err(ReplyParseError::UnknownReply(_)) => Ok(conn),
            Err(_) => bail!("unexpected greeting from {addr}: {greeting}"),
        }
    }

    async fn line(&mut self) -> Result<String> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.inbuf) {
                let Frame::Line(line) = frame else {
                    bail!("the broker sent an overlong line");
                };
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            self.inbuf.reserve(READ_CHUNK_BYTES);
            if self.stream.read_buf(&mut self.inbuf).await? == 0 {
                bail!("the broker closed the connection");
            }
        }
    }

    /// Sends one command and checks that its reply is `+OK`.
    pub async fn command(&mut self, command: &Command) -> Result<()> {
        let mut line = Vec::new();
        command.encode(&mut line);
        self.stream.write_all(&line).await?;
        let reply = self.line().await?;
        match Reply::parse(&reply) {
            Ok(Reply::Error { .. }) | Err(_) => bail!("{command}: {reply}"),
            Ok(_) => Ok(()),
        }
    }
}

pub struct PubSpec {
    pub index: u32,
    pub topic: String,
    pub messages: u64,
    pub size: usize,
    pub priorities: u16,
    pub window: usize,
    pub rate: Option<f64>,
}

/// Appends `n` in decimal.
fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `n` as exactly [`STAMP_DIGITS`] digits.
fn put_stamp(out: &mut BytesMut, mut n: u64) {
    let mut digits = [b'0'; STAMP_DIGITS];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// xorshift64*: priorities need to be spread, not unpredictable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

pub async fn publisher(
    conn: Conn,
    spec: PubSpec,
    base: Instant,
    progress: Arc<Progress>,
) -> Result<PubResult> {
    let Conn {
        stream,
        mut inbuf,
        mut decoder,
    } = conn;
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Everything of an event but the sequence number, priority and stamp.
    let head = format!("{{\"id\":\"{}-", spec.index);
    let padding = vec![b'x'; spec.size - STAMP_DIGITS];
    let line_bytes = head.len() + spec.topic.len() + spec.size + 64;
    let mut out = BytesMut::with_capacity(line_bytes * spec.window.min(4096));
    let mut event = BytesMut::with_capacity(line_bytes);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (u64::from(spec.index) + 1));
    let mut sent_at = std::collections::VecDeque::with_capacity(spec.window);
    let mut result = PubResult {
        confirm: histogram(),
        published: 0,
        duplicates: 0,
        errors: 0,
        first_error: None,
        last_confirm_ns: 0,
    };
    let start = Instant::now();
    let due = |k: u64| {
        spec.rate
            .map(|r| start + Duration::from_secs_f64(k as f64 / r))
    };
    let mut sent = 0u64;
    let mut answered = 0u64;
    while answered < spec.messages {
        let now = Instant::now();
        while sent < spec.messages
            && sent_at.len() < spec.window
            && due(sent).is_none_or(|at| at <= now)
        {
            let stamp = base.elapsed().as_nanos() as u64;
            event.clear();
            event.extend_from_slice(head.as_bytes());
            put_u64(&mut event, sent);
            event.extend_from_slice(b"\",\"priority\":");
            put_u64(&mut event, rng.below(u64::from(spec.priorities)));
            event.extend_from_slice(b",\"msg\":\"");
            put_stamp(&mut event, stamp);
            event.extend_from_slice(&padding);
            event.extend_from_slice(b"\"}");
            write_pub_line(&mut out, &spec.topic, &event);
            sent_at.push_back(stamp);
            sent += 1;
        }
        if !out.is_empty() {
            // Cannot deadlock: at most `window` replies are owed to us, far
            // below what the broker buffers before it stops reading.
            writer.write_all(&out).await?;
            out.clear();
        }
        let wake = if sent < spec.messages && sent_at.len() < spec.window {
            due(sent)
        } else {
            None
        };
        tokio::select! {
            res = reader.read_buf(&mut inbuf) => {
                if res? == 0 {
                    bail!("the broker closed a publisher's connection");
                }
                let now_ns = base.elapsed().as_nanos() as u64;
                let mut confirmed = 0;
                while let Some(frame) = decoder.decode(&mut inbuf) {
                    let Frame::Line(line) = frame else { continue };
                    let Some(stamp) = sent_at.pop_front() else {
                        bail!("reply to nothing: {}", String::from_utf8_lossy(&line));
                    };
                    let text = String::from_utf8_lossy(&line);
                    match Reply::parse(&text) {
                        Ok(Reply::Published { .. }) => result.published += 1,
                        Ok(Reply::Duplicate { .. }) => result.duplicates += 1,
                        _ => {
                            result.errors += 1;
                            if result.first_error.is_none() {
                                result.first_error = Some(text.into_owned());
                            }
                        }
                    }
                    result.confirm.saturating_record(now_ns.saturating_sub(stamp).max(1));
                    confirmed += 1;
                }
                if confirmed > 0 {
                    answered += confirmed;
                    result.last_confirm_ns = now_ns;
                    progress.confirmed.fetch_add(confirmed, Ordering::Relaxed);
                }
                if inbuf.capacity() - inbuf.len() < 4096 {
                    inbuf.reserve(READ_CHUNK_BYTES);
                }
            }
            _ = sleep_until(wake), if wake.is_some() => {}
        }
    }
    Ok(result)
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// The send stamp at the start of a delivery's `msg` (a JSON string that
/// starts with [`STAMP_DIGITS`] digits).
fn stamp_of(delivery: &ParsedDelivery<'_>) -> Option<u64> {
    let digits = delivery.msg?.strip_prefix('"')?.get(..STAMP_DIGITS)?;
    digits.bytes().try_fold(0u64, |n, d| {
        d.is_ascii_digit()
            .then(|| n.wrapping_mul(10).wrapping_add(u64::from(d - b'0')))
    })
}

/// The events one subscriber, or the members of a group together, must
/// acknowledge before a run ends.
pub struct Share {
    expected: u64,
    acked: std::sync::atomic::AtomicU64,
    done: tokio::sync::Notify,
}

impl Share {
    pub fn new(expected: u64) -> Share {
        Share {
            expected,
            acked: Default::default(),
            done: tokio::sync::Notify::new(),
        }
    }

    fn is_done(&self) -> bool {
        self.acked.load(Ordering::Relaxed) >= self.expected
    }

    fn add(&self, acked: u64) {
        let total = self.acked.fetch_add(acked, Ordering::Relaxed) + acked;
        if total >= self.expected {
            self.done.notify_waiters();
        }
    }
}

pub async fn subscriber(
    conn: Conn,
    topic: String,
    share: Arc<Share>,
    base: Instant,
    progress: Arc<Progress>,
) -> Result<SubResult> {
    let Conn {
        mut stream,
        mut inbuf,
        mut decoder,
    } = conn;
    let mut result = SubResult {
        e2e: histogram(),
        acked: 0,
        redelivered: 0,
        last_ack_ns: 0,
    };
    let mut out = BytesMut::with_capacity(4096);
    loop {
        // A group member stops when the group as a whole is done, even if
        // nothing more comes its way. Registered before the check, so that
        // a notification between the two is not missed.
        let done = share.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if share.is_done() {
            break;
        }
        tokio::select! {
            read = stream.read_buf(&mut inbuf) => {
                if read? == 0 {
                    bail!("the broker closed a subscriber's connection");
                }
            }
            () = done => break,
        }
        let now_ns = base.elapsed().as_nanos() as u64;
        let mut acked = 0;
        while let Some(frame) = decoder.decode(&mut inbuf) {
            let Frame::Line(line) = frame else { continue };
            let text = String::from_utf8_lossy(&line);
            match ServerLine::parse(&text) {
                Ok(ServerLine::Delivery(delivery)) => {
                    let Some(stamp) = stamp_of(&delivery) else {
                        bail!("unexpected delivery: {text}");
                    };
                    if delivery.redelivered {
                        result.redelivered += 1;
                    }
                    result
                        .e2e
                        .saturating_record(now_ns.saturating_sub(stamp).max(1));
                    write_ack_line(&mut out, &topic, &delivery.id);
                }
                Ok(ServerLine::Reply(Reply::Acked { .. })) => acked += 1,
                _ => bail!("ack refused: {text}"),
            }
        }
        if acked > 0 {
            result.acked += acked;
            result.last_ack_ns = now_ns;
            progress.acked.fetch_add(acked, Ordering::Relaxed);
            share.add(acked);
        }
        if !out.is_empty() {
            // At most `prefetch` deliveries and their ack replies are owed.
            stream.write_all(&out).await?;
            out.clear();
        }
        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(READ_CHUNK_BYTES);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_and_id_are_read_back_from_a_delivery() {
        let mut msg = BytesMut::new();
        put_stamp(&mut msg, 1_234_567);
        let line = format!(
            "{{\"topic\":\"t\",\"id\":\"3-17\",\"priority\":4,\"msg\":\"{}xxxx\",\"timestamp\":1}}",
            String::from_utf8_lossy(&msg)
        );
        let delivery = ParsedDelivery::parse(&line).unwrap();
        assert_eq!(stamp_of(&delivery), Some(1_234_567));
        assert_eq!(delivery.id, "3-17");
        let short = ParsedDelivery::parse(r#"{"topic":"t","id":"1","msg":"12"}"#).unwrap();
        assert_eq!(stamp_of(&short), None);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = BytesMut::new();
        for n in [0, 7, 10, 123_456_789, u64::MAX] {
            out.clear();
            put_u64(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
        out.clear();
        put_stamp(&mut out, 42);
        assert_eq!(&out[..], b"00000000000000000042");
    }

    #[test]
    fn priorities_stay_in_range_and_spread() {
        let mut rng = Rng(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
