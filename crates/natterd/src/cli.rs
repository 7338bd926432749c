//! The command line: `natterd [run]`, `natterd config …`, `natterd user …`,
//! and `natterd status` / `natterd kick JID` (the running server's admin API).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// natter XMPP server.
#[derive(Debug, Parser)]
#[command(name = "natterd", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Without it the built-in defaults are used.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do; without a subcommand the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGTERM or SIGINT (the default).
    Run,
    /// Show or check the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Administer accounts (works while the server runs).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Show the running server's counts (sessions, connections, accounts).
    /// Uses the admin API on `[listen] admin` with the admin token.
    Status,
    /// End the sessions of a user (bare JID: every resource) on the running
    /// server, through the admin API.
    Kick {
        /// `user`, `user@domain` or `user@domain/resource`.
        jid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the complete, commented default configuration.
    Example,
    /// Load and validate the configuration; print "ok" or the error.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// `user` or `user@domain` (the configured domain).
        jid: String,
        /// The account's password.
        #[arg(long)]
        password: String,
    },
    /// Delete an account and everything it owns.
    Del {
        /// `user` or `user@domain`.
        jid: String,
    },
    /// Change an account's password.
    Passwd {
        /// `user` or `user@domain`.
        jid: String,
        /// The new password.
        #[arg(long)]
        password: String,
    },
    /// List every account, one JID per line, sorted.
    List,
    /// Create accounts from `JID PASSWORD` lines on stdin; existing ones are skipped.
    Import,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flag_is_global() {
        let a = Cli::try_parse_from(["natterd", "--config", "x.toml", "user", "list"]).unwrap();
        let b = Cli::try_parse_from(["natterd", "user", "list", "--config", "x.toml"]).unwrap();
        assert_eq!(a.config, b.config);
        assert!(matches!(
            b.command,
            Some(Command::User {
                action: UserCommand::List
            })
        ));
        let c = Cli::try_parse_from(["natterd", "--config", "x.toml"]).unwrap();
        assert!(c.command.is_none());
    }
}
