//! The `tickwire` command line: the serve flags (the [`Config`]) at the
//! top or under `serve`, and the other subcommands. Loading it reads the
//! `--config` file and the environment through the configuration's own
//! parser ([`parse_with_file`]).

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ConfigError, parse_with_file};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "tickwire",
    version,
    about = "Market-data feed server: protobuf and JSON over WebSocket"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve` flags, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the feed (the default).
    Serve(Box<Config>),
    /// Record events from a running tickwire (or from sources run in-process)
    /// to a `.twr` file for `serve --source replay:FILE`.
    Record(super::RecordArgs),
    /// Print an example config file, or check one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the events of channels or patterns as they arrive (a wscat for
    /// this feed: columns on a terminal, JSON lines when piped).
    Sub(super::SubArgs),
    /// Show a live order-book ladder of a book channel, checksum verified.
    Book(super::BookArgs),
    /// List the server's channels with their kind and seq.
    Channels(super::ChannelsArgs),
}

/// `tickwire config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented TOML file with every key of `serve` and its default.
    Example,
    /// Check a TOML file as `serve --config FILE` would load it (`-` reads
    /// stdin). The environment is not consulted.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

impl Cli {
    /// Parses `args` (program name first), with the TOML file of
    /// `--config` (or `TICKWIRE_CONFIG`) as the defaults of the flags.
    pub fn load(args: Vec<String>) -> Result<Self, ConfigError> {
        // `record`, `config` and the client commands do not read the file
        let serve = !args.get(1).is_some_and(|a| {
            matches!(
                a.as_str(),
                "record" | "config" | "help" | "sub" | "book" | "channels"
            )
        });
        let (matches, file) = parse_with_file(Self::command(), &args, serve)?;
        let cli = Self::from_arg_matches(&matches)?;
        let serve = match (&cli.command, matches.subcommand()) {
            (Some(Command::Serve(c)), Some((_, sub))) => Some((&**c, sub)),
            (None, _) => Some((&cli.serve, &matches)),
            _ => None,
        };
        if let Some((config, m)) = serve {
            config.check(m, &file)?;
        }
        Ok(cli)
    }

    /// The serve settings, whichever form the command line took (the
    /// defaults under `record`, `config` and the client commands, which have
    /// their own).
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c)) => *c,
            Some(
                Command::Record(_)
                | Command::Config(_)
                | Command::Sub(_)
                | Command::Book(_)
                | Command::Channels(_),
            )
            | None => self.serve,
        }
    }
}
