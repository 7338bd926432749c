//! Stream negotiation before a session exists (RFC 6120 §4–§7): stream
//! headers, STARTTLS, SASL, resource binding.

use super::conn::{Conn, ConnError};
use super::session::ResumeRequest;
use super::sm;
use super::transport::Transport;
use crate::server::Shared;
use crate::{ns, util};
use base64::Engine;
use natter_sasl::{ChannelBindings, Mechanism, ServerExchange, Step, StoredCredentials};
use natter_xml::{Event, Stanza};
use std::sync::atomic::Ordering::Relaxed;

/// The outcome of a successful negotiation.
pub struct Bound {
    pub bare: String,
    pub resource: String,
    /// The id of the bind IQ, to answer once the session is registered.
    pub bind_iq_id: String,
}

/// How a negotiation ends well.
pub enum Negotiated {
    /// A new session, for this resource.
    Bound(Bound),
    /// The connection was handed to the session it resumed (XEP-0198).
    Resumed,
}

/// Failed SASL attempts one connection may make; the last one's failure is
/// followed by the stream error `policy-violation` (RFC 6120 §6.4.5 asks
/// for at least 2 and at most 5 retries).
pub const MAX_AUTH_ATTEMPTS: u32 = 5;

/// Runs the negotiation until a resource is requested or a session resumed.
pub async fn negotiate(shared: &Shared, conn: &mut Conn) -> Result<Negotiated, ConnError> {
    let mut authenticated: Option<String> = None; // bare JID
    let mut failed_attempts = 0;
    loop {
        open_stream(shared, conn, authenticated.is_some()).await?;
        loop {
            let stanza = match conn.next_event().await? {
                Event::Stanza(s) => s,
                Event::StreamClose => return Err(ConnError::Closed),
                Event::StreamOpen(_) => {
                    return Err(ConnError::Stream("not-well-formed", None));
                }
            };
            match (stanza.name(), stanza.ns()) {
                ("starttls", ns::TLS) if conn.io.can_starttls() && authenticated.is_none() => {
                    start_tls(shared, conn).await?;
                    break;
                }
                ("auth", ns::SASL) if authenticated.is_none() => {
                    if let Some(bare) = authenticate(shared, conn, &stanza).await? {
                        authenticated = Some(bare);
                        conn.restart_stream();
                        break;
                    }
                    failed_attempts += 1;
                    if failed_attempts >= MAX_AUTH_ATTEMPTS {
                        // RFC 6120 §6.4.5: a bounded number of retries,
                        // then the stream ends.
                        return Err(ConnError::Stream(
                            "policy-violation",
                            Some(format!(
                                "{MAX_AUTH_ATTEMPTS} failed authentication attempts on one connection"
                            )),
                        ));
                    }
                }
                ("iq", ns::CLIENT)
                    if authenticated.is_none()
                        && crate::modules::account::is_registration(&stanza) =>
                {
                    // In-band registration is not offered (XEP-0077).
                    let refused = crate::modules::account::refuse_registration(&stanza);
                    conn.send(&refused).await?;
                }
                ("iq", ns::CLIENT) if authenticated.is_some() => {
                    let bare = authenticated.clone().unwrap_or_default();
                    if let Some(bound) = bind_request(shared, conn, &stanza, bare).await? {
                        return Ok(Negotiated::Bound(bound));
                    }
                }
                ("resume", sm::NS) if authenticated.is_some() => {
                    let bare = authenticated.as_deref().unwrap_or_default();
                    if resume(shared, conn, &stanza, bare).await? {
                        return Ok(Negotiated::Resumed);
                    }
                }
                ("enable", sm::NS) if authenticated.is_some() => {
                    // Stream management needs a bound resource (XEP-0198 §3).
                    sm_failed(conn, "unexpected-request", None).await?;
                }
                _ => {
                    return Err(ConnError::Stream(
                        "not-authorized",
                        Some("authenticate and bind a resource first".into()),
                    ))
                }
            }
        }
    }
}

/// Reads the client's stream header, answers with ours and the features.
async fn open_stream(
    shared: &Shared,
    conn: &mut Conn,
    authenticated: bool,
) -> Result<(), ConnError> {
    let header = match conn.next_event().await? {
        Event::StreamOpen(h) => h,
        _ => return Err(ConnError::Stream("not-well-formed", None)),
    };
    let domain = &shared.config.domain;
    conn.send_header(domain, &util::random_id()).await?;
    if header.default_ns != ns::CLIENT {
        return Err(ConnError::Stream(
            "invalid-namespace",
            Some(format!("content namespace must be {}", ns::CLIENT)),
        ));
    }
    if let Some(to) = &header.to {
        if !to.eq_ignore_ascii_case(domain) {
            return Err(ConnError::Stream(
                "host-unknown",
                Some(format!("this server serves {domain}")),
            ));
        }
    }
    match header.version.as_deref() {
        Some(v) if v.split('.').next() == Some("1") => {}
        _ => {
            return Err(ConnError::Stream(
                "unsupported-version",
                Some("version 1.0 required".into()),
            ))
        }
    }
    let mut f = Vec::with_capacity(512);
    f.extend_from_slice(b"<stream:features>");
    let secure = conn.io.is_secure();
    if !authenticated {
        if conn.io.can_starttls() && shared.tls.is_some() {
            f.extend_from_slice(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>");
            if shared.config.c2s.require_tls {
                f.extend_from_slice(b"<required/>");
            }
            f.extend_from_slice(b"</starttls>");
        }
        if secure || !shared.config.c2s.require_tls {
            f.extend_from_slice(b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
            for m in offered_mechanisms(conn, shared) {
                f.extend_from_slice(b"<mechanism>");
                f.extend_from_slice(m.name().as_bytes());
                f.extend_from_slice(b"</mechanism>");
            }
            f.extend_from_slice(b"</mechanisms>");
            let cb = bindings(conn, shared);
            if cb.any() {
                f.extend_from_slice(b"<sasl-channel-binding xmlns='urn:xss:sasl-cb:0'>");
                for name in cb.names() {
                    f.extend_from_slice(b"<channel-binding type='");
                    f.extend_from_slice(name.as_bytes());
                    f.extend_from_slice(b"'/>");
                }
                f.extend_from_slice(b"</sasl-channel-binding>");
            }
        }
    } else {
        f.extend_from_slice(b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
        f.extend_from_slice(
            b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>",
        );
        f.extend_from_slice(b"<ver xmlns='urn:xmpp:features:rosterver'/>");
        f.extend_from_slice(b"<sm xmlns='urn:xmpp:sm:3'/>");
        f.extend_from_slice(crate::modules::csi::FEATURE);
        f.extend_from_slice(shared.caps_element.as_bytes());
    }
    f.extend_from_slice(b"</stream:features>");
    conn.send(&f).await?;
    Ok(())
}

fn bindings(conn: &Conn, shared: &Shared) -> ChannelBindings {
    match (&conn.io, &shared.tls) {
        (Transport::Tls(s), Some(setup)) => ChannelBindings {
            tls_exporter: crate::tls::exporter(s.get_ref().1),
            tls_server_end_point: Some(setup.server_end_point()),
        },
        _ => ChannelBindings::default(),
    }
}

fn offered_mechanisms(conn: &Conn, shared: &Shared) -> Vec<Mechanism> {
    let mut v = Vec::with_capacity(5);
    if bindings(conn, shared).any() {
        v.push(Mechanism::ScramSha256Plus);
        v.push(Mechanism::ScramSha1Plus);
    }
    v.push(Mechanism::ScramSha256);
    v.push(Mechanism::ScramSha1);
    v.push(Mechanism::Plain);
    v
}

async fn start_tls(shared: &Shared, conn: &mut Conn) -> Result<(), ConnError> {
    let Some(setup) = &shared.tls else {
        return Err(ConnError::Stream(
            "unsupported-feature",
            Some("TLS is not configured".into()),
        ));
    };
    if conn.parser.buffered() > 0 {
        // Bytes pipelined after <starttls/> would bypass TLS (RFC 6120 §5.4.3.3).
        return Err(ConnError::Stream(
            "policy-violation",
            Some("data after <starttls/>".into()),
        ));
    }
    conn.send(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    let Transport::Plain(tcp) = std::mem::replace(&mut conn.io, Transport::Detached) else {
        return Err(ConnError::Stream(
            "policy-violation",
            Some("TLS is already on".into()),
        ));
    };
    let tls = setup.acceptor.accept(tcp).await?;
    conn.io = Transport::Tls(Box::new(tls));
    conn.reset_parser();
    conn.header_sent = false;
    Ok(())
}

/// Runs one SASL exchange. `Ok(Some(bare))` on success, `Ok(None)` after a
/// failure was reported (the client may try again).
async fn authenticate(
    shared: &Shared,
    conn: &mut Conn,
    auth: &Stanza,
) -> Result<Option<String>, ConnError> {
    if shared.config.c2s.require_tls && !conn.io.is_secure() {
        sasl_failure(conn, "encryption-required", None).await?;
        return Ok(None);
    }
    let offered = offered_mechanisms(conn, shared);
    let mech = auth
        .attr("mechanism")
        .and_then(|m| Mechanism::from_name(&m))
        .filter(|m| offered.contains(m));
    let Some(mech) = mech else {
        sasl_failure(conn, "invalid-mechanism", None).await?;
        return Ok(None);
    };
    let plus_advertised = offered.iter().any(|m| m.is_plus());
    let mut exchange = ServerExchange::new(mech, bindings(conn, shared), plus_advertised);
    let ip = conn.peer.ip();
    let mut step = match decode_payload(auth) {
        Ok(data) => exchange.start(&data),
        Err(()) => {
            sasl_failure(conn, "incorrect-encoding", None).await?;
            return Ok(None);
        }
    };
    let mut user_bare = String::new();
    loop {
        match step {
            Ok(Step::NeedCredentials { username }) => {
                user_bare = format!("{}@{}", username, shared.config.domain);
                let creds = match jid::BareJid::new(&user_bare) {
                    Ok(j) if j.node().is_some() => {
                        user_bare = j.as_str().to_owned();
                        lookup_credentials(shared, &user_bare).await?
                    }
                    _ => None,
                };
                step = exchange.credentials(creds.as_ref());
            }
            Ok(Step::Challenge(data)) => {
                let mut out = b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>".to_vec();
                out.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(&data)
                        .as_bytes(),
                );
                out.extend_from_slice(b"</challenge>");
                conn.send(&out).await?;
                let resp = match conn.next_event().await? {
                    Event::Stanza(s) => s,
                    Event::StreamClose => return Err(ConnError::Closed),
                    Event::StreamOpen(_) => return Err(ConnError::Stream("not-well-formed", None)),
                };
                match (resp.name(), resp.ns()) {
                    ("response", ns::SASL) => {}
                    ("abort", ns::SASL) => {
                        sasl_failure(conn, "aborted", None).await?;
                        return Ok(None);
                    }
                    _ => {
                        sasl_failure(conn, "malformed-request", Some("expected <response/>"))
                            .await?;
                        return Ok(None);
                    }
                }
                step = match decode_payload(&resp) {
                    Ok(data) => exchange.response(&data),
                    Err(()) => {
                        sasl_failure(conn, "incorrect-encoding", None).await?;
                        return Ok(None);
                    }
                };
            }
            Ok(Step::Success {
                authzid,
                additional_data,
                ..
            }) => {
                if let Some(a) = authzid {
                    if !a.eq_ignore_ascii_case(&user_bare) {
                        sasl_failure(conn, "invalid-authzid", None).await?;
                        return Ok(None);
                    }
                }
                shared.auth_limiter.success(ip);
                crate::metrics::METRICS.logins.fetch_add(1, Relaxed);
                let mut out = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'".to_vec();
                match additional_data {
                    Some(d) => {
                        out.push(b'>');
                        out.extend_from_slice(
                            base64::engine::general_purpose::STANDARD
                                .encode(&d)
                                .as_bytes(),
                        );
                        out.extend_from_slice(b"</success>");
                    }
                    None => out.extend_from_slice(b"/>"),
                }
                conn.send(&out).await?;
                tracing::info!(user = %user_bare, peer = %conn.peer, mechanism = mech.name(), "authenticated");
                return Ok(Some(user_bare));
            }
            Err(e) => {
                let delay = shared.auth_limiter.failure(ip);
                crate::metrics::METRICS.auth_failures.fetch_add(1, Relaxed);
                tracing::info!(user = %user_bare, peer = %conn.peer, error = %e, ?delay, "authentication failed");
                tokio::time::sleep(delay).await;
                sasl_failure(conn, e.condition(), None).await?;
                return Ok(None);
            }
        }
    }
}

async fn lookup_credentials(
    shared: &Shared,
    bare: &str,
) -> Result<Option<StoredCredentials>, ConnError> {
    match crate::metrics::store_op(0, shared.store.credentials(bare)).await {
        Ok(Some(bytes)) => Ok(StoredCredentials::from_bytes(&bytes).ok()),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "store failed during authentication");
            Err(ConnError::Stream("internal-server-error", None))
        }
    }
}

fn decode_payload(s: &Stanza) -> Result<Vec<u8>, ()> {
    let text = s.element().map_err(|_| ())?.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ())
}

async fn sasl_failure(
    conn: &mut Conn,
    condition: &str,
    text: Option<&str>,
) -> Result<(), ConnError> {
    let mut out = b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><".to_vec();
    out.extend_from_slice(condition.as_bytes());
    out.extend_from_slice(b"/>");
    if let Some(t) = text {
        out.extend_from_slice(b"<text>");
        natter_xml::escape_text(t, &mut out);
        out.extend_from_slice(b"</text>");
    }
    out.extend_from_slice(b"</failure>");
    conn.send(&out).await?;
    Ok(())
}

/// Handles an IQ after authentication and before binding: only bind (and
/// the legacy session request) are allowed.
async fn bind_request(
    shared: &Shared,
    conn: &mut Conn,
    iq: &Stanza,
    bare: String,
) -> Result<Option<Bound>, ConnError> {
    let id = iq.id().map(|c| c.into_owned()).unwrap_or_default();
    let Some(_) = iq
        .child("bind", ns::BIND)
        .filter(|_| iq.stanza_type().as_deref() == Some("set"))
    else {
        return Err(ConnError::Stream(
            "not-authorized",
            Some("bind a resource first".into()),
        ));
    };
    let el = iq.element().map_err(ConnError::from)?;
    let requested = el
        .get_child("bind", ns::BIND)
        .and_then(|b| b.get_child("resource", ns::BIND))
        .map(|r| r.text().trim().to_owned())
        .filter(|r| !r.is_empty());
    let resource = match requested {
        Some(r) => match jid::FullJid::new(&format!("{bare}/{r}")) {
            Ok(full) => full.resource().as_str().to_owned(),
            Err(_) => {
                let err = util::iq_error_bytes(
                    &id,
                    None,
                    "modify",
                    "bad-request",
                    Some("invalid resource"),
                );
                conn.send(&err).await?;
                return Ok(None);
            }
        },
        None => loop {
            let r = format!("natter-{}", util::random_id());
            if !shared.router.is_bound(&bare, &r) {
                break r;
            }
        },
    };
    Ok(Some(Bound {
        bare,
        resource,
        bind_iq_id: id,
    }))
}

/// `<resume previd='…' h='…'/>`: hands the connection to the detached
/// session it names. False (after `<failed/>`) when there is none to resume.
async fn resume(
    shared: &Shared,
    conn: &mut Conn,
    el: &Stanza,
    bare: &str,
) -> Result<bool, ConnError> {
    let previd = el
        .attr("previd")
        .map(|p| p.into_owned())
        .unwrap_or_default();
    let Some(h) = el.attr("h").and_then(|h| h.parse::<u32>().ok()) else {
        sm_failed(conn, "bad-request", None).await?;
        return Ok(false);
    };
    let handle = shared
        .resumable
        .lock()
        .expect("resumable lock")
        .get(&previd)
        .filter(|(owner, _)| owner == bare)
        .map(|(_, mailbox)| mailbox.clone());
    let Some(mailbox) = handle else {
        sm_failed(conn, "item-not-found", None).await?;
        return Ok(false);
    };
    let req = ResumeRequest {
        conn: Box::new(conn.take()),
        h,
    };
    match mailbox.resume(req) {
        Ok(()) => Ok(true),
        Err(req) => {
            // The session ended meanwhile: take the connection back.
            *conn = *req.conn;
            sm_failed(conn, "item-not-found", None).await?;
            Ok(false)
        }
    }
}

async fn sm_failed(conn: &mut Conn, condition: &str, h: Option<u32>) -> Result<(), ConnError> {
    let h = h.map(|h| format!(" h='{h}'")).unwrap_or_default();
    let f = format!(
        "<failed xmlns='{}'{h}><{condition} xmlns='{}'/></failed>",
        sm::NS,
        ns::STANZAS
    );
    conn.send(f.as_bytes()).await?;
    Ok(())
}
