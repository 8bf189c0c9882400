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
/// Read buffer growth step.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Serves one connection until either side closes it.
///
/// `_alive` is dropped when the connection is done: the server waits for
/// every such token before it exits, so output already handed to a
/// connection reaches its client. While it runs, the connection is in
/// `telemetry`'s table with its byte counts.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S: AsyncRead + AsyncWrite>(
    socket: S,
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
        socket,
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

async fn run<S: AsyncRead + AsyncWrite>(
    socket: S,
    conn: ConnId,
    broker: &mpsc::Sender<Input>,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
    max_line_bytes: usize,
    mut session: Option<&mut Session>,
    meter: &ConnMeter,
) -> &'static str {
    let (mut reader, mut writer) = tokio::io::split(socket);
    let mut decoder = LineDecoder::new(max_line_bytes);
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
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
            }
            res = reader.read_buf(&mut inbuf), if can_read => {
                match res {
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
                        if inbuf.capacity() - inbuf.len() < 4096 {
                            inbuf.reserve(READ_CHUNK_BYTES);
                        }
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
async fn linger(reader: &mut (impl AsyncRead + Unpin)) {
    let mut sink = [0u8; 16 * 1024];
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
