//! natter's storage: accounts, rosters, the offline queue, vCards, last
//! activity, the message archive, PEP nodes and a generic key-value space,
//! behind one narrow async interface, [`Store`].
//!
//! # Model
//!
//! * Users are bare JID strings (`"alice@localhost"`), normalised by the
//!   caller; the store compares them byte for byte.
//! * Credentials, vCards, stanzas, PEP node configurations and payloads
//!   and key-value values are opaque bytes.
//! * Per-user data (roster, offline, vCard, last activity, key-value, PEP) does
//!   not require the account to exist; [`Store::delete_account`] removes
//!   all of it.
//!
//! # Durability and concurrency
//!
//! A write that returned `Ok` is committed: it survives `kill -9` of the
//! process, and with [`StoreConfig::fsync`] also power loss. Writes are
//! serialised on one writer thread that commits everything queued in one
//! transaction (group commit, see [`Store::stats`]); reads run on a small
//! pool of read-only connections on blocking threads. No call blocks a
//! tokio runtime thread. Another process may open the same database at the
//! same time (`natterd user add` while the server runs); each side waits up
//! to 5 s for the other's lock, then fails with the retryable
//! [`StoreError::Busy`].
//!
//! # Backends
//!
//! [`Backend::Sqlite`] (WAL mode) is the only one so far. A new backend is
//! one more variant of the private `Inner` enum plus a module; the
//! conformance suite (`tests/conformance.rs`, backend chosen by the
//! `NATTER_TEST_STORE` environment variable) runs against each.
//!
//! # Layout
//!
//! * `lib.rs` — this facade: [`Store`] dispatching to the backend.
//! * `types.rs` — config and data types ([`RosterItem`], [`OfflineMessage`], …);
//!   `archive.rs` — the message archive's types ([`ArchiveEntry`], …).
//! * `error.rs` — [`StoreError`].
//! * `sqlite/mod.rs` — SQLite backend: open, read pool, write submission, close.
//! * `sqlite/writer.rs` — the writer thread and group commit.
//! * `sqlite/migrations.rs` — ordered schema migrations (`PRAGMA user_version`).
//! * `pep.rs` — personal eventing (XEP-0163): PEP nodes and items, their
//!   types and calls; `sqlite/pep.rs` — their SQL.
//! * `sqlite/ops.rs` — account and roster SQL; `sqlite/data.rs` — offline,
//!   vCard, last activity, key-value SQL; `sqlite/archive/` — message
//!   archive SQL (`append.rs`: appends gathered into writer jobs,
//!   `query.rs`: queries, `mod.rs`: retraction, expiry, preferences);
//!   `sqlite/rows.rs` — row conversions.
//! * `tests/conformance.rs` — behaviour every backend must show;
//!   `tests/durability.rs` — reopen, two handles on one file, group commit.

mod archive;
mod error;
mod pep;
mod sqlite;
mod types;

pub use archive::{
    ArchiveDefault, ArchiveEntry, ArchivePage, ArchivePrefs, ArchiveQuery, ArchivedMessage,
};
pub use error::StoreError;
pub use pep::{PepCreated, PepItem, PepLastItem, PepNewNode, PepNode, PepPublished};
pub use types::{Backend, OfflineMessage, RosterItem, StoreConfig, StoreStats, Subscription};

use sqlite::SqliteStore;

/// The store handle. Cheap to clone; all clones share one backend.
#[derive(Clone)]
pub struct Store(Inner);

#[derive(Clone)]
enum Inner {
    Sqlite(SqliteStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Sqlite(_) => f.write_str("Store(Sqlite)"),
        }
    }
}

/// Dispatches a method call to the backend.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.0 {
            Inner::Sqlite(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens the store, creating it if needed, and applies pending schema
    /// migrations.
    pub async fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        match cfg.backend {
            Backend::Sqlite { path } => Ok(Store(Inner::Sqlite(
                SqliteStore::open(path, cfg.fsync).await?,
            ))),
        }
    }

    /// Finishes writes already submitted, checkpoints, and stops the
    /// backend. Afterwards every call (on any clone) fails with
    /// [`StoreError::Closed`]. Calling it again is a no-op.
    pub async fn close(&self) -> Result<(), StoreError> {
        dispatch!(self.close())
    }

    /// Write-path counters (commits vs. write operations).
    pub fn stats(&self) -> StoreStats {
        match &self.0 {
            Inner::Sqlite(s) => s.stats(),
        }
    }

    // ---- accounts -------------------------------------------------------

    /// Creates an account; [`StoreError::AlreadyExists`] if `jid` has one.
    pub async fn create_account(&self, jid: &str, credentials: &[u8]) -> Result<(), StoreError> {
        dispatch!(self.create_account(jid, credentials))
    }

    /// Bulk import in one transaction. Accounts that already exist (or
    /// repeat within `accounts`) are skipped, not overwritten. Returns how
    /// many were created.
    pub async fn create_accounts(
        &self,
        accounts: Vec<(String, Vec<u8>)>,
    ) -> Result<usize, StoreError> {
        dispatch!(self.create_accounts(accounts))
    }

    /// Replaces an account's credentials; [`StoreError::NotFound`] if none.
    pub async fn set_credentials(&self, jid: &str, credentials: &[u8]) -> Result<(), StoreError> {
        dispatch!(self.set_credentials(jid, credentials))
    }

    /// The account's credentials, `None` if there is no account.
    pub async fn credentials(&self, jid: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self.credentials(jid))
    }

    /// Whether the account exists.
    pub async fn account_exists(&self, jid: &str) -> Result<bool, StoreError> {
        dispatch!(self.account_exists(jid))
    }

    /// Deletes the account and everything the user owns (roster, roster
    /// version, offline messages, vCard, last activity, key-value entries,
    /// message archive and archive preferences, PEP nodes and items),
    /// atomically. [`StoreError::NotFound`] if there is no account. Other
    /// users' roster items pointing at `jid` are left to the caller.
    pub async fn delete_account(&self, jid: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_account(jid))
    }

    /// All account JIDs, sorted.
    pub async fn list_accounts(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self.list_accounts())
    }

    // ---- roster ---------------------------------------------------------

    /// The owner's roster version (0 if never changed) and all its rows,
    /// sorted by contact JID, read consistently. Includes hidden rows
    /// (`in_roster == false`); filter them for the user-visible roster.
    pub async fn roster(&self, owner: &str) -> Result<(u64, Vec<RosterItem>), StoreError> {
        dispatch!(self.roster(owner))
    }

    /// One roster row.
    pub async fn roster_item(
        &self,
        owner: &str,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError> {
        dispatch!(self.roster_item(owner, contact))
    }

    /// The row about `contact` in the roster of each of `owners` that has
    /// one, with its groups, in one read: (owner, row), sorted by owner.
    pub async fn roster_items_of(
        &self,
        owners: &[String],
        contact: &str,
    ) -> Result<Vec<(String, RosterItem)>, StoreError> {
        dispatch!(self.roster_items_of(owners, contact))
    }

    /// Inserts or replaces the row for `item.jid` and returns the owner's
    /// new roster version. Versions are strictly increasing per owner (they
    /// come from a store-wide counter, so they also never repeat after the
    /// account is deleted and re-created).
    pub async fn roster_put(&self, owner: &str, item: &RosterItem) -> Result<u64, StoreError> {
        dispatch!(self.roster_put(owner, item))
    }

    /// Removes the row and returns the new roster version;
    /// [`StoreError::NotFound`] (version unchanged) if there is no such row.
    pub async fn roster_remove(&self, owner: &str, contact: &str) -> Result<u64, StoreError> {
        dispatch!(self.roster_remove(owner, contact))
    }

    // ---- offline queue --------------------------------------------------

    /// Queues a stanza for `owner`. Returns its sequence number: strictly
    /// increasing across the whole store and never reused.
    pub async fn offline_push(&self, owner: &str, msg: &OfflineMessage) -> Result<u64, StoreError> {
        dispatch!(self.offline_push(owner, msg))
    }

    /// Like `offline_push`, for a recipient that may not exist. The entry's
    /// seq is reserved and the write queued at once, so calls made in order
    /// commit in that order (seq order) however the returned futures are
    /// awaited, and the caller may hand the entry on before its commit. The
    /// future resolves after the commit to the seq, or `None` when `owner`
    /// has no account (the seq is then never used). Takes the message by
    /// value: it is moved to the writer, not copied.
    ///
    /// `ack_wait` is for a message the caller already handed to the
    /// owner's sessions: its write waits that long, and if an
    /// [`offline_delete`](Self::offline_delete) of its seq comes first (a
    /// session acknowledged it), it is never written and the future
    /// resolves at once to its seq. Writes queued after it wait for it
    /// (commit order is kept). `Duration::ZERO` writes at once.
    pub fn offline_push_if_account(
        &self,
        owner: &str,
        msg: OfflineMessage,
        ack_wait: std::time::Duration,
    ) -> (
        u64,
        impl std::future::Future<Output = Result<Option<u64>, StoreError>> + Send + 'static,
    ) {
        match &self.0 {
            Inner::Sqlite(s) => s.offline_push_if_account(owner, msg, ack_wait),
        }
    }

    /// Up to `limit` of the owner's messages with seq `> after_seq`, in
    /// seq (= arrival) order. Start with `after_seq = 0`.
    pub async fn offline_fetch(
        &self,
        owner: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, OfflineMessage)>, StoreError> {
        dispatch!(self.offline_fetch(owner, after_seq, limit))
    }

    /// Deletes the owner's messages with these seqs (typically after
    /// delivery). Unknown seqs, or seqs of other owners, are ignored. The
    /// write is queued at once, after every write asked for before it (a
    /// delete never overtakes the insert it removes); the future resolves
    /// after the commit. An insert still waiting out its `ack_wait` is
    /// withdrawn instead (see `offline_push_if_account`).
    pub fn offline_delete(
        &self,
        owner: &str,
        seqs: &[u64],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        match &self.0 {
            Inner::Sqlite(s) => s.offline_delete(owner, seqs),
        }
    }

    /// Has the inserts of `seqs` into `owner`'s queue that still wait out
    /// an `ack_wait` written now (say, the session that had them ended
    /// without acknowledging them). Others are ignored.
    pub fn offline_hurry(&self, owner: &str, seqs: &[u64]) {
        match &self.0 {
            Inner::Sqlite(s) => s.offline_hurry(owner, seqs),
        }
    }

    /// The seq of the owner's queued message sent by `from_bare` (any of
    /// its resources, or the bare JID itself: the stored
    /// [`OfflineMessage::from`] is a full JID) with
    /// [`OfflineMessage::msg_id`] equal to `msg_id`; the lowest seq if
    /// several match, `None` if none does. JIDs are compared byte for byte;
    /// `%` and `_` are ordinary characters. An empty `msg_id` never matches.
    /// `from_bare` must be a bare JID (no `/`).
    pub async fn offline_find(
        &self,
        owner: &str,
        from_bare: &str,
        msg_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        dispatch!(self.offline_find(owner, from_bare, msg_id))
    }

    /// How many messages are queued for the owner.
    pub async fn offline_count(&self, owner: &str) -> Result<u64, StoreError> {
        dispatch!(self.offline_count(owner))
    }

    /// How many messages are queued for all accounts together (one count
    /// over the queue: for metrics, not for every request).
    pub async fn offline_total(&self) -> Result<u64, StoreError> {
        dispatch!(self.offline_total())
    }

    // ---- vCard ----------------------------------------------------------

    /// The owner's vCard-temp (serialized XML), if set.
    pub async fn vcard(&self, owner: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self.vcard(owner))
    }

    /// Sets (replaces) the owner's vCard.
    pub async fn set_vcard(&self, owner: &str, data: &[u8]) -> Result<(), StoreError> {
        dispatch!(self.set_vcard(owner, data))
    }

    // ---- last activity --------------------------------------------------

    /// When the owner's last session ended (Unix seconds) and its status.
    pub async fn last_activity(&self, owner: &str) -> Result<Option<(u64, String)>, StoreError> {
        dispatch!(self.last_activity(owner))
    }

    /// Records the end of a session.
    pub async fn set_last_activity(
        &self,
        owner: &str,
        unix_secs: u64,
        status: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self.set_last_activity(owner, unix_secs, status))
    }

    // ---- key-value ------------------------------------------------------

    /// The value under (`namespace`, `owner`, `key`).
    pub async fn kv_get(
        &self,
        namespace: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self.kv_get(namespace, owner, key))
    }

    /// Sets (replaces) a value.
    pub async fn kv_put(
        &self,
        namespace: &str,
        owner: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        dispatch!(self.kv_put(namespace, owner, key, value))
    }

    /// Removes a value; removing a missing key is not an error.
    pub async fn kv_delete(
        &self,
        namespace: &str,
        owner: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self.kv_delete(namespace, owner, key))
    }

    /// All (key, value) pairs of the owner in the namespace, sorted by key.
    pub async fn kv_list(
        &self,
        namespace: &str,
        owner: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        dispatch!(self.kv_list(namespace, owner))
    }

    /// Every owner with at least one entry in the namespace, sorted (for a
    /// module that keeps an index of who uses it, built once at start).
    pub async fn kv_owners(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self.kv_owners(namespace))
    }

    // ---- message archive (XEP-0313) -------------------------------------

    /// Appends messages to their owners' archives. Queued for the writer at
    /// once (after every write asked for before it) and committed with the
    /// writes around it, never in a transaction of its own: appends asked
    /// for while one waits for the writer are written by the same job. The
    /// future
    /// resolves after the commit to how many entries were stored. An entry
    /// is skipped when its owner has no account, when the owner's
    /// [`ArchivePrefs`] exclude its `with` (checked in the writer, not by
    /// the caller), or when its id is already in the owner's archive.
    /// Dropping the future does not cancel the write.
    pub fn archive_append(
        &self,
        entries: Vec<ArchiveEntry>,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send + 'static {
        match &self.0 {
            Inner::Sqlite(s) => s.archive_append(entries),
        }
    }

    /// Archive entries asked for with [`archive_append`](Self::archive_append)
    /// and not yet committed: how far the archive lags (callers may slow
    /// down when it grows).
    pub fn archive_backlog(&self) -> usize {
        match &self.0 {
            Inner::Sqlite(s) => s.archive_backlog(),
        }
    }

    /// XEP-0424: turns the message with this origin-id in `owner`'s
    /// conversation with `with_bare`, sent by `sender_bare` (any resource),
    /// into a tombstone: its stanza is erased and it is marked retracted at
    /// `at_unix_ms`. Queued at once like [`archive_append`](Self::archive_append);
    /// resolves to how many entries changed (0 if none matched, or it was
    /// retracted already). An empty origin-id matches nothing.
    pub fn archive_retract(
        &self,
        owner: &str,
        with_bare: &str,
        sender_bare: &str,
        origin_id: &str,
        at_unix_ms: u64,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send + 'static {
        match &self.0 {
            Inner::Sqlite(s) => {
                s.archive_retract(owner, with_bare, sender_bare, origin_id, at_unix_ms)
            }
        }
    }

    /// Deletes up to `max_rows` archived messages (of any owner) received
    /// before `before_unix_ms`, in arrival order from the oldest, stopping
    /// at the first that is not that old; returns how many. Call it again
    /// while it returns `max_rows`: each call is one short write. (An entry
    /// appended with a time older than an entry appended before it is
    /// deleted once that one is.)
    pub async fn archive_expire(
        &self,
        before_unix_ms: u64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        dispatch!(self.archive_expire(before_unix_ms, max_rows))
    }

    /// The owner's archived messages matching `q`, oldest first, and
    /// whether no further page follows in the paging direction.
    /// [`StoreError::NotFound`] if `after_id` or `before_id` is not in the
    /// owner's archive; [`StoreError::InvalidInput`] for more than 1000 ids.
    pub async fn archive_query(
        &self,
        owner: &str,
        q: ArchiveQuery,
    ) -> Result<ArchivePage, StoreError> {
        dispatch!(self.archive_query(owner, q))
    }

    /// The (id, Unix ms) of the owner's oldest and newest archived
    /// messages; `None` if the archive is empty.
    #[allow(clippy::type_complexity)]
    pub async fn archive_bounds(
        &self,
        owner: &str,
    ) -> Result<Option<((String, u64), (String, u64))>, StoreError> {
        dispatch!(self.archive_bounds(owner))
    }

    /// How many messages the owner's archive holds (a count: for tests and
    /// administration, not for every request).
    pub async fn archive_count(&self, owner: &str) -> Result<u64, StoreError> {
        dispatch!(self.archive_count(owner))
    }

    /// The owner's archiving preferences (the defaults if never set).
    pub async fn archive_prefs(&self, owner: &str) -> Result<ArchivePrefs, StoreError> {
        dispatch!(self.archive_prefs(owner))
    }

    /// Replaces the owner's archiving preferences.
    /// [`StoreError::InvalidInput`] for an empty JID or one with a newline.
    pub async fn set_archive_prefs(
        &self,
        owner: &str,
        prefs: &ArchivePrefs,
    ) -> Result<(), StoreError> {
        dispatch!(self.set_archive_prefs(owner, prefs))
    }

    /// Resolves once every write asked for before it is committed (or
    /// known not to be needed): a reader that then reads sees them. Costs
    /// no transaction of its own.
    pub fn write_barrier(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        match &self.0 {
            Inner::Sqlite(s) => s.write_barrier(),
        }
    }
}
