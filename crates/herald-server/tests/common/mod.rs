//! Helpers for the server's tests: run the server in-process on a storage
//! backend of the test's choosing, and a line-oriented TCP client.
#![allow(dead_code)]

use herald_log::Storage;
use herald_server::{Config, run_with_storage};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A server running on a thread of its own.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: std::thread::JoinHandle<Result<(), herald_server::Error>>,
}

impl Server {
    /// Starts `run_with_storage` on `127.0.0.1:0` with `config`.
    pub fn start(config: Config, storage: Arc<dyn Storage>) -> Server {
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
                    .unwrap();
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
            stop: Some(stop),
            thread,
        }
    }

    /// Asks the server to stop (if it still runs) and returns how it ended.
    pub fn stop(mut self) -> Result<(), herald_server::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.join().expect("server thread")
    }
}

/// A client that reads lines with a timeout.
pub struct Client {
    reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = client.line().expect("greeting");
        assert!(greeting.starts_with("+OK "), "{greeting}");
        client
    }

    /// The next line without its CRLF; `None` once the server closed.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
            // The broker may close with unread input: a reset is an end too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        // A server that stopped may have closed the socket already.
        let _ = writeln!(self.writer, "{line}");
    }

    /// Sends a command and returns the next line (`None` if closed).
    pub fn cmd(&mut self, line: &str) -> Option<String> {
        self.send(line);
        self.line()
    }
}
