//! Message archive (XEP-0313 v2, `urn:xmpp:mam:2` with `#extended`), message
//! retraction in the archive (XEP-0424) and retention.
//!
//! # What is archived
//!
//! Every chat or normal message from a local session to a local account that
//! the offline queue would keep (so not `no-store`/`no-permanent-store`, not
//! chat states alone) and that has content worth a history: a `<body/>`,
//! an encrypted payload, a XEP-0424 `<retract/>`, or a XEP-0334 `<store/>`
//! hint (how a receipt or a marker asks to be archived). Each goes into the
//! sender's and the recipient's archive (once for a message to one's own
//! account), subject to each owner's preferences.
//!
//! # Archive ids
//!
//! Both copies carry the XEP-0359 stanza-id the server stamped in the
//! message it delivers (`by` = the recipient's bare JID): the recipient's
//! devices learn it from the message itself, and it is also the sender's
//! archive id (ids are unique per archive, so one id serves both). The
//! sender's devices learn it from their own archive (a query, or a carbon
//! copy that carries the same id with `by` = the sender's bare JID).
//!
//! # Cost on the routing path
//!
//! No store read and no tree: a look at the parsed children, then the
//! entries handed to the store right after the message's queue insert,
//! where every append waiting for the writer is written by one job
//! (preferences and account checks run there, in the writer). The queue's
//! contract is unchanged: a held queue insert is still withdrawn when the
//! recipient acknowledges in time (the archive copy is written anyway),
//! and the sender's acknowledgement does not wait for the archive, unless
//! the archive lags by more than [`MAX_BACKLOG`] entries (then it waits
//! for its message's archive write: backpressure, not unbounded memory).
//! A query first
//! waits for the writes queued before it ([`natter_store::Store::write_barrier`]),
//! so a device sees every message routed before its query.
//!
//! # Layout
//!
//! * `mod.rs` — this: archiving routed messages, the expiry job.
//! * `query.rs` — the query IQ: form, RSM paging, results, `<fin/>`.
//! * `prefs.rs` — preferences and metadata IQs.

mod prefs;
mod query;

use crate::c2s::session::Session;
use crate::config::ArchiveSection;
use crate::modules::iq::Reply;
use crate::ns;
use natter_store::{ArchiveEntry, Store};
use natter_xml::Stanza;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// XEP-0313 v2.
pub const NS: &str = "urn:xmpp:mam:2";
/// XEP-0313 `#extended`: before-id, after-id, ids, metadata.
pub const NS_EXTENDED: &str = "urn:xmpp:mam:2#extended";
/// XEP-0424 message retraction.
pub const NS_RETRACT: &str = "urn:xmpp:message-retract:1";

/// Features an account's bare JID adds in disco#info when archiving is on.
pub fn account_features(cfg: &ArchiveSection) -> &'static [&'static str] {
    if cfg.enabled {
        &[NS, NS_EXTENDED, NS_RETRACT]
    } else {
        &[]
    }
}

/// Archiving work for one routed message, decided on the routing path and
/// queued in the store after its queue insert.
pub struct Archiving {
    entries: Vec<ArchiveEntry>,
    /// A XEP-0424 retraction: (origin-id it names, sender bare, recipient bare).
    retract: Option<(String, String, String)>,
}

/// A new XEP-0359 stanza-id (also the archive id): the time in ms and 48
/// random bits, in hex (24 characters). Ids of later messages sort after
/// earlier ones, so the archive's id index grows at its end instead of
/// taking inserts all over (which made the writer rewrite index pages
/// for nearly every message); the random half keeps ids unique and not
/// guessable from the time alone.
pub fn stanza_id() -> String {
    use rand::Rng;
    let ms = crate::util::now_unix_ms() & 0xffff_ffff_ffff;
    let r: u64 = rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff;
    format!("{ms:012x}{r:012x}")
}

/// Archive entries waiting for the writer past which a sender's
/// acknowledgement also waits for its message's archive write: archiving
/// then slows senders down instead of growing without bound.
pub const MAX_BACKLOG: usize = 4096;

impl Archiving {
    /// Queues the writes in the store's writer. Not waited for (the
    /// sender's acknowledgement depends on the queue, not the archive)
    /// unless the archive lags by more than [`MAX_BACKLOG`] entries: then
    /// the returned future is the append's commit, to wait for before the
    /// acknowledgement.
    pub fn submit(
        self,
        store: &Store,
    ) -> Option<impl std::future::Future<Output = ()> + Send + Sync + 'static> {
        let lagging = store.archive_backlog() > MAX_BACKLOG;
        let append = store.archive_append(self.entries);
        if let Some((origin, sender, recipient)) = self.retract {
            let now = crate::util::now_unix_ms();
            drop(store.archive_retract(&sender, &recipient, &sender, &origin, now));
            if recipient != sender {
                drop(store.archive_retract(&recipient, &sender, &sender, &origin, now));
            }
        }
        if !lagging {
            drop(append);
            return None;
        }
        Some(async move {
            if let Err(e) = append.await {
                tracing::warn!(error = %e, "archiving a message failed");
            }
        })
    }
}

/// What archiving `st` takes (None: nothing), for a message the routing
/// path keeps (chat/normal with content, no `no-store` hint). `bytes` is
/// what is delivered, `stanza_id` the id stamped in it, `bare` and
/// `resource` the recipient.
pub fn prepare(
    s: &Session,
    st: &Stanza,
    bytes: &Arc<[u8]>,
    stanza_id: &str,
    bare: &str,
    resource: Option<&str>,
) -> Option<Archiving> {
    if !s.shared.config.archive.enabled {
        return None;
    }
    let mut retract = None;
    let mut origin = None;
    let mut keep = false;
    for c in st.children() {
        match (c.name.as_str(), c.ns.as_str()) {
            ("body", ns::CLIENT) | ("store", ns::HINTS) | ("encrypted", _) => keep = true,
            ("retract", NS_RETRACT) => {
                keep = true;
                retract = c.attr(st, "id").map(|i| i.into_owned());
            }
            ("origin-id", ns::SID) => origin = c.attr(st, "id").map(|i| i.into_owned()),
            _ => {}
        }
    }
    if !keep {
        return None;
    }
    let origin_id = origin
        .or_else(|| st.id().map(|i| i.into_owned()))
        .unwrap_or_default();
    let stamp = crate::util::now_unix_ms();
    let to = match resource {
        Some(r) => format!("{bare}/{r}"),
        None => bare.to_owned(),
    };
    let mut entries = vec![ArchiveEntry {
        owner: bare.to_owned(),
        id: stanza_id.to_owned(),
        with: s.full.clone(),
        sender: s.full.clone(),
        origin_id: origin_id.clone(),
        stamp_unix_ms: stamp,
        stanza: bytes.clone(),
        with_must_exist: false,
    }];
    if bare != s.bare {
        entries.push(ArchiveEntry {
            owner: s.bare.clone(),
            id: stanza_id.to_owned(),
            with: to,
            sender: s.full.clone(),
            origin_id,
            stamp_unix_ms: stamp,
            stanza: bytes.clone(),
            with_must_exist: true,
        });
    }
    Some(Archiving {
        entries,
        retract: retract
            .filter(|r| !r.is_empty())
            .map(|r| (r, s.bare.clone(), bare.to_owned())),
    })
}

/// IQs in the `urn:xmpp:mam:2` namespace to an account: only its owner may
/// use them.
pub async fn handle(s: &mut Session, st: &Stanza, owner: &str, name: &str, set: bool) -> Reply {
    if !s.shared.config.archive.enabled {
        return Reply::service_unavailable();
    }
    if owner != s.bare {
        return Reply::Error("auth", "forbidden", Some("not your archive".into()));
    }
    match (name, set) {
        ("query", false) => query::form(),
        ("query", true) => query::run(s, st).await,
        ("prefs", false) => prefs::get(s).await,
        ("prefs", true) => prefs::set(s, st).await,
        ("metadata", false) => prefs::metadata(s).await,
        _ => Reply::service_unavailable(),
    }
}

/// How often the expiry job looks for archived messages past retention.
const EXPIRY_PERIOD: Duration = Duration::from_secs(600);
/// Rows deleted per write: each batch is one short job in the writer.
const EXPIRY_BATCH: usize = 1000;

/// Deletes archived messages older than `retention_days`, at start and then
/// every [`EXPIRY_PERIOD`], in batches of [`EXPIRY_BATCH`], until
/// `shutdown` turns true. Runs even with archiving off (what an earlier
/// configuration archived still expires); not at all with 0 days.
pub async fn expiry_job(store: Store, cfg: ArchiveSection, mut shutdown: watch::Receiver<bool>) {
    if cfg.retention_days == 0 {
        return;
    }
    let keep_ms = u64::from(cfg.retention_days) * 86_400_000;
    loop {
        let cutoff = crate::util::now_unix_ms().saturating_sub(keep_ms);
        let mut total = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match store.archive_expire(cutoff, EXPIRY_BATCH).await {
                Ok(n) => {
                    total += n;
                    if n < EXPIRY_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "archive expiry failed");
                    break;
                }
            }
            // Other writes get their turn between batches.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            tracing::info!(deleted = total, "archive: expired old messages");
        }
        tokio::select! {
            _ = tokio::time::sleep(EXPIRY_PERIOD) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stanza_ids_are_unique_hex_in_time_order() {
        let ids: Vec<String> = (0..1000).map(|_| super::stanza_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 24, "{id}");
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        // The time half never goes down from one id to the next.
        assert!(ids.windows(2).all(|w| w[0][..12] <= w[1][..12]));
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
