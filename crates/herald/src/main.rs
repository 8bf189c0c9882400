//! The `herald` binary: `serve` runs the broker; the other subcommands
//! inspect a data directory or talk to a running broker.
#![forbid(unsafe_code)]

mod bench;
mod cli_client;
mod cli_sub;
mod cli_table;
mod cli_time;
mod cli_watch;
mod config_file;
mod http;
mod offline;

use anyhow::{Context, Result};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use herald_server::{Config, FsyncMode};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator. Per event the broker allocates
/// and frees a dozen small objects (parsed commands, ids, replies, queue
/// entries) while connections allocate and release read and write buffers
/// of 4-64 KiB; with glibc malloc, freeing those buffers keeps consolidating
/// the small-object bins (`malloc_consolidate`, `unlink_chunk` near the top
/// of a `perf` profile at prefetch 256). See benches/README.md for figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Herald: a prioritised, acknowledged, durable message broker that you can
/// drive with telnet.
#[derive(Parser)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the broker in the foreground (logs to stderr; SIGINT/SIGTERM stop it cleanly).
    Serve(ServeArgs),
    /// Print the unacknowledged events of a stopped broker's data directory,
    /// in the seed's per-topic JSON shape.
    Dump {
        /// Data directory of a stopped broker.
        #[arg(long, env = "HERALD_DATA", default_value = "./data")]
        data: PathBuf,
        /// Only this topic: prints {"<subscriber>": [events...]}. Without it,
        /// prints {"<topic>": {"<subscriber>": [events...]}}.
        topic: Option<String>,
    },
    /// Verify every record of a data directory's log; exits 1 on corruption.
    Check {
        /// Data directory to check.
        #[arg(long, env = "HERALD_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Publish one event (given as JSON or built from --id/--priority/--msg),
    /// or every line of stdin; --ttl, --delay and --not-before set its time
    /// fields.
    Pub(cli_client::PubArgs),
    /// Print each delivery of a topic as a JSON line, acknowledging it; as a
    /// durable subscriber (--name) or a group member (--group), with ack
    /// deadlines, retries, dead letters and limits.
    Sub(cli_sub::SubArgs),
    /// Create a topic (so subscribers can start before any publisher),
    /// optionally with a default time to live.
    Create(cli_client::CreateArgs),
    /// Show, without changing anything, the events of a durable
    /// subscriber's or a group's queue.
    Peek(cli_client::PeekArgs),
    /// List the topics.
    Topics(cli_client::Addr),
    /// Show per-topic counters (a table, or the broker's JSON with --json);
    /// with a topic, also its subscriptions; --watch keeps a live view of
    /// rates and counts.
    Stats(cli_client::StatsArgs),
    /// Check that the broker answers, and how fast.
    Ping(cli_client::Addr),
    /// Measure throughput and latency with publishers and acking subscribers.
    Bench(bench::BenchArgs),
    /// Print the argon2 hash of a password, for `password = "..."` in a
    /// `[[users]]` table of the configuration file. The password is read
    /// from a prompt on a terminal (asked twice) or as one line of stdin,
    /// never from the command line.
    Passwd,
    /// Print a shell completion script (for example
    /// `herald completions bash > /etc/bash_completion.d/herald`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (use port 0 for any free port; the log says which).
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Directory of the durable log (created if missing).
    #[arg(long, env = "HERALD_DATA", default_value = "./data")]
    data: PathBuf,
    /// When writes are forced to disk: `always` answers `+OK published` only
    /// after fdatasync (group commit); `interval` answers once written to the
    /// OS and fdatasyncs about once a second.
    #[arg(long, env = "HERALD_FSYNC", default_value = "always")]
    fsync: FsyncMode,
    /// Longest accepted command line in bytes; longer ones get `-ERR line_too_long`.
    #[arg(long, env = "HERALD_MAX_LINE_BYTES", default_value_t = herald_proto::MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Size of one log segment file in bytes.
    #[arg(long, env = "HERALD_SEGMENT_BYTES", default_value_t = herald_log::DEFAULT_SEGMENT_BYTES)]
    segment_bytes: u64,
    /// Reply mode of new connections: `all` answers every command; `errors`
    /// sends no `+OK` for pub, ack, nack and touch (errors still come), for
    /// fire-and-forget publishers that never read their socket. A client
    /// can change its own with `replies all|errors`.
    #[arg(long, env = "HERALD_REPLIES", default_value = "all", value_parser = parse_reply_mode)]
    replies: herald_proto::ReplyMode,
    /// Most client connections open at once; one more gets
    /// `-ERR unavailable` and is closed. At start the server raises its
    /// open-files limit as far as the system allows and warns if that is
    /// too low for this many connections.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS", default_value_t = herald_server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Threads that run connections and the broker. With 1 (the default) a
    /// command and its reply never cross threads, which gives the lowest
    /// latency; the fdatasync of big batches runs on a thread of its own.
    #[arg(long, env = "HERALD_IO_THREADS", default_value_t = 1)]
    io_threads: usize,
    /// Address of the HTTP API and metrics, or `off`. Default: the
    /// `--listen` host and its port + 1 (port 0 if `--listen` uses 0), and
    /// no HTTP, with a warning, if that port is busy; an address given
    /// here (or in the environment or the file) must be free.
    #[arg(long, env = "HERALD_HTTP")]
    http: Option<String>,
    /// PEM certificate (chain) of the server: with --tls-key, the --listen
    /// port and the HTTP port speak only TLS 1.2/1.3.
    #[arg(long, env = "HERALD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "HERALD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): TLS clients must present a certificate signed
    /// by one of them (it does not log a user in; `auth` still does).
    #[arg(long, env = "HERALD_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// A TOML configuration file: a key per flag (`max_line_bytes = 4096`)
    /// and `[[users]]` tables. Flags and environment variables win over it.
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML (passwords elided) and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if !matches!(cli.command, Cmd::Serve(_)) {
        init_logging(LogFormat::Text);
    }
    let result = match cli.command {
        Cmd::Serve(args) => serve_command(args),
        Cmd::Completions { shell } => completions(shell),
        Cmd::Passwd => passwd(),
        Cmd::Dump { data, topic } => offline::dump(&data, topic.as_deref()),
        Cmd::Check { data } => offline::check(&data),
        Cmd::Pub(args) => cli_client::publish(args),
        Cmd::Sub(args) => cli_sub::subscribe(args),
        Cmd::Create(args) => cli_client::create(args),
        Cmd::Peek(args) => cli_client::peek(args),
        Cmd::Topics(addr) => cli_client::topics(addr),
        Cmd::Stats(args) => cli_client::stats(args),
        Cmd::Ping(addr) => cli_client::ping(addr),
        Cmd::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("herald: {e:#}");
        std::process::exit(1);
    }
}

/// Prints the completion script for `shell`; a reader that stops early
/// (`| head`) is not an error.
fn completions(shell: clap_complete::Shell) -> Result<()> {
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "herald", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the completion script"),
    }
}

fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("HERALD_LOG")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// `herald serve`: reads the configuration file if there is one, parses
/// the command line again over it (flag > environment > file > default),
/// then prints the configuration or runs the broker.
fn serve_command(args: ServeArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => config_file::load(path, &serve_command_def())?,
        None => config_file::ConfigFile::default(),
    };
    let matches = config_file::with_defaults(Cli::command(), &file).get_matches();
    let serve_matches = matches
        .subcommand_matches("serve")
        .context("serve arguments")?;
    let args = ServeArgs::from_arg_matches(serve_matches).unwrap_or_else(|e| e.exit());
    let http = http::Setting::resolve(
        &args.http,
        &args.listen,
        explicit(serve_matches, "http") || file.sets("http"),
    );
    if args.print_config {
        let raw = |key: &str| match key {
            "http" => Some(http.to_string()),
            _ => raw_value(serve_matches, key),
        };
        print!(
            "{}",
            config_file::to_toml(&serve_command_def(), raw, &file.users)
        );
        return Ok(());
    }
    init_logging(args.log_format);
    if let Some(path) = &args.config {
        tracing::info!(file = %path.display(), users = file.users.len(), "configuration file read");
    }
    serve(args, http, file.users)
}

/// The `serve` subcommand's definition.
fn serve_command_def() -> clap::Command {
    Cli::command()
        .find_subcommand("serve")
        .cloned()
        .unwrap_or_else(|| clap::Command::new("serve"))
}

/// Whether `id` was given on the command line or in the environment.
fn explicit(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
    )
}

/// The text value `id` will have, however it was given.
fn raw_value(matches: &ArgMatches, id: &str) -> Option<String> {
    let values: Vec<String> = matches
        .try_get_raw(id)
        .ok()??
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    Some(values.join(","))
}

fn serve(
    args: ServeArgs,
    http: http::Setting,
    users: Vec<herald_server::users::User>,
) -> Result<()> {
    anyhow::ensure!(
        args.max_line_bytes > 0,
        "--max-line-bytes must be at least 1"
    );
    anyhow::ensure!(args.io_threads > 0, "--io-threads must be at least 1");
    anyhow::ensure!(
        args.max_connections > 0,
        "--max-connections must be at least 1"
    );
    raise_open_files_limit(args.max_connections);
    let mut builder = if args.io_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.io_threads);
        b
    };
    let runtime = builder
        .enable_all()
        .thread_name("herald-io")
        .build()
        .context("starting the tokio runtime")?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            herald_server::tls::server_config(cert, key, args.tls_client_ca.as_deref())
                .context("TLS settings (--tls-cert, --tls-key, --tls-client-ca)")?,
        ),
        (None, None) if args.tls_client_ca.is_some() => {
            anyhow::bail!("--tls-client-ca needs --tls-cert and --tls-key")
        }
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let mut config = Config::new(&args.data);
        config.fsync = args.fsync;
        config.max_line_bytes = args.max_line_bytes;
        config.segment_bytes = args.segment_bytes;
        config.replies = args.replies;
        config.users = users.clone();
        config.tls = tls.clone();
        config.max_connections = args.max_connections;
        let admin = herald_server::Admin::new();
        let mut settings = herald_http::Settings::new(args.max_line_bytes);
        settings.auth = herald_server::auth::Authenticator::new(users);
        settings.tls = tls;
        let http_server = http.start(admin.clone(), settings).await?;
        let result = herald_server::run_with(
            listener,
            config,
            std::sync::Arc::new(herald_log::StdStorage),
            admin,
            shutdown_signal(),
        )
        .await
        .with_context(|| format!("broker on {}", args.data.display()));
        if let Some(server) = http_server {
            server.stop().await;
        }
        result
    })
}

/// `herald passwd`: a password from a prompt or stdin, its hash on stdout.
fn passwd() -> Result<()> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        anyhow::ensure!(first == again, "the passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    let hash = herald_server::auth::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    println!("{hash}");
    Ok(())
}

/// File descriptors the server needs besides one per connection: the
/// listeners, the log's segment and directory, the runtime, stdio.
const RESERVED_FDS: u64 = 64;

/// Raises the open-files soft limit to the hard limit (each connection is
/// a file descriptor) and logs the resulting capacity; warns when it is
/// below `max_connections`, since accepts would then fail before the limit
/// refuses anyone.
fn raise_open_files_limit(max_connections: usize) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(cause = %e, "cannot raise the open-files limit");
            match rlimit::getrlimit(rlimit::Resource::NOFILE) {
                Ok((soft, _)) => soft,
                Err(_) => return,
            }
        }
    };
    let capacity = limit.saturating_sub(RESERVED_FDS);
    if capacity < max_connections as u64 {
        tracing::warn!(
            open_files = limit,
            capacity,
            max_connections,
            "the open-files limit allows fewer connections than --max-connections (raise the hard limit: ulimit -Hn, LimitNOFILE=)"
        );
    } else {
        tracing::info!(
            open_files = limit,
            capacity,
            max_connections,
            "connection capacity"
        );
    }
}

fn parse_reply_mode(word: &str) -> Result<herald_proto::ReplyMode, String> {
    herald_proto::ReplyMode::parse(word)
        .ok_or_else(|| format!("unknown reply mode '{word}' (expected 'all' or 'errors')"))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
