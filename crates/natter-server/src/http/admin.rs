//! The admin listener: Prometheus `/metrics` and `/health` (no token: keep
//! the listener on loopback or a private network), and the JSON admin API
//! under `/api/`, which always needs `Authorization: Bearer TOKEN`.
//!
//! - `GET /api/counts`: sessions, connections, accounts, uptime
//! - `GET /api/sessions`: every bound session (with its XEP-0115 features
//!   count and the PEP nodes it wants notifications of, once known)
//! - `POST /api/kick` `{"jid": "user@domain[/resource]"}`: ends those sessions
//! - `POST /api/message` `{"to": "JID" (optional: everyone online), "body": "…"}`:
//!   a headline message from the server to online sessions

use super::{json, respond, text, Body, Ctx};
use crate::metrics::{self, Snapshot};
use crate::server::Shared;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json as j, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest admin API request body.
const MAX_BODY: usize = 64 * 1024;
/// How long a computed offline queue depth is reused.
const QUEUE_DEPTH_TTL: Duration = Duration::from_secs(30);

pub(super) async fn route(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let shared = &ctx.shared;
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(&snapshot(shared).await),
        ),
        (Method::GET, "/health") => {
            if *shared.shutdown.borrow() {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
            } else {
                text(StatusCode::OK, "ok")
            }
        }
        (method, p) if p.starts_with("/api/") => {
            if let Err(r) = authorize(shared, &req) {
                return *r;
            }
            match (method, p) {
                (Method::GET, "/api/counts") => counts(shared).await,
                (Method::GET, "/api/sessions") => sessions(shared),
                (Method::POST, "/api/kick") => match body(req).await {
                    Ok(v) => kick(shared, &v),
                    Err(r) => *r,
                },
                (Method::POST, "/api/message") => match body(req).await {
                    Ok(v) => message(shared, &v),
                    Err(r) => *r,
                },
                _ => error(
                    StatusCode::NOT_FOUND,
                    "no such admin API endpoint: GET /api/counts, GET /api/sessions, POST /api/kick, POST /api/message",
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: this listener serves /metrics, /health and /api/",
        ),
    }
}

/// A request refused with this response.
type Refused = Box<Response<Body>>;

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, &j!({ "error": msg }))
}

fn boxed_error(status: StatusCode, msg: &str) -> Refused {
    Box::new(error(status, msg))
}

/// Checks the bearer token in constant time. Without a configured token
/// every request is refused: the API is never open by default.
fn authorize(shared: &Shared, req: &Request<Incoming>) -> Result<(), Refused> {
    use subtle::ConstantTimeEq;
    let refuse = |msg: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, msg);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"natterd admin\""),
        );
        Box::new(r)
    };
    let Some(token) = shared.config.admin_token() else {
        return Err(refuse(&format!(
            "the admin API is disabled: set [admin] token or write a token of at least 16 characters to {}",
            shared.config.admin_token_path().display()
        )));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(refuse("missing `Authorization: Bearer TOKEN` header")),
        Some(g) if bool::from(g.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => Err(refuse("wrong admin token")),
    }
}

async fn body(req: Request<Incoming>) -> Result<Value, Refused> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            boxed_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {MAX_BODY} bytes"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| boxed_error(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}")))
}

/// Values for `/metrics` computed now.
async fn snapshot(shared: &Shared) -> Snapshot {
    let stats = shared.store.stats();
    Snapshot {
        bound_sessions: shared.router.count(),
        offline_queue_depth: queue_depth(shared).await,
        store_commits: stats.commits,
        store_writes: stats.writes,
        store_withdrawn: stats.withdrawn,
        uptime: shared.started.elapsed(),
    }
}

/// Messages in every account's durable queue (one count over the queue),
/// reused for `QUEUE_DEPTH_TTL`.
async fn queue_depth(shared: &Shared) -> Option<u64> {
    let mut cache = shared.queue_depth.lock().await;
    if let Some((at, n)) = *cache {
        if at.elapsed() < QUEUE_DEPTH_TTL {
            return Some(n);
        }
    }
    let total = shared.store.offline_total().await.ok()?;
    *cache = Some((Instant::now(), total));
    Some(total)
}

async fn counts(shared: &Shared) -> Response<Body> {
    let m = &metrics::METRICS;
    let load = |i: usize| m.sessions[i].load(std::sync::atomic::Ordering::Relaxed);
    let accounts = match metrics::store_op(5, shared.store.list_accounts()).await {
        Ok(a) => Value::from(a.len()),
        Err(_) => Value::Null,
    };
    json(
        StatusCode::OK,
        &j!({
            "domain": shared.config.domain,
            "sessions": shared.router.count(),
            "sessions_by_transport": {
                "tcp": load(0), "tls": load(1), "websocket": load(2),
            },
            "connections": shared.limiter.open(),
            "accounts": accounts,
            "offline_queue_depth": queue_depth(shared).await,
            "uptime_secs": shared.started.elapsed().as_secs(),
        }),
    )
}

fn sessions(shared: &Shared) -> Response<Body> {
    let list: Vec<Value> = shared
        .router
        .list()
        .into_iter()
        .map(|(bare, e)| {
            j!({
                "jid": format!("{bare}/{}", e.resource),
                "available": e.available,
                "priority": e.priority,
                // XEP-0115: what it supports, once known, and the PEP
                // nodes it wants notifications of.
                "caps": e.caps.as_ref().map(|c| j!({
                    "features": c.iter().count(),
                    "notify": c.notify_nodes().collect::<Vec<_>>(),
                })),
            })
        })
        .collect();
    json(StatusCode::OK, &j!({ "sessions": list }))
}

/// The JID in a request body's `field`, checked.
fn jid_field(v: &Value, field: &str, domain: &str) -> Result<jid::Jid, Refused> {
    let Some(s) = v.get(field).and_then(Value::as_str) else {
        return Err(boxed_error(
            StatusCode::BAD_REQUEST,
            &format!("`{field}` (a JID string) is required"),
        ));
    };
    let jid = jid::Jid::new(s)
        .map_err(|e| boxed_error(StatusCode::BAD_REQUEST, &format!("`{s}` is not a JID: {e}")))?;
    if jid.domain().as_str() != domain || jid.node().is_none() {
        return Err(boxed_error(
            StatusCode::BAD_REQUEST,
            &format!("`{s}` is not a user of this server ({domain})"),
        ));
    }
    Ok(jid)
}

/// The sessions a JID names: all of a bare JID's, or one resource.
fn matching(shared: &Shared, jid: &jid::Jid) -> Vec<crate::router::Entry> {
    let bare = jid.to_bare();
    let mut list = shared.router.sessions(bare.as_str());
    if let Some(r) = jid.resource() {
        list.retain(|e| e.resource == r.as_str());
    }
    list
}

fn kick(shared: &Shared, v: &Value) -> Response<Body> {
    let jid = match jid_field(v, "jid", &shared.config.domain) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let list = matching(shared, &jid);
    if list.is_empty() {
        return error(StatusCode::NOT_FOUND, &format!("{jid} has no session"));
    }
    for e in &list {
        tracing::info!(jid = %format!("{}/{}", jid.to_bare(), e.resource), "kicked by the admin API");
        e.mailbox.kick();
    }
    json(StatusCode::OK, &j!({ "kicked": list.len() }))
}

fn message(shared: &Shared, v: &Value) -> Response<Body> {
    let Some(text_body) = v
        .get("body")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "`body` (a non-empty string) is required",
        );
    };
    let targets: Vec<(String, crate::router::Entry)> = match v.get("to") {
        None | Some(Value::Null) => shared.router.list(),
        Some(_) => match jid_field(v, "to", &shared.config.domain) {
            Ok(jid) => {
                let bare = jid.to_bare().as_str().to_owned();
                matching(shared, &jid)
                    .into_iter()
                    .map(|e| (bare.clone(), e))
                    .collect()
            }
            Err(r) => return *r,
        },
    };
    let domain = &shared.config.domain;
    let mut delivered = 0;
    for (bare, e) in targets {
        let mut m = b"<message type='headline' from='".to_vec();
        natter_xml::escape_attr(domain, &mut m);
        m.extend_from_slice(b"' to='");
        natter_xml::escape_attr(&format!("{bare}/{}", e.resource), &mut m);
        m.extend_from_slice(b"' id='");
        m.extend_from_slice(crate::util::random_id().as_bytes());
        m.extend_from_slice(b"'><body>");
        natter_xml::escape_text(text_body, &mut m);
        m.extend_from_slice(b"</body></message>");
        if e.mailbox.stanza(&Arc::from(m)) {
            delivered += 1;
        }
    }
    json(StatusCode::OK, &j!({ "delivered": delivered }))
}
