//! Strict configuration: a key that is not in the tree is an error naming
//! the key and the closest valid one, so a mistyped setting (`listn`,
//! `[http] demo_pag`) never silently stays at its default.
//!
//! - The TOML file (`--config FILE`, `roomcast config --check FILE`) is
//!   checked whole: every unknown key is reported, and the process does not
//!   start.
//! - `ROOMCAST_…` environment variables are checked too, but an unknown one
//!   is only warned about at start ([`unknown_env`]): the environment is
//!   shared with other programs, whose variables may share the prefix.
//!
//! The valid keys are those of [`Config::default`] serialized, so a field
//! added to the tree is known here without a list to keep in step.

use std::fmt;

use figment::value::{Dict, Value};
use serde_json::Map;

use crate::config::Config;

/// A key that is not in the configuration tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    /// The key as written, dotted (`http.demo_pag`).
    pub key: String,
    /// The valid key most like it, dotted (`http.demo_page`).
    pub closest: Option<String>,
    /// Where it was written: a file's path, or `ROOMCAST_HTTP__DEMO_PAG`.
    pub source: String,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown key `{}` in {}", self.key, self.source)?;
        if let Some(c) = &self.closest {
            write!(f, "; did you mean `{c}`?")?;
        }
        Ok(())
    }
}

/// The tree's keys: the defaults as JSON objects, nested.
fn known() -> Map<String, serde_json::Value> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The unknown keys of a parsed TOML file (`dict`), from `source`.
pub fn unknown_in(dict: &Dict, source: &str) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    walk("", dict, &known(), source, &mut out);
    out
}

fn walk(
    prefix: &str,
    dict: &Dict,
    known: &Map<String, serde_json::Value>,
    source: &str,
    out: &mut Vec<UnknownKey>,
) {
    for (key, value) in dict {
        let full = join(prefix, key);
        match known.get(key) {
            None => out.push(UnknownKey {
                closest: closest(key, known.keys()).map(|c| join(prefix, c)),
                key: full,
                source: source.to_owned(),
            }),
            Some(serde_json::Value::Object(section)) => {
                if let Value::Dict(_, inner) = value {
                    walk(&full, inner, section, source, out);
                }
            }
            // A leaf: its value's type is checked when the tree is built.
            Some(_) => {}
        }
    }
}

/// The `ROOMCAST_…` variables of `vars` that name no key, as figment reads
/// them (`__` between nested keys, any case).
pub fn unknown_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<UnknownKey> {
    let known = known();
    let mut out = Vec::new();
    for (name, _) in vars {
        let Some(rest) = name.strip_prefix("ROOMCAST_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        let mut section = &known;
        let mut prefix = String::new();
        for (i, part) in path.iter().enumerate() {
            match section.get(part) {
                Some(serde_json::Value::Object(inner)) if i + 1 < path.len() => {
                    prefix = join(&prefix, part);
                    section = inner;
                }
                // A whole section set at once, or a leaf: known.
                Some(_) if i + 1 == path.len() => break,
                _ => {
                    out.push(UnknownKey {
                        key: path.join("."),
                        closest: closest(part, section.keys()).map(|c| join(&prefix, c)),
                        source: name.clone(),
                    });
                    break;
                }
            }
        }
    }
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The candidate closest to `key` by edit distance.
fn closest<'a>(key: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    candidates
        .min_by_key(|c| strsim::levenshtein(key, c))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;
    use figment::providers::{Format, Toml};

    fn parse(toml: &str) -> Dict {
        Figment::from(Toml::string(toml)).extract().unwrap()
    }

    #[test]
    fn unknown_file_keys_are_named_with_the_closest_valid_key() {
        let found = unknown_in(
            &parse(
                "listn = \"0.0.0.0:1\"\n[http]\ndemo_pag = false\n[limits.login_ip]\nburts = 3\n[bus.nats]\nurll = \"x\"\n",
            ),
            "rc.toml",
        );
        let named: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|u| (u.key.as_str(), u.closest.as_deref()))
            .collect();
        assert!(named.contains(&("listn", Some("listen"))), "{named:?}");
        assert!(
            named.contains(&("http.demo_pag", Some("http.demo_page"))),
            "{named:?}"
        );
        assert!(
            named.contains(&("limits.login_ip.burts", Some("limits.login_ip.burst"))),
            "{named:?}"
        );
        assert!(
            named.contains(&("bus.nats.urll", Some("bus.nats.url"))),
            "{named:?}"
        );
        assert_eq!(found.len(), 4);
        assert_eq!(
            found[0].to_string(),
            "unknown key `bus.nats.urll` in rc.toml; did you mean `bus.nats.url`?"
        );
    }

    #[test]
    fn the_documented_file_has_no_unknown_key() {
        assert_eq!(
            unknown_in(&parse(crate::config::DEFAULT_TOML), "default"),
            vec![]
        );
    }

    #[test]
    fn unknown_environment_variables_are_found() {
        let vars = [
            ("ROOMCAST_LISTEN", "x"),
            ("ROOMCAST_HTTP__DEMO_PAGE", "x"),
            ("ROOMCAST_LIMITS__ENABLD", "false"),
            ("ROOMCAST_LIMITS__LOGIN_IP__BURST", "3"),
            ("ROOMCAST_BUS", "{kind=\"nats\"}"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let found = unknown_env(vars);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "limits.enabld");
        assert_eq!(found[0].closest.as_deref(), Some("limits.enabled"));
        assert_eq!(found[0].source, "ROOMCAST_LIMITS__ENABLD");
    }
}
