//! The public HTTP endpoints: XMPP over WebSocket (RFC 7395) and XEP-0156
//! discovery of it.

use super::{respond, text, Body, Ctx, Listener};
use crate::c2s::transport::{Transport, WsStream};
use crate::c2s::ws_codec::accept_key;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub const WS_PATH: &str = "/xmpp-websocket";
const ALT_WS: &str = "urn:xmpp:alt-connections:websocket";

pub(super) fn route(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    match path.as_str() {
        WS_PATH if req.method() == Method::GET => websocket(ctx, req),
        "/.well-known/host-meta" if get => host_meta(ctx, &req, false),
        "/.well-known/host-meta.json" if get => host_meta(ctx, &req, true),
        WS_PATH | "/.well-known/host-meta" | "/.well-known/host-meta.json" => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: this server offers /xmpp-websocket and /.well-known/host-meta(.json)",
        ),
    }
}

/// The WebSocket URL clients should use.
fn websocket_url(ctx: &Ctx, headers: &HeaderMap) -> String {
    if let Some(url) = &ctx.shared.config.http.websocket_url {
        return url.clone();
    }
    let scheme = if ctx.listener == Listener::Https {
        "wss"
    } else {
        "ws"
    };
    // A Host header we would not put in a URL falls back to the domain.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
        })
        .unwrap_or(&ctx.shared.config.domain);
    format!("{scheme}://{host}{WS_PATH}")
}

/// XEP-0156: `/.well-known/host-meta` (XRD) or `host-meta.json` (JRD).
fn host_meta(ctx: &Ctx, req: &Request<Incoming>, json: bool) -> Response<Body> {
    let url = websocket_url(ctx, req.headers());
    let mut r = if json {
        let v = serde_json::json!({ "links": [ { "rel": ALT_WS, "href": url } ] });
        respond(StatusCode::OK, "application/json", v.to_string())
    } else {
        let mut href = Vec::new();
        natter_xml::escape_attr(&url, &mut href);
        let body = format!(
            "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='{ALT_WS}' href='{}'/>\n</XRD>\n",
            String::from_utf8_lossy(&href)
        );
        respond(StatusCode::OK, "application/xrd+xml; charset=utf-8", body)
    };
    // Browsers fetch it from web pages of other origins (XEP-0156 §3.2).
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The RFC 6455 opening handshake; on success the connection becomes an
/// XMPP stream served by `c2s::serve_websocket`.
fn websocket(ctx: &Arc<Ctx>, mut req: Request<Incoming>) -> Response<Body> {
    let h = req.headers();
    if !has_token(h, header::UPGRADE, "websocket") || !has_token(h, header::CONNECTION, "upgrade") {
        let mut r = text(
            StatusCode::UPGRADE_REQUIRED,
            "this is XMPP over WebSocket (RFC 7395): connect with a WebSocket client and the subprotocol `xmpp`",
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    }
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        let mut r = text(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version: this server speaks version 13 (RFC 6455)",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let key_ok = h
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
        .and_then(|k| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .ok()
        })
        .is_some_and(|k| k.len() == 16);
    if !key_ok {
        return text(
            StatusCode::BAD_REQUEST,
            "missing or malformed Sec-WebSocket-Key (RFC 6455 §4.1)",
        );
    }
    if !has_token(h, header::SEC_WEBSOCKET_PROTOCOL, "xmpp") {
        return text(
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol `xmpp` is required (Sec-WebSocket-Protocol: xmpp, RFC 7395 §3.1)",
        );
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
        .unwrap_or_default();
    let accept = accept_key(key);
    let Some(mut slot) = ctx.slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return text(
            StatusCode::BAD_REQUEST,
            "this connection is already a WebSocket",
        );
    };
    slot.set_transport(crate::metrics::WEBSOCKET);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let shared = ctx.shared.clone();
    let peer = ctx.peer;
    let secure = ctx.listener == Listener::Https || shared.config.http.behind_tls_proxy;
    let max = shared.config.c2s.max_stanza_bytes;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let (inner, early) = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => (Transport::Plain(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>() {
                Ok(parts) => (
                    Transport::Tls(Box::new(parts.io.into_inner())),
                    parts.read_buf,
                ),
                Err(_) => {
                    tracing::error!(%peer, "WebSocket upgrade on an unknown socket type");
                    return;
                }
            },
        };
        tracing::debug!(%peer, secure, "WebSocket connection");
        let ws = WsStream::new(inner, secure, max);
        crate::c2s::serve_websocket(slot, ws, peer, early).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, "xmpp")
        .body(Body::default())
        .expect("valid response")
}
