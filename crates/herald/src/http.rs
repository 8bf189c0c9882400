//! Where `herald serve` serves HTTP (`docs/protocol.md` 16.1): `--http
//! ADDR`, `--http off`, or by default the `--listen` host with its port + 1.
//!
//! A default address that cannot be bound costs a warning, not the broker
//! (another Herald, or anything else, may hold port 8001); an address the
//! user chose (flag, environment or file) must bind, or the server does
//! not start.

use anyhow::{Context, Result};
use std::fmt;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::warn;

/// How long a stopping server lets HTTP requests finish.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

/// The HTTP listener's address, resolved from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `--http off`.
    Off,
    /// Chosen by the user: must bind.
    Explicit(String),
    /// Derived from `--listen`: may be busy.
    Default(String),
    /// `--listen` has no port to add one to.
    NoDefault(String),
}

impl Setting {
    /// `http` as given (`explicit`: on the command line, in the environment
    /// or in the file), or the default derived from `listen`.
    pub fn resolve(http: &Option<String>, listen: &str, explicit: bool) -> Setting {
        match http {
            Some(v) if v.eq_ignore_ascii_case("off") => Setting::Off,
            Some(v) if explicit => Setting::Explicit(v.clone()),
            Some(v) => Setting::Default(v.clone()),
            None => default_for(listen),
        }
    }

    /// Binds the listener and starts serving the HTTP interface on the
    /// current runtime; `None` when there is no HTTP.
    ///
    /// # Errors
    /// An explicit address that cannot be bound.
    pub async fn start(
        &self,
        admin: herald_server::Admin,
        settings: herald_http::Settings,
    ) -> Result<Option<HttpServer>> {
        let listener = match self {
            Setting::Off => return Ok(None),
            Setting::NoDefault(listen) => {
                warn!(listen = %listen, "no HTTP: cannot derive its address from --listen; set --http");
                return Ok(None);
            }
            Setting::Explicit(addr) => tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve HTTP on {addr} (--http)"))?,
            Setting::Default(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    warn!(addr = %addr, cause = %e, "the default HTTP address is not available; running without HTTP (set --http ADDR, or --http off)");
                    return Ok(None);
                }
            },
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = herald_http::serve(listener, admin, settings, shutdown).await {
                warn!(cause = %e, "the HTTP server stopped");
            }
        });
        Ok(Some(HttpServer { stop, task }))
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::Off | Setting::NoDefault(_) => f.write_str("off"),
            Setting::Explicit(a) | Setting::Default(a) => f.write_str(a),
        }
    }
}

/// The `--listen` host with its port + 1; port 0 stays 0 (any free port).
fn default_for(listen: &str) -> Setting {
    let Some((host, port)) = listen.rsplit_once(':') else {
        return Setting::NoDefault(listen.to_string());
    };
    match port.parse::<u16>() {
        Ok(0) => Setting::Default(format!("{host}:0")),
        Ok(p) => match p.checked_add(1) {
            Some(p) => Setting::Default(format!("{host}:{p}")),
            None => Setting::NoDefault(listen.to_string()),
        },
        Err(_) => Setting::NoDefault(listen.to_string()),
    }
}

/// A running HTTP server.
pub struct HttpServer {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Stops accepting, lets requests in progress finish for a moment, then
    /// ends the rest.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(HTTP_DRAIN, &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_listen_port_plus_one() {
        assert_eq!(
            Setting::resolve(&None, "127.0.0.1:8000", false),
            Setting::Default("127.0.0.1:8001".into())
        );
        assert_eq!(
            Setting::resolve(&None, "[::1]:0", false),
            Setting::Default("[::1]:0".into())
        );
        assert!(matches!(
            Setting::resolve(&None, "host:65535", false),
            Setting::NoDefault(_)
        ));
        assert_eq!(
            Setting::resolve(&Some("OFF".into()), "x:1", true),
            Setting::Off
        );
        assert_eq!(
            Setting::resolve(&Some("0.0.0.0:9000".into()), "x:1", true),
            Setting::Explicit("0.0.0.0:9000".into())
        );
    }
}
