//! The server as a library: shared state, the listeners and `run`.

use crate::auth_limit::AuthLimiter;
use crate::config::Config;
use crate::limits::{ConnLimiter, ConnSlot};
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
    /// Open client connections and per-address connection rates.
    pub limiter: ConnLimiter,
    /// The XEP-0115 `<c/>` element advertised in stream features.
    pub caps_element: String,
    pub started: Instant,
    /// Fires when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Dropped with the last `Arc<Shared>`: every connection task holds
    /// one (in its `ConnSlot`, then its session), so `run` waits for all.
    _alive: mpsc::Sender<()>,
    /// Sessions that may be resumed (XEP-0198): id → (bare JID, handle).
    pub resumable: Mutex<HashMap<String, (String, Mailbox)>>,
    /// The last offline queue depth computed for `/metrics`, and when.
    pub(crate) queue_depth: tokio::sync::Mutex<Option<(Instant, u64)>>,
    /// Blocklists (XEP-0191) as the routing checks need them.
    pub blocking: crate::modules::blocking::Blocklists,
    /// Clients' entity capabilities (XEP-0115) known server-wide.
    pub caps: Arc<crate::modules::caps::Cache>,
    /// Accounts' avatar hashes (XEP-0153/XEP-0398) for presence.
    pub avatars: crate::modules::avatar::Hashes,
    /// Per-account locks of bookmark requests (XEP-0402 and XEP-0048).
    pub bookmarks: crate::modules::bookmarks::Locks,
}

/// A server bound to its ports, not yet serving.
pub struct Server {
    shared: Arc<Shared>,
    c2s: TcpListener,
    c2s_tls: TcpListener,
    http: TcpListener,
    /// Only with a configured certificate.
    https: Option<TcpListener>,
    admin: TcpListener,
    shutdown_tx: watch::Sender<bool>,
    alive_rx: mpsc::Receiver<()>,
}

async fn listen(addr: SocketAddr, key: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen.{key}: cannot listen on {addr}"))
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
        let blocking = crate::modules::blocking::Blocklists::load(&store)
            .await
            .context("reading the blocklists")?;
        let c2s = listen(config.listen.c2s, "c2s").await?;
        let c2s_tls = listen(config.listen.c2s_tls, "c2s_tls").await?;
        let http = listen(config.listen.http, "http").await?;
        let https = match config.tls.cert {
            Some(_) => Some(listen(config.listen.https, "https").await?),
            None => None,
        };
        let admin = listen(config.listen.admin, "admin").await?;
        if config.admin_token().is_none() {
            tracing::warn!(
                file = %config.admin_token_path().display(),
                "no admin token ([admin] token, or a file of at least 16 characters): the admin API refuses every request"
            );
        }
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (alive, alive_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            caps_element: crate::modules::disco::caps_element(),
            config: config.clone(),
            store,
            router: Router::default(),
            tls: Some(tls),
            auth_limiter: AuthLimiter::default(),
            limiter: ConnLimiter::new(config.limits.clone()),
            started: Instant::now(),
            shutdown,
            _alive: alive,
            resumable: Mutex::new(HashMap::new()),
            queue_depth: tokio::sync::Mutex::new(None),
            blocking,
            caps: Default::default(),
            avatars: Default::default(),
            bookmarks: Default::default(),
        });
        Ok(Server {
            shared,
            c2s,
            c2s_tls,
            http,
            https,
            admin,
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

    /// The address of the HTTP (WebSocket, host-meta) listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener")
    }

    /// The address of the HTTPS listener, when a certificate is configured.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener"))
    }

    /// The address of the admin listener (metrics, health, admin API).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().expect("bound listener")
    }

    /// A handle to reload TLS certificates while the server runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: Arc::downgrade(&self.shared),
        }
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
            http,
            https,
            admin,
            shutdown_tx,
            mut alive_rx,
        } = self;
        tracing::info!(
            domain = %shared.config.domain,
            c2s = %c2s.local_addr()?,
            c2s_tls = %c2s_tls.local_addr()?,
            http = %http.local_addr()?,
            https = %https.as_ref().map(|l| l.local_addr().map(|a| a.to_string())).transpose()?.unwrap_or_else(|| "off (no [tls] cert)".into()),
            admin = %admin.local_addr()?,
            "natterd serving"
        );
        let mut listeners = vec![tokio::spawn(crate::http::serve(
            shared.clone(),
            http,
            crate::http::Listener::Http,
        ))];
        if let Some(l) = https {
            listeners.push(tokio::spawn(crate::http::serve(
                shared.clone(),
                l,
                crate::http::Listener::Https,
            )));
        }
        listeners.push(tokio::spawn(crate::http::serve(
            shared.clone(),
            admin,
            crate::http::Listener::Admin,
        )));
        // XEP-0313 retention: stops when the shutdown flag is raised.
        let expiry = tokio::spawn(crate::modules::mam::expiry_job(
            shared.store.clone(),
            shared.config.archive.clone(),
            shared.shutdown.clone(),
        ));
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
        for l in listeners {
            let _ = l.await;
        }
        let _ = expiry.await;
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
            let transport = if direct_tls { 1 } else { 0 };
            match ConnSlot::admit(shared, peer.ip(), transport) {
                // The future itself, not wrapped in another: a wrapper would
                // hold the arguments a second time for the task's whole life.
                Ok(slot) => drop(tokio::spawn(crate::c2s::serve(slot, tcp, peer, direct_tls))),
                Err(refusal) => {
                    tracing::info!(%peer, reason = %refusal.text(), "connection refused");
                    tokio::spawn(crate::c2s::refuse(shared.clone(), tcp, direct_tls, refusal));
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
        }
    }
}

/// Reloads what a running server can take anew (SIGHUP).
#[derive(Clone)]
pub struct Reloader {
    shared: std::sync::Weak<Shared>,
}

impl Reloader {
    /// Reads the certificate and key again; sessions keep their TLS, new
    /// connections get the new certificate. Err (and the old certificate
    /// kept) when the files are not usable.
    pub fn reload_tls(&self) -> Result<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        match &shared.tls {
            Some(setup) => setup.reload(&shared.config),
            None => Ok(()),
        }
    }
}
