//! Users and their permissions as the configuration file gives them
//! (`docs/protocol.md` 15 and 16.3), checked when the file is loaded.
//!
//! This module only parses and validates: a [`UserSpec`] is one
//! `[[users]]` table as written, [`User`] the checked form, with its
//! password hash's shape verified (not the password: hashing belongs to
//! the authentication code) and every pattern parsed. Enforcing them on
//! connections is `auth`'s job (and the HTTP API's, through
//! [`crate::auth::Authenticator`]).

pub use crate::pattern::Pattern;
use serde::Deserialize;
use std::fmt;

/// One `[[users]]` table as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user's name (topic-name rules).
    pub name: String,
    /// An argon2 PHC string, `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    pub password: String,
    /// Topics the user may publish to.
    #[serde(default)]
    pub publish: Option<PermissionSpec>,
    /// Topics the user may subscribe to (and `peek`, `ack`, ...).
    #[serde(default)]
    pub subscribe: Option<PermissionSpec>,
    /// Durable and group names the user may take; default: its own name
    /// and `<name>.>`.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// May remove subscriptions and change the cluster over HTTP.
    #[serde(default)]
    pub admin: bool,
}

/// `publish` or `subscribe` as written: a list of allowed patterns, or a
/// table `{ allow = [...], deny = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PermissionSpec {
    /// Allowed patterns.
    List(Vec<String>),
    /// Allowed and denied patterns.
    Table(PermissionTable),
}

/// `{ allow = [...], deny = [...] }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionTable {
    /// Allowed patterns.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Denied patterns; a deny wins over an allow.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A checked user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Name.
    pub name: String,
    /// The password's argon2 PHC string (shape checked).
    pub password: PasswordHash,
    /// Publish permission.
    pub publish: Permission,
    /// Subscribe permission.
    pub subscribe: Permission,
    /// Patterns of the durable and group names the user may take.
    pub names: Vec<Pattern>,
    /// Whether the user is an administrator.
    pub admin: bool,
}

/// Allowed and denied topic patterns; nothing allowed by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// Allowed.
    pub allow: Vec<Pattern>,
    /// Denied (wins).
    pub deny: Vec<Pattern>,
}

impl Permission {
    /// Whether `topic` is allowed: some allow pattern matches and no deny
    /// pattern does.
    pub fn allows(&self, topic: &str) -> bool {
        self.allow.iter().any(|p| p.matches(topic)) && !self.deny.iter().any(|p| p.matches(topic))
    }
}

/// An argon2 PHC string whose shape was checked; `Debug` and `Display`
/// never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Checks the shape of an argon2 PHC string:
    /// `$argon2id$v=19$m=<n>,t=<n>,p=<n>$<salt>$<hash>` (`argon2i` and
    /// `argon2d` too), salt and hash in unpadded base64.
    ///
    /// # Errors
    /// What is wrong with it, without repeating it.
    pub fn parse(phc: &str) -> Result<PasswordHash, String> {
        let parts: Vec<&str> = phc.split('$').collect();
        let [empty, alg, version, params, salt, hash] = parts[..] else {
            return Err("not an argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash); make one with `herald passwd`".into());
        };
        if !empty.is_empty() || !matches!(alg, "argon2id" | "argon2i" | "argon2d") {
            return Err("not an argon2 PHC string: it must start with $argon2id$".into());
        }
        let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !version.strip_prefix("v=").is_some_and(number) {
            return Err("the argon2 PHC string has no version (v=19)".into());
        }
        let mut keys = Vec::new();
        for param in params.split(',') {
            match param.split_once('=') {
                Some((k @ ("m" | "t" | "p"), v)) if number(v) => keys.push(k),
                _ => {
                    return Err(
                        "the argon2 PHC string's parameters must be m=<n>,t=<n>,p=<n>".into(),
                    );
                }
            }
        }
        keys.sort_unstable();
        if keys != ["m", "p", "t"] {
            return Err("the argon2 PHC string's parameters must be m=<n>,t=<n>,p=<n>".into());
        }
        let b64 = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        };
        if !b64(salt) || !b64(hash) {
            return Err("the argon2 PHC string's salt and hash must be unpadded base64".into());
        }
        Ok(PasswordHash(phc.to_string()))
    }

    /// The PHC string, for the code that verifies passwords.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A user table that failed its checks: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct UserError {
    /// The key, as `users[<index>].<field>` (0-based index).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks every `[[users]]` table: names valid and unique, password shapes,
/// patterns.
///
/// # Errors
/// The first table that fails, naming its key.
pub fn check(specs: &[UserSpec]) -> Result<Vec<User>, UserError> {
    let mut users: Vec<User> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let err = |field: &str, reason: String| UserError {
            key: format!("users[{i}].{field}"),
            reason,
        };
        if !herald_proto::name::is_valid(&spec.name) {
            return Err(err(
                "name",
                format!("'{}' is not a valid user name", spec.name),
            ));
        }
        if users.iter().any(|u| u.name == spec.name) {
            return Err(err("name", format!("user '{}' is given twice", spec.name)));
        }
        let password = PasswordHash::parse(&spec.password).map_err(|e| err("password", e))?;
        let permission = |field: &str, spec: &Option<PermissionSpec>| {
            let (allow, deny) = match spec {
                None => (&[][..], &[][..]),
                Some(PermissionSpec::List(allow)) => (&allow[..], &[][..]),
                Some(PermissionSpec::Table(t)) => (&t.allow[..], &t.deny[..]),
            };
            let parse = |list: &[String]| {
                list.iter()
                    .map(|p| Pattern::parse(p))
                    .collect::<Result<Vec<_>, _>>()
            };
            Ok::<_, UserError>(Permission {
                allow: parse(allow).map_err(|e| err(field, e))?,
                deny: parse(deny).map_err(|e| err(field, e))?,
            })
        };
        let publish = permission("publish", &spec.publish)?;
        let subscribe = permission("subscribe", &spec.subscribe)?;
        let names = match &spec.names {
            Some(list) => list
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err("names", e))?,
            None => vec![
                Pattern::parse(&spec.name).map_err(|e| err("name", e))?,
                Pattern::parse(&format!("{}.>", spec.name)).map_err(|e| err("name", e))?,
            ],
        };
        users.push(User {
            name: spec.name.clone(),
            password,
            publish,
            subscribe,
            names,
            admin: spec.admin,
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn pattern(p: &str) -> Pattern {
        Pattern::parse(p).unwrap()
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = Permission {
            allow: vec![pattern(">")],
            deny: vec![pattern("secrets.>")],
        };
        assert!(p.allows("orders"));
        assert!(!p.allows("secrets.x"));
        assert!(!Permission::default().allows("orders"));
    }

    #[test]
    fn password_shape_is_checked_without_echoing_it() {
        assert!(PasswordHash::parse(PHC).is_ok());
        for bad in [
            "hunter2",
            "$argon2id$v=19$m=1,t=2$salt$hash",
            "$bcrypt$v=19$m=1,t=2,p=1$salt$hash",
            "$argon2id$v=19$m=1,t=2,p=1$sa=lt$hash",
        ] {
            let e = PasswordHash::parse(bad).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert_eq!(
            format!("{:?}", PasswordHash::parse(PHC).unwrap()),
            "PasswordHash(..)"
        );
    }

    fn spec(name: &str) -> UserSpec {
        UserSpec {
            name: name.into(),
            password: PHC.into(),
            publish: Some(PermissionSpec::List(vec!["orders.>".into()])),
            subscribe: Some(PermissionSpec::Table(PermissionTable {
                allow: vec![">".into()],
                deny: vec!["secrets.>".into()],
            })),
            names: None,
            admin: false,
        }
    }

    #[test]
    fn users_are_checked_and_name_the_failing_key() {
        let users = check(&[spec("alice"), spec("bob")]).unwrap();
        assert!(users[0].publish.allows("orders.eu"));
        assert!(!users[0].subscribe.allows("secrets.x"));
        assert!(users[1].names.iter().any(|p| p.matches("bob.worker")));
        assert!(users[1].names.iter().any(|p| p.matches("bob")));

        let e = check(&[spec("alice"), spec("alice")]).unwrap_err();
        assert_eq!(e.key, "users[1].name");
        let mut bad = spec("carol");
        bad.publish = Some(PermissionSpec::List(vec!["a.>.b".into()]));
        assert_eq!(check(&[bad]).unwrap_err().key, "users[0].publish");
        let mut bad = spec("dave");
        bad.password = "plain".into();
        assert_eq!(check(&[bad]).unwrap_err().key, "users[0].password");
    }
}
