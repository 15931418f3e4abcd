//! The `tickwire` binary's command line and its client commands.
//!
//! - [`command`]: the command line itself (`serve` flags, subcommands) and
//!   its loading with the config file and the environment;
//! - [`record`]: the flags of `tickwire record`;
//! - [`client`]: `sub`, `book` and `channels`, clients of a running server
//!   ([`book`] draws the ladder, [`render`] the lines).

mod book;
mod client;
pub mod command;
pub mod record;
mod render;

pub use book::book;
pub use client::{BookArgs, ChannelsArgs, CliError, OutputFormat, SubArgs, channels, run, sub};
pub use command::{Cli, Command, ConfigCommand};
pub use record::RecordArgs;

use client::client_config;

#[cfg(test)]
mod load_tests;
