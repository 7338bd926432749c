//! The server as a library: shared state, the listeners and `run`.

use crate::auth_limit::AuthLimiter;
use crate::config::Config;
use crate::mailbox::Mailbox;
use crate::router::Router;
use crate::tls::TlsSetup;
use anyhow::{Context, Result};
use natter_store::{Store, StoreConfig};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// State every connection shares.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub router: Router,
    pub tls: Option<TlsSetup>,
    pub auth_limiter: AuthLimiter,
    /// The XEP-0115 `<c/>` element advertised in stream features.
    pub caps_element: String,
    pub started: Instant,
    /// Fires when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Dropped by every connection task when it ends; `run` waits for all.
    pub(crate) alive: mpsc::Sender<()>,
    /// Sessions that may be resumed (XEP-0198): id → (bare JID, handle).
    pub resumable: Mutex<HashMap<String, (String, Mailbox)>>,
}

/// A server bound to its ports, not yet serving.
pub struct Server {
    shared: Arc<Shared>,
    c2s: TcpListener,
    c2s_tls: TcpListener,
    shutdown_tx: watch::Sender<bool>,
    alive_rx: mpsc::Receiver<()>,
}

impl Server {
    /// Opens the store, loads TLS and binds the listeners.
    pub async fn bind(config: Config) -> Result<Server> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
        let tls = crate::tls::load(&config)?;
        let store = Store::open(StoreConfig {
            fsync: config.store.fsync,
            ..StoreConfig::sqlite(config.database_path())
        })
        .await
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
        let c2s = TcpListener::bind(config.listen.c2s)
            .await
            .with_context(|| format!("listen.c2s: cannot listen on {}", config.listen.c2s))?;
        let c2s_tls = TcpListener::bind(config.listen.c2s_tls)
            .await
            .with_context(|| {
                format!("listen.c2s_tls: cannot listen on {}", config.listen.c2s_tls)
            })?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (alive, alive_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            caps_element: crate::modules::disco::caps_element(),
            config,
            store,
            router: Router::default(),
            tls: Some(tls),
            auth_limiter: AuthLimiter::default(),
            started: Instant::now(),
            shutdown,
            alive,
            resumable: Mutex::new(HashMap::new()),
        });
        Ok(Server {
            shared,
            c2s,
            c2s_tls,
            shutdown_tx,
            alive_rx,
        })
    }

    /// The address of the STARTTLS listener.
    pub fn c2s_addr(&self) -> SocketAddr {
        self.c2s.local_addr().expect("bound listener")
    }

    /// The address of the direct-TLS listener.
    pub fn c2s_tls_addr(&self) -> SocketAddr {
        self.c2s_tls.local_addr().expect("bound listener")
    }

    /// The store (for tests and administration in-process).
    pub fn store(&self) -> Store {
        self.shared.store.clone()
    }

    /// Serves until `shutdown` resolves, then closes every stream, waits for
    /// every connection to end and closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Server {
            shared,
            c2s,
            c2s_tls,
            shutdown_tx,
            mut alive_rx,
        } = self;
        tracing::info!(
            domain = %shared.config.domain,
            c2s = %c2s.local_addr()?,
            c2s_tls = %c2s_tls.local_addr()?,
            "natterd serving"
        );
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                r = c2s.accept() => accept(&shared, r, false),
                r = c2s_tls.accept() => accept(&shared, r, true),
            }
        }
        tracing::info!(sessions = shared.router.count(), "shutting down");
        // Connections still negotiating watch the flag; bound sessions hear
        // it through their mailboxes (a session binding meanwhile checks
        // the flag after binding).
        let _ = shutdown_tx.send(true);
        shared.router.shutdown_all();
        drop(c2s);
        drop(c2s_tls);
        let store = shared.store.clone();
        drop(shared);
        // Every connection task holds a clone of `alive`; recv returns None
        // once all of them have ended.
        let _ = alive_rx.recv().await;
        store.close().await.context("closing the store")?;
        tracing::info!("stopped");
        Ok(())
    }
}

fn accept(
    shared: &Arc<Shared>,
    r: std::io::Result<(tokio::net::TcpStream, SocketAddr)>,
    direct_tls: bool,
) {
    match r {
        Ok((tcp, peer)) => {
            let _ = tcp.set_nodelay(true);
            let shared = shared.clone();
            // The future itself, not wrapped in another: a wrapper would
            // hold the arguments a second time for the task's whole life.
            tokio::spawn(crate::c2s::serve(shared, tcp, peer, direct_tls));
        }
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
        }
    }
}
