//! Loading a [`Config`]: the command line, the `TICKWIRE_*` environment
//! and the `--config` file through one clap command, then the checks across
//! flags, with errors that say where a value came from.

use std::path::PathBuf;

use clap::{Args, FromArgMatches};

use super::file::{self, FileDefaults};
use super::{Config, ConfigError};

/// Finds `--config FILE` (or `--config=FILE`, or `TICKWIRE_CONFIG`) of a
/// serve command line.
fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("TICKWIRE_CONFIG").map(PathBuf::from)
}

/// A bad value that came from a `TICKWIRE_*` variable (its flag is not on
/// the command line) is reported under the variable's name.
fn from_env(e: clap::Error, args: &[String]) -> ConfigError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return e.into();
    }
    let Some(ContextValue::String(invalid)) = e.get(ContextKind::InvalidArg) else {
        return e.into();
    };
    // `--book-depth <BOOK_DEPTH>`, `--loop[=<REPLAY_LOOP>]`
    let long = invalid
        .split(|c: char| c.is_whitespace() || c == '[' || c == '=')
        .next()
        .unwrap_or_default();
    let on_command_line = args
        .iter()
        .any(|a| a == long || a.starts_with(&format!("{long}=")));
    let cmd = serve_command();
    let Some(arg) = cmd.get_arguments().find(|a| {
        a.get_long()
            .is_some_and(|l| long.strip_prefix("--") == Some(l))
    }) else {
        return e.into();
    };
    match arg.get_env().map(|v| v.to_string_lossy().into_owned()) {
        Some(var) if !on_command_line && std::env::var_os(&var).is_some() => {
            let value = match e.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(v)) => v.clone(),
                _ => String::new(),
            };
            let reason = file::reason(arg, &value, &e);
            ConfigError::Env { var, reason }
        }
        _ => e.into(),
    }
}

/// The flags of `serve` alone, as a clap command.
pub fn serve_command() -> clap::Command {
    Config::augment_args(clap::Command::new("tickwire serve"))
}

/// Says where the value of argument `id` came from, for error messages.
fn origin(matches: &clap::ArgMatches, file: &FileDefaults, id: &str) -> String {
    use clap::parser::ValueSource;
    let cmd = serve_command();
    let arg = cmd.get_arguments().find(|a| a.get_id() == id);
    let long = arg.and_then(|a| a.get_long()).unwrap_or(id);
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => format!("--{long}"),
        Some(ValueSource::EnvVariable) => {
            let env = arg
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned());
            format!("--{long} (from {})", env.unwrap_or_default())
        }
        _ => match file.key_of(id) {
            Some(key) => format!("`{key}` (config file {})", file.path.display()),
            None => format!("--{long} (default)"),
        },
    }
}

impl Config {
    /// Checks what single values cannot: combinations that make no sense.
    /// `origin(id)` names where an argument's value came from.
    fn validate(&self, origin: &dyn Fn(&str) -> String) -> Result<(), String> {
        if self.analytics_on() && !self.candle_intervals.contains(&self.signal_interval) {
            return Err(format!(
                "{} is `{}`, which is not among {} `{}`: signals are computed at the close of \
                 a built candle, so add it there or pick one of those",
                origin("signal_interval"),
                self.signal_interval,
                origin("candle_intervals"),
                self.candle_intervals
                    .iter()
                    .map(|i| i.label())
                    .collect::<Vec<_>>()
                    .join(","),
            ));
        }
        if self.reconnect_min > self.reconnect_max {
            return Err(format!(
                "{} ({:?}) is above {} ({:?})",
                origin("reconnect_min"),
                self.reconnect_min,
                origin("reconnect_max"),
                self.reconnect_max
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(format!("{} needs --tls-key too", origin("tls_cert"))),
            (None, Some(_)) => Err(format!("{} needs --tls-cert too", origin("tls_key"))),
            _ => Ok(()),
        }
    }
}

/// Loads a config file alone, as `serve --config FILE` would but without
/// the environment, and returns the keys it sets.
pub fn check_file(path: &std::path::Path) -> Result<Vec<String>, ConfigError> {
    let table = file::read_table(path)?;
    let cmd = serve_command().mut_args(|a| a.env(None::<&str>));
    let file = file::check(&cmd, path, &table)?;
    let matches = file.apply(cmd).try_get_matches_from(["tickwire serve"])?;
    let config = Config::from_arg_matches(&matches)?;
    config
        .validate(&|id| origin(&matches, &file, id))
        .map_err(ConfigError::Invalid)?;
    Ok(table.keys().cloned().collect())
}

/// `tickwire config example`: every key of `serve` with its default.
pub fn example() -> String {
    super::example::render(&serve_command())
}

/// Parses `args` (program name first) with `cmd`, a command that holds the
/// serve flags (at its top or under a subcommand). When `serve` is true the
/// TOML file of `--config` (or `TICKWIRE_CONFIG`) gives the flags their
/// defaults; other subcommands do not read it. A bad value from a
/// `TICKWIRE_*` variable is reported under the variable's name.
pub fn parse_with_file(
    cmd: clap::Command,
    args: &[String],
    serve: bool,
) -> Result<(clap::ArgMatches, FileDefaults), ConfigError> {
    let mut cmd = cmd;
    let mut file = FileDefaults::default();
    if let Some(path) = config_path(args).filter(|_| serve) {
        let table = file::read_table(&path)?;
        file = file::check(&serve_command(), &path, &table)?;
        cmd = file.apply(cmd);
    }
    let matches = cmd
        .try_get_matches_from(args)
        .map_err(|e| from_env(e, args))?;
    Ok((matches, file))
}

impl Config {
    /// Checks the combinations of `self`'s values, read from `matches` with
    /// `file` as defaults (see [`parse_with_file`]); the error names where
    /// each value came from.
    pub fn check(
        &self,
        matches: &clap::ArgMatches,
        file: &FileDefaults,
    ) -> Result<(), ConfigError> {
        self.validate(&|id| origin(matches, file, id))
            .map_err(ConfigError::Invalid)
    }
}

/// The serve settings of no command line: the defaults, with the
/// `TICKWIRE_*` environment applied (no config file).
pub fn environment_only() -> Result<Config, ConfigError> {
    let matches = serve_command().try_get_matches_from(["tickwire serve"])?;
    Ok(Config::from_arg_matches(&matches)?)
}
