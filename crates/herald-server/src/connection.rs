//! One task per client connection: read lines, parse them, hand them to the
//! broker task; write what the broker task sends back.
//!
//! Parsing happens here, on the tokio workers, so the broker task only
//! applies commands. Reading and writing share one task and one `select!`
//! so that a client that pipelines without reading its replies cannot
//! deadlock us: we keep reading while output is pending, up to
//! `MAX_PENDING_OUTPUT_BYTES`, and only then stop reading (TCP backpressure).
//!
//! The stream is anything that reads and writes: a TCP socket, or a TLS
//! session over one (the handshake is done before `serve`). With users
//! configured, the connection's [`Session`] checks each command before the
//! broker task sees it.
//!
//! Memory: an idle connection holds no buffer. The read buffer is allocated
//! only once the socket is readable (we wait with `readable()`, then read
//! without blocking) and dropped when every byte in it has been parsed; the
//! write buffer is dropped once written out. A connection that is busy
//! re-allocates per read, which costs far less than the read itself; a
//! partial line keeps its buffer until its LF arrives. So 10,000 idle
//! connections cost their task and channel, not 10,000 buffers. (Over TLS
//! the read waits with a buffer: rustls keeps its own buffers per session
//! anyway; see [`ReadSide`].)

use crate::auth::{Authenticator, Session};
use crate::broker_task::Input;
use crate::outbox::Outbound;
use crate::telemetry::{ConnMeter, Telemetry};
use bytes::BytesMut;
use herald_core::ConnId;
use herald_proto::{Command, Frame, LineDecoder, ParseError, parse_line};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info};

/// Output a connection may have pending before we stop reading its commands.
const MAX_PENDING_OUTPUT_BYTES: usize = 8 * 1024 * 1024;
/// How long a closing connection keeps draining the client's input.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// First read buffer of a connection that becomes readable: enough for a
/// burst of small commands, cheap to allocate and free per read.
const READ_MIN_BYTES: usize = 4 * 1024;
/// Largest read buffer step: a read that fills the buffer doubles the next
/// one up to this, for pipelining publishers.
const READ_MAX_BYTES: usize = 64 * 1024;
/// Size of the scratch buffer `linger` drains into.
const LINGER_BUF_BYTES: usize = 4 * 1024;

/// Serves one connection until either side closes it.
///
/// `_alive` is dropped when the connection is done: the server waits for
/// every such token before it exits, so output already handed to a
/// connection reaches its client. While it runs, the connection is in
/// `telemetry`'s table with its byte counts.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<R: ReadSide, W: AsyncWrite + Unpin + Send>(
    reader: R,
    writer: W,
    peer: SocketAddr,
    conn: ConnId,
    broker: mpsc::Sender<Input>,
    max_line_bytes: usize,
    auth: Option<Arc<Authenticator>>,
    telemetry: Arc<Telemetry>,
    _alive: mpsc::Sender<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    if broker.send(Input::Connect { conn, tx }).await.is_err() {
        return;
    }
    info!(conn = conn.0, %peer, "connection opened");
    let meter = telemetry.open_connection(conn, peer, crate::broker_task::now_ms());
    let mut session = auth.map(|auth| Session::new(auth, peer));
    let reason = run(
        reader,
        writer,
        conn,
        &broker,
        &mut rx,
        max_line_bytes,
        session.as_mut(),
        &meter,
    )
    .await;
    telemetry.close_connection(conn);
    let _ = broker.send(Input::Disconnect { conn }).await;
    info!(conn = conn.0, %peer, reason, "connection closed");
}

#[allow(clippy::too_many_arguments)]
async fn run<R: ReadSide, W: AsyncWrite + Unpin + Send>(
    mut reader: R,
    mut writer: W,
    conn: ConnId,
    broker: &mpsc::Sender<Input>,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
    max_line_bytes: usize,
    mut session: Option<&mut Session>,
    meter: &ConnMeter,
) -> &'static str {
    let mut decoder = LineDecoder::new(max_line_bytes);
    // Empty and unallocated while idle; see the module docs.
    let mut inbuf = BytesMut::new();
    // Size of the next read: doubled after a read that filled the buffer,
    // reset after one that did not.
    let mut read_bytes = READ_MIN_BYTES;
    let mut out = BytesMut::new();
    let greeting = format!("{}\r\n", herald_proto::greeting());
    out.extend_from_slice(greeting.as_bytes());
    let mut quitting = false;
    let mut closing = false;
    let mut read_open = true;
    loop {
        if closing && out.is_empty() {
            let _ = writer.shutdown().await;
            if read_open {
                linger(&mut reader).await;
            }
            return "closed after the last reply";
        }
        let can_read = read_open && !quitting && out.len() < MAX_PENDING_OUTPUT_BYTES;
        tokio::select! {
            biased;
            msg = rx.recv() => match msg {
                Some(Outbound::Data(data)) => out.extend_from_slice(&data),
                Some(Outbound::Close) => closing = true,
                None => {
                    // The broker stopped: write what we have, then close
                    // politely (see `linger`).
                    let _ = writer.write_all(&out).await;
                    let _ = writer.shutdown().await;
                    linger(&mut reader).await;
                    return "server stopping";
                }
            },
            res = writer.write_buf(&mut out), if !out.is_empty() => {
                match res {
                    Ok(n) => meter.wrote(n),
                    Err(_) => return "write error",
                }
                if out.is_empty() {
                    // Release the buffer: an idle connection holds none.
                    out = BytesMut::new();
                }
            }
            res = reader.read_some(&mut inbuf, read_bytes), if can_read => {
                let room = read_bytes;
                match res {
                    // Nothing more to read: an empty buffer goes back so
                    // that an idle connection holds none.
                    Ok(None) => {
                        if inbuf.is_empty() {
                            inbuf = BytesMut::new();
                        }
                    }
                    Ok(Some(0)) => {
                        // A half-closed client still gets the replies to
                        // what it sent; the broker closes after them.
                        read_open = false;
                        if broker.send(Input::Eof { conn }).await.is_err() {
                            return "server stopping";
                        }
                    }
                    Ok(Some(n)) => {
                        meter.read(n);
                        let commands = decode_all(&mut decoder, &mut inbuf, &mut quitting);
                        let sent = match session.as_deref_mut() {
                            _ if commands.is_empty() => Ok(true),
                            None => broker.send(Input::Commands { conn, commands }).await.map(|()| true),
                            Some(session) => session.forward(conn, commands, broker).await,
                        };
                        match sent {
                            Ok(true) => {}
                            // Refused: the broker closes after the answer;
                            // read no more (as after `quit`).
                            Ok(false) => {
                                quitting = true;
                                inbuf.clear();
                            }
                            Err(_) => return "server stopping",
                        }
                        read_bytes = if n >= room {
                            (read_bytes * 2).min(READ_MAX_BYTES)
                        } else {
                            READ_MIN_BYTES
                        };
                    }
                    Err(_) => return "read error",
                }
            }
        }
    }
}

/// A connection's read side: how it waits for input.
pub(crate) trait ReadSide: AsyncRead + Unpin + Send {
    /// Reads what is available into `buf`, with room for at least `want`
    /// more bytes. `Ok(None)`: nothing after all (the buffer may go back).
    /// Cancel-safe: dropped before it completes, it has read nothing.
    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
        want: usize,
    ) -> impl Future<Output = std::io::Result<Option<usize>>> + Send + 'a;
}

/// Plain TCP waits for readiness without a buffer, then reads without
/// blocking: an idle connection holds no read buffer.
impl ReadSide for tokio::net::tcp::OwnedReadHalf {
    async fn read_some(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
    ) -> std::io::Result<Option<usize>> {
        self.readable().await?;
        if buf.capacity() - buf.len() < want {
            buf.reserve(want);
        }
        match self.try_read_buf(buf) {
            // Readiness was stale (tokio reports it until a read would
            // block): it is cleared now.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            other => other.map(Some),
        }
    }
}

/// TLS decrypts into the caller's buffer, so it waits with one; rustls
/// holds its own buffers per session anyway.
impl<S: AsyncRead + AsyncWrite + Unpin + Send> ReadSide for tokio::io::ReadHalf<S> {
    async fn read_some(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
    ) -> std::io::Result<Option<usize>> {
        if buf.capacity() - buf.len() < want {
            buf.reserve(want);
        }
        self.read_buf(buf).await.map(Some)
    }
}

/// After our FIN, reads and drops what the client still sends, briefly:
/// closing a socket with unread input makes the kernel send a reset, which
/// can destroy replies the client has not read yet.
async fn linger(reader: &mut (impl AsyncRead + Unpin)) {
    // On the heap, and only now: a buffer here would be part of every
    // connection task's state for its whole life.
    let mut sink = vec![0u8; LINGER_BUF_BYTES];
    let deadline = tokio::time::Instant::now() + LINGER;
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => continue,
            _ => return,
        }
    }
}

/// Parses every complete line in `inbuf`. After `quit`, the rest is ignored.
fn decode_all(
    decoder: &mut LineDecoder,
    inbuf: &mut BytesMut,
    quitting: &mut bool,
) -> Vec<Result<Command, ParseError>> {
    let mut commands = Vec::new();
    while !*quitting {
        let Some(frame) = decoder.decode(inbuf) else {
            break;
        };
        let parsed = match frame {
            Frame::TooLong => Err(ParseError::LineTooLong),
            Frame::Line(line) => match parse_line(&line) {
                Ok(None) => continue,
                Ok(Some(command)) => Ok(command),
                Err(e) => Err(e),
            },
        };
        if matches!(parsed, Ok(Command::Quit)) {
            *quitting = true;
            debug!("quit received");
        }
        commands.push(parsed);
    }
    if *quitting {
        inbuf.clear();
    }
    commands
}
