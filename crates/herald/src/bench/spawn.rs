//! `herald bench --spawn`: a temporary broker for the length of a run.
//!
//! It is this same binary's `serve`, on `127.0.0.1:0` with a temporary data
//! directory; the address comes from its `listening addr=` log line (as in
//! the integration tests). Its log is drained for as long as it runs, so it
//! never blocks on a full pipe. Dropping [`Spawned`] kills it and removes
//! the directory.

use anyhow::{Context, Result, bail};
use herald_server::FsyncMode;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A broker this bench started.
pub struct Spawned {
    child: Child,
    _dir: tempfile::TempDir,
}

/// A CA, and a certificate and key for `localhost` signed by it (PEM).
fn certificates() -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "herald bench CA");
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

impl Spawned {
    /// Runs `herald serve` on a temporary directory; returns once it listens.
    /// With `tls`, the broker gets a certificate for `localhost` made
    /// here, signed by a CA made here, whose PEM is returned.
    pub fn start(fsync: FsyncMode, tls: bool) -> Result<(Spawned, SocketAddr, Option<String>)> {
        let exe = std::env::current_exe().context("locating the herald binary")?;
        let dir = tempfile::tempdir().context("creating a temporary data directory")?;
        let mut serve = Command::new(&exe);
        serve
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(["--fsync", &fsync.to_string()]);
        let ca = if tls {
            let (ca, cert, key) = certificates().context("making a TLS certificate")?;
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert).context("writing the certificate")?;
            std::fs::write(&key_path, key).context("writing the key")?;
            serve
                .arg("--tls-cert")
                .arg(cert_path)
                .arg("--tls-key")
                .arg(key_path);
            Some(ca)
        } else {
            None
        };
        let mut child = serve
            .env("HERALD_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stderr = child.stderr.take().context("broker stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining the broker's log so that it never blocks on a
        // full pipe; reports the address from the `listening` line.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut early = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Some(sender) = &tx else { continue };
                if line.contains("listening")
                    && let Some(addr) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                {
                    let _ = sender.send(Ok(addr.to_string()));
                    tx = None;
                } else {
                    early.push(line);
                }
            }
            if let Some(sender) = tx {
                let _ = sender.send(Err(early.join("\n")));
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(addr)) => addr.parse().context("the broker's listen address")?,
            Ok(Err(log)) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the broker did not start:\n{log}");
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the broker did not start within 60 s");
            }
        };
        Ok((Spawned { child, _dir: dir }, addr, ca))
    }

    /// The broker's peak resident set size in bytes (VmHWM), if known.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
