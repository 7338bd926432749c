//! Offline delivery (XEP-0160): after the initial presence, every entry of
//! the account's durable queue goes to the client with a XEP-0203 delay
//! stamp and the same XEP-0359 stanza-id. Entries leave the queue once the
//! client has them (acknowledged with XEP-0198, or written to its socket).

use crate::c2s::session::Session;
use crate::{ns, util};
use natter_xml::Stanza;
use std::sync::Arc;

/// Entries fetched from the store at a time.
const BATCH: usize = 500;

/// Gives the session every queue entry after `flushed_upto` it does not have.
pub async fn flush(s: &mut Session) {
    loop {
        let fetch = s.shared.store.offline_fetch(&s.bare, s.flushed_upto, BATCH);
        let batch = match crate::metrics::store_op(2, fetch).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "offline fetch failed");
                return;
            }
        };
        let n = batch.len();
        for (seq, msg) in batch {
            if s.queued.contains(&seq) {
                s.flushed_upto = seq;
                continue; // already delivered live on this session
            }
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
                    let bytes: Arc<[u8]> = st.rewrite(None, None, &[], &delay).into();
                    s.send_queued(seq, &bytes);
                }
                Err(e) => tracing::error!(error = %e, seq, "unreadable queued message skipped"),
            }
            s.flushed_upto = seq;
        }
        if n < BATCH {
            return;
        }
    }
}
