//! `herald serve --config FILE` (`docs/protocol.md` 16.3): a TOML file with
//! a key per `serve` flag and `[[users]]` tables.
//!
//! The keys are not listed here: every argument of `serve` is a key, under
//! its clap id (the flag's name with `_` for `-`), except the few in
//! [`NOT_KEYS`]. So a new flag is a new key with no change to this file.
//! Each value is turned into the flag's own text (`max_line_bytes = 4096`
//! into `4096`, a list into a comma-separated one) and checked by the
//! flag's own value parser, so the file accepts exactly what the flag
//! does. The checked values then become the flags' defaults and clap
//! parses the command line again: a flag wins over its environment
//! variable, which wins over the file, which wins over the built-in
//! default. Relative paths stay relative to the working directory.

use anyhow::{Result, anyhow, bail};
use clap::Command;
use herald_server::users::{self, User, UserSpec};
use std::path::Path;

/// `serve` arguments that are not settings, so not keys of the file.
const NOT_KEYS: &[&str] = &["config", "print_config", "help"];

/// The key of the user tables.
const USERS_KEY: &str = "users";

/// A loaded and checked configuration file.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// (key, value in the flag's syntax), in file order.
    pub values: Vec<(String, String)>,
    /// The `[[users]]` tables, checked.
    pub users: Vec<User>,
}

impl ConfigFile {
    /// Whether the file sets `key`.
    pub fn sets(&self, key: &str) -> bool {
        self.values.iter().any(|(k, _)| k == key)
    }
}

/// The keys a file may set: the ids of `serve`'s arguments.
fn keys(serve: &Command) -> impl Iterator<Item = &clap::Arg> {
    serve
        .get_arguments()
        .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()))
}

/// Reads and checks `path` against the arguments of `serve`.
///
/// # Errors
/// An unreadable file, a TOML syntax error (with its line), an unknown key,
/// or a value its flag would refuse; the message names the file and key.
pub fn load(path: &Path, serve: &Command) -> Result<ConfigFile> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read the configuration file {shown}: {e}"))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => anyhow!(
                "{shown}: line {line}: TOML syntax error: {}",
                e.message().trim()
            ),
            None => anyhow!("{shown}: TOML syntax error: {}", e.message().trim()),
        }
    })?;
    let mut file = ConfigFile::default();
    for (key, value) in &table {
        if key == USERS_KEY {
            let specs: Vec<UserSpec> = value.clone().try_into().map_err(|e: toml::de::Error| {
                anyhow!("{shown}: key `{key}`: {}", e.message().trim())
            })?;
            file.users = users::check(&specs)
                .map_err(|e| anyhow!("{shown}: key `{}`: {}", e.key, e.reason))?;
            continue;
        }
        let Some(arg) = keys(serve).find(|a| a.get_id() == key.as_str()) else {
            bail!(
                "{shown}: unknown key `{key}` (known keys: {}, {USERS_KEY})",
                keys(serve)
                    .map(|a| a.get_id().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let text = flag_text(value).map_err(|e| anyhow!("{shown}: key `{key}`: {e}"))?;
        // The flag's own parser decides (clap runs it only on a command line).
        let long = arg.get_long().unwrap_or(key);
        serve
            .clone()
            .no_binary_name(true)
            .try_get_matches_from([format!("--{long}={text}")])
            .map_err(|e| anyhow!("{shown}: key `{key}`: {}", clap_reason(&e)))?;
        file.values.push((key.clone(), text));
    }
    Ok(file)
}

/// `cli` with the values of `file` as the defaults of `serve`'s flags.
pub fn with_defaults(cli: Command, file: &ConfigFile) -> Command {
    cli.mut_subcommand("serve", |mut serve| {
        for (key, value) in &file.values {
            serve = serve.mut_arg(key.as_str(), |a| a.default_value(value.clone()));
        }
        serve
    })
}

/// A TOML value as its flag's text.
fn flag_text(value: &toml::Value) -> Result<String, String> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        _ => Err("expected a string, a number, a boolean or a list of them".to_string()),
    };
    match value {
        toml::Value::Array(items) => Ok(items
            .iter()
            .map(scalar)
            .collect::<Result<Vec<_>, _>>()?
            .join(",")),
        other => scalar(other),
    }
}

/// The reason in a clap error, without its `error:` prefix and usage tips.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// The effective configuration as TOML, passwords elided: every key with
/// the value `serve` will use (`raw` gives a key's value as parsed from
/// flags, environment, file and defaults; `None` when it has none).
pub fn to_toml(serve: &Command, raw: impl Fn(&str) -> Option<String>, users: &[User]) -> String {
    let mut table = toml::Table::new();
    for arg in keys(serve) {
        let key = arg.get_id().as_str();
        if let Some(text) = raw(key) {
            let value = match text.parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => toml::Value::String(text),
            };
            table.insert(key.to_string(), value);
        }
    }
    if !users.is_empty() {
        let list = users
            .iter()
            .map(|u| {
                let mut t = toml::Table::new();
                let strings = |v: &[users::Pattern]| {
                    toml::Value::Array(
                        v.iter()
                            .map(|p| toml::Value::String(p.as_str().into()))
                            .collect(),
                    )
                };
                t.insert("name".into(), toml::Value::String(u.name.clone()));
                t.insert("password".into(), toml::Value::String("(elided)".into()));
                for (key, perm) in [("publish", &u.publish), ("subscribe", &u.subscribe)] {
                    let mut p = toml::Table::new();
                    p.insert("allow".into(), strings(&perm.allow));
                    p.insert("deny".into(), strings(&perm.deny));
                    t.insert(key.into(), toml::Value::Table(p));
                }
                t.insert("names".into(), strings(&u.names));
                t.insert("admin".into(), toml::Value::Boolean(u.admin));
                toml::Value::Table(t)
            })
            .collect();
        table.insert(USERS_KEY.into(), toml::Value::Array(list));
    }
    toml::to_string(&table).unwrap_or_default()
}
