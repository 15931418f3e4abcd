//! The client commands `sub`, `book` and `channels`: a wscat for this feed
//! built on `tickwire-client` (so every command gets reconnect, resume, gap
//! notices and verified books for free).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::render;
use tickwire_client::{Client, ClientConfig, Format, Item};

/// Where the commands connect by default (what `tickwire serve` listens on).
const DEFAULT_URL: &str = "ws://127.0.0.1:8080/ws";

/// Output of `tickwire sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable columns (the default on a terminal).
    Table,
    /// One JSON object per line (the default when piped; `| jq` works).
    Jsonl,
}

/// `tickwire sub PATTERN...`.
#[derive(Debug, Clone, Args)]
pub struct SubArgs {
    /// Channel names or `*` patterns (`trade.sim.*`, `book.sim.BTC-USDT`).
    #[arg(required = true)]
    pub patterns: Vec<String>,
    /// Server WebSocket URL.
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,
    /// Output: `table` on a terminal, `jsonl` when piped, unless given.
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Stop after this many events (notices do not count).
    #[arg(long)]
    pub count: Option<u64>,
    /// JWT for servers with auth on.
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Skip the snapshots of stateful channels.
    #[arg(long)]
    pub no_snapshot: bool,
}

/// `tickwire book CHANNEL`.
#[derive(Debug, Clone, Args)]
pub struct BookArgs {
    /// A book channel (`book.sim.BTC-USDT`).
    pub channel: String,
    /// Server WebSocket URL.
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,
    /// Levels per side shown.
    #[arg(long, default_value_t = 10)]
    pub levels: usize,
    /// Stop after this many book events (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// JWT for servers with auth on.
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `tickwire channels`.
#[derive(Debug, Clone, Args)]
pub struct ChannelsArgs {
    /// Only channels matching this pattern.
    #[arg(default_value = "")]
    pub pattern: String,
    /// Server WebSocket URL.
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,
    /// JWT for servers with auth on.
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// One JSON object per line instead of columns.
    #[arg(long)]
    pub json: bool,
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] tickwire_client::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

pub(super) fn client_config(url: &str, token: &Option<String>) -> ClientConfig {
    let mut config = ClientConfig::new(url).format(Format::Proto);
    if let Some(token) = token {
        config = config.token(token.clone());
    }
    config
}

/// Runs one client command on a single-threaded runtime.
pub fn run<F>(command: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), CliError>>,
{
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|rt| rt.block_on(command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `| head` closing the pipe is a normal end for a stream printer
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickwire: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tickwire sub`: prints events as they arrive, notices on stderr (and
/// in the JSON stream, so a piped consumer sees them too).
pub async fn sub(args: SubArgs) -> Result<(), CliError> {
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Jsonl
    });
    let mut client = Client::connect(client_config(&args.url, &args.token)).await?;
    let names: Vec<&str> = args.patterns.iter().map(String::as_str).collect();
    client.subscribe_with(&names, !args.no_snapshot).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut events = 0;
    if format == OutputFormat::Table {
        render::table_header(&mut out)?;
    }
    while let Some(item) = client.next().await {
        let item = item?;
        match format {
            OutputFormat::Table => render::table_row(&mut out, &item)?,
            OutputFormat::Jsonl => render::json_line(&mut out, &item)?,
        }
        if !matches!(item, Item::Event(_)) {
            eprintln!("notice: {}", render::notice(&item));
        }
        std::io::Write::flush(&mut out)?;
        if let Item::Event(_) = item {
            events += 1;
            if args.count.is_some_and(|c| events >= c) {
                break;
            }
        }
    }
    client.close().await;
    Ok(())
}

/// `tickwire channels`: every channel with its kind and seq.
pub async fn channels(args: ChannelsArgs) -> Result<(), CliError> {
    let mut client = Client::connect(client_config(&args.url, &args.token)).await?;
    let mut list = client.list_channels(&args.pattern).await?;
    list.sort_by(|a, b| a.channel.cmp(&b.channel));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for c in &list {
        if args.json {
            let line = serde_json::json!({"channel": c.channel, "kind": c.kind, "seq": c.seq});
            std::io::Write::write_fmt(&mut out, format_args!("{line}\n"))?;
        } else {
            std::io::Write::write_fmt(
                &mut out,
                format_args!("{:<40} {:<10} {:>10}\n", c.channel, c.kind, c.seq),
            )?;
        }
    }
    std::io::Write::flush(&mut out)?;
    client.close().await;
    Ok(())
}
