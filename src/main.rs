//! `tickwire`: the feed server's binary. Parses the command line
//! (`cli`) and hands the run to the composition root (`app`).

use std::process::ExitCode;

use mimalloc::MiMalloc;
use tickwire::cli::{Cli, Command, ConfigCommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::load(std::env::args().collect()) {
        Ok(cli) => cli,
        Err(tickwire::config::ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("tickwire: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Some(Command::Config(cmd)) => return config_command(cmd),
        Some(Command::Sub(args)) => {
            return tickwire::cli::run(tickwire::cli::sub(args.clone()));
        }
        Some(Command::Book(args)) => {
            return tickwire::cli::run(tickwire::cli::book(args.clone()));
        }
        Some(Command::Channels(args)) => {
            return tickwire::cli::run(tickwire::cli::channels(args.clone()));
        }
        _ => {}
    }
    let record = match &cli.command {
        Some(Command::Record(args)) => Some(args.clone()),
        _ => None,
    };
    let config = cli.into_config();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A closed stderr (a log pipe whose reader went away) must not turn
        // a log line into a panic: tracing-subscriber would report the write
        // error with eprintln!, which panics on EPIPE.
        .log_internal_errors(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tickwire: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            // cancel first: nothing must stand between a signal and shutdown
            signals.cancel();
            tracing::info!("signal received");
        });
        if let Some(args) = record {
            return match tickwire::app::record(&args, shutdown).await {
                Ok(s) => {
                    eprintln!(
                        "recorded {} events on {} channels in {:.1} s to {} ({} skipped by lag)",
                        s.events,
                        s.channels,
                        s.seconds,
                        args.out.display(),
                        s.lagged
                    );
                    if let Some(why) = &s.ended_by {
                        eprintln!("recording ended early: {why}");
                    }
                    if s.events == 0 {
                        eprintln!(
                            "tickwire record: nothing was recorded: no event arrived on {}",
                            args.channels.join(",")
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tickwire record: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        match tickwire::app::serve(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `tickwire config example` and `tickwire config check FILE`.
fn config_command(cmd: &ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Example => {
            print!("{}", tickwire::config::example());
            ExitCode::SUCCESS
        }
        ConfigCommand::Check { file } => match tickwire::config::check_file(file) {
            Ok(keys) => {
                println!("{}: ok ({} keys set)", file.display(), keys.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tickwire config check: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
