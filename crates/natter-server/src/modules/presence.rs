//! Presence (RFC 6121 §4): availability broadcast to subscribers, probes
//! answered on login, directed presence, unavailable when a session ends.

use super::offline;
use super::subscription::{self, deliver_to_available, Kind};
use crate::c2s::session::Session;
use crate::util;
use natter_store::Subscription;
use natter_xml::Stanza;
use std::sync::Arc;

pub async fn from_client(s: &mut Session, st: &Stanza) {
    let ty = st.stanza_type().map(|t| t.into_owned());
    let Some(to) = st.to().map(|t| t.into_owned()) else {
        match ty.as_deref() {
            None => available(s, st).await,
            Some("unavailable") => went_unavailable(s, Some(st)).await,
            _ => {} // subscriptions and probes need a 'to'; errors to nobody end here
        }
        return;
    };
    let Some(target) = s.local_target(st, &to) else {
        return;
    };
    let bare = target.to_bare().as_str().to_owned();
    if target.node().is_some()
        && super::blocking::refuse_presence(s, st, target.as_str(), &bare).await
    {
        return;
    }
    if let Some(kind) = ty.as_deref().and_then(Kind::parse) {
        if target.node().is_some() {
            subscription::from_client(s, kind, &bare, st).await;
        }
        return;
    }
    match ty.as_deref() {
        Some("probe") => {
            if target.node().is_some() && sees(s, &bare, &s.bare.clone()).await {
                for p in s
                    .shared
                    .router
                    .sessions(&bare)
                    .into_iter()
                    .filter_map(|e| e.presence)
                {
                    s.send(&p);
                }
            }
        }
        None | Some("unavailable") | Some("error") => {
            // Directed presence (RFC 6121 §4.6) or a presence error.
            if target.node().is_none() {
                return;
            }
            // Available directed presence carries the avatar hash too
            // (XEP-0398 §4: MUC joins).
            let bytes: Arc<[u8]> = if ty.is_none() {
                super::avatar::presence(s, st).await.into()
            } else {
                st.rewrite(Some(&s.full), None, &[], b"").into()
            };
            match target.resource() {
                Some(r) => {
                    if let Some(e) = s.shared.router.session(&bare, r.as_str()) {
                        if e.conn_id == s.conn_id {
                            s.send(&bytes);
                        } else {
                            e.mailbox.stanza(&bytes);
                        }
                    }
                }
                None => deliver_to_available(s, &bare, &bytes),
            }
            match ty.as_deref() {
                None => {
                    s.directed.insert(target.as_str().to_owned());
                }
                Some("unavailable") => {
                    s.directed.remove(target.as_str());
                }
                _ => {}
            }
        }
        Some(_) => {
            s.send(&util::bounce(
                st,
                &s.full,
                &to,
                "modify",
                "bad-request",
                Some("unknown presence type"),
            ));
        }
    }
}

/// Whether `owner` lets `viewer` see its presence (subscription from/both).
async fn sees(s: &Session, owner: &str, viewer: &str) -> bool {
    owner == viewer
        || matches!(
            super::roster::subscription_of(s, owner, viewer).await,
            Some(Subscription::From | Subscription::Both)
        )
}

/// Bare JIDs of `owner`'s contacts with the given subscriptions.
async fn contacts(s: &Session, want: fn(Subscription) -> bool) -> Vec<String> {
    match crate::metrics::store_op(1, s.shared.store.roster(&s.bare)).await {
        Ok((_, items)) => items
            .into_iter()
            .filter(|i| i.in_roster && want(i.subscription))
            .map(|i| i.jid)
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "roster read failed");
            Vec::new()
        }
    }
}

fn subscribed_from(sub: Subscription) -> bool {
    matches!(sub, Subscription::From | Subscription::Both)
}

fn subscribed_to(sub: Subscription) -> bool {
    matches!(sub, Subscription::To | Subscription::Both)
}

/// Available presence (initial or an update) with no 'to'.
async fn available(s: &mut Session, st: &Stanza) {
    let priority = st
        .child("priority", crate::ns::CLIENT)
        .and_then(|_| st.element().ok())
        .and_then(|el| {
            el.get_child("priority", crate::ns::CLIENT)
                .map(|p| p.text())
        })
        .and_then(|t| t.trim().parse::<i8>().ok())
        .unwrap_or(0);
    let bytes: Arc<[u8]> = super::avatar::presence(s, st).await.into();
    let initial = !s.was_available;
    s.available = true;
    s.was_available = true;
    s.priority = priority;
    s.shared
        .router
        .set_presence(&s.bare, s.conn_id, Some((priority, bytes.clone())));
    broadcast(s, &bytes).await;
    if initial {
        // Probes (RFC 6121 §4.3): the current presence of every contact we see.
        for contact in contacts(s, subscribed_to).await {
            if !super::blocking::presence_allowed(s, &contact, &contact, &s.bare).await {
                continue;
            }
            for p in s
                .shared
                .router
                .sessions(&contact)
                .into_iter()
                .filter_map(|e| e.presence)
            {
                s.send(&p);
            }
        }
        // Our own other resources.
        let me = s.bare.clone();
        for e in s.shared.router.sessions(&me) {
            if e.conn_id != s.conn_id {
                if let Some(p) = e.presence {
                    s.send(&p);
                }
            }
        }
        for req in subscription::pending_requests(s).await {
            s.send(&req);
        }
        offline::flush(s).await;
    }
    super::caps::presence(s, st).await;
}

/// Sends `bytes` to every subscriber and every own available resource.
async fn broadcast(s: &mut Session, bytes: &Arc<[u8]>) {
    for contact in contacts(s, subscribed_from).await {
        if !super::blocking::presence_allowed(s, &s.full, &s.bare, &contact).await {
            continue;
        }
        deliver_to_available(s, &contact, bytes);
    }
    let me = s.bare.clone();
    deliver_to_available(s, &me, bytes);
}

/// The session went unavailable: by its own presence, or because it ended
/// (`st` is None). Subscribers and directed-presence targets are told.
pub async fn went_unavailable(s: &mut Session, st: Option<&Stanza>) {
    let bytes: Arc<[u8]> = match st {
        Some(st) => st.rewrite(Some(&s.full), None, &[], b"").into(),
        None => {
            let mut b = b"<presence type='unavailable' from='".to_vec();
            natter_xml::escape_attr(&s.full, &mut b);
            b.extend_from_slice(b"'/>");
            b.into()
        }
    };
    let was_available = s.available;
    s.available = false;
    super::caps::forget(s);
    s.shared.router.set_presence(&s.bare, s.conn_id, None);
    // Recorded before anyone is told, so a contact who asks after hearing
    // of it reads this session's end.
    if s.shared.router.available(&s.bare).is_empty() {
        let status = st
            .and_then(|st| st.element().ok())
            .and_then(|el| el.get_child("status", crate::ns::CLIENT).map(|e| e.text()))
            .unwrap_or_default();
        let now = util::now_unix_ms() / 1000;
        if let Err(e) = s
            .shared
            .store
            .set_last_activity(&s.bare, now, &status)
            .await
        {
            tracing::warn!(error = %e, "could not record last activity");
        }
    }
    if was_available {
        for contact in contacts(s, subscribed_from).await {
            if !super::blocking::presence_allowed(s, &s.full, &s.bare, &contact).await {
                continue;
            }
            deliver_to_available(s, &contact, &bytes);
        }
        let me = s.bare.clone();
        for e in s.shared.router.sessions(&me) {
            if e.available {
                e.mailbox.stanza(&bytes);
            }
        }
        if st.is_some() {
            s.send(&bytes);
        }
    }
    for target in std::mem::take(&mut s.directed) {
        if let Ok(j) = jid::Jid::new(&target) {
            let bare = j.to_bare().as_str().to_owned();
            match j.resource() {
                Some(r) => {
                    if let Some(e) = s.shared.router.session(&bare, r.as_str()) {
                        e.mailbox.stanza(&bytes);
                    }
                }
                None => deliver_to_available(s, &bare, &bytes),
            }
        }
    }
}
