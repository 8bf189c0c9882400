//! `docs/protocol.md` section 15: users, permissions and TLS, against an
//! in-process server: every command before `auth`, wrong passwords, the
//! fifth failure, denied topics and names, filtered `topics` and `stats`;
//! TLS sessions, a plaintext client on the TLS port, client certificates.
mod common;
use common::*;

use herald_server::users::{PermissionSpec, PermissionTable, UserSpec, check};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;

/// One argon2 hash for every test user (hashing is slow on purpose).
fn hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| herald_server::auth::hash_password("s3cret").unwrap())
}

fn user(name: &str, publish: &[&str], subscribe: PermissionSpec) -> UserSpec {
    UserSpec {
        name: name.into(),
        password: hash().into(),
        publish: Some(PermissionSpec::List(
            publish.iter().map(|s| s.to_string()).collect(),
        )),
        subscribe: Some(subscribe),
        names: None,
        admin: false,
    }
}

fn list(patterns: &[&str]) -> PermissionSpec {
    PermissionSpec::List(patterns.iter().map(|s| s.to_string()).collect())
}

/// alice publishes to `orders.>` and subscribes to everything but
/// `secrets.>`; bob may do anything.
fn server() -> Server {
    let users = check(&[
        user(
            "alice",
            &["orders.>"],
            PermissionSpec::Table(PermissionTable {
                allow: vec![">".into()],
                deny: vec!["secrets.>".into()],
            }),
        ),
        user("bob", &[">"], list(&[">"])),
    ])
    .unwrap();
    Server::with_config(|c| c.users = users)
}

#[test]
fn without_users_auth_is_bad_state_and_nothing_else_changes() {
    let server = Server::start();
    let mut c = server.connect();
    c.expect_err("auth alice s3cret", "bad_state");
    assert_eq!(c.cmd("pub t {\"id\":1,\"msg\":\"m\"}"), "+OK published t 1");
}

#[test]
fn every_command_but_ping_quit_and_auth_needs_auth_whatever_its_shape() {
    let server = server();
    let mut c = server.connect();
    for line in [
        "pub orders.eu {\"id\":1,\"msg\":\"m\"}",
        "sub orders.eu",
        "unsub orders.eu",
        "ack orders.eu 1",
        "nack orders.eu 1",
        "touch orders.eu 1",
        "peek orders.eu",
        "name alice",
        "create orders.eu",
        "topics",
        "stats",
        "stats orders.eu",
        "replies errors",
        "cluster",
        "nonsense",
        "pub",
        "sub bad/topic",
    ] {
        c.expect_err(line, "auth_required");
    }
    assert_eq!(c.cmd("ping"), "+OK pong");
    assert_eq!(c.cmd("auth alice s3cret"), "+OK auth alice");
    assert_eq!(
        c.cmd("pub orders.eu {\"id\":1,\"msg\":\"m\"}"),
        "+OK published orders.eu 1"
    );
    // (`published`, not `duplicate`: the refused `pub` of id 1 stored nothing.)
    assert_eq!(c.cmd("quit"), "+OK bye");
    c.expect_eof();
}

#[test]
fn wrong_passwords_and_unknown_users_are_auth_failed() {
    let server = server();
    let mut c = server.connect();
    c.expect_err("auth alice hunter2", "auth_failed");
    c.expect_err("auth mallory s3cret", "auth_failed");
    c.expect_err("topics", "auth_required");
    assert_eq!(c.cmd("auth alice s3cret"), "+OK auth alice");
    assert_eq!(c.cmd("topics"), "+OK []");
}

#[test]
fn the_fifth_failure_is_answered_and_closes_the_connection() {
    let server = server();
    let mut c = server.connect();
    for _ in 0..4 {
        c.expect_err("auth alice wrong", "auth_failed");
    }
    // Pipelined after the fifth failure: never answered.
    c.send("auth alice wrong\nauth alice s3cret\nping");
    let reply = c.line().expect("the fifth failure is answered");
    assert!(reply.starts_with("-ERR auth_failed"), "{reply}");
    c.expect_eof();
    // Another connection may still log in.
    let mut d = server.connect();
    assert_eq!(d.cmd("auth alice s3cret"), "+OK auth alice");
}

#[test]
fn pipelined_commands_around_auth_keep_their_order() {
    let server = server();
    let mut c = server.connect();
    c.send("pub orders.a {\"id\":1,\"msg\":\"m\"}\nauth alice s3cret\npub orders.a {\"id\":2,\"msg\":\"m\"}\npub other {\"id\":3,\"msg\":\"m\"}\nping");
    assert!(c.reply().starts_with("-ERR auth_required"));
    assert_eq!(c.reply(), "+OK auth alice");
    assert_eq!(c.reply(), "+OK published orders.a 2");
    assert!(c.reply().starts_with("-ERR forbidden"));
    assert_eq!(c.reply(), "+OK pong");
}

#[test]
fn denied_topics_are_forbidden_after_shape_errors_and_before_state_errors() {
    let server = server();
    let mut c = server.connect();
    assert_eq!(c.cmd("auth alice s3cret"), "+OK auth alice");
    for line in [
        "pub payments {\"id\":1,\"msg\":\"m\"}",
        "create payments",
        "sub secrets.keys",
        "unsub secrets.keys",
        // Not subscribed, no such event: the permission is checked first.
        "ack secrets.keys 1",
        "nack secrets.keys 1",
        "touch secrets.keys 1",
        "peek secrets.keys",
    ] {
        c.expect_err(line, "forbidden");
    }
    // Shape first.
    c.expect_err("pub bad/topic {\"id\":1,\"msg\":\"m\"}", "bad_topic");
    c.expect_err("sub secrets.keys 0", "bad_args");
    // Allowed topics reach their state errors.
    c.expect_err("ack orders.eu 1", "not_subscribed");
    assert_eq!(c.cmd("create orders.eu"), "+OK created orders.eu");
    assert_eq!(c.cmd("sub orders.eu"), "+OK subscribed orders.eu");
}

#[test]
fn topics_and_stats_show_only_what_the_user_may_subscribe_to() {
    let server = server();
    let mut bob = server.connect();
    assert_eq!(bob.cmd("auth bob s3cret"), "+OK auth bob");
    for t in ["orders.eu", "secrets.keys", "public"] {
        bob.cmd(&format!("create {t}"));
    }
    assert_eq!(bob.topics(), ["orders.eu", "public", "secrets.keys"]);

    let mut alice = server.connect();
    assert_eq!(alice.cmd("auth alice s3cret"), "+OK auth alice");
    assert_eq!(alice.topics(), ["orders.eu", "public"]);
    let stats = alice.stats(None);
    let names: Vec<&String> = stats["topics"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["orders.eu", "public"]);
    alice.expect_err("stats secrets.keys", "no_topic");
    assert!(alice.stats(Some("public"))["topics"]["public"].is_object());

    // A later `auth` switches user, and what it may see.
    assert_eq!(alice.cmd("auth bob s3cret"), "+OK auth bob");
    assert_eq!(alice.topics().len(), 3);
    assert_eq!(
        alice.cmd("pub payments {\"id\":1,\"msg\":\"m\"}"),
        "+OK published payments 1"
    );
}

#[test]
fn durable_and_group_names_must_match_the_users_names() {
    let server = server();
    let mut c = server.connect();
    assert_eq!(c.cmd("auth alice s3cret"), "+OK auth alice");
    c.expect_err("name bob", "forbidden");
    c.expect_err("sub orders.eu group=workers", "forbidden");
    c.expect_err("peek orders.eu sub=bob", "forbidden");
    c.expect_err("unsub orders.eu group=bob.w", "forbidden");
    assert_eq!(c.cmd("name alice.w1"), "+OK name alice.w1");
    assert_eq!(c.cmd("create orders.eu"), "+OK created orders.eu");
    assert!(
        c.cmd("sub orders.eu group=alice.pool")
            .starts_with("+OK subscribed orders.eu")
    );
}

mod tls {
    use super::*;
    use herald_server::rustls;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use std::path::PathBuf;
    use std::sync::Arc;

    /// A CA, a server certificate for `localhost`/127.0.0.1 and a client
    /// certificate, all signed by the CA, as PEM files in a temp dir.
    pub struct Pki {
        pub dir: tempfile::TempDir,
        pub ca_der: rustls::pki_types::CertificateDer<'static>,
        pub client_cert: rustls::pki_types::CertificateDer<'static>,
        pub client_key: rustls::pki_types::PrivateKeyDer<'static>,
    }

    impl Pki {
        pub fn new() -> Pki {
            let dir = tempfile::tempdir().unwrap();
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "Herald test CA");
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let server_key = KeyPair::generate().unwrap();
            let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap()
                .signed_by(&server_key, &ca, &ca_key)
                .unwrap();
            let client_key = KeyPair::generate().unwrap();
            let client = CertificateParams::new(vec!["client".into()])
                .unwrap()
                .signed_by(&client_key, &ca, &ca_key)
                .unwrap();
            let write =
                |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
            write("ca.pem", ca.pem());
            write("server.pem", server.pem());
            write("server.key", server_key.serialize_pem());
            write("other.key", KeyPair::generate().unwrap().serialize_pem());
            Pki {
                ca_der: ca.der().clone(),
                client_cert: client.der().clone(),
                client_key: rustls::pki_types::PrivateKeyDer::try_from(client_key.serialize_der())
                    .unwrap(),
                dir,
            }
        }

        pub fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        pub fn server_config(&self, client_ca: bool) -> Arc<rustls::ServerConfig> {
            let ca = self.path("ca.pem");
            herald_server::tls::server_config(
                &self.path("server.pem"),
                &self.path("server.key"),
                client_ca.then_some(ca.as_path()),
            )
            .unwrap()
        }

        pub fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let builder =
                rustls::ClientConfig::builder_with_provider(herald_server::tls::provider())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots);
            Arc::new(if with_cert {
                builder
                    .with_client_auth_cert(
                        vec![self.client_cert.clone()],
                        self.client_key.clone_key(),
                    )
                    .unwrap()
            } else {
                builder.with_no_client_auth()
            })
        }
    }

    type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

    /// A line client over TLS.
    pub struct TlsClient(BufReader<Tls>);

    impl TlsClient {
        /// Connects, handshakes and reads the greeting (or the error).
        pub fn connect(
            addr: std::net::SocketAddr,
            config: Arc<rustls::ClientConfig>,
        ) -> std::io::Result<TlsClient> {
            let tcp = TcpStream::connect(addr)?;
            tcp.set_read_timeout(Some(LINE_TIMEOUT))?;
            let conn =
                rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
            let mut c = TlsClient(BufReader::new(rustls::StreamOwned::new(conn, tcp)));
            let greeting = c.line()?;
            assert!(greeting.starts_with("+OK "), "{greeting}");
            Ok(c)
        }

        pub fn line(&mut self) -> std::io::Result<String> {
            let mut line = String::new();
            if self.0.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            Ok(line.trim_end().to_string())
        }

        pub fn cmd(&mut self, line: &str) -> String {
            self.0
                .get_mut()
                .write_all(format!("{line}\n").as_bytes())
                .unwrap();
            self.0.get_mut().flush().unwrap();
            self.line().unwrap()
        }
    }
}
use tls::{Pki, TlsClient};

#[test]
fn a_tls_session_publishes_subscribes_and_acks() {
    let pki = Pki::new();
    let config = pki.server_config(false);
    let server = Server::with_config(|c| c.tls = Some(config));
    let mut c = TlsClient::connect(server.addr, pki.client_config(false)).unwrap();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    assert_eq!(
        c.cmd("pub t {\"id\":1,\"msg\":\"hi\"}"),
        "+OK published t 1"
    );
    let delivery = c.line().unwrap();
    assert!(
        delivery.starts_with('{') && delivery.contains("\"msg\":\"hi\""),
        "{delivery}"
    );
    assert_eq!(c.cmd("ack t 1"), "+OK acked t 1");
}

#[test]
fn a_plaintext_client_on_the_tls_port_gets_no_greeting() {
    let pki = Pki::new();
    let config = pki.server_config(false);
    let server = Server::with_config(|c| c.tls = Some(config));
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    tcp.write_all(b"ping\npub t {\"id\":1,\"msg\":\"m\"}\n")
        .unwrap();
    // The server ends the handshake (perhaps with a TLS alert, never a
    // line of the protocol) and closes.
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("+OK"),
        "plaintext answered: {got:?}"
    );
    // Nothing was published.
    let mut c = TlsClient::connect(server.addr, pki.client_config(false)).unwrap();
    assert_eq!(c.cmd("topics"), "+OK []");
}

#[test]
fn client_certificates_when_required_are_checked() {
    let pki = Pki::new();
    let config = pki.server_config(true);
    let server = Server::with_config(|c| c.tls = Some(config));
    let mut c = TlsClient::connect(server.addr, pki.client_config(true)).unwrap();
    assert_eq!(c.cmd("ping"), "+OK pong");
    // Without a certificate the server refuses the handshake (TLS 1.3
    // reports it at the first read).
    assert!(TlsClient::connect(server.addr, pki.client_config(false)).is_err());
}

#[test]
fn bad_certificate_files_are_clear_errors_at_start() {
    let pki = Pki::new();
    let tls = |cert: &str, key: &str| {
        herald_server::tls::server_config(&pki.path(cert), &pki.path(key), None)
            .unwrap_err()
            .to_string()
    };
    let missing = tls("nope.pem", "server.key");
    assert!(missing.contains("nope.pem"), "{missing}");
    let mismatched = tls("server.pem", "other.key");
    assert!(mismatched.contains("do not go together"), "{mismatched}");
    let no_key = tls("server.pem", "server.pem");
    assert!(no_key.contains("no PEM private key"), "{no_key}");
}
