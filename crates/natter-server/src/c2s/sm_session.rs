//! The session side of XEP-0198: `<enable/>`, `<r/>`, `<a/>` from the
//! client, and taking over a new connection on resumption. The counters
//! themselves are in `sm`.

use super::conn::{Conn, ConnError};
use super::session::{ResumeRequest, Session};
use super::sm::{self, StreamMgmt};
use crate::ns;
use natter_xml::Stanza;

/// Answers an `<r/>` with the count of stanzas handled so far.
pub(super) fn answer_ack_request(s: &mut Session) {
    if let Some(sm) = &s.sm {
        let a = format!("<a xmlns='{}' h='{}'/>", sm::NS, sm.inbound());
        s.send_raw(a.as_bytes());
    }
}

/// XEP-0198 elements from the client. (An `<r/>` on a session with stream
/// management waits its turn in the pipeline, `answer_ack_request`; one
/// without it is an unexpected request like any other misuse.)
pub(super) async fn handle_sm(s: &mut Session, el: &Stanza) -> Result<(), ConnError> {
    match el.name() {
        "enable" if s.sm.is_none() => {
            let resume = matches!(el.attr("resume").as_deref(), Some("true") | Some("1"));
            let id = crate::util::random_id();
            let max = s.shared.config.c2s.resume_timeout_secs;
            let mut reply = format!("<enabled xmlns='{}' id='{id}'", sm::NS);
            if resume {
                reply.push_str(&format!(" resume='true' max='{max}'"));
                s.shared
                    .resumable
                    .lock()
                    .expect("resumable lock")
                    .insert(id.clone(), (s.bare.clone(), s.mailbox.clone()));
            }
            reply.push_str("/>");
            s.send_raw(reply.as_bytes());
            s.sm = Some(StreamMgmt::new(id, resume));
        }
        "a" => {
            let Some(sm) = s.sm.as_mut() else {
                sm_failed(s, "unexpected-request");
                return Ok(());
            };
            let Some(h) = el.attr("h").and_then(|h| h.parse::<u32>().ok()) else {
                return Err(ConnError::Stream(
                    "undefined-condition",
                    Some("<a/> needs a numeric h".into()),
                ));
            };
            match sm.ack(h) {
                Ok(acked) => {
                    // Stanzas written while the last request was out are
                    // not covered by this answer: they are asked for like
                    // any others (`write_out`, `request_ack_if_due`).
                    let seqs = acked.into_iter().filter_map(|u| u.seq).collect();
                    s.dequeue(seqs);
                }
                Err(too_high) => {
                    return Err(ConnError::Stream(
                        "undefined-condition",
                        Some(format!(
                            "handled-count-too-high: h={} but only {} were sent",
                            too_high.h, too_high.sent
                        )),
                    ))
                }
            }
        }
        // A second <enable/>, or <resume/> on a bound session.
        _ => sm_failed(s, "unexpected-request"),
    }
    Ok(())
}

fn sm_failed(s: &mut Session, condition: &str) {
    s.send_raw(&failed_bytes(condition));
}

/// `<failed/>` with a stanza error condition.
pub(super) fn failed_bytes(condition: &str) -> Vec<u8> {
    format!(
        "<failed xmlns='{}'><{condition} xmlns='{}'/></failed>",
        sm::NS,
        ns::STANZAS
    )
    .into_bytes()
}

/// Takes over `req.conn` for this session (XEP-0198 §5).
pub(super) async fn resume(
    s: &mut Session,
    req: ResumeRequest,
) -> Result<Conn, Option<(Conn, ConnError)>> {
    let ResumeRequest { conn, h } = req;
    let mut conn = *conn;
    let Some(sm) = s.sm.as_mut() else {
        return Err(Some((conn, ConnError::Stream("undefined-condition", None))));
    };
    let acked = match sm.ack(h) {
        Ok(a) => a,
        Err(too_high) => {
            let text = format!(
                "handled-count-too-high: h={} but only {} were sent",
                too_high.h, too_high.sent
            );
            return Err(Some((
                conn,
                ConnError::Stream("undefined-condition", Some(text)),
            )));
        }
    };
    let mut out = format!(
        "<resumed xmlns='{}' previd='{}' h='{}'/>",
        sm::NS,
        sm.id,
        sm.inbound()
    )
    .into_bytes();
    for u in sm.unacked() {
        out.extend_from_slice(&u.bytes);
    }
    sm.new_connection(std::time::Instant::now());
    s.out.clear();
    s.dequeue(acked.into_iter().filter_map(|u| u.seq).collect());
    if let Err(e) = conn.send(&out).await {
        return Err(Some((conn, e.into())));
    }
    tracing::info!(jid = %s.full, peer = %conn.peer, "session resumed");
    Ok(conn)
}
