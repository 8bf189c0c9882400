//! `run`: recover the log, start the broker task and the fsync thread,
//! accept connections until the shutdown future resolves, then stop cleanly.

use crate::admin::{Admin, Phase};
use crate::broker_task::{BrokerTask, Input};
use crate::config::Config;
use crate::connection;
use crate::error::{BrokerError, Error};
use herald_core::{Broker, ConnId, record};
use herald_log::{Log, LogConfig, StdStorage, Storage};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Capacity of the broker task's input channel, in messages (each a batch
/// of commands from one read): a full channel makes connection tasks wait,
/// which stops them reading, which is TCP backpressure on publishers.
const INPUT_QUEUE_MESSAGES: usize = 4096;
/// How long a stopping server waits for connections to write their output.
const CONNECTION_DRAIN: Duration = Duration::from_secs(3);
/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Wake-up period for interval syncs, compaction and retries.
const TICK_MS: u64 = 200;
/// How long a refused connection may take to read its `-ERR` line, and
/// how long we drain what it sent meanwhile (see `refuse`).
const REFUSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Recovers the state in `config.data_dir`, then serves `listener` until
/// `shutdown` resolves. On shutdown it stops accepting, syncs the log and
/// returns `Ok(())`.
///
/// # Errors
/// If the log cannot be opened (locked, corrupt, unreadable) or fails while
/// running.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with_storage(listener, config, Arc::new(StdStorage), shutdown).await
}

/// [`run`] with the log's file operations, its fdatasyncs included, done
/// by `storage` (tests inject disk failures and power cuts this way).
///
/// # Errors
/// As [`run`].
pub async fn run_with_storage(
    listener: TcpListener,
    config: Config,
    storage: Arc<dyn Storage>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with(listener, config, storage, Admin::new(), shutdown).await
}

/// [`run_with_storage`] that also serves `admin` (the HTTP API's handle):
/// once recovered, `admin` reaches this broker and its phase is
/// [`Phase::Serving`]; from the shutdown on it is [`Phase::Stopping`].
/// The server's measurements go to `admin.telemetry()`.
///
/// # Errors
/// As [`run`].
pub async fn run_with(
    listener: TcpListener,
    config: Config,
    storage: Arc<dyn Storage>,
    admin: Admin,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let telemetry = admin.telemetry().clone();
    let started = Instant::now();
    let log_config = LogConfig {
        dir: config.data_dir.clone(),
        segment_bytes: config.segment_bytes,
    };
    let (broker, log, report) = tokio::task::spawn_blocking(move || {
        let mut broker = Broker::new();
        let mut decoder = record::Decoder::new();
        let (log, report) = Log::open_with_storage(log_config, storage, |payload| {
            broker.replay(decoder.decode(payload)?);
            Ok::<_, record::RecordError>(())
        })?;
        broker.finish_replay(crate::broker_task::now_ms());
        Ok::<_, herald_log::Error>((broker, log, report))
    })
    .await
    .map_err(Error::Recovery)??;
    info!(
        dir = %config.data_dir.display(),
        segments = report.segments,
        records = report.records,
        bytes = report.bytes,
        topics = broker.topic_names().len(),
        pending_events = broker.durable_events(),
        ms = started.elapsed().as_millis() as u64,
        "recovered"
    );
    if let Some((path, offset)) = &report.torn_tail {
        warn!(file = %path.display(), offset, "truncated a torn tail (an unfinished write from a crash)");
    }

    let (tx, rx) = mpsc::channel::<Input>(INPUT_QUEUE_MESSAGES);
    let (sync_tx, sync_thread) =
        crate::sync::spawn(tx.clone(), telemetry.clone()).map_err(Error::Thread)?;
    let max_line_bytes = config.max_line_bytes;
    let fsync = config.fsync;
    let auth = crate::auth::Authenticator::new(config.users.clone());
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let max_connections = config.max_connections;
    let core = BrokerTask::new(broker, log, config, sync_tx, telemetry.clone());
    // The broker runs as a task beside the connections: on the default
    // single-threaded runtime a command and its reply cross no thread, which
    // is what a round trip per event (prefetch 1) is made of.
    let broker_task = tokio::spawn(core.run(rx));

    if let Ok(addr) = listener.local_addr() {
        info!(%addr, %fsync, tls = tls.is_some(), users = auth.is_some(), "listening");
        if auth.is_none() && !addr.ip().is_loopback() {
            warn!(%addr, "listening beyond this machine with no users configured: anyone who can reach it may publish, subscribe and acknowledge (see docs/security.md)");
        }
    }
    admin.attach(tx.clone());
    admin.set_phase(Phase::Serving);
    let ticker = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(TICK_MS));
            loop {
                every.tick().await;
                if tx.send(Input::Tick).await.is_err() {
                    return;
                }
            }
        })
    };

    let mut broker_task = broker_task;
    // Every connection task holds a clone; `recv` returns once all are gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut next_conn = 0u64;
    // One permit per open protocol connection (`--max-connections`); a
    // connection task holds its permit until it ends.
    let slots = Arc::new(tokio::sync::Semaphore::new(
        max_connections.min(tokio::sync::Semaphore::MAX_PERMITS),
    ));
    tokio::pin!(shutdown);
    let broker_result = loop {
        tokio::select! {
            _ = &mut shutdown => break None,
            res = &mut broker_task => break Some(res),
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        warn!(%peer, max_connections, "connection refused: too many connections");
                        tokio::spawn(refuse(socket, max_connections));
                        continue;
                    };
                    next_conn += 1;
                    let conn = ConnId(next_conn);
                    let _ = socket.set_nodelay(true);
                    let (tx, auth, telemetry, alive) =
                        (tx.clone(), auth.clone(), telemetry.clone(), alive_tx.clone());
                    let tls = tls.clone();
                    // The connection's future is made inside the task: made
                    // outside and moved in, it would be stored twice in the
                    // task (as the captured value and as the awaited one).
                    tokio::spawn(async move {
                        match tls {
                            None => {
                                let (reader, writer) = socket.into_split();
                                connection::serve(
                                    reader, writer, peer, conn, tx, max_line_bytes, auth,
                                    telemetry, alive,
                                )
                                .await;
                            }
                            Some(acceptor) => {
                                let handshake = acceptor.accept(socket);
                                match tokio::time::timeout(TLS_HANDSHAKE, handshake).await {
                                    Ok(Ok(stream)) => {
                                        let (reader, writer) = tokio::io::split(stream);
                                        connection::serve(
                                            reader, writer, peer, conn, tx, max_line_bytes, auth,
                                            telemetry, alive,
                                        )
                                        .await;
                                    }
                                    Ok(Err(e)) => info!(%peer, cause = %e, "TLS handshake failed"),
                                    Err(_) => info!(%peer, "TLS handshake timed out"),
                                }
                            }
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    warn!(cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    drop(listener);
    admin.set_phase(Phase::Stopping);
    ticker.abort();

    let result = match broker_result {
        Some(res) => res,
        None => {
            info!("shutting down");
            // The broker answers what it received, syncs, and returns.
            let _ = tx.send(Input::Shutdown).await;
            broker_task.await
        }
    }
    .unwrap_or(Err(BrokerError::Panicked));
    drop(tx);
    let _ = tokio::task::spawn_blocking(move || sync_thread.join()).await;
    // Let connection tasks write what the broker handed them last.
    drop(alive_tx);
    let drained = tokio::time::timeout(CONNECTION_DRAIN, alive_rx.recv()).await;
    if drained.is_err() {
        warn!("some connections were still writing when the server stopped");
    }
    // A failure is the caller's to report (the binary prints it once).
    result?;
    info!("stopped");
    Ok(())
}

/// Answers a connection over `--max-connections` with one
/// `-ERR unavailable` line in place of the greeting, then closes it. Its
/// input is drained briefly after our FIN, as in `connection::linger`, so
/// that the kernel does not reset the connection before the client has
/// read the line; everything is bounded by `REFUSE_TIMEOUT`, so a flood of
/// refused clients cannot hold file descriptors for long.
async fn refuse(mut socket: tokio::net::TcpStream, max_connections: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut line = bytes::BytesMut::new();
    herald_proto::Reply::error(
        herald_proto::ErrorCode::Unavailable,
        format!("too many connections (at most {max_connections})"),
    )
    .encode(&mut line);
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        socket.write_all(&line).await?;
        socket.shutdown().await?;
        let mut sink = [0u8; 512];
        while socket.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
