//! Helpers for the server's tests: [`Server`] runs `run_with_storage`
//! in-process on `127.0.0.1:0` (the shape of mini-redis `tests/server.rs`),
//! on a temporary data directory or the test's own, over a storage backend
//! of the test's choosing: the real one, a `FaultInjector`, a `PowerLoss`
//! or a storage defined in the test. [`Client`] (in `client.rs`) talks to it
//! line by line.
#![allow(dead_code)]

mod client;
mod rng;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use rng::Rng;

use herald_log::{StdStorage, Storage};
use herald_server::{Config, run_with_storage};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A server running on a thread of its own, with a single-threaded tokio
/// runtime like the binary's default. Dropping it stops it.
pub struct Server {
    pub addr: SocketAddr,
    data: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), herald_server::Error>>>,
    /// The data directory, when the server made its own.
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A broker with default settings on a fresh temporary directory.
    pub fn start() -> Server {
        Server::with_config(|_| {})
    }

    /// A broker on a fresh temporary directory, with the settings `edit`
    /// makes to the defaults (the in-process form of `herald serve` flags).
    pub fn with_config(edit: impl FnOnce(&mut Config)) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut config = Config::new(tmp.path().join("data"));
        edit(&mut config);
        let mut server = Server::start_on(config, Arc::new(StdStorage));
        server._tmp = Some(tmp);
        server
    }

    /// Starts `run_with_storage` on `127.0.0.1:0` with `config` (its data
    /// directory is the caller's) and `storage`.
    pub fn start_on(config: Config, storage: Arc<dyn Storage>) -> Server {
        let data = config.data_dir.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("address"))
                    .expect("the test waits for the address");
                run_with_storage(listener, config, storage, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server started");
        Server {
            addr,
            data,
            stop: Some(stop),
            thread: Some(thread),
            _tmp: None,
        }
    }

    /// Opens a client connection (greeting already read).
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Asks the server to stop (if it still runs) and returns how it ended.
    pub fn stop(mut self) -> Result<(), herald_server::Error> {
        self.shut_down().expect("server thread")
    }

    fn shut_down(&mut self) -> Option<Result<(), herald_server::Error>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take()?;
        Some(thread.join().expect("the server thread panicked"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped and joined before the data directory goes. A test that is
        // already failing must not panic again here.
        if !std::thread::panicking() {
            let _ = self.shut_down();
        } else if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
