//! natter's queue query: is a message I sent still waiting in the
//! recipient's durable queue? The "one tick or two" state for a client
//! that lost its own record (a reinstall).
//!
//! ```xml
//! <iq type='get' id='q1' to='bob@localhost'>
//!   <queued xmlns='urn:natter:queue:0' id='the-message-id'/>
//! </iq>
//! <iq type='result' id='q1' from='bob@localhost'>
//!   <queued xmlns='urn:natter:queue:0' id='the-message-id' state='queued'/>
//! </iq>
//! ```
//! `state` is `queued` (the server holds it for the recipient: one tick) or
//! `not-queued` (a device of the recipient has it — or the server never
//! accepted a message with that id from you). Only the sender's own
//! messages are visible: the query matches on the asking account.

use super::iq::Reply;
use crate::c2s::session::Session;
use natter_xml::{Element, Stanza};

pub const NS: &str = "urn:natter:queue:0";

pub async fn handle(s: &Session, st: &Stanza, recipient: &str) -> Reply {
    let Some(id) = st
        .child("queued", NS)
        .and_then(|c| c.attr(st, "id"))
        .map(|i| i.into_owned())
        .filter(|i| !i.is_empty())
    else {
        return Reply::bad_request("<queued/> needs the message id");
    };
    match crate::metrics::store_op(3, s.shared.store.offline_find(recipient, &s.bare, &id)).await {
        Ok(found) => Reply::Result(Some(
            Element::new("queued", NS).with_attr("id", id).with_attr(
                "state",
                if found.is_some() {
                    "queued"
                } else {
                    "not-queued"
                },
            ),
        )),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}
