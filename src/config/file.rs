//! The TOML file of `--config`, applied through clap itself.
//!
//! Each key of the file names a flag (`sim-rate` or `sim_rate`). Its value
//! is checked with that flag's own value parser, so a bad value is reported
//! with the file and the key, and then becomes the flag's *default* in the
//! clap `Command` before the command line is parsed. Clap's own precedence
//! then gives flag > `TICKWIRE_<FLAG>` environment > file > built-in default,
//! and a flag added to `Config` works from the file with no code here.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

use super::ConfigError;

/// The keys a config file set, after checking, ready to become defaults.
#[derive(Debug, Clone, Default)]
pub struct FileDefaults {
    /// Where the values came from (`-` for stdin).
    pub path: PathBuf,
    /// `(arg id, key as written, values)` for every key in the file.
    pub values: Vec<(String, String, Vec<String>)>,
}

impl FileDefaults {
    /// The key (as written in the file) that set the argument `id`.
    pub fn key_of(&self, id: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, k, _)| k.as_str())
    }

    /// Makes the file's values the defaults of `cmd`'s arguments (and of its
    /// `serve` subcommand's, which are the same `Config`).
    pub fn apply(&self, mut cmd: Command) -> Command {
        for (id, _, values) in &self.values {
            let set = |a: Arg| a.default_values(values.clone());
            cmd = cmd.mut_arg(id, set);
            if cmd.find_subcommand("serve").is_some() {
                cmd = cmd.mut_subcommand("serve", |s| s.mut_arg(id, set));
            }
        }
        cmd
    }
}

/// Reads a TOML config file (`-` reads stdin).
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse().map_err(|source| ConfigError::Toml {
        path: path.to_path_buf(),
        source,
    })
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Why one value was refused, without clap's usage text: the value
/// parser's own reason when it gave one.
pub(super) fn reason(arg: &Arg, value: &str, err: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(err) {
        return source.to_string();
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|p| p.get_name().to_string())
        .collect();
    if possible.is_empty() {
        format!("`{value}` is not a valid value")
    } else {
        format!("`{value}` is not one of {}", possible.join(", "))
    }
}

/// Runs one value through its flag's parser (clap keeps the parser itself
/// private, so the value is parsed as `--name=value` on a copy of `cmd`).
/// Only errors about the value count: a missing companion flag (`requires`)
/// is a question for the whole configuration, not for this key.
fn parse_value(cmd: &Command, name: &str, value: &str) -> Result<(), clap::Error> {
    use clap::error::ErrorKind;
    let probe = cmd.clone().mut_args(|a| a.env(None::<&str>));
    match probe.try_get_matches_from(["tickwire".to_string(), format!("--{name}={value}")]) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ValueValidation | ErrorKind::InvalidValue
            ) =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

/// Checks every key of `table` against the flags of `cmd` and returns the
/// values as defaults to apply.
pub fn check(cmd: &Command, path: &Path, table: &toml::Table) -> Result<FileDefaults, ConfigError> {
    let mut values = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let bad = |reason: String| ConfigError::Value {
            path: path.to_path_buf(),
            key: key.clone(),
            reason,
        };
        let Some(arg) = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()))
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        else {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key: key.clone(),
            });
        };
        if name == "config" {
            return Err(bad("a config file cannot name another one".into()));
        }
        let flag = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        let many = matches!(arg.get_action(), ArgAction::Append);
        let items: Vec<String> = match value {
            toml::Value::Array(items) if many => items
                .iter()
                .map(scalar)
                .collect::<Option<_>>()
                .ok_or_else(|| bad("give an array of strings or numbers".into()))?,
            toml::Value::Array(_) => {
                return Err(bad("takes one value, not an array".into()));
            }
            toml::Value::Boolean(_) | toml::Value::String(_) if flag => {
                let s = scalar(value).unwrap_or_default();
                if s != "true" && s != "false" {
                    return Err(bad(format!("`{s}` is not a boolean: use true or false")));
                }
                vec![s]
            }
            _ if flag => return Err(bad("give true or false".into())),
            v => {
                let s = scalar(v).ok_or_else(|| bad("give a string, number or boolean".into()))?;
                match arg.get_value_delimiter() {
                    Some(d) if many => s.split(d).map(str::to_string).collect(),
                    _ => vec![s],
                }
            }
        };
        for item in &items {
            parse_value(cmd, &name, item).map_err(|e| bad(reason(arg, item, &e)))?;
        }
        let id = arg.get_id().to_string();
        if values.iter().any(|(i, _, _)| *i == id) {
            return Err(bad(format!("`{name}` is set twice")));
        }
        values.push((id, key.clone(), items));
    }
    Ok(FileDefaults {
        path: path.to_path_buf(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A switch (`SetTrue`, what `#[arg(long)] x: bool` derives) works
    /// from a file too, whichever flags are added to `Config` later.
    #[test]
    fn a_file_turns_a_plain_switch_on() {
        let cmd = Command::new("t")
            .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
            .arg(
                Arg::new("names")
                    .long("names")
                    .action(ArgAction::Append)
                    .value_delimiter(','),
            );
        let table: toml::Table = "quiet = true\nnames = \"a,b\"\n".parse().unwrap();
        let file = check(&cmd, Path::new("t.toml"), &table).unwrap();
        let m = file.apply(cmd.clone()).try_get_matches_from(["t"]).unwrap();
        assert!(m.get_flag("quiet"));
        let names: Vec<&String> = m.get_many("names").unwrap().collect();
        assert_eq!(names, ["a", "b"]);
        let m = cmd.clone().try_get_matches_from(["t"]).unwrap();
        assert!(!m.get_flag("quiet"), "without the file");
        let bad: toml::Table = "quiet = \"yes\"\n".parse().unwrap();
        let err = check(&cmd, Path::new("t.toml"), &bad).unwrap_err();
        assert!(err.to_string().contains("not a boolean"), "{err}");
    }
}
