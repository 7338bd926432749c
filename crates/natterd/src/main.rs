//! `natterd`: runs the natter XMPP server and administers its store.
//!
//! * `cli.rs` — the command line definition.
//! * `users.rs` — `natterd user …` (accounts, bulk import).
//! * `admin.rs` — `natterd status`, `natterd kick` (the admin API's client).

mod admin;
mod cli;
mod users;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command, ConfigCommand, UserCommand};
use natter_server::config::{Config, EXAMPLE};
use natter_server::server::Server;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("natterd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Config {
        action: ConfigCommand::Example,
    } = command
    {
        print!("{EXAMPLE}");
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(cli.config.as_deref())?;
    match command {
        Command::Config {
            action: ConfigCommand::Check,
        } => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            action: ConfigCommand::Example,
        } => unreachable!("handled above"),
        Command::Run => {
            let log = init_logging(&config.log_level);
            runtime()?.block_on(serve(config, cli.config, log))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            print!("{}", admin::status(&config)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Kick { jid } => {
            print!("{}", admin::kick(&config, &jid)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::User { action } => {
            // Administration output stays clean unless RUST_LOG asks for more.
            let _ = init_logging("warn");
            runtime()?.block_on(user_command(config, action))
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

/// Changes the log filter of a running server (SIGHUP).
type LogHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Logs to stderr; `RUST_LOG` overrides the configured filter.
fn init_logging(default_filter: &str) -> LogHandle {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    handle
}

/// SIGHUP: reads the configuration file again for `log_level` (unless
/// `RUST_LOG` is set) and reloads the TLS certificate files, without
/// dropping a session. A bad file changes nothing.
async fn reload_on_hangup(
    mut hup: tokio::signal::unix::Signal,
    path: Option<std::path::PathBuf>,
    log: LogHandle,
    tls: natter_server::server::Reloader,
) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the log level and TLS certificates");
        if let Some(p) = &path {
            match Config::load(p) {
                Ok(c) if std::env::var_os("RUST_LOG").is_none() => {
                    match tracing_subscriber::EnvFilter::try_new(&c.log_level) {
                        Ok(f) => {
                            let _ = log.reload(f);
                            tracing::info!(log_level = %c.log_level, "log level reloaded");
                        }
                        Err(e) => tracing::error!(error = %e, "log_level not reloaded"),
                    }
                }
                Ok(_) => tracing::info!("RUST_LOG is set: the log level stays"),
                Err(e) => tracing::error!(error = %e, "configuration not reloaded"),
            }
        }
        if let Err(e) = tls.reload_tls() {
            tracing::error!(
                error = format!("{e:#}"),
                "TLS certificate not reloaded; the old one stays in use"
            );
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

async fn serve(config: Config, path: Option<std::path::PathBuf>, log: LogHandle) -> Result<()> {
    // Install the handlers before binding so an early signal still stops cleanly.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let server = Server::bind(config).await?;
    tokio::spawn(reload_on_hangup(hup, path, log, server.reloader()));
    server
        .run(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name} received, shutting down");
        })
        .await
}

async fn user_command(config: Config, action: UserCommand) -> Result<ExitCode> {
    let store = users::open_store(&config).await?;
    let result = user_action(&store, &config.domain, action).await;
    store.close().await.context("closing the store")?;
    result
}

async fn user_action(
    store: &natter_store::Store,
    domain: &str,
    action: UserCommand,
) -> Result<ExitCode> {
    match action {
        UserCommand::Add { jid, password } => {
            let jid = users::add(store, domain, &jid, &password).await?;
            println!("added {jid}");
        }
        UserCommand::Del { jid } => {
            let jid = users::del(store, domain, &jid).await?;
            println!("deleted {jid}");
        }
        UserCommand::Passwd { jid, password } => {
            let jid = users::passwd(store, domain, &jid, &password).await?;
            println!("password changed for {jid}");
        }
        UserCommand::List => {
            let mut out = std::io::stdout().lock();
            for jid in users::list(store).await? {
                writeln!(out, "{jid}")?;
            }
            out.flush()?;
        }
        UserCommand::Import => return import(store, domain).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(store: &natter_store::Store, domain: &str) -> Result<ExitCode> {
    let (entries, bad) = users::parse_import(std::io::stdin().lock(), domain)?;
    let show_progress = std::io::stderr().is_terminal();
    let report = users::import(store, entries, bad, users::hash_threads(), |done, total| {
        if show_progress {
            eprint!("\rhashed and stored {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    })
    .await?;
    for b in &report.bad {
        eprintln!("user import: line {}: {}", b.line, b.reason);
    }
    println!(
        "imported {}, skipped {} existing",
        report.imported, report.skipped
    );
    if report.bad.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("user import: {} bad line(s) not imported", report.bad.len());
        Ok(ExitCode::FAILURE)
    }
}
