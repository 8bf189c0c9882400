//! Authentication and permissions (`docs/protocol.md` 15): who may log in,
//! and what each connection may do once it has.
//!
//! - [`Authenticator`]: the configured users and password verification.
//!   argon2 is slow on purpose (tens of milliseconds), so verification runs
//!   on tokio's blocking pool, a few at a time, never on the broker task; an
//!   unknown user costs the same work as a wrong password, so timing does
//!   not tell which names exist.
//! - `Session`: one connection's state, owned by its connection task: the
//!   user, the failures so far, and the permission answers already computed
//!   for each topic (so an authenticated connection's commands cost a hash
//!   lookup, not a pattern walk). Commands are checked here, in the order
//!   the client sent them; what this module answers itself (`auth_required`,
//!   `forbidden`, the `auth` replies) reaches the broker task as its own
//!   input on the same channel, so it keeps its place among the replies.
//!
//! Invariants: without users there is no `Session` and every command goes
//! to the broker task exactly as before (version-1 bytes unchanged); with
//! users, no command but `ping`, `quit` and `auth` reaches the broker before
//! a successful `auth`; a refused command changes nothing.

use crate::broker_task::Input;
use crate::users::User;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use herald_core::ConnId;
use herald_proto::{Command, ErrorCode, ParseError, PeekTarget, Reply};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tracing::{info, warn};

/// Failed `auth` commands after which a connection is closed (the last one
/// is answered first).
pub const MAX_AUTH_FAILURES: u32 = 5;
/// Password verifications running at once: each takes a core for tens of
/// milliseconds, and a flood of `auth` lines must not take them all.
const VERIFY_SLOTS: usize = 2;

/// The configured users and how to check their passwords.
#[derive(Debug)]
pub struct Authenticator {
    users: Vec<Arc<User>>,
    slots: Semaphore,
}

impl Authenticator {
    /// An authenticator over `users`; `None` when there are none (no
    /// authentication at all).
    pub fn new(users: Vec<User>) -> Option<Arc<Authenticator>> {
        if users.is_empty() {
            return None;
        }
        Some(Arc::new(Authenticator {
            users: users.into_iter().map(Arc::new).collect(),
            slots: Semaphore::new(VERIFY_SLOTS),
        }))
    }

    /// The user `name` if `password` is its password. Runs argon2 on the
    /// blocking pool; an unknown name is checked against another user's
    /// hash so that it takes as long as a wrong password.
    pub async fn verify(&self, name: &str, password: &str) -> Option<Arc<User>> {
        let known = self.users.iter().find(|u| u.name == name).cloned();
        // `new` refuses an empty list, so there is always a first user.
        let hash_of = known.as_ref().unwrap_or(&self.users[0]).password.clone();
        let password = password.to_string();
        // A closed semaphore is impossible (never closed); failing closed
        // would still only refuse the login.
        let _slot = self.slots.acquire().await.ok()?;
        let ok = tokio::task::spawn_blocking(move || verify_password(hash_of.as_str(), &password))
            .await
            .unwrap_or(false);
        known.filter(|_| ok)
    }
}

/// Whether `password` matches the argon2 PHC string `phc` (its own
/// parameters and salt).
pub fn verify_password(phc: &str, password: &str) -> bool {
    argon2::PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// An argon2id PHC string of `password` with a fresh random salt and the
/// argon2 crate's default (OWASP) parameters, for the configuration file.
///
/// # Errors
/// If the system has no random numbers or argon2 refuses the input (a
/// password over 4 GiB).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// What one connection may do: see the module docs.
pub(crate) struct Session {
    auth: Arc<Authenticator>,
    peer: SocketAddr,
    user: Option<Arc<User>>,
    failures: u32,
    /// Permission answers by topic, for the current user.
    publish: FxHashMap<Box<str>, bool>,
    subscribe: FxHashMap<Box<str>, bool>,
}

/// Which of a user's lists a check uses.
#[derive(Clone, Copy)]
enum Kind {
    Publish,
    Subscribe,
}

impl Session {
    pub(crate) fn new(auth: Arc<Authenticator>, peer: SocketAddr) -> Session {
        Session {
            auth,
            peer,
            user: None,
            failures: 0,
            publish: FxHashMap::default(),
            subscribe: FxHashMap::default(),
        }
    }

    /// Sends `commands` to the broker task, in order, with what this
    /// session answers itself in their places. Returns `false` once the
    /// connection is to be closed (too many failures) or the broker is
    /// gone; the caller then reads no more.
    pub(crate) async fn forward(
        &mut self,
        conn: ConnId,
        commands: Vec<Result<Command, ParseError>>,
        broker: &mpsc::Sender<Input>,
    ) -> Result<bool, mpsc::error::SendError<Input>> {
        let mut run = Vec::with_capacity(commands.len());
        for command in commands {
            let refusal = match &command {
                Ok(Command::Auth { user, password }) => {
                    flush(conn, &mut run, broker).await?;
                    let input = self.login(conn, user, password.as_str()).await;
                    let closing = matches!(input, Input::Answer { close: true, .. });
                    broker.send(input).await?;
                    if closing {
                        return Ok(false);
                    }
                    continue;
                }
                Ok(command) => self.check(command).err(),
                // Before `auth`, whatever the shape (15).
                Err(_) if self.user.is_none() => Some(auth_required()),
                Err(_) => None,
            };
            match refusal {
                None => run.push(command),
                Some(reply) => {
                    flush(conn, &mut run, broker).await?;
                    let close = false;
                    broker.send(Input::Answer { conn, reply, close }).await?;
                }
            }
        }
        flush(conn, &mut run, broker).await?;
        Ok(true)
    }

    /// Checks an `auth` and says what the broker task is to do with it.
    async fn login(&mut self, conn: ConnId, name: &str, password: &str) -> Input {
        if let Some(user) = self.auth.verify(name, password).await {
            info!(conn = conn.0, peer = %self.peer, user = %user.name, "authenticated");
            if self.user.as_ref().is_none_or(|u| u.name != user.name) {
                self.publish.clear();
                self.subscribe.clear();
            }
            self.user = Some(user.clone());
            return Input::Login { conn, user };
        }
        self.failures += 1;
        warn!(conn = conn.0, peer = %self.peer, user = %name, failures = self.failures, "authentication failed");
        let close = self.failures >= MAX_AUTH_FAILURES;
        let text = if close {
            "bad user or password; too many failures, closing"
        } else {
            "bad user or password"
        };
        Input::Answer {
            conn,
            reply: Reply::error(ErrorCode::AuthFailed, text),
            close,
        }
    }

    /// The refusal of `command`, if it is refused (15: `auth_required`
    /// before `auth`; `forbidden` for a topic or name the user may not
    /// use; `no_topic` for `stats` of a topic it may not see).
    fn check(&mut self, command: &Command) -> Result<(), Reply> {
        let Some(user) = self.user.clone() else {
            return if command.verb().allowed_before_auth() {
                Ok(())
            } else {
                Err(auth_required())
            };
        };
        if let Command::Stats { topic: Some(t) } = command {
            if !self.allows(&user, Kind::Subscribe, t) {
                return Err(Reply::error(ErrorCode::NoTopic, format!("no topic '{t}'")));
            }
            return Ok(());
        }
        if let (Some(permission), Some(topic)) = (command.verb().permission(), command.topic()) {
            let kind = match permission {
                herald_proto::Permission::Publish => Kind::Publish,
                herald_proto::Permission::Subscribe => Kind::Subscribe,
            };
            if !self.allows(&user, kind, topic) {
                let verb = match kind {
                    Kind::Publish => "publish to",
                    Kind::Subscribe => "subscribe to",
                };
                return Err(forbidden(format!(
                    "user '{}' may not {verb} '{topic}'",
                    user.name
                )));
            }
        }
        let name = match command {
            Command::Name { name } => Some(name),
            Command::Sub { options, .. } => options.group.as_ref(),
            Command::Unsub { group, .. } => group.as_ref(),
            Command::Peek {
                target: PeekTarget::Sub(name) | PeekTarget::Group(name),
                ..
            } => Some(name),
            _ => None,
        };
        match name {
            Some(name) if !may_use_name(&user, name) => Err(forbidden(format!(
                "user '{}' may not use the name '{name}'",
                user.name
            ))),
            _ => Ok(()),
        }
    }

    /// The cached answer for `topic`, computed on first use.
    fn allows(&mut self, user: &User, kind: Kind, topic: &str) -> bool {
        let (cache, permission) = match kind {
            Kind::Publish => (&mut self.publish, &user.publish),
            Kind::Subscribe => (&mut self.subscribe, &user.subscribe),
        };
        if let Some(&answer) = cache.get(topic) {
            return answer;
        }
        let answer = permission.allows(topic);
        cache.insert(topic.into(), answer);
        answer
    }
}

/// Whether `user` may take the durable or group name `name`.
pub fn may_use_name(user: &User, name: &str) -> bool {
    user.names.iter().any(|p| p.matches(name))
}

/// Whether `user` may subscribe to `topic` (and so see it in `topics` and
/// `stats`).
pub fn may_subscribe(user: &User, topic: &str) -> bool {
    user.subscribe.allows(topic)
}

/// Whether `user` may publish to `topic` (and create it).
pub fn may_publish(user: &User, topic: &str) -> bool {
    user.publish.allows(topic)
}

fn auth_required() -> Reply {
    Reply::error(
        ErrorCode::AuthRequired,
        "authenticate first: auth <user> <password>",
    )
}

fn forbidden(text: String) -> Reply {
    Reply::error(ErrorCode::Forbidden, text)
}

/// Sends the commands gathered so far as one batch.
async fn flush(
    conn: ConnId,
    run: &mut Vec<Result<Command, ParseError>>,
    broker: &mpsc::Sender<Input>,
) -> Result<(), mpsc::error::SendError<Input>> {
    if run.is_empty() {
        return Ok(());
    }
    let commands = std::mem::take(run);
    broker.send(Input::Commands { conn, commands }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(crate::users::PasswordHash::parse(&phc).is_ok());
        assert!(verify_password(&phc, "s3cret"));
        assert!(!verify_password(&phc, "s3cret "));
        assert!(!verify_password("not a hash", "s3cret"));
    }
}
