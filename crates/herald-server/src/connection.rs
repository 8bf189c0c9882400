//! One task per client connection: read lines, parse them, hand them to the
//! broker task; write what the broker task sends back.
//!
//! Parsing happens here, on the tokio workers, so the broker task only
//! applies commands. Reading and writing share one task and one `select!`
//! so that a client that pipelines without reading its replies cannot
//! deadlock us: we keep reading while output is pending, up to
//! `MAX_PENDING_OUTPUT_BYTES`, and only then stop reading (TCP backpressure).
//!
//! Memory: an idle connection holds no buffer. The read buffer is allocated
//! only once the socket is readable (we wait with `readable()`, then read
//! without blocking) and dropped when every byte in it has been parsed; the
//! write buffer is dropped once written out. A connection that is busy
//! re-allocates per read, which costs far less than the read itself; a
//! partial line keeps its buffer until its LF arrives. So 10,000 idle
//! connections cost their task and channel, not 10,000 buffers.

use crate::broker_task::Input;
use crate::outbox::Outbound;
use crate::telemetry::{ConnMeter, Telemetry};
use bytes::BytesMut;
use herald_core::ConnId;
use herald_proto::{Command, Frame, LineDecoder, ParseError, parse_line};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
pub(crate) async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    broker: mpsc::Sender<Input>,
    max_line_bytes: usize,
    telemetry: Arc<Telemetry>,
    _alive: mpsc::Sender<()>,
) {
    let _ = socket.set_nodelay(true);
    let (tx, mut rx) = mpsc::unbounded_channel();
    if broker.send(Input::Connect { conn, tx }).await.is_err() {
        return;
    }
    info!(conn = conn.0, %peer, "connection opened");
    let meter = telemetry.open_connection(conn, peer, crate::broker_task::now_ms());
    let reason = run(&mut socket, conn, &broker, &mut rx, max_line_bytes, &meter).await;
    telemetry.close_connection(conn);
    let _ = broker.send(Input::Disconnect { conn }).await;
    info!(conn = conn.0, %peer, reason, "connection closed");
}

async fn run(
    socket: &mut TcpStream,
    conn: ConnId,
    broker: &mpsc::Sender<Input>,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
    max_line_bytes: usize,
    meter: &ConnMeter,
) -> &'static str {
    let (mut reader, mut writer) = socket.split();
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
            // Wait for input without a buffer, then read without blocking.
            res = reader.readable(), if can_read => {
                if res.is_err() {
                    return "read error";
                }
                if inbuf.capacity() - inbuf.len() < read_bytes {
                    inbuf.reserve(read_bytes);
                }
                let room = inbuf.capacity() - inbuf.len();
                match reader.try_read_buf(&mut inbuf) {
                    // Nothing more to read (tokio keeps the socket readable
                    // until a read would block): readiness is cleared, and an
                    // empty buffer goes back so that an idle connection
                    // holds none.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if inbuf.is_empty() {
                            inbuf = BytesMut::new();
                        }
                    }
                    Ok(0) => {
                        // A half-closed client still gets the replies to
                        // what it sent; the broker closes after them.
                        read_open = false;
                        if broker.send(Input::Eof { conn }).await.is_err() {
                            return "server stopping";
                        }
                    }
                    Ok(n) => {
                        meter.read(n);
                        let commands = decode_all(&mut decoder, &mut inbuf, &mut quitting);
                        if !commands.is_empty()
                            && broker.send(Input::Commands { conn, commands }).await.is_err()
                        {
                            return "server stopping";
                        }
                        read_bytes = if n == room {
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

/// After our FIN, reads and drops what the client still sends, briefly:
/// closing a socket with unread input makes the kernel send a reset, which
/// can destroy replies the client has not read yet.
async fn linger(reader: &mut tokio::net::tcp::ReadHalf<'_>) {
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
