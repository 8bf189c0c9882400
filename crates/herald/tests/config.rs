//! PROTOCOL.md §16.1 and §16.3: `herald serve --config FILE` and its
//! precedence (flag > environment > file > default), errors that name the
//! file, key and line, where HTTP is served (`--http`, its default, `off`),
//! `--log-format json`, and the shell completions.
mod common;
use common::*;

use std::net::TcpListener;
use std::path::Path;

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).expect("write config");
    name.to_string()
}

/// `herald serve --print-config` with `args` and `envs` in `dir`: the TOML.
fn effective(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> toml::Table {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    all.push("--print-config");
    let (code, out, err) = herald_run(&all, envs, dir);
    assert_eq!(code, Some(0), "{err}");
    toml::from_str(&out).unwrap_or_else(|e| panic!("not TOML ({e}):\n{out}"))
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = write(
        dir,
        "herald.toml",
        "fsync = \"interval\"\nmax_line_bytes = 4096\nsegment_bytes = 1000000\n",
    );
    let c = effective(dir, &[], &[]);
    assert_eq!(c["fsync"].as_str(), Some("always"), "default");
    assert_eq!(c["max_line_bytes"].as_integer(), Some(1 << 20));
    let c = effective(dir, &["--config", &file], &[]);
    assert_eq!(c["fsync"].as_str(), Some("interval"), "file over default");
    assert_eq!(c["max_line_bytes"].as_integer(), Some(4096));
    assert_eq!(c["segment_bytes"].as_integer(), Some(1_000_000));
    assert_eq!(
        c["io_threads"].as_integer(),
        Some(1),
        "default where the file says nothing"
    );
    let env = [
        ("HERALD_FSYNC", "always"),
        ("HERALD_MAX_LINE_BYTES", "2048"),
    ];
    let c = effective(dir, &["--config", &file], &env);
    assert_eq!(c["fsync"].as_str(), Some("always"), "environment over file");
    assert_eq!(c["max_line_bytes"].as_integer(), Some(2048));
    assert_eq!(c["segment_bytes"].as_integer(), Some(1_000_000));
    let c = effective(
        dir,
        &[
            "--config",
            &file,
            "--fsync",
            "interval",
            "--max-line-bytes",
            "100",
        ],
        &env,
    );
    assert_eq!(
        c["fsync"].as_str(),
        Some("interval"),
        "flag over environment"
    );
    assert_eq!(c["max_line_bytes"].as_integer(), Some(100));
    // HERALD_CONFIG names the file too.
    let c = effective(dir, &[], &[("HERALD_CONFIG", &file)]);
    assert_eq!(c["max_line_bytes"].as_integer(), Some(4096));
}

#[test]
fn the_file_configures_a_running_server_and_users_are_printed_without_passwords() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = write(
        dir,
        "herald.toml",
        &format!(
            "# a comment\nlisten = \"127.0.0.1:0\"\ndata = \"rel/data\"\nmax_line_bytes = 64\nreplies = \"errors\"\n\n\
             [[users]]\nname = \"alice\"\npassword = \"{PHC}\"\npublish = [\"orders.>\"]\n\
             subscribe = {{ allow = [\">\"], deny = [\"secrets.>\"] }}\nnames = [\"alice\", \"workers\"]\nadmin = true\n"
        ),
    );
    let c = effective(dir, &["--config", &file], &[]);
    let users = c["users"].as_array().unwrap();
    assert_eq!(users[0]["name"].as_str(), Some("alice"));
    assert_eq!(users[0]["admin"].as_bool(), Some(true));
    assert_eq!(users[0]["subscribe"]["deny"][0].as_str(), Some("secrets.>"));
    let printed = toml::to_string(&c).unwrap();
    assert!(!printed.contains("argon2"), "{printed}");

    // Served without the users (enforced since section 15; the hash above
    // is no real password): the other keys still configure the server.
    let file = write(
        dir,
        "herald-serve.toml",
        "listen = \"127.0.0.1:0\"\ndata = \"rel/data\"\nmax_line_bytes = 64\nreplies = \"errors\"\n",
    );
    let server = Herald::spawn(&["serve", "--config", &file], &[], dir);
    let addr = server.addr_of(&["listening", "fsync="]);
    // The relative data directory is relative to the working directory.
    assert!(dir.join("rel/data").is_dir());
    let mut c = Client::connect(addr);
    c.expect_err(
        &format!("pub t {{\"id\":\"1\",\"msg\":\"{}\"}}", "x".repeat(80)),
        "line_too_long",
    );
    // `replies = "errors"`: no +OK for a publish, a ping says it is stored.
    c.send(&pub_line("t", "1", 0, "m"));
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn bad_files_stop_the_server_naming_file_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "unknown.toml",
            "listen = \"127.0.0.1:0\"\ncolour = \"blue\"\n",
            &["unknown.toml", "unknown key `colour`"],
        ),
        (
            "value.toml",
            "fsync = \"sometimes\"\n",
            &["value.toml", "key `fsync`", "sometimes"],
        ),
        (
            "number.toml",
            "max_line_bytes = \"lots\"\n",
            &["number.toml", "key `max_line_bytes`"],
        ),
        (
            "syntax.toml",
            "fsync = \"always\"\n\nlisten = \n",
            &["syntax.toml", "line 3"],
        ),
        (
            "password.toml",
            "[[users]]\nname = \"bob\"\npassword = \"hunter2\"\n",
            &["password.toml", "users[0].password"],
        ),
        (
            "pattern.toml",
            &format!("[[users]]\nname = \"bob\"\npassword = \"{PHC}\"\npublish = [\"a.>.b\"]\n"),
            &["pattern.toml", "users[0].publish", "a.>.b"],
        ),
        (
            "userkey.toml",
            &format!("[[users]]\nname = \"bob\"\npassword = \"{PHC}\"\nrole = \"x\"\n"),
            &["userkey.toml", "role"],
        ),
    ];
    for (name, text, words) in cases {
        write(dir, name, text);
        let (code, _, err) = herald_run(
            &["serve", "--listen", "127.0.0.1:0", "--config", name],
            &[],
            dir,
        );
        assert_eq!(code, Some(1), "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: {w:?} not in {err}");
        }
        assert!(!err.contains("listening"), "{name}: started anyway: {err}");
        assert!(
            !err.contains("hunter2"),
            "{name}: echoed the password: {err}"
        );
    }
    let (code, _, err) = herald_run(&["serve", "--config", "missing.toml"], &[], dir);
    assert_eq!(code, Some(1));
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn http_off_serves_no_http() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Herald::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "d",
            "--http",
            "off",
        ],
        &[],
        tmp.path(),
    );
    let addr = server.addr_of(&["listening", "fsync="]);
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd("ping"), "+OK pong");
    assert!(!server.logs().contains("http"), "{}", server.logs());
    let c = effective(tmp.path(), &["--http", "off"], &[]);
    assert_eq!(c["http"].as_str(), Some("off"));
}

/// A free port whose successor is free too, the successor held by the
/// returned listener.
fn port_with_busy_successor() -> (u16, TcpListener) {
    for _ in 0..50 {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        if port == u16::MAX {
            continue;
        }
        if let Ok(next) = TcpListener::bind(("127.0.0.1", port + 1)) {
            drop(probe);
            return (port, next);
        }
    }
    panic!("no pair of free ports");
}

#[test]
fn a_busy_default_http_port_costs_a_warning_not_the_broker() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, _busy) = port_with_busy_successor();
    let listen = format!("127.0.0.1:{port}");
    let server = Herald::spawn(
        &["serve", "--listen", &listen, "--data", "d"],
        &[],
        tmp.path(),
    );
    let addr = server.addr_of(&["listening", "fsync="]);
    let warning = server.wait_for(&["WARN", "HTTP"]);
    assert!(
        warning.contains(&format!("127.0.0.1:{}", port + 1)),
        "{warning}"
    );
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd("ping"), "+OK pong");
    assert!(!server.logs().contains("http_addr"), "{}", server.logs());
}

#[test]
fn the_default_http_port_is_the_listen_port_plus_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, busy) = port_with_busy_successor();
    drop(busy);
    let listen = format!("127.0.0.1:{port}");
    let server = Herald::spawn(
        &["serve", "--listen", &listen, "--data", "d"],
        &[],
        tmp.path(),
    );
    let http = server.addr_of(&["http bound"]);
    assert_eq!(http.port(), port + 1);
    assert_eq!(http_get(http, "/healthz").body, "ok");
}

#[test]
fn a_busy_explicit_http_address_stops_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    for (args, envs) in [
        (
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data",
                "d",
                "--http",
                &addr,
            ],
            vec![],
        ),
        (
            vec!["serve", "--listen", "127.0.0.1:0", "--data", "d"],
            vec![("HERALD_HTTP", addr.as_str())],
        ),
    ] {
        let (code, _, err) = herald_run(&args, &envs, tmp.path());
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains(&addr) && err.contains("HTTP"), "{err}");
    }
    // In the file it is explicit too.
    write(tmp.path(), "h.toml", &format!("http = \"{addr}\"\n"));
    let (code, _, err) = herald_run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "d",
            "--config",
            "h.toml",
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Herald::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "d",
            "--log-format",
            "json",
        ],
        &[],
        tmp.path(),
    );
    let line = server.wait_for(&["\"listening\""]);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "listening");
    let addr: std::net::SocketAddr = v["fields"]["addr"].as_str().unwrap().parse().unwrap();
    let mut c = Client::connect(addr);
    c.cmd("ping");
    drop(c);
    server.wait_for(&["connection closed"]);
    for line in server.logs().lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    // The environment variable says the same.
    let server = Herald::spawn(
        &["serve", "--listen", "127.0.0.1:0", "--data", "d2"],
        &[("HERALD_LOG_FORMAT", "json")],
        tmp.path(),
    );
    let line = server.wait_for(&["\"listening\""]);
    serde_json::from_str::<serde_json::Value>(&line).expect("JSON log line");
}

#[test]
fn completions_for_bash_zsh_and_fish_name_the_serve_flags() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = herald_run(&["completions", shell], &[], tmp.path());
        assert_eq!(code, Some(0), "{shell}: {err}");
        for word in ["serve", "config", "print-config", "log-format"] {
            assert!(out.contains(word), "{shell}: no {word}");
        }
    }
}
