//! natterd, the natter XMPP server, as a library.
//!
//! `Server::bind(config)` opens the store, loads TLS and binds the listeners;
//! `Server::run(shutdown)` serves until `shutdown` resolves. The `natterd`
//! binary is a thin wrapper around these two calls.
//!
//! # Layout
//! - `config`: the TOML configuration, every key defaulted
//! - `server`: shared state, listeners, `run` and graceful shutdown
//! - `tls`: certificates (generated on first start) and channel binding
//! - `router`: registry of bound sessions and their mailboxes
//! - `mailbox`: a session's inbox (bounded) with shutdown, overflow and
//!   resumption signals
//! - `c2s`: one task per client connection: transport (TCP, TLS or
//!   WebSocket), negotiation, session loop
//! - `http`: the HTTP listeners: XMPP over WebSocket and host-meta; the
//!   admin listener's metrics, health and admin API
//! - `metrics`: process-wide counters and histograms, Prometheus text
//! - `limits`: maximum connections and per-IP connection rate
//! - `modules`: one module per protocol (message routing, presence,
//!   subscriptions, roster, offline, disco, vCard, last activity, blocking,
//!   private storage, last-seen privacy, account removal, clients' entity
//!   capabilities)
//! - `auth_limit`: slowing down repeated authentication failures
#![forbid(unsafe_code)]

pub mod auth_limit;
pub mod c2s;
pub mod config;
pub mod http;
pub mod limits;
pub mod mailbox;
pub mod metrics;
pub mod modules;
pub mod ns;
pub mod router;
pub mod server;
pub mod tls;
pub mod util;

pub use config::Config;
pub use server::Server;
