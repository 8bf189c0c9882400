//! PROTOCOL.md §15 and §16.1 through the binary: `herald passwd`, `herald
//! serve --config` with users over TLS driven by `openssl s_client` (a
//! client the project did not write) as a person would use telnet, HTTPS,
//! and HTTP basic authentication (401, 403, admin for DELETE).
mod common;
use common::*;

use base64::Engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;

/// `herald passwd` with `password` on stdin: the hash it prints.
fn passwd(password: &str) -> String {
    let mut child = herald()
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald passwd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A configuration file: alice publishes to `orders.>` and subscribes to
/// everything but `secrets.>`; root is an admin that may do anything.
fn config_file(dir: &Path) -> PathBuf {
    let hash = passwd("s3cret");
    let path = dir.join("herald.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[users]]
name = "alice"
password = "{hash}"
publish = ["orders.>"]
subscribe = {{ allow = [">"], deny = ["secrets.>"] }}

[[users]]
name = "root"
password = "{hash}"
publish = [">"]
subscribe = [">"]
admin = true
"#
        ),
    )
    .unwrap();
    path
}

/// A CA and a server certificate for 127.0.0.1/localhost, as PEM files.
fn certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL takes a certificate whose issuer is its
    // subject for a self-signed one.
    ca.distinguished_name
        .push(DnType::CommonName, "Herald test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

#[test]
fn passwd_prints_an_argon2_hash_of_stdin() {
    let hash = passwd("correct horse");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(herald_server::auth::verify_password(&hash, "correct horse"));
    assert!(!herald_server::auth::verify_password(
        &hash,
        "correct horse\n"
    ));
    // A fresh salt each time.
    assert_ne!(passwd("correct horse"), hash);
}

#[test]
fn serve_refuses_strangers_and_keeps_alice_to_her_topics() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let mut c = server.connect();
    assert_eq!(c.cmd("ping"), "+OK pong");
    c.expect_err("topics", "auth_required");
    c.expect_err("auth alice wrong", "auth_failed");
    assert_eq!(c.cmd("auth alice s3cret"), "+OK auth alice");
    assert!(
        c.cmd(&pub_line("orders.eu", "1", 0, "m"))
            .starts_with("+OK published")
    );
    c.expect_err(&pub_line("payments", "1", 0, "m"), "forbidden");
    assert!(
        server.logs().contains("authentication failed"),
        "{}",
        server.logs()
    );
}

#[test]
fn a_public_address_without_users_is_warned_about() {
    let data = tempfile::tempdir().unwrap();
    let mut child = herald()
        .args(["serve", "--listen", "0.0.0.0:0", "--http", "off", "--data"])
        .arg(data.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("no users configured") && tx.send(line).is_err() {
                break;
            }
        }
    });
    let warning = rx.recv_timeout(LINE_TIMEOUT);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        warning.is_ok(),
        "no warning about a public address without users"
    );
}

/// `openssl s_client` talking to `addr`, its output lines on a channel.
struct OpenSsl {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl OpenSsl {
    /// `None` (after a loud skip) if there is no `openssl` outside CI.
    fn connect(addr: SocketAddr, ca: &Path) -> Option<OpenSsl> {
        let spawned = std::process::Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
            .arg(ca)
            .arg("-connect")
            .arg(addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                skip_unless_ci(&format!("no openssl command ({e})"));
                return None;
            }
        };
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim_end().to_string()).is_err() {
                    break;
                }
            }
        });
        Some(OpenSsl { child, lines })
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(LINE_TIMEOUT)
            .expect("a line from openssl s_client")
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }
}

impl Drop for OpenSsl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn openssl_s_client_runs_a_pub_sub_ack_session_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let config = config_file(dir.path());
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let server = Server::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
    ]);
    let Some(mut s) = OpenSsl::connect(server.addr, &dir.path().join("ca.pem")) else {
        return;
    };
    assert!(s.line().starts_with("+OK herald"), "greeting");
    assert!(s.cmd("topics").starts_with("-ERR auth_required"));
    assert_eq!(s.cmd("auth alice s3cret"), "+OK auth alice");
    assert_eq!(s.cmd("create orders.eu"), "+OK created orders.eu");
    assert_eq!(s.cmd("sub orders.eu"), "+OK subscribed orders.eu");
    assert_eq!(
        s.cmd(r#"pub orders.eu {"id":"o1","msg":"hello"}"#),
        "+OK published orders.eu o1"
    );
    let delivery: serde_json::Value = serde_json::from_str(&s.line()).unwrap();
    assert_eq!(
        (delivery["id"].as_str(), delivery["msg"].as_str()),
        (Some("o1"), Some("hello"))
    );
    assert_eq!(s.cmd("ack orders.eu o1"), "+OK acked orders.eu o1");
    assert!(
        s.cmd(r#"pub secrets.x {"id":1,"msg":"m"}"#)
            .starts_with("-ERR forbidden")
    );
    assert_eq!(s.cmd("quit"), "+OK bye");

    // A plaintext client on the same port gets no protocol line.
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    tcp.write_all(b"ping\n").unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("+OK"), "{got:?}");

    // HTTPS with the same certificate, and basic auth.
    let Some(mut h) = OpenSsl::connect(server.http_addr(), &dir.path().join("ca.pem")) else {
        return;
    };
    h.send(&format!(
        "GET /api/v1/topics HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r",
        basic("alice", "s3cret")
    ));
    assert!(h.line().starts_with("HTTP/1.1 200"));
}

#[test]
fn the_cli_logs_in_and_speaks_tls() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let config = config_file(dir.path());
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let server = Server::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
    ]);
    let addr = server.addr.to_string();
    let cli = |password: &str, args: &[&str]| {
        herald()
            .args(args)
            .args([
                "--addr",
                &addr,
                "--user",
                "alice",
                "--tls-ca",
                &path("ca.pem"),
            ])
            .env("HERALD_PASSWORD", password)
            .output()
            .unwrap()
    };
    let out = cli("s3cret", &["pub", "orders.eu", r#"{"id":"1","msg":"m"}"#]);
    assert!(out.status.success(), "{out:?}");
    let out = cli("s3cret", &["topics"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("orders.eu"),
        "{out:?}"
    );
    let out = cli("wrong", &["topics"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("auth_failed"),
        "{out:?}"
    );
    let out = cli("s3cret", &["pub", "payments", r#"{"id":"1","msg":"m"}"#]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_logs_in_over_tls() {
    use herald_client::{Client, ClientOptions, ErrorCode, TlsOptions};
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let config = config_file(dir.path());
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let server = Server::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
    ]);
    let tls = TlsOptions::new("localhost", Some(&dir.path().join("ca.pem"))).unwrap();
    let options = ClientOptions::new().tls(tls.clone());
    let client = Client::connect_with(server.addr, options.clone().credentials("alice", "s3cret"))
        .await
        .unwrap();
    client.create("orders.eu").await.unwrap();
    let e = client.create("payments").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden));
    let e = Client::connect_with(server.addr, options.clone().credentials("alice", "nope"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AuthFailed));
    // Without credentials: connected, but only `ping` is answered.
    let stranger = Client::connect_with(server.addr, options).await.unwrap();
    stranger.ping().await.unwrap();
    let e = stranger.topics().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AuthRequired));
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// A request with optional basic credentials: (status, WWW-Authenticate,
/// body).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some((u, p)) = auth {
        req += &format!("Authorization: {}\r\n", basic(u, p));
    }
    let body = body.unwrap_or("");
    req += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let www = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("www-authenticate: ")
            .map(str::to_string)
    });
    (status, www, body.to_string())
}

#[test]
fn http_needs_basic_auth_and_the_same_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let http = server.http_addr();
    let alice = Some(("alice", "s3cret"));
    let root = Some(("root", "s3cret"));

    // Health and metrics never need auth; the API and the console do.
    assert_eq!(request(http, "GET", "/healthz", None, None).0, 200);
    assert_eq!(request(http, "GET", "/metrics", None, None).0, 200);
    for path in ["/", "/api/v1/overview", "/api/v1/topics"] {
        let (status, www, body) = request(http, "GET", path, None, None);
        assert_eq!(status, 401, "{path}");
        assert_eq!(www.as_deref(), Some("basic realm=\"herald\""));
        assert!(body.contains("auth_required"), "{body}");
    }
    let (status, www, body) = request(
        http,
        "GET",
        "/api/v1/overview",
        Some(("alice", "nope")),
        None,
    );
    assert_eq!((status, www.is_some()), (401, true));
    assert!(body.contains("auth_failed"), "{body}");

    assert_eq!(request(http, "GET", "/api/v1/overview", alice, None).0, 200);
    assert_eq!(
        request(http, "PUT", "/api/v1/topics/orders.eu", alice, None).0,
        201
    );
    assert_eq!(
        request(http, "PUT", "/api/v1/topics/secrets.x", root, None).0,
        201
    );
    let event = r#"{"id":"1","msg":"m"}"#;
    assert_eq!(
        request(
            http,
            "POST",
            "/api/v1/topics/orders.eu/events",
            alice,
            Some(event)
        )
        .0,
        200
    );
    let (status, _, body) = request(
        http,
        "POST",
        "/api/v1/topics/payments/events",
        alice,
        Some(event),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("forbidden"), "{body}");
    assert_eq!(
        request(http, "PUT", "/api/v1/topics/payments", alice, None).0,
        403
    );
    // Only the topics alice may subscribe to.
    let (_, _, body) = request(http, "GET", "/api/v1/topics", alice, None);
    let topics: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&String> = topics["topics"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["orders.eu"]);
    assert_eq!(
        request(http, "GET", "/api/v1/topics/secrets.x", alice, None).0,
        404
    );
    assert_eq!(
        request(
            http,
            "GET",
            "/api/v1/topics/secrets.x/peek?sub=alice",
            alice,
            None
        )
        .0,
        403
    );
    assert_eq!(
        request(
            http,
            "GET",
            "/api/v1/topics/orders.eu/peek?sub=bob",
            alice,
            None
        )
        .0,
        403
    );
    // DELETE and the connection list need an admin.
    let delete = "/api/v1/topics/orders.eu/subscriptions/alice";
    assert_eq!(request(http, "DELETE", delete, alice, None).0, 403);
    assert_eq!(
        request(http, "GET", "/api/v1/connections", alice, None).0,
        403
    );
    assert_eq!(
        request(http, "GET", "/api/v1/connections", root, None).0,
        200
    );
    assert_eq!(request(http, "DELETE", delete, root, None).0, 404);
}
