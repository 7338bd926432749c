//! Offline messages (XEP-0160): delivered with a XEP-0203 delay stamp after
//! the recipient's initial presence, then deleted from the store.

use crate::c2s::session::Session;
use crate::{ns, util};
use natter_xml::Stanza;

/// Messages fetched from the store at a time.
const BATCH: usize = 500;

/// Moves every queued message of the session's account to its client.
/// They are deleted once written to the socket (`Session::written_offline`).
pub async fn flush(s: &mut Session) {
    let mut after = s.offline_sent.last().copied().unwrap_or(0);
    loop {
        let batch = match s.shared.store.offline_fetch(&s.bare, after, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "offline fetch failed");
                return;
            }
        };
        let n = batch.len();
        for (seq, msg) in batch {
            after = seq;
            let mut delay = Vec::with_capacity(120);
            delay.extend_from_slice(b"<delay xmlns='");
            delay.extend_from_slice(ns::DELAY.as_bytes());
            delay.extend_from_slice(b"' from='");
            natter_xml::escape_attr(&s.shared.config.domain, &mut delay);
            delay.extend_from_slice(b"' stamp='");
            delay.extend_from_slice(util::xmpp_datetime(msg.stamp_unix_ms).as_bytes());
            delay.extend_from_slice(b"'>Offline Storage</delay>");
            match Stanza::parse(&msg.stanza, ns::CLIENT) {
                Ok(st) => {
                    let bytes = st.rewrite(None, None, &[], &delay);
                    s.send(&bytes);
                }
                Err(e) => tracing::error!(error = %e, seq, "unreadable offline message skipped"),
            }
            s.offline_sent.push(seq);
        }
        if n < BATCH {
            return;
        }
    }
}
